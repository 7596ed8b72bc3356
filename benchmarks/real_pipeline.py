"""The whole pipeline on real inputs, on a CPU: SmolLM2-135M-Instruct, PAWS-X and XCOPA as released.

The design (splits, sizes, hypotheses, what counts as a result) is `docs/real_pipeline.md`, written before the
first run. Every stage is a command a user runs (`xling-align data build`, `xling-align train`,
`xling-align analyze`, lm-eval's own `lm_eval`), started as a subprocess and timed:

1. translation pairs from the real PAWS-X dev files (English-German; the same id is the same item), minus the
   dev items that are also test items, split by id into training and held-out analysis pairs;
2. the release files -> the package's local data layout (`<data_dir>/<benchmark>/<lang>/<split>.jsonl`);
3. `xling-align data build` on the training pairs;
4. `xling-align train`: AFP with LoRA on the real checkpoint;
5. `xling-align analyze` on the held-out pairs, base and aligned;
6. `lm_eval --model xling`, base and aligned, 0- and 5-shot (PAWS-X German with English demonstrations,
   XCOPA Italian with Italian ones: XCOPA's English demonstrations are COPA's, not in the release);
7. `lm_eval --model hf` on the base model's 5-shot PAWS-X run: the same requests, compared one by one.

Prints a report (accuracies with Wilson 95% intervals, retrieval per layer, time per stage) and writes it to
`OUTPUT/report.json`. Not a test: it takes ~20-40 minutes on 2 shared cores.

    python benchmarks/real_pipeline.py --output runs/real_pipeline
    python benchmarks/real_pipeline.py --output /tmp/rp --limit 4 --steps 2 --analysis-items 10   # a smoke run
    python benchmarks/real_pipeline.py --markdown runs/real_pipeline/report.json   # the README's tables again
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAIR_LANGUAGES = ("en", "de")
LAYERS = "0,1,2,4,8,15,22,30"
# task -> the shots it is run with; one lm_eval run per (model, shots)
TASKS = {0: ["xling_pawsx_de", "xling_xcopa_it"], 5: ["xling_pawsx_de_endemo", "xling_xcopa_it"]}
HF_COMPARISON_TASK = "xling_pawsx_de_endemo"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("runs/real_pipeline"))
    parser.add_argument(
        "--release-dir",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "data",
        help="the PAWS-X and XCOPA release files (pawsx/<lang>/*.tsv, xcopa/<lang>/*.jsonl)",
    )
    parser.add_argument("--limit", type=int, default=30, help="documents scored per task")
    parser.add_argument("--steps", type=int, default=12, help="AFP optimizer steps")
    parser.add_argument("--analysis-items", type=int, default=50, help="held-out dev items (2 pairs each)")
    parser.add_argument("--batch-size", type=int, default=8, help="lm_eval batch size (both models)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def wilson(successes: float, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default)."""
    if total == 0:
        return math.nan, math.nan
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


class Stages:
    """Wall-clock seconds of each stage, in order, kept in `folder/seconds.json` (a rerun keeps finished stages)."""

    def __init__(self, folder: Path):
        self.file = folder / "seconds.json"
        self.seconds: dict[str, float] = json.loads(self.file.read_text()) if self.file.is_file() else {}

    def run(
        self, name: str, command: list[str], env: dict | None = None, log: Path | None = None, done: Path | None = None
    ) -> None:
        """Run one stage's command; a stage whose `done` file exists (an earlier run of the same folder) is kept."""
        if done is not None and done.exists():
            print(f"[{name}] kept from an earlier run: {done}", flush=True)
            return
        if log:
            log.parent.mkdir(parents=True, exist_ok=True)
        print(f"[{name}] {' '.join(map(str, command))}", flush=True)
        start = time.perf_counter()
        with open(log, "w") if log else open(os.devnull, "w") as sink:
            completed = subprocess.run(list(map(str, command)), env=env, stdout=sink, stderr=subprocess.STDOUT)
        self.seconds[name] = time.perf_counter() - start
        if completed.returncode:
            sys.exit(f"stage {name} failed with exit status {completed.returncode}: see {log}")
        print(f"[{name}] {self.seconds[name]:.1f} s", flush=True)
        if done is not None:
            done.touch()
        self.file.write_text(json.dumps(self.seconds, indent=1))

    def timed(self, name: str, function, *args):
        start = time.perf_counter()
        result = function(*args)
        self.seconds[name] = time.perf_counter() - start
        self.file.write_text(json.dumps(self.seconds, indent=1))
        return result


