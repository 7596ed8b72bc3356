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
shared with other jobs, with `--threads 1`); tokens processed, counted by a hook on the model's forward (in
the last round: with `--rounds 1` xling's counts include its one-time checks of the model): real input
tokens, padded positions (batch rows x padded width) and forwards; the tokens a model sharing only whole contexts
would run; and the ratio xling / hf. The script checks that every request's log-likelihood and
`is_greedy` agree between the two (|difference| <= max(1e-4, 1e-6 |log-likelihood|): one float32 rounding step
of a long sum; bf16: reported only) and exits with status 1 if they do not. Peak memory: what each model's
`loglikelihood` adds (CUDA: the allocator's peak; CPU: resident memory sampled every 2 ms). The closing summary
lists every xling variant of every preset against hf and the preset's target (README, "Faster scoring").
`--envelope-batch-sizes 8,64 --envelope-float32` scores hf against itself (other batch sizes, float32,
untimed): how far hf's own numbers move, and how many of xling's differences lie outside that envelope.

Usage:
    python benchmarks/eval_throughput.py --preset issue-table --languages de --docs 40 --rounds 3
        # every row of the README's scoring table: host (vocabulary 320), host-4096, small, the real SmolLM2
        # (skipped, with the reason, where it cannot be built), sliding (Gemma-3-shaped), head-heavy (262k)
    python benchmarks/eval_throughput.py --threads 1 --preset cpu-targets --languages de --docs 40
        # the two CPU targets of the host-side work in one run: 1 layer d_model 16 (host work), 4 layers d_model 128
    python benchmarks/eval_throughput.py --threads 1            # CPU: 4-layer XGLM-shaped model, d 256
    python benchmarks/eval_throughput.py --docs 20 --rounds 1   # quicker
    python benchmarks/eval_throughput.py --preset xglm-564m --docs 200 --batch-size 32,64 \
        --envelope-batch-sizes 8,64 --envelope-float32          # on a GPU: XGLM-564M's shape, bf16
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

PRESETS = {
    # a forward that really costs nothing (a vocabulary of 320 tokens: the LM head and log-softmax too): what is
    # measured is host work (tokenization, planning, batching, gathers)
    "host": dict(d_model=16, layers=1, heads=2, ffn=64, tokenizer_vocab=320, target=1.5),
    # the host preset before: its 4,096-token vocabulary makes hf's full log-softmax most of hf's time
    "host-4096": dict(d_model=16, layers=1, heads=2, ffn=64),
    # a small multi-layer model, where the forward starts to count
    "small": dict(d_model=128, layers=4, heads=4, ffn=512),
    # the first CPU benchmark of the README
    "cpu": dict(d_model=256, layers=4, heads=4, ffn=1024),
    # the real pretrained SmolLM2-135M-Instruct (scripts/real_checkpoint.py) with its own tokenizer; at most 8
    # documents per task on a CPU (its forwards are 135M parameters a token), both row layouts next to the default
    "smollm2": dict(arch="smollm2", max_docs=8, compare_packing=True, target=2.5),
    # Gemma-3-shaped, random: five sliding layers (window 64, shorter than the ~300-token 5-shot contexts) around a
    # full-attention one, the benchmark's byte-level BPE
    "sliding": dict(arch="gemma3", d_model=128, layers=6, heads=4, ffn=512, window=64, target=2.0),
    # Mistral-shaped, random: one window of 64 tokens in every layer
    "sliding-mistral": dict(arch="mistral", d_model=128, layers=4, heads=4, ffn=512, window=64, target=2.0),
    # a head that outweighs its blocks: Gemma 3's vocabulary of 262,144 over a small random body (2 layers, d_model
    # 64); the tokenizer is the benchmark's 4,096-token BPE (its ids are the first 4,096 of the vocabulary: the head
    # and the log-softmax cost the same for any ids). Batch 4 and at most 8 documents per task: hf's logits at
    # batch 16 would take 11 GB here
    "head-heavy": dict(
        arch="gemma3",
        d_model=64,
        layers=2,
        heads=2,
        ffn=256,
        window=64,
        vocab=262144,
        batch_size=4,
        max_docs=8,
        target=3.0,
    ),
    # XGLM-564M's shape (random weights, its vocabulary size), for a GPU session
    "xglm-564m": dict(
        d_model=1024, layers=24, heads=16, ffn=4096, vocab=256008, dtype="bfloat16", device="cuda", target=2.0
    ),
    # Gemma-3-270M's shape (random weights: 18 layers, d_model 640, window 512, 262,144-token vocabulary), for a GPU
    # session; the benchmark's 5-shot contexts are shorter than 512 tokens, so --shots 10 makes the window bite
    "gemma3-270m": dict(
        arch="gemma3",
        d_model=640,
        layers=18,
        heads=4,
        ffn=2048,
        window=512,
        vocab=262144,
        dtype="bfloat16",
        device="cuda",
        target=2.0,
    ),
}
for _preset in PRESETS.values():
    for _key, _value in dict(
        arch="xglm",
        vocab=None,
        tokenizer_vocab=4096,
        dtype="float32",
        device="cpu",
        target=None,
        max_docs=None,
        batch_size=None,
        compare_packing=False,
    ).items():
        _preset.setdefault(_key, _value)
# several presets one after the other in one run: `--preset cpu-targets`, `--preset issue-table`
PRESET_GROUPS = {
    "cpu-targets": ["host", "small"],
    "issue-table": ["host", "host-4096", "small", "smollm2", "sliding", "head-heavy"],
}
PAD, EOS = "<pad>", "</s>"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--preset",
        default="cpu",
        help=f"model shape(s), comma-separated, run one after the other: {', '.join(PRESETS)}, "
        "cpu-targets (= host,small) or issue-table (every row of the scoring table: "
        "host, host-4096, small, smollm2, sliding, head-heavy)",
    )
    parser.add_argument("--docs", type=int, default=60, help="scored documents per task")
    parser.add_argument(
        "--languages",
        default="de,fr",
        help="query languages: one XNLI and one PAWS-X `_endemo` task each (lm-eval draws the "
        "same English demonstrations for the same document index in every language)",
    )
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (hf, xling) per model")
    parser.add_argument(
        "--batch-size",
        default="16",
        help="batch size of both models; comma-separated sizes (e.g. 32,64) run one after the other",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--envelope-batch-sizes",
        default="",
        help="comma-separated batch sizes at which hf also scores once (untimed), to show how much "
        "hf's own log-likelihoods move with the batch composition (e.g. 1,8,64)",
    )
    parser.add_argument(
        "--envelope-float32",
        action="store_true",
        help="also score once with hf in float32 (untimed): how far the preset's dtype is from it",
    )
    parser.add_argument(
        "--xling-args", default="", help="extra model arguments of xling, as in --model_args (e.g. pack_rows=False)"
    )
    parser.add_argument(
        "--compare-packing", action="store_true", help="run xling twice, pack_rows=True and pack_rows=False, next to hf"
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="write a cProfile of each model's loglikelihood calls to DIR/<preset>-<model>.pstats "
        "(profiled timings are slower than unprofiled ones)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's); 1 is steadier on a machine other jobs share",
    )
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
            write(
                "xnli",
                lang,
                "train" if split == "train" else "validation",
                [
                    {
                        "premise": _sentence(rng, words, 20, 30),
                        "hypothesis": _sentence(rng, words, 8, 14),
                        "label": rng.randint(0, 2),
                    }
                    for _ in range(count)
                ],
            )
            write(
                "pawsx",
                lang,
                "train" if split == "train" else "test",
                [
                    {
                        "sentence1": _sentence(rng, words, 16, 24),
                        "sentence2": _sentence(rng, words, 16, 24),
                        "label": rng.randint(0, 1),
                    }
                    for _ in range(count)
                ],
            )
    return texts


