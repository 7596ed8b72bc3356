"""The paper's experiment in one call: data build -> train -> evaluate base and aligned model -> report.

`xling-align reproduce --recipe recipes/xglm-564m.yaml --output DIR` runs `reproduce(options)`. Every stage
reuses the package's own piece and records a manifest in `DIR/stages/` (`xling_align.pipeline.stage_manifest`), so a
second call skips what is finished and redoes only what changed:

| stage | what runs | writes |
|---|---|---|
| `data` | the recipe's `data_source` built with the data module's builder (`training_data.build_rows`), or the recipe's prepared rows as they are | `DIR/data/train.jsonl`, `heldout.jsonl` |
| `train` | `training_script.main` on the recipe (+ overrides), checkpoint selection on held-out pairs | `DIR/model/` |
| `evaluate-<model>-<k>shot` | lm-eval's `simple_evaluate` on the `xling_afp_*` tasks (the paper's protocol), `xling` model | `DIR/eval/<model>-<k>shot/results.json` |
| `report` | `xling-align report`'s tables (one per number of shots: base, AFP, difference) and its plot | `DIR/report.md`, `DIR/report.png` |

Checkpoints are selected on what the recipe's evaluation data hold (held-out translation pairs; the data
builder's `heldout_size`), never on the benchmarks' test splits that the report shows: the trainer never
sees them.

Example (Python; the same as the command line):
    >>> from xling_align.pipeline.reproduction import ReproduceOptions, planned_tasks
    >>> planned_tasks(["pawsx", "xcopa"], ["en", "zh"], native=False)
    ['xling_afp_pawsx_en', 'xling_afp_pawsx_zh', 'xling_afp_xcopa_zh']
    >>> ReproduceOptions(recipe="recipes/tiny.yaml", output="runs/paper").shots
    [0, 5]
"""  # noqa: E501 (doctest output / Markdown table rows stay whole)

from __future__ import annotations

import gc
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from xling_align.errors import XlingAlignError
from xling_align.evaluation.paper_protocol import (
    DEFAULT_DEMONSTRATION_SEED,
    PROMPT_LANGUAGES,
    PROTOCOL_VERSION,
    PROTOCOLS,
    lm_eval_model_args,
    protocol,
)
from xling_align.package_paths import missing_recipe_message, resolve_recipe
from xling_align.pipeline.stage_manifest import StageLog, fingerprint, sha256_of

STAGES = ("data", "train", "evaluate", "report")
MODELS = ("base", "afp")  # the model before alignment and the aligned one


class ReproduceError(XlingAlignError, ValueError):
    """Options, recipe or data that the reproduction cannot use; the message names the input and the fix."""


@dataclass
class ReproduceOptions:
    """Options of `xling-align reproduce` (every other option is a setting of the recipe)."""

    recipe: str = field(
        metadata={
            "help": "The training recipe: a YAML file, or the name of a recipe shipped in the package "
            "(e.g. xglm-564m, tiny)."
        }
    )
    output: str = field(metadata={"help": "The reproduction's folder: data, model, results, report, stage manifests."})
    eval_languages: list[str] = field(
        default_factory=lambda: ["en", "zh"],
        metadata={"help": "Test languages of the xling_afp_* tasks (the paper's en-zh run: en zh)."},
    )
    shots: list[int] = field(default_factory=lambda: [0, 5], metadata={"help": "Numbers of demonstrations."})
    benchmarks: list[str] = field(
        default_factory=lambda: list(PROTOCOLS), metadata={"help": f"Benchmarks, from {', '.join(PROTOCOLS)}."}
    )
    native: bool = field(
        default=False,
        metadata={"help": "Also evaluate the _native tasks (in-language prompt and demonstrations) where they exist."},
    )
    demo_seed: int = field(
        default=DEFAULT_DEMONSTRATION_SEED, metadata={"help": "The seed that picks the demonstrations (reference: 0)."}
    )
    limit: int | None = field(
        default=None,
        metadata={"help": "Score only the first N items of each task (a quick check, not the paper's numbers)."},
    )
    benchmark_data_dir: str | None = field(
        default=None,
        metadata={
            "help": "Local benchmark data (xling-align export-data layout); default $XLING_DATA_DIR, else the hub."
        },
    )
    eval_batch_size: str | None = field(
        default=None, metadata={"help": "lm-eval batch size (default: auto on a GPU, 8 on a CPU)."}
    )
    eval_device: str | None = field(
        default=None, metadata={"help": "lm-eval device (default: cuda if available, else cpu)."}
    )
    redo: list[str] = field(
        default_factory=list,
        metadata={
            "help": f"Redo these stages even if finished ({', '.join(STAGES)}); a later stage runs again "
            "when its inputs changed."
        },
    )

    def __post_init__(self):
        unknown = [stage for stage in self.redo if stage not in STAGES]
        if unknown:
            raise ReproduceError(f"--redo {' '.join(unknown)}: the stages are {', '.join(STAGES)}.")
        if any(k < 0 for k in self.shots) or not self.shots:
            raise ReproduceError(f"--shots {' '.join(map(str, self.shots))}: give numbers of demonstrations >= 0.")
        self.shots = sorted(set(self.shots))
        if self.limit is not None and self.limit < 1:
            raise ReproduceError(f"--limit {self.limit}: give a positive number of items, or leave it out.")