# ------------------------------------------------------------------ inputs
def read_pawsx(path: Path) -> list[dict]:
    """One release TSV (header id, sentence1, sentence2, label), fields kept as written (no quoting in it)."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [
        {"id": int(row["id"]), "sentence1": row["sentence1"], "sentence2": row["sentence2"], "label": int(row["label"])}
        for row in rows
    ]


def translation_pairs(release: Path, analysis_items: int, seed: int) -> tuple[list[dict], list[dict], dict]:
    """(training pairs, held-out analysis pairs, counts) from the English and German dev files."""
    dev = {
        lang: {row["id"]: row for row in read_pawsx(release / "pawsx" / lang / "dev_2k.tsv")} for lang in PAIR_LANGUAGES
    }
    test_items = {
        lang: {
            (row["sentence1"].strip(), row["sentence2"].strip())
            for row in read_pawsx(release / "pawsx" / lang / "test_2k.tsv")
        }
        for lang in PAIR_LANGUAGES
    }
    shared_ids = sorted(set(dev["en"]) & set(dev["de"]))
    in_test = [
        item
        for item in shared_ids
        if any(
            (dev[lang][item]["sentence1"].strip(), dev[lang][item]["sentence2"].strip()) in test_items[lang]
            for lang in PAIR_LANGUAGES
        )
    ]
    usable = [item for item in shared_ids if item not in set(in_test)]
    random.Random(seed).shuffle(usable)

    def pairs(items):
        return [
            {"en": dev["en"][item][column], "de": dev["de"][item][column]}
            for item in items
            for column in ("sentence1", "sentence2")
            if dev["en"][item][column].strip() and dev["de"][item][column].strip()
        ]

    held_out = pairs(usable[:analysis_items])
    # PAWS-X builds several items from one source sentence: a training pair may not repeat a held-out sentence
    held_out_sentences = {pair[lang].strip() for pair in held_out for lang in PAIR_LANGUAGES}
    training = pairs(usable[analysis_items:])
    kept = [pair for pair in training if not any(pair[lang].strip() in held_out_sentences for lang in PAIR_LANGUAGES)]
    counts = dict(
        dev_items_in_both=len(shared_ids),
        dropped_as_test_items=len(in_test),
        analysis_items=analysis_items,
        training_items=len(usable) - analysis_items,
        training_pairs_dropped_for_a_held_out_sentence=len(training) - len(kept),
    )
    return kept, held_out, counts


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def local_layout(release: Path, data_dir: Path) -> str:
    """The release files in the package's local layout; the importer where this branch has it."""
    importer = subprocess.run([BIN / "xling-align", "export-data", "--help"], capture_output=True, text=True)
    if "--from-release" in importer.stdout:  # the release importer: the files as users download them
        subprocess.run(
            [
                BIN / "xling-align",
                "export-data",
                "--from-release",
                release,
                "--output",
                data_dir,
                "--benchmarks",
                "pawsx",
                "xcopa",
                "--dev-as-demonstrations",
                "--overwrite",
            ],
            check=True,
        )
        how = "the release importer (xling-align export-data --from-release --dev-as-demonstrations)"
    else:
        for lang in ("de", "en"):
            write_jsonl(data_dir / "pawsx" / lang / "test.jsonl", read_pawsx(release / "pawsx" / lang / "test_2k.tsv"))
            write_jsonl(
                data_dir / "pawsx" / lang / "validation.jsonl", read_pawsx(release / "pawsx" / lang / "dev_2k.tsv")
            )
        (data_dir / "xcopa" / "it").mkdir(parents=True, exist_ok=True)
        for split, name in (("test", "test"), ("validation", "val")):
            shutil.copyfile(release / "xcopa" / "it" / f"{name}.it.jsonl", data_dir / "xcopa" / "it" / f"{split}.jsonl")
        how = "this script's conversion of the release files (no importer on this branch)"
    # PAWS-X's English demonstrations are its train split, whose release file is not in the shared folder:
    # the English dev file stands in (no German test sentence is in it: English dev and test share no item)
    train = data_dir / "pawsx" / "en" / "train.jsonl"
    if not train.is_file():
        write_jsonl(train, read_pawsx(release / "pawsx" / "en" / "dev_2k.tsv"))
    return how