class PresetUnavailable(RuntimeError):
    """The preset's checkpoint cannot be had here (the reason is the message); the run goes on without it."""


def real_checkpoint() -> Path:
    """SmolLM2-135M-Instruct's folder, built once by scripts/real_checkpoint.py (PresetUnavailable if it cannot be)."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "scripts" / "real_checkpoint.py"
    spec = importlib.util.spec_from_file_location("real_checkpoint", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.real_checkpoint_dir()
    except module.RealCheckpointUnavailable as error:
        raise PresetUnavailable(f"the real SmolLM2 checkpoint cannot be built here: {error}") from None


def build_checkpoint(folder: Path, texts: list[str], preset: dict, seed: int) -> Path:
    """A byte-level BPE tokenizer trained on `texts` and a random model of the preset's family, saved to `folder`
    (the real checkpoint's folder for `arch="smollm2"`); returns the folder to load."""
    if preset["arch"] == "smollm2":
        return real_checkpoint()
    import torch
    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=preset["tokenizer_vocab"],
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS, bos_token=EOS)
    fast.save_pretrained(folder)
    vocab = preset["vocab"] or len(fast)
    special = dict(pad_token_id=fast.pad_token_id, bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    torch.manual_seed(seed)
    if preset["arch"] == "xglm":
        model = tf.XGLMForCausalLM(
            tf.XGLMConfig(
                vocab_size=vocab,
                d_model=preset["d_model"],
                num_layers=preset["layers"],
                attention_heads=preset["heads"],
                ffn_dim=preset["ffn"],
                max_position_embeddings=2048,
                decoder_start_token_id=fast.eos_token_id,
                **special,
            )
        )
    elif preset["arch"] == "gemma3":
        layer_types = [
            "full_attention" if (index + 1) % 6 == 0 or index == preset["layers"] - 1 else "sliding_attention"
            for index in range(preset["layers"])
        ]
        head_dim = preset["d_model"] // preset["heads"]  # Gemma 3 270M's own is 256: this shape is approximate
        model = tf.Gemma3ForCausalLM(
            tf.Gemma3TextConfig(
                vocab_size=vocab,
                hidden_size=preset["d_model"],
                num_hidden_layers=preset["layers"],
                num_attention_heads=preset["heads"],
                num_key_value_heads=1,
                head_dim=head_dim,
                query_pre_attn_scalar=head_dim,
                intermediate_size=preset["ffn"],
                sliding_window=preset["window"],
                layer_types=layer_types,
                max_position_embeddings=2048,
                **special,
            )
        )
    elif preset["arch"] == "mistral":
        model = tf.MistralForCausalLM(
            tf.MistralConfig(
                vocab_size=vocab,
                hidden_size=preset["d_model"],
                num_hidden_layers=preset["layers"],
                num_attention_heads=preset["heads"],
                num_key_value_heads=preset["heads"] // 2,
                intermediate_size=preset["ffn"],
                sliding_window=preset["window"],
                max_position_embeddings=2048,
                **special,
            )
        )
    else:
        raise ValueError(f"unknown model family {preset['arch']}")
    model.save_pretrained(folder)
    return folder


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


class PeakMemory:
    """Peak memory a call adds to what was in use before it: on CUDA the allocator's peak; on a CPU the process's
    resident set, sampled every 2 ms from /proc/self/statm by a thread (a peak shorter than that can be missed)."""

    def __init__(self, device: str):
        self.device, self.peak = device, 0

    @staticmethod
    def _resident() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        import threading

        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._baseline = torch.cuda.memory_allocated()
            return self
        self._baseline = self._highest = self._resident()
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.002):
                self._highest = max(self._highest, self._resident())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._baseline
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._highest, self._resident()) - self._baseline
        return False


