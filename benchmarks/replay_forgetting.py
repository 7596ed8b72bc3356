"""What AFP costs a real checkpoint's language modelling, with and without replay (SmolLM2-135M-Instruct, CPU).

    python benchmarks/replay_forgetting.py --output replay_forgetting [--lang de] [--steps 40] [--replay-share 0.5]

Data (real PAWS-X release files, `../shared/data/pawsx`; the same `id` is the same item in every language):
- AFP rows: `--pairs` dev items, `sentence1` in English and in `--lang` as the translation pair, built by the
  project's own `xling-align data build --source parallel` path (translation instruction + pair rows);
- replay text (monolingual, per language): the `sentence2` of those dev items in English and in `--lang`
  (paraphrases, never in the held-out files), alternating languages;
- held-out text: `sentence1` of the first `--heldout` test items in each language.

Three models, scored on the held-out text of both languages (`xling_align.analysis.perplexity`): the base, AFP
with LoRA, and AFP with LoRA plus replay at `--replay-share` (same steps, seed and settings; at a fixed number of
steps the replay run sees `1 - share` as many AFP rows). Prints a Markdown table and writes `results.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAWSX = REPO.parent / "shared" / "data" / "pawsx"


def read_pawsx(language: str, split: str) -> dict[str, tuple[str, str]]:
    path = PAWSX / language / f"{split}_2k.tsv"
    if not path.is_file():
        raise SystemExit(
            f"replay_forgetting: {path} not found; the PAWS-X release files belong in ../shared/data "
            "beside the checkout."
        )
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {
            row["id"]: (row["sentence1"].strip(), row["sentence2"].strip())
            for row in rows
            if row["sentence1"].strip() and row["sentence2"].strip()
        }


def afp_rows(english: dict, target: dict, language: str, count: int, seed: int) -> list[dict]:
    """AFP rows from the dev items' sentence1 pairs, through the project's parallel-data builder."""
    from xling_align.data import DataBuildConfig, RowBuilder

    ids = [item for item in english if item in target][:count]
    with tempfile.TemporaryDirectory() as folder:
        tsv = Path(folder) / f"pawsx.en-{language}.tsv"
        with open(tsv, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
            writer.writerow(["en", language])
            for item in ids:
                writer.writerow([english[item][0], target[item][0]])
        builder = RowBuilder(DataBuildConfig(languages=["en", language], source="parallel", input=str(tsv), seed=seed))
        return list(builder.rows()), ids


def train(model_dir: Path, rows: list[dict], replay: list[str] | None, args, output: Path):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xling_align import AFPConfig, AFPTrainer

    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AFPConfig(
        output_dir=str(output),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, args.steps // 20),
        max_length=args.max_length,
        contrastive_max_length=args.max_length,
        seed=args.seed,
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        logging_steps=max(1, args.steps // 6),
        save_strategy="no",
        report_to="none",
        disable_tqdm=False,
        replay_share=args.replay_share if replay else 0.0,
    )
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = AFPTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora,
        replay_dataset=Dataset.from_dict({"text": replay}) if replay else None,
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    return trainer.model.merge_and_unload().eval(), tokenizer, seconds, logs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="replay_forgetting", help="folder for results.json and the runs")
    parser.add_argument("--lang", default="de", help="target language of PAWS-X (de, es, fr, ja, zh; default de)")
    parser.add_argument("--pairs", type=int, default=800, help="dev items used as AFP rows (default 800)")
    parser.add_argument("--heldout", type=int, default=150, help="test sentences per language scored (default 150)")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per AFP run (default 40)")
    parser.add_argument("--batch-size", type=int, default=4, help="rows per step (default 4)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak lr of the LoRA runs (default 1e-3)")
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank, alpha = 2 r (default 16)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per row and per sentence (default 64)")
    parser.add_argument("--replay-share", type=float, default=0.5, help="share of replay rows (default 0.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)

    import datasets
    import torch
    from transformers.utils import logging as hf_logging

    from xling_align.analysis.perplexity import text_perplexity

    datasets.disable_progress_bars()  # the trainer's dataset preparation would print a dozen bars per run
    hf_logging.set_verbosity_error()

    sys.path.insert(0, str(REPO / "scripts"))
    from real_checkpoint import real_checkpoint_dir

    torch.set_num_threads(args.threads)
    model_dir = real_checkpoint_dir()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    dev = {lang: read_pawsx(lang, "dev") for lang in ("en", args.lang)}
    test = {lang: read_pawsx(lang, "test") for lang in ("en", args.lang)}
    rows, ids = afp_rows(dev["en"], dev[args.lang], args.lang, args.pairs, args.seed)
    replay = [dev[lang][item][1] for item in ids for lang in ("en", args.lang)]
    shared = [item for item in test["en"] if item in test[args.lang]][: args.heldout]
    heldout = {lang: [test[lang][item][0] for item in shared] for lang in ("en", args.lang)}
    print(
        f"[replay_forgetting] {len(rows)} AFP rows from {len(ids)} dev items, {len(replay)} replay sentences, "
        f"{len(shared)} held-out test sentences per language; model {model_dir}",
        file=sys.stderr,
    )

    from transformers import AutoModelForCausalLM, AutoTokenizer

    results = {"settings": vars(args), "rows": len(rows), "replay_sentences": len(replay), "models": {}}
    runs = [("base", None), ("afp_lora", False), (f"afp_lora_replay{args.replay_share:g}", True)]
    for name, with_replay in runs:
        if with_replay is None:
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
            tokenizer, seconds, logs = AutoTokenizer.from_pretrained(model_dir), 0.0, []
        else:
            model, tokenizer, seconds, logs = train(
                model_dir, rows, replay if with_replay else None, args, output / name
            )
        scores = {
            lang: text_perplexity(model, tokenizer, texts, batch_size=16, max_length=args.max_length)
            for lang, texts in heldout.items()
        }
        results["models"][name] = {"perplexity": scores, "train_seconds": round(seconds, 1), "logs": logs}
        print(
            f"[replay_forgetting] {name}: "
            + ", ".join(f"{lang} {s['perplexity']:.2f}" for lang, s in scores.items())
            + (f" (trained {seconds:.0f} s)" if seconds else ""),
            file=sys.stderr,
        )
        del model
    (output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    base = results["models"]["base"]["perplexity"]
    lines = [
        f"| model | held-out perplexity en | change | held-out perplexity {args.lang} | change | train s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, record in results["models"].items():
        cells = []
        for lang in ("en", args.lang):
            value = record["perplexity"][lang]["perplexity"]
            cells += [f"{value:.2f}", "-" if name == "base" else f"{value / base[lang]['perplexity'] - 1:+.1%}"]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {record['train_seconds']:.0f} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
