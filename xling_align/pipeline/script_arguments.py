"""`ScriptArguments`: the data and run settings of an `xling-align train` recipe (next to AFPConfig and ModelConfig).

Like TRL's own `ScriptArguments` (`trl/scripts/utils.py`), a dataclass whose fields are recipe keys and
command-line flags; `__post_init__` refuses combinations that cannot work, naming the setting.

Example:
    >>> from xling_align.pipeline.script_arguments import ScriptArguments
    >>> ScriptArguments(dataset_path="rows.jsonl").languages is None
    True
    >>> ScriptArguments()
    Traceback (most recent call last):
    ...
    xling_align.pipeline.recipe_parser.RecipeError: no training data: set dataset_path (prepared AFP rows) or data_source + data_input (raw data built with xling_align.data), in the recipe or on the command line
"""  # noqa: E501 (doctest output / Markdown table rows stay whole)

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from xling_align.data.config import SOURCES as DATA_SOURCES
from xling_align.pipeline.recipe_parser import RecipeError


@dataclass
class ScriptArguments:
    """Where the training data comes from, and how the run treats its output directory.

    Give either a prepared dataset (`dataset_path`, rows as `xling-align data build` writes them) or a raw
    source for the data module (`data_source` + `data_input` + `languages`). Paths may be `pkg://` paths
    (files shipped inside an installed package, e.g. `pkg://xling_align/resources/tiny/train.jsonl`).

    Parameters:
        > Training data

        dataset_path (`str` or `None`): prepared AFP rows: a JSONL/JSON file, a `datasets.save_to_disk`
            folder (a `DatasetDict` uses its `dataset_train_split`), or a `pkg://` path.
        data_source (`str` or `None`): raw data built into rows on the fly by `xling_align.data`:
            `bactrian-x` (a folder of per-language JSON files), `parallel` (a TSV/CSV/JSONL parallel file)
            or `instructions` (a multilingual instruction file aligned by id).
        data_input (`str` or `None`): the folder or file of `data_source` (unset with `bactrian-x`: the
            data module reads the hub, which needs the network).
        data_options (`dict` or `None`): further fields of `xling_align.data.DataBuildConfig` (mode,
            cross_probability, repeat, seed, heldout_size, ...), as in `xling-align data build`. With
            `heldout_size: N` the pairs of N items are kept out of training and used as evaluation data.
        languages (`list[str]` or `None`): language codes of the run; the data builder uses them and the
            model card lists them (when unset, they are read from the rows' `source_lang`/`target_lang`).
        dataset_train_split (`str`): split to train on when `dataset_path` holds a `DatasetDict`.
        max_train_samples (`int` or `None`): keep only the first N training rows (quick runs).

        > Checkpoint selection (never on test data)

        eval_dataset_path (`str` or `None`): held-out rows evaluated at each `eval_steps`: AFP rows (a dev
            split; pair-only rows give `eval_contrastive_loss` / `eval_contrastive_accuracy`) or a parallel
            file (TSV/CSV with a language-code header, JSONL), turned into pair rows. Unset: the pairs held
            out by the data builder, else the pairs of AFPConfig's `alignment_eval_file`, else none.
        max_eval_samples (`int` or `None`): keep only the first N evaluation rows.

        > Run

        cpu_threads (`int` or `None`): `torch.set_num_threads` for each process (tiny models on a CPU).

        overwrite_output_dir (`bool`): write into an output directory that holds another run (its
            checkpoints are deleted); without it such a directory is refused.
    """

    dataset_path: str | None = field(
        default=None,
        metadata={"help": "Prepared AFP rows: JSONL/JSON file, save_to_disk folder, or pkg://package/path."},
    )
    data_source: str | None = field(
        default=None,
        metadata={"help": f"Raw data to build rows from with xling_align.data: one of {', '.join(DATA_SOURCES)}."},
    )
    data_input: str | None = field(
        default=None,
        metadata={
            "help": "Folder (bactrian-x; unset: the hub) or file (parallel, instructions) of data_source; "
            "pkg:// allowed."
        },
    )
    data_options: dict | str | None = field(
        default=None,
        metadata={
            "help": "Further DataBuildConfig fields for the data builder, e.g. {mode: bilingual, repeat: 3, "
            "seed: 0, heldout_size: 200}."
        },
    )
    languages: list[str] | None = field(
        default=None,
        metadata={"help": "Language codes of the run (data builder input; listed in the model card)."},
    )
    dataset_train_split: str = field(
        default="train", metadata={"help": "Split to train on when dataset_path holds a DatasetDict."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only the first N training rows (quick runs)."}
    )
    eval_dataset_path: str | None = field(
        default=None,
        metadata={
            "help": "Held-out rows for checkpoint selection: AFP rows (dev split) or a parallel file of held-out "
            "translation pairs (logs eval_contrastive_loss / eval_contrastive_accuracy). Never test data."
        },
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only the first N evaluation rows."})
    cpu_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads per process (torch.set_num_threads); 1 is fastest for tiny models on a "
            "busy machine. Unset: torch's default."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Write into an output_dir that holds another run (deletes its checkpoints)."},
    )

    def __post_init__(self):
        for name in ("dataset_path", "data_source", "data_input", "eval_dataset_path"):
            if getattr(self, name) == "":  # `--eval_dataset_path ""` on the command line switches it off
                setattr(self, name, None)
        if isinstance(self.data_options, str):  # from the command line: a JSON object
            try:
                self.data_options = json.loads(self.data_options)
            except json.JSONDecodeError as error:
                raise RecipeError(f"data_options {self.data_options!r} is not a JSON object: {error}") from error
        if self.data_options is not None and not isinstance(self.data_options, dict):
            raise RecipeError(f"data_options must be a mapping of DataBuildConfig fields, got {self.data_options!r}")
        if isinstance(self.languages, str):  # a recipe's `languages: en zh` (or "en,zh"): one string, not a list
            self.languages = [code for code in re.split(r"[\s,]+", self.languages) if code]
        if self.languages is not None:
            odd = [code for code in self.languages if not isinstance(code, str)]
            if odd:  # YAML reads `no` (Norwegian) as false and `1` as a number
                raise RecipeError(
                    f"languages {self.languages!r}: {', '.join(map(repr, odd))} is not a language code; "
                    "quote codes that YAML reads as something else, e.g. languages: [en, 'no']"
                )
        if self.dataset_path is None and self.data_source is None:
            raise RecipeError(
                "no training data: set dataset_path (prepared AFP rows) or data_source + data_input (raw data "
                "built with xling_align.data), in the recipe or on the command line"
            )
        if self.dataset_path is not None and self.data_source is not None:
            raise RecipeError(
                f"both dataset_path ({self.dataset_path!r}) and data_source ({self.data_source!r}) are set; keep one"
            )
        if self.data_source not in (None, *DATA_SOURCES):
            raise RecipeError(f"data_source {self.data_source!r} is not one of {list(DATA_SOURCES)}")
        if self.data_source in ("parallel", "instructions") and self.data_input is None:
            raise RecipeError(f"data_source {self.data_source!r} needs data_input (its TSV/CSV/JSONL file)")
        for name in ("max_train_samples", "max_eval_samples", "cpu_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise RecipeError(f"{name} must be a positive number, got {value}")