def timed_loglikelihood(lm, profiler=None, device: str = "cpu"):
    """Wrap `lm.loglikelihood` to add the wall-clock and CPU seconds spent in it to `lm.seconds`/`lm.cpu_seconds`.

    CPU seconds (this process, all threads) hardly depend on what else the machine runs; wall seconds do.
    A `cProfile.Profile` given as `profiler` records every call (and slows them: profiled rounds are not timed
    figures to quote).
    """
    original = lm.loglikelihood
    lm.seconds = lm.cpu_seconds = 0.0
    lm.peak_memory = 0

    def loglikelihood(requests, disable_tqdm=False):
        start, cpu_start = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        memory = PeakMemory(device)
        try:
            with memory:
                return original(requests, disable_tqdm=True)
        finally:
            if profiler is not None:
                profiler.disable()
            lm.seconds += time.perf_counter() - start
            lm.cpu_seconds += time.process_time() - cpu_start
            lm.peak_memory = max(lm.peak_memory, memory.peak)

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
    return {
        (task, sample["doc_id"], index): (float(response[0][0]), bool(response[0][1]))
        for task, task_samples in samples.items()
        for sample in task_samples
        for index, response in enumerate(sample["resps"])
    }


def preset_names(text: str) -> list[str]:
    names = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        if name not in PRESETS and name not in PRESET_GROUPS:
            print(f"--preset {name}: unknown; choose from {', '.join([*PRESETS, *PRESET_GROUPS])}", file=sys.stderr)
            raise SystemExit(2)
        names.extend(PRESET_GROUPS.get(name, [name]))
    return names