def planned_tasks(benchmarks: list[str], languages: list[str], native: bool) -> list[str]:
    """The `xling_afp_*` tasks of these benchmarks and languages; unknown ones raise `ReproduceError`."""
    unknown = [name for name in benchmarks if name not in PROTOCOLS]
    if unknown:
        raise ReproduceError(f"--benchmarks {' '.join(unknown)}: the paper's protocol covers {', '.join(PROTOCOLS)}.")
    covered = {lang for name in benchmarks for lang in protocol(name).languages}
    missing = [lang for lang in languages if lang not in covered]
    if missing:
        raise ReproduceError(
            f"--eval_languages {' '.join(missing)}: no task of {', '.join(benchmarks)} has this test language; "
            f"the languages are {', '.join(sorted(covered))}."
        )
    if native:
        without = [lang for lang in languages if lang not in PROMPT_LANGUAGES]
        if without:
            raise ReproduceError(
                f"--native: the paper's protocol has no prompt in {', '.join(without)}; its formats exist in "
                f"{', '.join(PROMPT_LANGUAGES)} only. Without --native every language is evaluated with the English "
                "prompt (the reference's default), which is also the fallback for these languages: drop --native, "
                "or keep only languages with a format."
            )
    tasks = []
    for name in benchmarks:
        entry = protocol(name)
        tasks += [f"xling_afp_{name}_{lang}" for lang in languages if lang in entry.languages]
        if native:
            tasks += [f"xling_afp_{name}_{lang}_native" for lang in languages if lang in entry.native_languages]
    return tasks


def _task_splits(task: str):
    """(benchmark, test split, demonstration split) of an `xling_afp_*` task name."""
    name, rest = task[len("xling_afp_") :].split("_", 1)
    lang, native = (rest[: -len("_native")], True) if rest.endswith("_native") else (rest, False)
    entry = protocol(name)
    prompt_lang = lang if native else "en"
    return name, (lang, entry.scored(lang)), (prompt_lang, entry.demonstration_source(prompt_lang))