# ------------------------------------------------------------------ reading results
def lm_eval_results(folder: Path) -> tuple[dict, dict, float]:
    """(task -> acc, acc_stderr, n), ((task, doc, choice) -> (log-likelihood, is_greedy)) and lm-eval's own
    evaluation time (model loading included) of one run."""
    results_file = max(folder.rglob("results_*.json"), key=lambda path: path.stat().st_mtime)
    results = json.loads(results_file.read_text())
    seconds = float(results.get("total_evaluation_time_seconds", "nan"))
    accuracy = {
        task: (values["acc,none"], values["acc_stderr,none"], results["n-samples"][task]["effective"])
        for task, values in results["results"].items()
    }
    scores = {}
    for path in folder.rglob("samples_*.jsonl"):
        task = path.name[len("samples_") :].rsplit("_", 1)[0]
        for line in path.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            for choice, response in enumerate(sample["resps"]):
                scores[(task, sample["doc_id"], choice)] = (float(response[0][0]), response[0][1] == "True")
    return accuracy, scores, seconds


def compare_scores(ours: dict, theirs: dict) -> dict:
    """How far xling's requests are from hf's: the same keys, |difference| within max(1e-4, 1e-6 |ll|)."""
    assert ours.keys() == theirs.keys(), "xling and hf scored different requests"
    worst = max(abs(ours[key][0] - theirs[key][0]) for key in theirs)
    outside = sum(abs(ours[key][0] - theirs[key][0]) > max(1e-4, 1e-6 * abs(theirs[key][0])) for key in theirs)
    greedy = sum(ours[key][1] != theirs[key][1] for key in theirs)
    return dict(requests=len(theirs), max_abs_difference=worst, outside_tolerance=outside, is_greedy_differs=greedy)


def alignment_figures(metrics_file: Path) -> dict:
    """model -> layer -> retrieval (both directions pooled, with its Wilson 95% interval), MEXA, cosine margin."""
    metrics = json.loads(metrics_file.read_text())
    figures = {}
    for model_name, model in metrics["models"].items():
        figures[model_name] = {}
        for layer, values in model["metrics"]["en-de"].items():
            n = values["n_pairs"]
            retrieved = round(values["retrieval_accuracy"] * 2 * n)  # both directions: 2n queries
            figures[model_name][layer] = dict(
                n_pairs=n,
                retrieval=values["retrieval_accuracy"],
                wilson95=list(wilson(retrieved, 2 * n)),
                en_to_de=values["retrieval_accuracy_en_to_de"],
                de_to_en=values["retrieval_accuracy_de_to_en"],
                mexa=values["mexa_alignment"],
                cosine_margin=values["cosine_margin"],
            )
    return figures


# ------------------------------------------------------------------ the pipeline
def recipe(checkpoint: Path, rows: Path, output: Path, steps: int, threads: int, seed: int) -> str:
    settings = dict(
        model_name_or_path=str(checkpoint),
        dtype="float32",
        use_peft=True,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        lora_target_modules="all-linear",
        lora_task_type="CAUSAL_LM",
        dataset_path=str(rows),
        languages=list(PAIR_LANGUAGES),
        contrastive_weight=1.0,
        sft_weight=1.5,
        contrastive_temperature=0.05,
        contrastive_layer=1,
        contrastive_pooling="last",
        max_length=64,
        contrastive_max_length=32,
        output_dir=str(output),
        seed=seed,
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1.0e-3,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        bf16=False,
        activation_checkpointing=False,
        dataloader_pin_memory=False,
        optim="adamw_torch",
        cpu_threads=threads,
        logging_steps=5,
        save_strategy="no",
        report_to="none",
    )
    return json.dumps(settings, indent=1)  # YAML reads JSON