def xling_arguments(text: str) -> dict:
    """`--xling-args pack_rows=False,...` as keyword arguments (strings, as lm-eval's --model_args gives them)."""
    pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
    if any(len(pair) != 2 for pair in pairs):
        print(f"--xling-args {text!r}: expected key=value pairs separated by commas", file=sys.stderr)
        raise SystemExit(2)
    return {key.strip(): value.strip() for key, value in pairs}


def largest_difference(reference: dict, other: dict) -> tuple[float, float, int]:
    """Largest |difference| of log-likelihoods, the same relative to max(|reference|, 1), is_greedy disagreements."""
    absolute = max(abs(reference[key][0] - other[key][0]) for key in reference)
    relative = max(abs(reference[key][0] - other[key][0]) / max(abs(reference[key][0]), 1.0) for key in reference)
    return absolute, relative, sum(reference[key][1] != other[key][1] for key in reference)


def run_preset(args, name: str, languages: list[str], batch_size: int) -> dict:
    """Build the preset's checkpoint and data, time hf and xling in turns; returns the figures."""
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from xling_align.evaluation.lm_eval_model import XlingLM

    preset = PRESETS[name]
    docs = min(args.docs, preset["max_docs"]) if preset["max_docs"] else args.docs
    batch_size = preset["batch_size"] or batch_size
    with tempfile.TemporaryDirectory(prefix="xling-eval-throughput-") as tmp:
        data = Path(tmp) / "data"
        texts = write_dataset(data, docs, args.seed, languages)
        try:
            checkpoint = build_checkpoint(Path(tmp) / "model", texts, preset, args.seed)
        except PresetUnavailable as error:
            print(f"{name}: skipped: {error}", flush=True)
            return dict(name=name, batch_size=batch_size, skipped=str(error))
        os.environ["XLING_DATA_DIR"] = str(data)
        tasks = [f"xling_{benchmark}_{lang}_endemo" for benchmark in ("xnli", "pawsx") for lang in languages]
        task_manager = TaskManager(include_defaults=False)
        common = dict(pretrained=str(checkpoint), device=preset["device"], dtype=preset["dtype"], batch_size=batch_size)

        def evaluate(lm):
            return lm_eval.simple_evaluate(
                model=lm,
                tasks=tasks,
                task_manager=task_manager,
                num_fewshot=args.shots,
                log_samples=True,
                limit=docs,
                random_seed=args.seed,
                fewshot_random_seed=args.seed,
            )

        extra = xling_arguments(args.xling_args)
        models = {"hf": HFLM(**common)}
        if args.compare_packing:  # both row layouts of xling, side by side
            models["xling-packed"] = XlingLM(**common, **{**extra, "pack_rows": "True"})
            models["xling-segments"] = XlingLM(**common, **{**extra, "pack_rows": "False"})
        else:
            models["xling"] = XlingLM(**common, **extra)
            if preset["compare_packing"] and "pack_rows" not in extra:  # the layout auto did not pick, beside it
                other = not models["xling"].pack_rows
                models["xling-packed" if other else "xling-segments"] = XlingLM(**common, **extra, pack_rows=str(other))
        counters, token_requests = {}, []
        profilers = {m: cProfile.Profile() for m in models} if args.profile else {}
        for model_name, lm in models.items():
            timed_loglikelihood(lm, profilers.get(model_name), preset["device"])
            # both pad their rows with id 0 (HFLM's pad_and_concat, xling's _PAD_ID), whatever the tokenizer's pad id
            counters[model_name] = TokenCounter(lm.model, 0)
        record_token_requests(models["hf"], token_requests)

        seconds, cpu_seconds, memory = {m: [] for m in models}, {m: [] for m in models}, {m: [] for m in models}
        counts, scores, accuracy = {}, {}, {}
        for round_index in range(args.rounds):
            # hf first in odd rounds, xling first in even ones: a drift of the machine's load cancels out
            order = list(models.items()) if round_index % 2 == 0 else list(models.items())[::-1]
            for model_name, lm in order:
                lm.seconds = lm.cpu_seconds = 0.0
                lm.peak_memory = 0
                output = evaluate(lm)
                seconds[model_name].append(lm.seconds)
                cpu_seconds[model_name].append(lm.cpu_seconds)
                memory[model_name].append(lm.peak_memory)
                # the last round's counts: the first one also holds xling's one-time check of the model
                counts[model_name] = counters[model_name].take()
                if round_index == 0:
                    if model_name == "hf":
                        hf_requests = list(token_requests)
                    scores[model_name] = per_request(output["samples"])
                    accuracy[model_name] = {task: output["results"][task]["acc,none"] for task in tasks}
                print(
                    f"{name}, batch size {batch_size}, round {round_index + 1}: {model_name:14s} "
                    f"{lm.seconds:7.2f} s, {lm.cpu_seconds:7.2f} CPU s, peak +{lm.peak_memory / 2**20:7.1f} MiB",
                    flush=True,
                )
        layouts = {model_name: lm.pack_rows for model_name, lm in models.items() if model_name != "hf"}
        for model_name, profiler in profilers.items():
            path = Path(args.profile) / f"{name}-{model_name}.pstats"
            path.parent.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(path)
            print(f"{name}: cProfile of {model_name}'s loglikelihood written to {path}", flush=True)
        # hf against itself: other batch sizes, float32 (untimed), the envelope xling's differences should lie in
        envelope = {}
        for other_size in [int(b) for b in args.envelope_batch_sizes.split(",") if b.strip()]:
            envelope[f"hf, batch size {other_size}"] = HFLM(**{**common, "batch_size": other_size})
        if args.envelope_float32 and preset["dtype"] != "float32":
            envelope["hf, float32"] = HFLM(**{**common, "dtype": "float32"})
        for label, lm in envelope.items():
            output = evaluate(lm)
            scores[label] = per_request(output["samples"])
            accuracy[label] = {task: output["results"][task]["acc,none"] for task in tasks}
            del lm
            if preset["device"] == "cuda":
                torch.cuda.empty_cache()
    return dict(
        name=name,
        batch_size=batch_size,
        docs=docs,
        preset=preset,
        tasks=tasks,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        memory=memory,
        counts=counts,
        scores=scores,
        accuracy=accuracy,
        layouts=layouts,
        context_only=context_sharing_tokens(hf_requests),
    )


