"""The lm-eval side of the `xling_afp_*` tasks (the AFP paper's evaluation protocol): data, choices, demonstrations.

The protocol's facts live in `xling_align.evaluation.paper_protocol`; the task YAMLs (`afp/`, written by
`generate_tasks.py`) name the functions below:

- `load_paper_protocol` (`custom_dataset`): the scored split of the test language and the dev split of the
  prompt language, both read like every other `xling_*` task (hub, or `XLING_DATA_DIR` / `--metadata
  data_dir`). Every row gets its rendered texts (`afp_query_texts`, `afp_example_texts`) and its gold index
  (`afp_gold`); the dev split is put in the order the demonstration seed gives it (`demo_seed` from
  `--metadata`, default 0 as in the reference's config), so its first k rows are the reference's k
  demonstrations; dev rows that are items of the scored split (a few in PAWS-X's release) are then dropped
  with a warning, the others keeping their order;
- `query_texts` / `example_texts` / `gold` (`doc_to_choice`, `fewshot_config.doc_to_choice`, `doc_to_target`);
- `PaperDemonstrations` (`fewshot_config.sampler`): the first k rows of that order for every test item.

Example (a shell; DIR holds the local data layout):
    XLING_DATA_DIR=DIR lm_eval --model hf --model_args pretrained=facebook/xglm-564M,prefix_token_id=2 \\
        --tasks xling_afp_pawsx_zh --num_fewshot 5 --metadata '{"demo_seed": 0}'
"""

from __future__ import annotations

from functools import partial
from typing import Any

from lm_eval.api.samplers import ContextSampler

from xling_align.evaluation.paper_protocol import DEFAULT_DEMONSTRATION_SEED, protocol, reference_order
from xling_align.lm_eval_tasks.data_loader import load_scored_split, load_split

DEMONSTRATION_SPLIT = "dev"  # the key of the seeded dev split in the loaded DatasetDict


def _with_texts(dataset, name: str, prompt_lang: str, where: str):
    """`dataset` with the protocol's texts and gold index of every row."""
    import datasets

    entry = protocol(name)
    rows = [
        {
            **row,
            "afp_query_texts": entry.query_texts(row, prompt_lang),
            "afp_example_texts": entry.example_texts(row, prompt_lang),
            "afp_gold": entry.gold(row),
            "afp_source": where,
        }
        for row in dataset
    ]
    return datasets.Dataset.from_list(rows)  # (not `map`: no progress bar per task and split)


def load_paper_protocol(
    xling_benchmark: str,
    xling_lang: str,
    xling_prompt_lang: str,
    data_dir: str | None = None,
    demo_seed: int | str = DEFAULT_DEMONSTRATION_SEED,
    **_ignored: Any,
):
    """The `custom_dataset` of every `xling_afp_*` task.

    Args:
        xling_benchmark: `pawsx`, `xnli`, `xcopa`, `xstorycloze` or `xwinograd`.
        xling_lang: the test language (its scored split is loaded).
        xling_prompt_lang: the prompt language (its format renders every text; its dev split gives the
            demonstrations).
        data_dir: local data folder (from `--metadata`); `$XLING_DATA_DIR` when not given.
        demo_seed: the seed that picks the demonstrations (`--metadata '{"demo_seed": 1}'`).
        **_ignored: the rest of lm-eval's metadata (`version`, model arguments).

    Returns:
        A `datasets.DatasetDict`: the scored split under its hub name, and `dev` in the seed's order.
    """
    import datasets

    entry = protocol(xling_benchmark)
    entry.prompt_format(xling_prompt_lang)  # an unknown prompt language fails before any data is read
    try:
        seed = int(demo_seed)
    except (TypeError, ValueError):
        raise ValueError(f"--metadata demo_seed={demo_seed!r} is not an integer seed.") from None
    scored = entry.scored(xling_lang)
    dev = entry.demonstration_source(xling_prompt_lang)
    test_rows, test_items = load_scored_split(xling_benchmark, xling_lang, scored, data_dir)
    # the seed orders the whole dev split (the reference's order); scored items are dropped after, so the others
    # keep their places and the first k demonstrations are the reference's wherever none of them was dropped
    dev_rows = load_split(
        xling_benchmark, xling_prompt_lang, dev, data_dir, not_in=test_items, order=partial(reference_order, seed=seed)
    )
    dev_where = f"{xling_benchmark} {xling_prompt_lang} {dev.split} ({dev.path}, {len(dev_rows)} rows, seed {seed})"
    return datasets.DatasetDict(
        {
            scored.split: _with_texts(
                test_rows, xling_benchmark, xling_prompt_lang, f"{xling_benchmark} {xling_lang} {scored.split}"
            ),
            DEMONSTRATION_SPLIT: _with_texts(dev_rows, xling_benchmark, xling_prompt_lang, dev_where),
        }
    )


def query_texts(doc: dict) -> list[str]:
    """Every choice of a test item: the whole query filled with that candidate."""
    return list(doc["afp_query_texts"])


def example_texts(doc: dict) -> list[str]:
    """The demonstration format filled with every candidate; lm-eval shows the gold one."""
    return list(doc["afp_example_texts"])


def gold(doc: dict) -> int:
    return int(doc["afp_gold"])


class PaperDemonstrations(ContextSampler):
    """The reference's demonstrations: the first k rows of the dev split in the seed's order, for every item.

    The loader has already ordered the split by `demo_seed`; lm-eval's own few-shot seed is not used.
    """

    def sample(self, n, eval_doc=None, df=None, **kwargs):
        pool = list(df) if df else self.fewshot_docs()
        if n > len(pool):
            where = pool[0]["afp_source"] if pool else "the dev split"
            raise ValueError(
                f"{n} demonstrations asked for (--num_fewshot {n}), but {where} holds only {len(pool)}: ask for "
                f"at most {len(pool)}."
            )
        return pool[:n]