def main(argv=None) -> int:
    args = parse_args(argv)
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": str(args.threads),
        "TOKENIZERS_PARALLELISM": "false",
    }
    stages = Stages(output)
    spec = importlib.util.spec_from_file_location("real_checkpoint", REPO_ROOT / "scripts" / "real_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checkpoint = stages.timed("checkpoint", module.real_checkpoint_dir)

    train_pairs, analysis_pairs, pair_counts = stages.timed(
        "pairs", translation_pairs, args.release_dir, args.analysis_items, args.seed
    )
    write_jsonl(output / "train_pairs.jsonl", train_pairs)
    write_jsonl(output / "analysis_pairs.jsonl", analysis_pairs)
    data_dir = output / "data"
    layout = stages.timed("local layout", local_layout, args.release_dir, data_dir)

    rows = output / "afp_rows.jsonl"
    stages.run(
        "data build",
        [
            BIN / "xling-align",
            "data",
            "build",
            "--source",
            "parallel",
            "--languages",
            *PAIR_LANGUAGES,
            "--input",
            output / "train_pairs.jsonl",
            "--output",
            rows,
        ],
        env,
        output / "data_build.log",
    )
    recipe_file = output / "recipe.yaml"
    recipe_file.write_text(recipe(checkpoint, rows, output / "afp_lora", args.steps, args.threads, args.seed))
    adapter = output / "afp_lora"
    stages.run(
        "train (AFP, LoRA)",
        [BIN / "xling-align", "train", "--config", recipe_file],
        env,
        output / "train.log",
        done=output / "train.done",
    )
    state = json.loads((adapter / "trainer_state.json").read_text())
    training_log = [entry for entry in state["log_history"] if "contrastive_loss" in entry]

    stages.run(
        "analyze (base vs aligned)",
        [
            BIN / "xling-align",
            "analyze",
            "--model",
            checkpoint,
            "--compare",
            adapter,
            "--pairs",
            output / "analysis_pairs.jsonl",
            "--output",
            output / "analysis",
            "--layers",
            LAYERS,
            "--device",
            "cpu",
            "--no-separability",
            "--seed",
            args.seed,
        ],
        env,
        output / "analyze.log",
        done=output / "analyze.done",
    )

    evaluations = {}
    metadata = json.dumps({"data_dir": str(data_dir)})
    # the base model's 5-shot PAWS-X run holds that task alone, so that its time compares with hf's on it
    runs = [
        ("base", 0, TASKS[0]),
        ("base", 5, [HF_COMPARISON_TASK]),
        ("base", 5, [task for task in TASKS[5] if task != HF_COMPARISON_TASK]),
        ("aligned", 0, TASKS[0]),
        ("aligned", 5, TASKS[5]),
        ("base-hf", 5, [HF_COMPARISON_TASK]),
    ]
    for model_name, shots, tasks in runs:
        pretrained = adapter if model_name == "aligned" else checkpoint
        folder = output / "lm_eval" / f"{model_name}_{shots}shot_{'+'.join(tasks)}"
        done = folder.with_suffix(".done")
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
        lm_model = "hf" if model_name == "base-hf" else "xling"
        stages.run(
            f"lm_eval {lm_model} {model_name} {shots}-shot {'+'.join(tasks)}",
            [
                BIN / "lm_eval",
                "run",
                "--model",
                lm_model,
                "--model_args",
                f"pretrained={pretrained},dtype=float32",
                "--tasks",
                ",".join(tasks),
                "--num_fewshot",
                shots,
                "--limit",
                args.limit,
                "--batch_size",
                args.batch_size,
                "--device",
                "cpu",
                "--metadata",
                metadata,
                "--log_samples",
                "--output_path",
                folder,
            ],
            env,
            folder.with_suffix(".log"),
            done=done,
        )
        accuracy, scores, seconds = lm_eval_results(folder)
        previous = evaluations.get((model_name, shots), ({}, {}, {}))
        evaluations[(model_name, shots)] = (
            {**previous[0], **accuracy},
            {**previous[1], **scores},
            {**previous[2], "+".join(tasks): seconds},
        )

    # xling against hf on the same requests: only the PAWS-X task of the base 5-shot run
    xling_scores = {key: value for key, value in evaluations[("base", 5)][1].items() if key[0] == HF_COMPARISON_TASK}
    parity = compare_scores(xling_scores, evaluations[("base-hf", 5)][1])
    parity["accuracy_xling"] = evaluations[("base", 5)][0][HF_COMPARISON_TASK][0]
    parity["accuracy_hf"] = evaluations[("base-hf", 5)][0][HF_COMPARISON_TASK][0]
    parity["lm_eval_seconds_xling"] = evaluations[("base", 5)][2][HF_COMPARISON_TASK]
    parity["lm_eval_seconds_hf"] = evaluations[("base-hf", 5)][2][HF_COMPARISON_TASK]

    report = dict(
        layout=layout,
        pairs=dict(pair_counts, training_pairs=len(train_pairs), analysis_pairs=len(analysis_pairs)),
        training=dict(steps=args.steps, log=training_log),
        accuracy={},
        parity=parity,
        seconds=stages.seconds,
        limit=args.limit,
        threads=args.threads,
    )
    for (model_name, shots), (accuracy, _, _) in evaluations.items():
        for task, (acc, stderr, n) in accuracy.items():
            low, high = wilson(acc * n, n)
            report["accuracy"][f"{model_name} {shots}-shot {task}"] = dict(
                acc=acc, stderr=stderr, n=n, wilson95=[low, high]
            )
    report["alignment"] = alignment_figures(output / "analysis" / "metrics.json")
    (output / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print_report(report)
    print_markdown(report)
    return 0


def print_report(report: dict) -> None:
    print("\n== real pipeline: SmolLM2-135M-Instruct, PAWS-X de / XCOPA it ==")
    print(f"local data: {report['layout']}")
    print("pairs:", json.dumps(report["pairs"]))
    first, last = report["training"]["log"][0], report["training"]["log"][-1]
    print(
        f"training: {report['training']['steps']} steps; contrastive_loss {first['contrastive_loss']:.3f} (step "
        f"{first['step']}) -> {last['contrastive_loss']:.3f} (step {last['step']}); contrastive_accuracy "
        f"{first['contrastive_accuracy']:.3f} -> {last['contrastive_accuracy']:.3f}"
    )
    print("\naccuracy (n, Wilson 95%):")
    for name, values in report["accuracy"].items():
        low, high = values["wilson95"]
        print(f"  {name:<45} {values['acc']:.3f}  n={values['n']}  [{low:.3f}, {high:.3f}]")
    print("\nxling vs hf (same requests):", json.dumps(report["parity"]))
    print("\nseconds per stage:")
    for name, seconds in report["seconds"].items():
        print(f"  {name:<35} {seconds:8.1f}")
    print("\nretrieval of held-out translations (en<->de, both directions pooled, Wilson 95%), MEXA:")
    for model_name, layers in report["alignment"].items():
        for layer, values in layers.items():
            low, high = values["wilson95"]
            print(
                f"  {model_name:<8} layer {layer:>2}: {values['retrieval']:.3f} [{low:.3f}, {high:.3f}]  "
                f"MEXA {values['mexa']:.3f}  margin {values['cosine_margin']:.3f}  (n={values['n_pairs']}, "
                f"chance {1 / values['n_pairs']:.3f})"
            )


def print_markdown(report: dict) -> None:
    """The README's tables, from a report (`--markdown OUTPUT/report.json` prints them again)."""
    print("\n| task | shots | model | accuracy | Wilson 95% | n |\n|---|---:|---|---:|---|---:|")
    rows = []
    for name, values in report["accuracy"].items():
        model_name, shots, task = name.split(" ")
        rows.append((task, shots, model_name, values))
    for task, shots, model_name, values in sorted(rows, key=lambda row: (row[0], row[1], row[2])):
        low, high = values["wilson95"]
        print(
            f"| {task} | {shots.split('-')[0]} | {model_name} | {values['acc']:.3f} | [{low:.2f}, {high:.2f}] | "
            f"{values['n']} |"
        )
    print(
        "\n| layer | retrieval base | Wilson 95% | retrieval aligned | Wilson 95% | MEXA base | MEXA aligned |"
        "\n|---:|---:|---|---:|---|---:|---:|"
    )
    base, aligned = report["alignment"]["base"], report["alignment"]["compare"]
    for layer in base:
        b, a = base[layer], aligned[layer]
        print(
            f"| {layer} | {b['retrieval']:.3f} | [{b['wilson95'][0]:.3f}, {b['wilson95'][1]:.3f}] | "
            f"{a['retrieval']:.3f} | [{a['wilson95'][0]:.3f}, {a['wilson95'][1]:.3f}] | {b['mexa']:.3f} | "
            f"{a['mexa']:.3f} |"
        )
    print("\n| stage | seconds |\n|---|---:|")
    for name, seconds in report["seconds"].items():
        print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--markdown"]:
        print_markdown(json.loads(Path(sys.argv[2]).read_text()))
        sys.exit(0)
    sys.exit(main())