def report(args, figures: dict) -> bool:
    """Print one preset's figures; returns whether every xling variant reproduced hf (float32; True otherwise)."""
    import torch

    name, preset, scores, counts = figures["name"], figures["preset"], figures["scores"], figures["counts"]
    variants = [model for model in figures["seconds"] if model != "hf"]
    requests = len(scores["hf"])
    shape = (
        "the real SmolLM2-135M-Instruct"
        if preset["arch"] == "smollm2"
        else f"{preset['arch']}, {preset['layers']} layers, d_model {preset['d_model']}, vocabulary "
        f"{preset['vocab'] or preset['tokenizer_vocab']}"
        + (f", window {preset['window']}" if preset.get("window") else "")
    )
    print(
        f"\n== {name}: {shape}, {preset['dtype']} on {preset['device']}, batch size {figures['batch_size']}, "
        f"{torch.get_num_threads()} CPU threads; {len(figures['tasks'])} tasks ({', '.join(figures['tasks'])}), "
        f"{figures['docs']} documents each, {args.shots}-shot, {requests} log-likelihood requests; "
        f"median of {args.rounds} rounds"
    )
    print(
        f"{'model':14s} {'wall s':>8s} {'ms/request':>11s} {'CPU s':>8s} {'CPU ms/request':>15s} "
        f"{'real tokens':>12s} {'padded positions':>17s} {'forwards':>9s} {'peak MiB':>9s}"
    )
    medians = {}
    for model in figures["seconds"]:
        wall, cpu = statistics.median(figures["seconds"][model]), statistics.median(figures["cpu_seconds"][model])
        peak = max(figures["memory"][model]) / 2**20
        medians[model] = (wall, cpu, peak)
        tokens, positions, forwards = counts[model]
        print(
            f"{model:14s} {wall:8.2f} {1000 * wall / requests:11.2f} {cpu:8.2f} {1000 * cpu / requests:15.2f} "
            f"{tokens:12d} {positions:17d} {forwards:9d} {peak:9.1f}"
        )
    print(
        f"sharing whole contexts only would run {figures['context_only']} real tokens "
        f"({counts['hf'][0] / figures['context_only']:.2f}x fewer than hf)"
    )
    figures["speedups"], figures["parity"] = {}, {}
    for model in variants:
        per_round = [h / x for h, x in zip(figures["seconds"]["hf"], figures["seconds"][model], strict=True)]
        cpu_per_round = [
            h / x for h, x in zip(figures["cpu_seconds"]["hf"], figures["cpu_seconds"][model], strict=True)
        ]
        # the headline: the median of the per-round ratios (each round runs both models back to back)
        figures["speedups"][model] = (
            statistics.median(cpu_per_round),
            statistics.median(per_round),
            min(per_round),
            max(per_round),
            medians[model][2] / max(medians["hf"][2], 1e-9),
        )
        print(
            f"{model} / hf, wall clock: {figures['speedups'][model][1]:.2f}x (per round "
            f"{', '.join(f'{ratio:.2f}' for ratio in per_round)}); CPU time: {figures['speedups'][model][0]:.2f}x "
            f"(per round {', '.join(f'{ratio:.2f}' for ratio in cpu_per_round)}); "
            f"real tokens {counts['hf'][0] / counts[model][0]:.2f}x fewer, padded positions "
            f"{counts['hf'][1] / counts[model][1]:.2f}x fewer, forwards {counts['hf'][2]} vs {counts[model][2]}; "
            f"peak memory {medians[model][2]:.0f} vs hf's {medians['hf'][2]:.0f} MiB"
        )

    hf, accuracy = scores["hf"], figures["accuracy"]
    print(
        f"{'scored by':22s} {'vs hf: largest |diff|':>22s} {'relative':>9s} {'is_greedy diffs':>16s}  accuracy per task"
    )
    for label in scores:
        absolute, relative, greedy = largest_difference(hf, scores[label]) if label != "hf" else (0.0, 0.0, 0)
        print(
            f"{label:22s} {absolute:22.2e} {relative:9.1e} {greedy:16d}  "
            f"{' '.join(f'{accuracy[label][task]:.4f}' for task in figures['tasks'])}"
        )
    envelope = [label for label in scores if label.startswith("hf, ")]
    if envelope:
        # per request, the farthest hf moves from itself; each xling variant's difference against that
        width = {key: max(abs(scores[label][key][0] - value[0]) for label in envelope) for key, value in hf.items()}
        for model in variants:
            excess = [abs(scores[model][key][0] - value[0]) - width[key] for key, value in hf.items()]
            outside = [value for value in excess if value > 0]
            print(
                f"hf's own envelope ({', '.join(envelope)}): {model}'s difference exceeds it on {len(outside)} "
                f"of {len(hf)} requests" + (f" (by at most {max(outside):.2e})" if outside else "")
            )
    agreed = True
    for model in variants:
        absolute, _, greedy = largest_difference(hf, scores[model])
        agree = all(
            abs(value[0] - scores[model][key][0]) <= max(1e-4, 1e-6 * abs(value[0])) for key, value in hf.items()
        )
        same = hf.keys() == scores[model].keys() and agree and not greedy and accuracy["hf"] == accuracy[model]
        figures["parity"][model] = (same, absolute, greedy)
        if preset["dtype"] == "float32" and not same:
            print(f"MISMATCH ({name}): {model} does not reproduce hf's scores", file=sys.stderr)
            agreed = False
    return agreed


