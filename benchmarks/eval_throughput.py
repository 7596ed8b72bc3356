"""Log-likelihood throughput of `--model xling` (prefix-shared scoring) against `--model hf`.

Both models load the same saved checkpoint (random weights, a real byte-level BPE tokenizer trained on
the benchmark's own text) and score the same 5-shot `_endemo` XNLI and PAWS-X tasks (English
demonstrations, queries in `--languages`) on a synthetic local dataset written to a temporary
`XLING_DATA_DIR` (XNLI/PAWS-X-shaped rows: a premise of ~25 words, a hypothesis of ~12; sentence pairs of
~20 words). Each round runs lm-eval's `simple_evaluate` once per model, hf then xling, in this one
process, in turns (hf first in odd rounds, xling first in even ones), so a change of load on a shared
machine hits both alike; only the time spent in `loglikelihood` is measured; the median round of each
model and the median of the per-round ratios are reported.

Reported per model: requests per second of wall-clock time and per CPU second (steadier on a machine
shared with other jobs, with `--threads 1`); tokens processed, counted by a hook on the model's forward: real input
tokens and padded positions (batch rows x padded width); the tokens a model sharing only whole contexts
would run; and the ratio xling / hf. The script checks that every request's log-likelihood and
`is_greedy` agree between the two (|difference| <= 1e-4, or 2e-6 relative for sums beyond 50, where one
float32 rounding step of the sum is larger; `--reference-batch-size 1` shows how much hf's own numbers move
with the batch; bf16: reported only) and exits with status 1 if they do not.

Usage:
    python benchmarks/eval_throughput.py --threads 1            # CPU: 4-layer XGLM-shaped model, d 256
    python benchmarks/eval_throughput.py --docs 20 --rounds 1   # quicker
    python benchmarks/eval_throughput.py --preset xglm-564m     # on a GPU: XGLM-564M's shape, bf16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

PRESETS = {
    # the CPU benchmark: a small multi-layer model
    "cpu": dict(d_model=256, layers=4, heads=4, ffn=1024, vocab=None, dtype="float32", device="cpu"),
    # XGLM-564M's shape (random weights, its vocabulary size), for a GPU session
    "xglm-564m": dict(d_model=1024, layers=24, heads=16, ffn=4096, vocab=256008, dtype="bfloat16", device="cuda"),
}
PAD, EOS = "<pad>", "</s>"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--docs", type=int, default=60, help="scored documents per task")
    parser.add_argument("--languages", default="de,fr",
                        help="query languages: one XNLI and one PAWS-X `_endemo` task each (lm-eval draws the "
                             "same English demonstrations for the same document index in every language)")
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (hf, xling) per model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-batch-size", type=int, default=None,
                        help="also score once with hf at this batch size (untimed), to show how much hf's own "
                             "log-likelihoods move with the batch composition")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 is steadier on a machine other jobs share")
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------ data
def _pseudo_language(rng: random.Random, size: int) -> list[str]:
    syllables = [consonant + vowel for consonant in "bdfgklmnprstvz" for vowel in "aeiou"]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(size)]


def _sentence(rng: random.Random, words: list[str], low: int, high: int) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(low, high))).capitalize() + "."


def write_dataset(folder: Path, docs: int, seed: int, languages: list[str]) -> list[str]:
    """XNLI- and PAWS-X-shaped files in the local layout; returns all text written (for the tokenizer)."""
    rng = random.Random(seed)
    texts = []

    def write(benchmark: str, lang: str, split: str, rows: list[dict]) -> None:
        path = folder / benchmark / lang / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        texts.extend(value for row in rows for value in row.values() if isinstance(value, str))

    for lang, count, splits in [("en", 200, ("train",)), *[(lang, docs, ("scored",)) for lang in languages]]:
        words = _pseudo_language(rng, 3000)
        for split in splits:
            write("xnli", lang, "train" if split == "train" else "validation", [
                {"premise": _sentence(rng, words, 20, 30), "hypothesis": _sentence(rng, words, 8, 14),
                 "label": rng.randint(0, 2)} for _ in range(count)])
            write("pawsx", lang, "train" if split == "train" else "test", [
                {"sentence1": _sentence(rng, words, 16, 24), "sentence2": _sentence(rng, words, 16, 24),
                 "label": rng.randint(0, 1)} for _ in range(count)])
    return texts


def build_checkpoint(folder: Path, texts: list[str], preset: dict, seed: int) -> None:
    """A byte-level BPE tokenizer trained on `texts` and a random XGLM-shaped model, saved to `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, XGLMConfig, XGLMForCausalLM

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4096, special_tokens=[PAD, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS, bos_token=EOS)
    fast.save_pretrained(folder)
    config = XGLMConfig(vocab_size=preset["vocab"] or len(fast), d_model=preset["d_model"],
                        num_layers=preset["layers"], attention_heads=preset["heads"], ffn_dim=preset["ffn"],
                        max_position_embeddings=2048, pad_token_id=fast.pad_token_id,
                        bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id,
                        decoder_start_token_id=fast.eos_token_id)
    torch.manual_seed(seed)
    XGLMForCausalLM(config).save_pretrained(folder)


# ------------------------------------------------------------------------------------ measuring
class TokenCounter:
    """Counts real tokens (ids other than the pad id) and padded positions of every forward of a model."""

    def __init__(self, model, pad_id: int):
        self.pad_id, self.tokens, self.positions, self.forwards = pad_id, 0, 0, 0
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += int((ids != self.pad_id).sum())
        self.positions += ids.numel()
        self.forwards += 1

    def take(self) -> tuple[int, int, int]:
        counts = (self.tokens, self.positions, self.forwards)
        self.tokens = self.positions = self.forwards = 0
        return counts


def timed_loglikelihood(lm):
    """Wrap `lm.loglikelihood` to add the wall-clock and CPU seconds spent in it to `lm.seconds`/`lm.cpu_seconds`.

    CPU seconds (this process, all threads) hardly depend on what else the machine runs; wall seconds do.
    """
    original = lm.loglikelihood
    lm.seconds = lm.cpu_seconds = 0.0

    def loglikelihood(requests, disable_tqdm=False):
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            return original(requests, disable_tqdm=True)
        finally:
            lm.seconds += time.perf_counter() - start
            lm.cpu_seconds += time.process_time() - cpu_start

    lm.loglikelihood = loglikelihood


def record_token_requests(lm, store: list) -> None:
    """Keep the (context tokens, continuation tokens) of every request `lm` scores."""
    original = lm._loglikelihood_tokens

    def _loglikelihood_tokens(requests, **kwargs):
        store.extend((tuple(context), tuple(continuation)) for _, context, continuation in requests)
        return original(requests, **kwargs)

    lm._loglikelihood_tokens = _loglikelihood_tokens


def context_sharing_tokens(token_requests: list) -> int:
    """Input tokens a model runs if it shares only whole contexts: each context once, then each continuation."""
    contexts = {context for context, _ in token_requests}
    return sum(len(context) for context in contexts) + sum(len(continuation) - 1 for _, continuation in token_requests)


def per_request(samples: dict) -> dict:
    """(task, doc_id, choice index) -> (log-likelihood, is_greedy)."""
    return {(task, sample["doc_id"], index): (float(response[0][0]), bool(response[0][1]))
            for task, task_samples in samples.items() for sample in task_samples
            for index, response in enumerate(sample["resps"])}


def main(argv=None) -> int:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if preset["device"] == "cuda" and not torch.cuda.is_available():
        print(f"--preset {args.preset} needs a CUDA GPU; none is visible.", file=sys.stderr)
        return 2
    from xling_align import lm_eval_plugin

    lm_eval_plugin.register()
    import lm_eval
    import transformers
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from xling_align.lm_eval_model import XlingLM

    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="xling-eval-throughput-") as tmp:
        data, checkpoint = Path(tmp) / "data", Path(tmp) / "model"
        texts = write_dataset(data, args.docs, args.seed, languages)
        build_checkpoint(checkpoint, texts, preset, args.seed)
        os.environ["XLING_DATA_DIR"] = str(data)
        tasks = [f"xling_{benchmark}_{lang}_endemo" for benchmark in ("xnli", "pawsx") for lang in languages]
        task_manager = TaskManager(include_defaults=False)
        common = dict(pretrained=str(checkpoint), device=preset["device"], dtype=preset["dtype"],
                      batch_size=args.batch_size)
        models = {"hf": HFLM(**common), "xling": XlingLM(**common)}
        counters, token_requests = {}, []
        for name, lm in models.items():
            timed_loglikelihood(lm)
            counters[name] = TokenCounter(lm.model, lm.tokenizer.pad_token_id)
        record_token_requests(models["hf"], token_requests)

        seconds, cpu_seconds = {name: [] for name in models}, {name: [] for name in models}
        counts, scores, accuracy = {}, {}, {}
        for round_index in range(args.rounds):
            # hf first in odd rounds, xling first in even ones: a drift of the machine's load cancels out
            order = list(models.items()) if round_index % 2 == 0 else list(models.items())[::-1]
            for name, lm in order:
                lm.seconds = lm.cpu_seconds = 0.0
                output = lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=task_manager,
                                                 num_fewshot=args.shots, log_samples=True, limit=args.docs,
                                                 random_seed=args.seed, fewshot_random_seed=args.seed)
                seconds[name].append(lm.seconds)
                cpu_seconds[name].append(lm.cpu_seconds)
                tokens = counters[name].take()
                if round_index == 0:
                    counts[name] = tokens
                    if name == "hf":
                        hf_requests = list(token_requests)
                    scores[name] = per_request(output["samples"])
                    accuracy[name] = {task: output["results"][task]["acc,none"] for task in tasks}
                print(f"round {round_index + 1}: {name:5s} {lm.seconds:7.2f} s, {lm.cpu_seconds:7.2f} CPU s", flush=True)
        if args.reference_batch_size:
            reference = HFLM(**{**common, "batch_size": args.reference_batch_size})
            output = lm_eval.simple_evaluate(model=reference, tasks=tasks, task_manager=task_manager,
                                             num_fewshot=args.shots, log_samples=True, limit=args.docs,
                                             random_seed=args.seed, fewshot_random_seed=args.seed)
            scores["hf-reference"] = per_request(output["samples"])

    requests = len(scores["hf"])
    print(f"\n{len(tasks)} tasks ({', '.join(tasks)}), {args.docs} documents each, {args.shots}-shot, "
          f"{requests} log-likelihood requests; {args.preset} preset: {preset['layers']} layers, "
          f"d_model {preset['d_model']}, {preset['dtype']} on {preset['device']}, batch size {args.batch_size}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'model':6s} {'median s':>9s} {'requests/s':>11s} {'CPU s':>7s} {'requests/CPU s':>15s} "
          f"{'real tokens':>12s} {'padded positions':>17s} {'forwards':>9s}")
    rate, cpu_rate = {}, {}
    for name in models:
        median, cpu_median = statistics.median(seconds[name]), statistics.median(cpu_seconds[name])
        rate[name], cpu_rate[name] = requests / median, requests / cpu_median
        tokens, positions, forwards = counts[name]
        print(f"{name:6s} {median:9.2f} {rate[name]:11.1f} {cpu_median:7.2f} {cpu_rate[name]:15.1f} "
              f"{tokens:12d} {positions:17d} {forwards:9d}")
    context_only = context_sharing_tokens(hf_requests)
    print(f"sharing whole contexts only would run {context_only} real tokens "
          f"({counts['hf'][0] / context_only:.2f}x fewer than hf)")
    per_round = [h / x for h, x in zip(seconds["hf"], seconds["xling"], strict=True)]
    cpu_per_round = [h / x for h, x in zip(cpu_seconds["hf"], cpu_seconds["xling"], strict=True)]
    print(f"xling / hf, CPU time: {cpu_rate['xling'] / cpu_rate['hf']:.2f}x requests per CPU second (per round "
          f"{', '.join(f'{ratio:.2f}' for ratio in cpu_per_round)})")
    print(f"xling / hf, wall clock: {rate['xling'] / rate['hf']:.2f}x requests/s (per round "
          f"{', '.join(f'{ratio:.2f}' for ratio in per_round)}, median {statistics.median(per_round):.2f}); "
          f"real tokens {counts['hf'][0] / counts['xling'][0]:.2f}x fewer, "
          f"padded positions {counts['hf'][1] / counts['xling'][1]:.2f}x fewer")

    worst_absolute = max(abs(scores["hf"][key][0] - scores["xling"][key][0]) for key in scores["hf"])
    worst_relative = max(abs(scores["hf"][key][0] - scores["xling"][key][0]) / max(abs(scores["hf"][key][0]), 1.0)
                         for key in scores["hf"])
    greedy_disagreements = sum(scores["hf"][key][1] != scores["xling"][key][1] for key in scores["hf"])
    if "hf-reference" in scores:
        moved = max(abs(scores["hf"][key][0] - scores["hf-reference"][key][0]) for key in scores["hf"])
        print(f"hf itself, batch size {args.batch_size} versus {args.reference_batch_size}: largest difference "
              f"{moved:.2e}")
    same_accuracy = accuracy["hf"] == accuracy["xling"]
    print(f"log-likelihoods: largest difference {worst_absolute:.2e} (relative {worst_relative:.1e}); "
          f"is_greedy disagreements: {greedy_disagreements}; same accuracy on every task: {same_accuracy}")
    if preset["dtype"] != "float32":
        return 0
    agree = all(abs(hf[0] - scores["xling"][key][0]) <= max(1e-4, 2e-6 * abs(hf[0]))
                for key, hf in scores["hf"].items())
    if scores["hf"].keys() != scores["xling"].keys() or not agree or greedy_disagreements or not same_accuracy:
        print("MISMATCH: xling does not reproduce hf's scores", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