class Reproduction:
    """One reproduction folder: the parsed recipe, the planned tasks and the stages that fill the folder."""

    def __init__(self, options: ReproduceOptions, recipe_overrides: list[str], log=print):
        self.options = options
        self.overrides = list(recipe_overrides)
        self.log = log
        self.folder = Path(options.output)
        self.stages = StageLog(self.folder / "stages")
        self.tasks = planned_tasks(options.benchmarks, options.eval_languages, options.native)
        for flag in ("--output_dir", "--output"):
            if flag in self.overrides:
                raise ReproduceError(f"{flag} is set by reproduce ({self.folder / 'model'}); leave it out.")
        try:  # a file, a pkg:// path, or the name of a recipe shipped in the package
            self.recipe = Path(resolve_recipe(options.recipe))
        except FileNotFoundError as error:
            raise ReproduceError(str(error)) from None
        if not self.recipe.is_file():
            raise ReproduceError(missing_recipe_message(options.recipe, "--recipe") + ".")
        self.script_args, self.training_args, self.model_args = self._parse(self.overrides)
        self.data_dir = options.benchmark_data_dir or os.environ.get("XLING_DATA_DIR") or None
        self._redo = set(options.redo)

    # ------------------------------------------------------------------------------ checks
    def _parse(self, overrides: list[str]):
        from xling_align.pipeline.training_script import parse_recipe

        return parse_recipe(["--config", str(self.recipe), *overrides, "--output_dir", str(self.folder / "model")])

    def check(self) -> None:
        """Everything that can fail before hours of training: the model loads here, the benchmark data are there."""
        from xling_align.pipeline.training_script import check_model_available

        check_model_available(self.model_args, self.training_args)
        self._check_benchmark_data()

    def _check_benchmark_data(self) -> None:
        from xling_align.lm_eval_tasks.data_loader import local_path

        if self.data_dir is None:
            if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
                raise ReproduceError(
                    "HF_HUB_OFFLINE is set and no benchmark data folder is given, so the benchmarks cannot be read: "
                    "pass --benchmark_data_dir DIR (or set XLING_DATA_DIR), a folder written once with "
                    "`xling-align export-data --output DIR` where the hub is reachable."
                )
            return  # read from the hub at evaluation time
        missing, short = [], []
        most_shots = max(self.options.shots)
        for task in self.tasks:
            name, (lang, scored), (prompt_lang, dev) = _task_splits(task)
            wanted = [(lang, scored)] + ([(prompt_lang, dev)] if most_shots else [])
            for code, split in wanted:
                path = local_path(self.data_dir, name, code, split.split)
                if not path.is_file():
                    missing.append(str(path))
                elif split is dev:
                    rows = sum(1 for line in path.open(encoding="utf-8") if line.strip())
                    if rows < most_shots:
                        short.append(f"{path} holds {rows} rows, fewer than --shots {most_shots}")
        if missing:
            missing = sorted(set(missing))
            raise ReproduceError(
                f"benchmark data missing under {self.data_dir}: {', '.join(missing[:6])}"
                + (f" (and {len(missing) - 6} more)" if len(missing) > 6 else "")
                + f". Write them with `xling-align export-data --output {self.data_dir} --benchmarks "
                f"{' '.join(self.options.benchmarks)} --languages {' '.join(self._languages_needed())}` where the hub "
                "is reachable."
            )
        if short:
            raise ReproduceError("not enough demonstrations: " + "; ".join(sorted(set(short))) + ". Lower --shots.")

    def _languages_needed(self) -> list[str]:
        return sorted(set(self.options.eval_languages) | {"en"})

    # ------------------------------------------------------------------------------ running stages
    def _run(self, stage: str, inputs: dict, work) -> dict:
        """Run `work()` unless `stage` finished with these inputs; returns its outputs either way."""
        family = stage.split("-")[0]
        manifest = None if family in self._redo else self.stages.done(stage, inputs)
        if manifest is not None:
            self.log(
                f"[{stage}] done earlier ({manifest['finished']}, {manifest['seconds']:.0f} s), same inputs: skipped"
            )
            return manifest["outputs"]
        changed = self.stages.changed(stage, inputs)
        if family in self._redo:
            self.log(f"[{stage}] redoing (--redo {family})")
            self.stages.forget(stage)  # it overwrites its outputs: if interrupted, its old manifest must not count
        elif changed:
            self.log(f"[{stage}] inputs changed since the last run ({'; '.join(changed)}): running again")
        else:
            self.log(f"[{stage}] running")
        started = time.perf_counter()
        outputs = work()
        seconds = time.perf_counter() - started
        self.stages.record(stage, inputs, outputs, seconds)
        self.log(f"[{stage}] finished in {seconds:.1f} s")
        return outputs

    def run(self) -> Path:
        """Every stage in order; returns the report's path."""
        self.check()
        data = self._run("data", self._data_inputs(), self._build_data)
        train_inputs = {
            "recipe": fingerprint(self.recipe),
            "overrides": self.overrides,
            "data": data,
            "alignment_eval_file": fingerprint(self.training_args.alignment_eval_file),
        }
        trained = self._run("train", train_inputs, lambda: self._train(data))
        models = {"base": self._base_model(), "afp": trained["model"]}
        identities = {
            "base": {
                "model_name_or_path": self.model_args.model_name_or_path,
                "revision": self.model_args.model_revision,
                "seed": self.training_args.seed,
            },
            "afp": trained,
        }
        results = {}
        for label in MODELS:
            for shots in self.options.shots:
                stage = f"evaluate-{label}-{shots}shot"
                inputs = self._evaluation_inputs(identities[label], shots)
                results[label, shots] = self._run(
                    stage, inputs, lambda label=label, shots=shots: self._evaluate(label, models[label], shots)
                )
        report_inputs = {
            key: value["sha256"]
            for key, value in ((f"{label}-{shots}shot", out) for (label, shots), out in results.items())
        }
        report_inputs["selection"] = trained.get("selection")
        self._run("report", report_inputs, lambda: self._report(results, trained))
        return self.folder / "report.md"

    # ------------------------------------------------------------------------------ data
    def _data_inputs(self) -> dict:
        args = self.script_args
        if args.dataset_path is not None:
            return {
                "dataset_path": fingerprint(args.dataset_path),
                "eval_dataset_path": fingerprint(args.eval_dataset_path),
            }
        return {
            "data_source": args.data_source,
            "data_input": fingerprint(args.data_input),
            "languages": args.languages,
            "data_options": args.data_options,
            "eval_dataset_path": fingerprint(args.eval_dataset_path),
        }

    def _build_data(self) -> dict:
        args = self.script_args
        if args.dataset_path is not None:
            self.log(f"[data] the recipe's prepared rows are used as they are: {args.dataset_path}")
            # their fingerprints are outputs too, so that a changed file reaches the train stage's inputs
            return {
                "train": args.dataset_path,
                "train_fingerprint": fingerprint(args.dataset_path),
                "eval": args.eval_dataset_path,
                "eval_fingerprint": fingerprint(args.eval_dataset_path),
                "built": False,
            }
        from xling_align.pipeline.training_data import build_rows

        rows, heldout = build_rows(args.data_source, args.data_input, args.languages, args.data_options)
        folder = self.folder / "data"
        train_file = _write_jsonl(rows, folder / "train.jsonl")
        heldout_file = _write_jsonl(heldout, folder / "heldout.jsonl") if heldout is not None else None
        self.log(f"[data] {len(rows)} training rows" + (f", {len(heldout)} held-out pairs" if heldout else ""))
        return {
            "train": str(train_file),
            "train_sha256": sha256_of(train_file),
            "eval": str(heldout_file) if heldout_file else args.eval_dataset_path,
            "eval_sha256": sha256_of(heldout_file) if heldout_file else None,
            "built": True,
        }

    # ------------------------------------------------------------------------------ train
    def _train(self, data: dict) -> dict:
        from transformers.trainer_utils import get_last_checkpoint

        from xling_align.pipeline.run_directory import read_run_signature, run_signature
        from xling_align.pipeline.training_script import main as train

        overrides = list(self.overrides)
        if data["built"]:
            overrides += ["--data_source", "", "--dataset_path", data["train"]]
            if data["eval"] and self.script_args.eval_dataset_path is None:
                overrides += ["--eval_dataset_path", data["eval"]]
        model_dir = self.folder / "model"
        script_args, training_args, model_args = self._parse(overrides)
        same_run = read_run_signature(model_dir) == json.loads(
            json.dumps(run_signature(script_args, training_args, model_args), sort_keys=True, default=str)
        )
        holds_a_model = model_dir.is_dir() and any(model_dir.iterdir())
        if "train" in self._redo:
            script_args.overwrite_output_dir = True
        elif holds_a_model and not same_run:
            raise ReproduceError(
                f"{model_dir} holds a model trained with other settings (the changed inputs are listed above): pass "
                "--redo train to train again and replace it, or choose a new --output."
            )
        elif holds_a_model and get_last_checkpoint(str(model_dir)):
            self.log(f"[train] continuing the same run from {get_last_checkpoint(str(model_dir))}")
            training_args.resume_from_checkpoint = "true"
        elif holds_a_model:
            script_args.overwrite_output_dir = True  # an interrupted run that saved no checkpoint yet
        if training_args.eval_strategy == "no" or not training_args.load_best_model_at_end:
            self.log(
                "[train] the recipe selects no checkpoint (no evaluation data or load_best_model_at_end): the "
                "final model is evaluated"
            )
        trainer = train(script_args, training_args, model_args)
        state = trainer.state
        selection = (
            f"best of {training_args.metric_for_best_model} = {state.best_metric:.4f} on the recipe's "
            f"evaluation data ({state.best_model_checkpoint})"
            if training_args.load_best_model_at_end and state.best_model_checkpoint
            else f"final model after {state.global_step} steps"
        )
        del trainer
        _free_memory()
        return {
            "model": str(model_dir),
            "model_fingerprint": fingerprint(model_dir),
            "steps": state.global_step,
            "selection": selection,
        }

    # ------------------------------------------------------------------------------ evaluate
    def _base_model(self) -> str:
        """The base model as lm-eval loads it: the recipe's model id, or a saved copy of a tiny test model."""
        from xling_align.tiny_models import build_tiny_model, is_tiny_model_id

        name = self.model_args.model_name_or_path
        if not is_tiny_model_id(name):
            return name
        folder = self.folder / "base-model"
        if not (folder / "config.json").is_file():
            model, tokenizer = build_tiny_model(name, seed=self.training_args.seed)  # the weights training starts from
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        return str(folder)

    def _evaluation_inputs(self, model_identity: dict, shots: int) -> dict:
        import lm_eval

        return {
            "model": model_identity,
            "tasks": self.tasks,
            "shots": shots,
            "limit": self.options.limit,
            "demo_seed": self.options.demo_seed,
            "benchmark_data_dir": self.data_dir,
            "protocol_version": PROTOCOL_VERSION,
            "lm_eval": lm_eval.__version__,
            "dtype": self.model_args.dtype,
        }

    def _evaluate(self, label: str, model_path: str, shots: int) -> dict:
        import lm_eval
        import torch
        from lm_eval.tasks import TaskManager
        from lm_eval.utils import handle_non_serializable
        from transformers import AutoTokenizer

        from xling_align.evaluation import lm_eval_plugin
        from xling_align.evaluation.adapters import ADAPTER_CONFIG

        lm_eval_plugin.register()
        trust = self.training_args.trust_remote_code
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust)
        model_args = {
            "pretrained": model_path,
            "dtype": self.model_args.dtype or "auto",
            "trust_remote_code": trust,
            **lm_eval_model_args(tokenizer),
        }
        if (Path(model_path) / ADAPTER_CONFIG).is_file():
            model_args["merge_lora"] = True
        device = self.options.eval_device or ("cuda" if torch.cuda.is_available() else "cpu")
        batch_size = self.options.eval_batch_size or ("auto" if device.startswith("cuda") else 8)
        metadata = {"demo_seed": self.options.demo_seed, **({"data_dir": self.data_dir} if self.data_dir else {})}
        if not os.environ.get("LMEVAL_LOG_LEVEL"):
            # lm-eval's notices while it builds tasks (one per task and run) are not for this command's user
            logging.getLogger("lm_eval").setLevel(logging.ERROR)
        results = lm_eval.simple_evaluate(
            model="xling",
            model_args=model_args,
            tasks=self.tasks,
            task_manager=TaskManager(include_defaults=False, metadata=metadata),
            num_fewshot=shots,
            limit=self.options.limit,
            batch_size=batch_size,
            device=device,
            log_samples=False,
        )
        results.pop("samples", None)
        path = self.folder / "eval" / f"{label}-{shots}shot" / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _free_memory()
        accuracies = {task: metrics["acc,none"] for task, metrics in results["results"].items() if task in self.tasks}
        return {"results": str(path), "sha256": sha256_of(path), "acc": accuracies}

    # ------------------------------------------------------------------------------ report
    def _report(self, results: dict, trained: dict) -> dict:
        from xling_align.evaluation.score_tables import build_tables, load_scores, plot

        labels = {"base": "base", "afp": "AFP"}
        lines = [
            "# Reproducing the AFP paper: the xling_afp_* tasks (the paper's evaluation protocol)",
            "",
            f"- recipe: `{self.recipe}`" + (f" with `{' '.join(self.overrides)}`" if self.overrides else ""),
            f"- base model: `{self.model_args.model_name_or_path}`; AFP model: `{trained['model']}` "
            f"({trained['selection']})",
            f"- tasks: {', '.join(f'`{t}`' for t in self.tasks)}; demonstration seed {self.options.demo_seed}",
        ]
        if self.options.limit:
            lines.append(
                f"- **--limit {self.options.limit}: only the first {self.options.limit} items of each task "
                "were scored; these numbers are a pipeline check, not comparable to the paper's.**"
            )
        lines.append('- the paper\'s own numbers: README.md, section "Reproducing the paper".')
        runs, names = [], []
        for shots in self.options.shots:
            pair = [load_scores(Path(results[label, shots]["results"])) for label in MODELS]
            lines += ["", f"# {shots}-shot", "", build_tables(pair, [labels[label] for label in MODELS])]
            runs += pair
            names += [f"{labels[label]} {shots}-shot" for label in MODELS]
        report_file = self.folder / "report.md"
        report_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        plot(runs, names, self.folder / "report.png")
        return {"report": str(report_file), "plot": str(self.folder / "report.png")}


def _write_jsonl(dataset, path: Path) -> Path:
    """`dataset` as JSON lines at `path`, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".jsonl.partial")
    with partial.open("w", encoding="utf-8") as handle:
        for row in dataset:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(partial, path)
    return path


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reproduce(options: ReproduceOptions, recipe_overrides: list[str] | None = None, log=print) -> Path:
    """Run (or resume) the whole reproduction; returns the path of `report.md`."""
    return Reproduction(options, recipe_overrides or [], log=log).run()


__all__ = ["MODELS", "STAGES", "ReproduceError", "ReproduceOptions", "Reproduction", "planned_tasks", "reproduce"]