def summary(all_figures: list[dict]) -> None:
    """One table: every preset's xling variants against hf, with the target of the preset where it has one."""
    print(
        "\nsummary: xling / hf, wall clock = median of the per-round ratios (range over rounds), CPU time the same; "
        "parity: every log-likelihood within max(1e-4, 1e-6 |ll|), is_greedy and accuracy the same"
    )
    print(
        f"  {'preset':16s} {'batch':>5s} {'model':15s} {'layout':9s} {'wall clock':>22s} {'CPU time':>9s} "
        f"{'target':>7s} {'met':>4s} {'peak mem vs hf':>15s}  parity"
    )
    for figures in all_figures:
        if "skipped" in figures:
            print(f"  {figures['name']:16s} skipped: {figures['skipped']}")
            continue
        target = figures["preset"]["target"]
        for model, (cpu, wall, low, high, memory) in figures["speedups"].items():
            same, absolute, greedy = figures["parity"][model]
            layout = "packed" if figures["layouts"][model] else "segments"
            met = "-" if target is None else ("yes" if wall >= target else "NO")
            print(
                f"  {figures['name']:16s} {figures['batch_size']:5d} {model:15s} {layout:9s} "
                f"{wall:6.2f}x ({low:.2f}-{high:.2f}) {cpu:8.2f}x {f'>= {target:.1f}x' if target else '-':>7s} "
                f"{met:>4s} {memory:14.2f}x  {'equal' if same else 'DIFFERENT'} (largest |diff| {absolute:.1e}, "
                f"is_greedy diffs {greedy})"
            )


def main(argv=None) -> int:
    args = parse_args(argv)
    names = preset_names(args.preset)
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    for name in names:
        if PRESETS[name]["device"] == "cuda" and not torch.cuda.is_available():
            print(f"--preset {name} needs a CUDA GPU; none is visible.", file=sys.stderr)
            return 2
    from xling_align.evaluation import lm_eval_plugin

    lm_eval_plugin.register()
    import transformers

    transformers.logging.set_verbosity_error()
    import datasets

    datasets.disable_progress_bars()  # one bar per task and split otherwise
    batch_sizes = [int(size) for size in args.batch_size.split(",") if size.strip()]
    all_figures = [
        run_preset(args, name, languages, size)
        for name in names
        for size in (batch_sizes if not PRESETS[name]["batch_size"] else batch_sizes[:1])
    ]
    agreed = [report(args, figures) for figures in all_figures if "skipped" not in figures]
    summary(all_figures)
    return 0 if all(agreed) else 1


if __name__ == "__main__":
    sys.exit(main())
