"""Step time and memory of AFPTrainer relative to plain SFTTrainer on the same instruction batch.

Three trainers hold copies of the same randomly initialised XGLM-shaped model and the same instructions:
  sft       SFTTrainer on the instructions only
  afp       AFPTrainer: the instructions + one translation pair per row; the pair pass stops after block
            `contrastive_layer` and builds no logits
  afp-full  AFPTrainer whose pair pass runs the whole model and its LM head, then takes `hidden_states[K]`
            (what the reference implementation does)

A step is `Trainer.training_step` (forward + backward) + the optimizer step, on a fixed batch. The variants'
steps are interleaved (sft, afp, afp-full, sft, ...) in one process, so a change of load on a shared machine
hits all of them alike; the median per variant is reported, with tokens/s (instruction tokens per second) and,
with `--peak-tflops`, the model FLOPs utilisation (MFU): the variant's model FLOPs per step (6 per matmul
parameter per token, forward + backward, LM head included, plus 12 x layers x d_model x length per token for
attention; pair tokens counted through the blocks they run) / step time / the given peak. TRL's fused LM head
projects only completion tokens on a GPU, so the head's share is slightly overstated there.

Memory: on a GPU, what the variant would hold alone: its own parameters and optimizer state, plus the peak
of `torch.cuda.max_memory_allocated` during its step above the memory allocated when the step starts (the
three models share the device, so the raw peak would count all three). On a CPU there is no allocator
peak to read, so the script reports the bytes autograd keeps for the backward pass (activations, counted once
per storage), the part of the memory that the pair pass changes, and an estimated peak = parameters +
gradients + AdamW states + those activations.

Also printed: with `--breakdown`, where an AFP step's host time goes next to an SFT step's (torch.profiler
ranges: collation, pair pass forward, instruction forward + loss, backward, optimizer; operator calls and
`.item()` reads per step); with `--sweep 4x512,16x512`, sft and afp at each batch x length point (ms, tokens/s,
MFU, peak memory, AFP/SFT) as one table; always, the resident bytes of the memory options at XGLM-564M's shape
(exact parameter count) and the instruction tokens per step, real vs computed, of padded, padding-free and
BFD-packed batches on synthetic Bactrian-X-shaped lengths (`LENGTH_MODEL`).

Usage:
    python benchmarks/afp_step_time.py                                   # CPU-sized: 8 layers, d_model 128
    python benchmarks/afp_step_time.py --steps 2 --warmup 1              # a quick CPU check
    python benchmarks/afp_step_time.py --preset xglm-564m --peak-tflops 989   # GPU: XGLM-564M shape, bf16,
                                                                         # batch 4, length 512 (H100 bf16 peak)
    python benchmarks/afp_step_time.py --breakdown --sweep 1x256,4x256,4x512 # CPU: the breakdown and a sweep
    STAGES="afp_step_time afp_sweep afp_memory" bash benchmarks/gpu_checks.sh   # every GPU figure of the training side
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import tempfile
import time

PRESETS = {
    # the benchmark: 8 layers, pairs of 64 tokens, instructions of 512 tokens, contrastive_layer=1
    "tiny": dict(d_model=128, layers=8, heads=4, ffn=512, vocab=8192),
    # XGLM-564M's shape (random weights), for a GPU
    "xglm-564m": dict(d_model=1024, layers=24, heads=16, ffn=4096, vocab=256008),
}
VARIANTS = ("sft", "afp", "afp-full")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--batch-size", type=int, default=4, help="rows per step (each: instruction + pair)")
    parser.add_argument("--instruction-tokens", type=int, default=512)
    parser.add_argument("--pair-tokens", type=int, default=64, help="tokens of each sentence of a pair")
    parser.add_argument("--contrastive-layer", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10, help="measured steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured steps per variant before them")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (always on with --preset xglm-564m)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the device's peak TFLOP/s in the step's precision (e.g. 989 for an H100's dense bf16); "
        "MFU is reported when given",
    )
    parser.add_argument(
        "--optim",
        default=None,
        help="a TrainingArguments optimizer name (default: Trainer's, adamw_torch_fused on a GPU); "
        "e.g. adamw_bnb_8bit where bitsandbytes is installed",
    )
    parser.add_argument(
        "--sweep",
        default=None,
        metavar="BxL,...",
        help="also measure sft and afp at these batch x instruction-length points, e.g. "
        "'4x512,16x512,8x1024', printed as one table",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also profile AFP and SFT steps (torch.profiler) and print where the host time goes",
    )
    parser.add_argument(
        "--padding-free-check",
        action="store_true",
        help="also time AFP steps padded vs padding-free on Bactrian-X-shaped batches (a Llama-shaped "
        "model of the preset's size: XGLM refuses padding-free)",
    )
    parser.add_argument(
        "--skip-main",
        action="store_true",
        help="skip the three-variant table (and --breakdown): only the sweep / checks asked for",
    )
    parser.add_argument(
        "--length-rows",
        type=int,
        default=20000,
        help="rows of the synthetic Bactrian-X-shaped length distribution (padding table)",
    )
    args = parser.parse_args(argv)
    try:
        args.sweep_points = (
            [tuple(int(x) for x in point.lower().split("x")) for point in args.sweep.split(",")] if args.sweep else []
        )
    except ValueError:
        parser.error(f"--sweep {args.sweep!r}: expected points like 4x512,16x512 (batch x instruction tokens)")
    if any(len(point) != 2 or min(point) < 1 for point in args.sweep_points):
        parser.error(f"--sweep {args.sweep!r}: each point is BATCHxLENGTH with both >= 1, e.g. 4x512")
    for name in ("batch_size", "instruction_tokens", "pair_tokens", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def step_flops(model, args, variant: str) -> float:
    """Model FLOPs of one training step of `variant` (see the module docstring for the convention)."""
    from xling_align.alignment.model_parts import decoder_blocks, hidden_size, normalize_layer, num_decoder_layers

    blocks = decoder_blocks(model).blocks
    block_params = sum(p.numel() for p in blocks[0].parameters())
    depth, width = num_decoder_layers(model), hidden_size(model)
    head_params = model.get_output_embeddings().weight.numel()

    def pass_flops(tokens: int, length: int, layers: int, with_head: bool) -> float:
        matmul = block_params * layers + (head_params if with_head else 0)
        return 6.0 * matmul * tokens + 12.0 * layers * width * length * tokens

    total = pass_flops(args.batch_size * args.instruction_tokens, args.instruction_tokens, depth, True)
    pair_tokens = 2 * args.batch_size * args.pair_tokens
    if variant == "afp":
        total += pass_flops(pair_tokens, args.pair_tokens, normalize_layer(model, args.contrastive_layer), False)
    elif variant == "afp-full":
        total += pass_flops(pair_tokens, args.pair_tokens, depth, True)
    return total


def build_rows(instruction_tokens: int, pair_tokens: int, count: int):
    """Rows of exactly the requested lengths for a byte-level tokenizer (one token per ASCII byte, + EOS)."""
    from datasets import Dataset

    def text(seed: int, length: int) -> str:
        return " ".join(f"w{(seed * 7919 + i * 104729) % 997}" for i in range(length))[:length]

    prompt_chars = instruction_tokens // 3
    completion_chars = instruction_tokens - 1 - prompt_chars
    return Dataset.from_dict(
        {
            "prompt": [text(i, prompt_chars) for i in range(count)],
            "completion": [" " + text(i + 1000, completion_chars - 1) for i in range(count)],
            "source_sentence": [text(i + 2000, pair_tokens - 1) for i in range(count)],
            "target_sentence": [text(i + 3000, pair_tokens - 1) for i in range(count)],
        }
    )


def build_trainers(args, variants=VARIANTS):
    """The trainers of `variants`, each with its own copy of the same model, its optimizer and its fixed batch."""
    import torch
    from transformers import ByT5Tokenizer, XGLMConfig, XGLMForCausalLM
    from trl import SFTConfig, SFTTrainer

    from xling_align import AFPConfig, AFPTrainer
    from xling_align.alignment.pooling import pool_hidden_states

    class FullModelPairPass(AFPTrainer):
        """The reference implementation's pair pass: the whole model, LM head included, then hidden_states[K]."""

        def encode_pairs(self, model, input_ids, attention_mask):
            outputs = model(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False
            )
            hidden = outputs.hidden_states[self.args.contrastive_layer]
            return pool_hidden_states(hidden, attention_mask, self.args.contrastive_pooling)

    shape = PRESETS[args.preset]
    torch.manual_seed(0)
    config = XGLMConfig(
        vocab_size=shape["vocab"],
        d_model=shape["d_model"],
        num_layers=shape["layers"],
        attention_heads=shape["heads"],
        ffn_dim=shape["ffn"],
        max_position_embeddings=2048,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    if args.preset == "xglm-564m" and device_is_cpu():
        print(
            "note: --preset xglm-564m on a CPU: three copies of a 564M-parameter model with AdamW need ~30 GB; "
            "the preset is meant for a GPU",
            file=sys.stderr,
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = XGLMForCausalLM(config).to(device)
    tokenizer = ByT5Tokenizer()
    rows = build_rows(args.instruction_tokens, args.pair_tokens, count=args.batch_size)
    common = dict(
        output_dir=tempfile.mkdtemp(prefix="afp-bench-"),
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-5,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        bf16=False,
        activation_checkpointing=args.gradient_checkpointing,
        max_length=args.instruction_tokens,
        seed=0,
        **({"optim": args.optim} if args.optim else {}),
    )
    afp_args = AFPConfig(contrastive_layer=args.contrastive_layer, contrastive_max_length=args.pair_tokens, **common)
    builders = {
        "sft": lambda: SFTTrainer(
            model=copy.deepcopy(model),
            args=SFTConfig(**common),
            processing_class=tokenizer,
            train_dataset=rows.remove_columns(["source_sentence", "target_sentence"]),
        ),
        "afp": lambda: AFPTrainer(
            model=copy.deepcopy(model), args=afp_args, processing_class=tokenizer, train_dataset=rows
        ),
        "afp-full": lambda: FullModelPairPass(
            model=copy.deepcopy(model), args=afp_args, processing_class=tokenizer, train_dataset=rows
        ),
    }
    trainers = {name: builders[name]() for name in variants}
    model = None  # each trainer holds its own copy: free the original
    batches = {}
    for name, trainer in trainers.items():
        if args.gradient_checkpointing:
            trainer.model.gradient_checkpointing_enable({"use_reentrant": False})
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1
        dataset = trainer.train_dataset
        batch = trainer._prepare_inputs(trainer.data_collator([dataset[i] for i in range(len(dataset))]))
        # as Trainer does: the loss is normalised by the label tokens of the whole step
        batches[name] = (batch, (batch["labels"][:, 1:] != -100).sum())
    lengths = {tuple(batches[name][0]["input_ids"].shape) for name in trainers}
    assert len(lengths) == 1, f"the variants got different instruction batches: {lengths}"
    return trainers, batches, device


def device_is_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def run_step(trainer, batch, num_items, autocast) -> None:
    with autocast():
        trainer.training_step(trainer.model, dict(batch), num_items)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)


def resident_bytes(trainer) -> int:
    """Bytes a trainer keeps between steps: its model's parameters and buffers and its optimizer's state."""
    import torch

    tensors = [*trainer.model.parameters(), *trainer.model.buffers()]
    for state in trainer.optimizer.state.values():
        tensors += [value for value in state.values() if isinstance(value, torch.Tensor)]
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


def saved_activation_bytes(trainer, batch, num_items, autocast) -> int:
    """Bytes autograd saves for the backward of one step, each storage counted once."""
    import torch

    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run_step(trainer, batch, num_items, autocast)
    return sum(storages.values())


def measure(args, variants=VARIANTS) -> dict:
    """Interleaved steps of `variants` at the shape of `args`: median step time, FLOPs, memory per variant."""
    import torch

    trainers, batches, device = build_trainers(args, variants)
    autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    times = {name: [] for name in variants}
    peaks = {name: 0 for name in variants}  # on a GPU: the step's peak above what was allocated at its start
    for step in range(args.warmup + args.steps):
        order = variants[step % len(variants) :] + variants[: step % len(variants)]  # no variant always runs first
        for name in order:
            batch, num_items = batches[name]
            sync()
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
                at_start = torch.cuda.memory_allocated()
            start = time.perf_counter()
            run_step(trainers[name], batch, num_items, autocast)
            sync()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
            if device == "cuda" and step >= args.warmup:  # (the first step also allocates the optimizer state)
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated() - at_start)
    activations = {}
    if device == "cuda":
        peaks = {name: resident_bytes(trainers[name]) + peaks[name] for name in variants}
    else:
        first = trainers[variants[0]]
        static = resident_bytes(first) + sum(p.numel() * p.element_size() for p in first.model.parameters())  # + grads
        activations = {name: saved_activation_bytes(trainers[name], *batches[name], autocast) for name in variants}
        peaks = {name: static + activations[name] for name in variants}
    result = {
        "device": device,
        "variants": variants,
        "trainers": trainers,
        "batches": batches,
        "autocast": autocast,
        "median": {name: statistics.median(times[name]) for name in variants},
        "flops": {name: step_flops(trainers[name].model, args, name) for name in variants},
        "peaks": peaks,
        "activations": activations,
    }
    result["mfu"] = {
        name: result["flops"][name] / result["median"][name] / (args.peak_tflops * 1e12) if args.peak_tflops else None
        for name in variants
    }
    return result


def print_point(args, result) -> None:
    import torch

    shape, device, variants = PRESETS[args.preset], result["device"], result["variants"]
    median, peaks, activations, mfu = result["median"], result["peaks"], result["activations"], result["mfu"]
    tokens = args.batch_size * args.instruction_tokens
    optimizer = result["trainers"][variants[0]].args.optim
    print(
        f"model: XGLM-shaped, {shape['layers']} layers, d_model {shape['d_model']}, vocab {shape['vocab']}, "
        f"{'bf16' if args.bf16 else 'fp32'}, "
        f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, optimizer "
        f"{getattr(optimizer, 'value', optimizer)}; "
        f"batch {args.batch_size}: instructions of {args.instruction_tokens} tokens, pairs of 2 x {args.pair_tokens} "
        f"tokens; contrastive_layer={args.contrastive_layer}; device {device} ({torch.get_num_threads()} threads); "
        f"median of {args.steps} interleaved steps after {args.warmup} warm-up"
    )
    memory_name = "peak MiB" if device == "cuda" else "est. peak MiB"
    print(
        f"{'variant':9s} {'step ms':>9s} {'steps/s':>8s} {'tokens/s':>9s} {'TFLOP/step':>10s} {'MFU':>6s} "
        f"{memory_name:>14s}" + ("" if device == "cuda" else f" {'activations MiB':>16s}")
    )
    for name in variants:
        utilisation = f"{mfu[name]:6.1%}" if mfu[name] is not None else f"{'-':>6s}"
        line = (
            f"{name:9s} {median[name] * 1000:9.1f} {1 / median[name]:8.2f} {tokens / median[name]:9.0f} "
            f"{result['flops'][name] / 1e12:10.4f} {utilisation} {peaks[name] / 2**20:14.1f}"
        )
        if device == "cpu":
            line += f" {activations[name] / 2**20:16.1f}"
        print(line)
    for name in variants[1:]:
        line = (
            f"{name}/sft: step-time ratio {median[name] / median['sft']:.3f}, "
            f"peak-memory ratio {peaks[name] / peaks['sft']:.3f}"
        )
        if device == "cpu":
            line += f", activation-memory ratio {activations[name] / activations['sft']:.3f}"
        print(line)


def release_memory() -> None:
    """Free the last measurement's models before the next one is built (on a GPU they would add up)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def print_sweep(args) -> None:
    """sft and afp at each batch x length point of --sweep, one row per point."""
    import argparse as _argparse

    device_memory = "est. peak MiB" if device_is_cpu() else "peak MiB"
    print(
        f"\nsweep: sft and afp per batch x instruction length (pairs of 2 x {args.pair_tokens} tokens), median of "
        f"{args.steps} interleaved steps after {args.warmup} warm-up; tokens/s = instruction tokens per second"
        + ("; MFU against " + f"{args.peak_tflops:g} TFLOP/s" if args.peak_tflops else "")
    )
    print(
        f"{'batch':>5s} {'length':>6s} {'sft ms':>8s} {'afp ms':>8s} {'afp/sft':>7s} {'sft tok/s':>10s} "
        f"{'afp tok/s':>10s} {'sft MFU':>7s} {'afp MFU':>7s} {'sft ' + device_memory:>17s} "
        f"{'afp ' + device_memory:>17s}"
    )
    for batch_size, length in args.sweep_points:
        point = _argparse.Namespace(**{**vars(args), "batch_size": batch_size, "instruction_tokens": length})
        result = measure(point, ("sft", "afp"))
        median, mfu, peaks = result["median"], result["mfu"], result["peaks"]
        tokens = batch_size * length

        def utilisation(name, mfu=mfu):
            return f"{mfu[name]:7.1%}" if mfu[name] is not None else f"{'-':>7s}"

        print(
            f"{batch_size:5d} {length:6d} {median['sft'] * 1000:8.1f} {median['afp'] * 1000:8.1f} "
            f"{median['afp'] / median['sft']:7.3f} {tokens / median['sft']:10.0f} {tokens / median['afp']:10.0f} "
            f"{utilisation('sft')} {utilisation('afp')} {peaks['sft'] / 2**20:17.1f} {peaks['afp'] / 2**20:17.1f}"
        )
        del result
        release_memory()


PHASES = ("collate (host)", "pair pass forward", "instruction forward + loss", "backward", "optimizer step")


def profile_steps(trainer, batch, num_items, autocast, steps: int) -> dict:
    """Host time per phase of `steps` training steps (torch.profiler's record_function ranges, microseconds of
    the host thread), per step; plus the operator calls and host reads of device values per step."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    features = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    originals = {}

    def marked(owner, attribute, label):
        original = getattr(owner, attribute)
        originals[(owner, attribute)] = original

        def wrapper(*args, **kwargs):
            with record_function(label):
                return original(*args, **kwargs)

        setattr(owner, attribute, wrapper)

    if hasattr(trainer, "encode_pairs"):
        marked(trainer, "encode_pairs", PHASES[1])
    marked(trainer, "compute_loss", "compute_loss")
    marked(trainer.accelerator, "backward", PHASES[3])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    try:
        with profile(activities=activities) as profiler:
            for _ in range(steps):
                with record_function(PHASES[0]):
                    trainer._prepare_inputs(trainer.data_collator(features))
                with autocast():
                    trainer.training_step(trainer.model, dict(batch), num_items)
                with record_function(PHASES[4]):
                    trainer.optimizer.step()
                    trainer.optimizer.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
    finally:
        for (owner, attribute), original in originals.items():
            setattr(owner, attribute, original)
    totals = {}
    for event in profiler.events():
        totals[event.name] = totals.get(event.name, 0.0) + event.cpu_time_total
    per_step = {phase: totals.get(phase, 0.0) / steps / 1000 for phase in PHASES}  # ms
    per_step[PHASES[2]] = (totals.get("compute_loss", 0.0) - totals.get(PHASES[1], 0.0)) / steps / 1000
    events = [event for event in profiler.events() if event.name.startswith("aten::")]
    return {
        "ms": per_step,
        "operator calls": len(events) / steps,
        "scalar reads": sum(event.name == "aten::_local_scalar_dense" for event in events) / steps,
        "cuda kernels": (
            sum(str(getattr(event, "device_type", "")).endswith("CUDA") for event in profiler.events()) / steps
        )
        if torch.cuda.is_available()
        else None,
    }


def pair_tokenisation_ms_per_1000(trainer, count: int = 200) -> float:
    """CPU ms to tokenize 1000 pairs, as dataset preparation does once before training (not per step)."""
    rows = build_rows(8, 64, count=count)
    start = time.process_time()
    for source, target in zip(rows["source_sentence"], rows["target_sentence"], strict=True):
        trainer.tokenize_pair(source, target, trainer.args.contrastive_max_length)
    return (time.process_time() - start) * 1000 / count * 1000


def print_breakdown(args, result) -> None:
    # one profiled step at a time, the two variants alternating (as the timed steps are interleaved)
    runs = {"sft": [], "afp": []}
    for step in range(max(args.steps, 1)):
        for name in ("sft", "afp") if step % 2 == 0 else ("afp", "sft"):
            runs[name].append(
                profile_steps(result["trainers"][name], *result["batches"][name], result["autocast"], steps=1)
            )

    def mean(profiles):
        merged = {
            key: (sum(p[key] for p in profiles) / len(profiles) if profiles[0][key] is not None else None)
            for key in ("operator calls", "scalar reads", "cuda kernels")
        }
        merged["ms"] = {phase: sum(p["ms"][phase] for p in profiles) / len(profiles) for phase in PHASES}
        return merged

    sft, afp = mean(runs["sft"]), mean(runs["afp"])
    print(
        f"\noverhead breakdown: host time per step (torch.profiler record_function ranges, wall clock of the host "
        f"thread, mean of {max(args.steps, 1)} profiled steps per variant, alternating; on a GPU the host only "
        "queues kernels, so there the times are launch and Python costs, and the kernel counts matter)"
    )
    print(f"{'phase':28s} {'sft ms':>9s} {'afp ms':>9s} {'afp - sft':>10s}")
    for phase in PHASES:
        difference = afp["ms"][phase] - sft["ms"][phase]
        print(f"{phase:28s} {sft['ms'][phase]:9.2f} {afp['ms'][phase]:9.2f} {difference:10.2f}")
    total_sft, total_afp = sum(sft["ms"].values()), sum(afp["ms"].values())
    print(f"{'total':28s} {total_sft:9.2f} {total_afp:9.2f} {total_afp - total_sft:10.2f}")
    print(
        f"{'operator calls (aten)':28s} {sft['operator calls']:9.0f} {afp['operator calls']:9.0f} "
        f"{afp['operator calls'] - sft['operator calls']:10.0f}"
    )
    # .item() and friends: on a GPU each one makes the host wait for the device
    print(
        f"{'scalar reads (.item())':28s} {sft['scalar reads']:9.0f} {afp['scalar reads']:9.0f} "
        f"{afp['scalar reads'] - sft['scalar reads']:10.0f}"
    )
    if sft["cuda kernels"] is not None:
        print(
            f"{'CUDA kernels':28s} {sft['cuda kernels']:9.0f} {afp['cuda kernels']:9.0f} "
            f"{afp['cuda kernels'] - sft['cuda kernels']:10.0f}"
        )
    print(
        f"pair tokenisation: {pair_tokenisation_ms_per_1000(result['trainers']['afp']):.1f} CPU ms per 1000 pairs, "
        "once at dataset preparation (pre-tokenised: 0 per step); the backward through the pair pass is the "
        "backward row's afp - sft"
    )


# ---- padding: real vs computed instruction tokens per step ----------------------------------------------------

LENGTH_MODEL = (
    "prompt = 12 template tokens + lognormal(median 30, sigma 0.8); completion = 1 + lognormal(median "
    "60, sigma 1.0); row = prompt + completion, cut at max_length; numpy default_rng(seed 0)"
)


def bactrian_like_lengths(count: int, max_length: int = 512, seed: int = 0) -> list[int]:
    """Token lengths of instruction rows shaped like Bactrian-X (translated Alpaca/Dolly): many short answers and a
    long tail. Synthetic (`LENGTH_MODEL`), not fitted to the data set, which this benchmark does not read."""
    import numpy as np

    rng = np.random.default_rng(seed)
    prompt = 12 + np.round(rng.lognormal(np.log(30), 0.8, count))
    completion = 1 + np.round(rng.lognormal(np.log(60), 1.0, count))
    return np.minimum(prompt + completion, max_length).astype(int).tolist()


def tokens_per_step(lengths: list[int], batch_size: int, max_length: int, shuffle_seed: int | None = 0) -> dict:
    """Mean rows, real tokens and computed tokens per step of `batch_size` rows for three collations: padded to the
    batch's longest row (TRL's default), padding-free (the rows flattened), and BFD-packed rows of `max_length`
    (TRL's `pack_dataset`, collated padding-free)."""
    import random

    from datasets import Dataset
    from trl import pack_dataset

    order = list(range(len(lengths)))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    batches = [[lengths[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
    steps = len(batches)
    real = sum(lengths) / steps
    padded = sum(len(batch) * max(batch) for batch in batches) / steps
    packed = pack_dataset(Dataset.from_dict({"input_ids": [[0] * n for n in lengths]}), max_length, "bfd")
    packed_steps = -(-len(packed) // batch_size)
    return {
        "padded": {"rows": len(lengths) / steps, "real": real, "computed": padded, "steps": steps},
        "padding-free": {"rows": len(lengths) / steps, "real": real, "computed": real, "steps": steps},
        "packed (bfd)": {
            "rows": len(lengths) / packed_steps,
            "real": sum(lengths) / packed_steps,
            "computed": sum(lengths) / packed_steps,
            "steps": packed_steps,
        },
    }


def print_padding_table(args) -> None:
    import statistics as stats

    max_length = args.instruction_tokens
    lengths = bactrian_like_lengths(args.length_rows, max_length)
    table = tokens_per_step(lengths, args.batch_size, max_length)
    ordered = sorted(lengths)
    print(
        f"\ninstruction tokens per step on Bactrian-X-shaped lengths (synthetic, {args.length_rows} rows: "
        f"{LENGTH_MODEL}; median {stats.median(ordered):.0f}, mean {stats.mean(ordered):.0f}, "
        f"p90 {ordered[int(0.9 * len(ordered))]}, p99 {ordered[int(0.99 * len(ordered))]}, max {ordered[-1]} "
        "tokens); "
        f"batch {args.batch_size}, max_length {max_length}, rows in shuffled order"
    )
    print(
        f"{'collation':14s} {'rows/step':>9s} {'real tok/step':>13s} {'computed tok/step':>17s} {'padding':>8s} "
        f"{'steps/epoch':>11s}"
    )
    for name, row in table.items():
        print(
            f"{name:14s} {row['rows']:9.2f} {row['real']:13.1f} {row['computed']:17.1f} "
            f"{1 - row['real'] / row['computed']:8.1%} {row['steps']:11d}"
        )


def print_padding_free_check(args, batches: int = 4) -> None:
    """AFP steps on the same Bactrian-X-shaped batches, padded and padding-free, on a Llama-shaped model of the
    preset's size (padding-free is exact there, refused for XGLM): median step time and computed tokens."""
    import copy as _copy

    import torch
    from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM

    from xling_align import AFPConfig, AFPTrainer

    shape = PRESETS[args.preset]
    lengths = bactrian_like_lengths(args.batch_size * batches, args.instruction_tokens, seed=1)
    rows = {"prompt": [], "completion": [], "source_sentence": [], "target_sentence": []}
    for index, length in enumerate(lengths):  # byte tokenizer: one token per character, + EOS
        one = build_rows(max(length, 4), args.pair_tokens, count=1)
        for key in rows:
            rows[key].append(one[key][0].replace("w", "v" if index % 2 else "w"))
    from datasets import Dataset

    dataset = Dataset.from_dict(rows)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=384,
        hidden_size=shape["d_model"],
        intermediate_size=shape["ffn"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["heads"],
        max_position_embeddings=2048,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = LlamaForCausalLM(config).to(device)
    autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    trainers, step_batches = {}, {}
    for padding_free in (False, True):
        config_args = AFPConfig(
            output_dir=tempfile.mkdtemp(prefix="afp-bench-pf-"),
            report_to="none",
            per_device_train_batch_size=args.batch_size,
            save_strategy="no",
            disable_tqdm=True,
            bf16=False,
            activation_checkpointing=args.gradient_checkpointing,
            seed=0,
            max_length=args.instruction_tokens,
            contrastive_max_length=args.pair_tokens,
            padding_free=padding_free,
            learning_rate=1e-5,
            **({"optim": args.optim} if args.optim else {}),
        )
        trainer = AFPTrainer(
            model=_copy.deepcopy(model), args=config_args, processing_class=ByT5Tokenizer(), train_dataset=dataset
        )
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1
        prepared = trainer.train_dataset
        step_batches[padding_free] = []
        for start in range(0, len(prepared), args.batch_size):
            batch = trainer._prepare_inputs(
                trainer.data_collator([prepared[i] for i in range(start, min(start + args.batch_size, len(prepared)))])
            )
            step_batches[padding_free].append((batch, (batch["labels"][:, 1:] != -100).sum()))
        trainers[padding_free] = trainer
    del model
    times = {False: [], True: []}
    for repeat in range(args.warmup + args.steps):
        for padding_free in (False, True) if repeat % 2 == 0 else (True, False):
            batch, num_items = step_batches[padding_free][repeat % len(step_batches[padding_free])]
            sync()
            start = time.perf_counter()
            run_step(trainers[padding_free], batch, num_items, autocast)
            sync()
            if repeat >= args.warmup:
                times[padding_free].append(time.perf_counter() - start)
    computed = {
        key: statistics.mean(batch["input_ids"].numel() for batch, _ in value) for key, value in step_batches.items()
    }
    # the mean over whole cycles of the same batches (their sizes differ, so a median would pick one batch)
    cycles = max(len(times[False]) // len(step_batches[False]), 1) * len(step_batches[False])
    median = {key: statistics.mean(value[-cycles:]) for key, value in times.items()}
    print(
        f"\npadding-free check: AFP steps on {len(step_batches[False])} Bactrian-X-shaped batches of "
        f"{args.batch_size} "
        f"rows (synthetic lengths, seed 1; instruction lengths {sorted(lengths)}), Llama-shaped model "
        f"({shape['layers']} layers, d_model {shape['d_model']}, {'bf16' if args.bf16 else 'fp32'}, "
        f"attn {trainers[True].model.config._attn_implementation}), {device}, mean step of the last whole cycles "
        f"through the batches within {args.steps} steps"
    )
    print(f"{'collation':14s} {'step ms':>9s} {'computed tok/step':>17s}")
    for key, name in ((False, "padded"), (True, "padding-free")):
        print(f"{name:14s} {median[key] * 1000:9.1f} {computed[key]:17.1f}")
    print(
        f"padding-free/padded: step-time ratio {median[True] / median[False]:.3f}, "
        f"computed-token ratio {computed[True] / computed[False]:.3f}"
    )
    del trainers, step_batches
    release_memory()


# ---- memory: resident bytes per parameter of each way to hold the weights and optimizer state ------------------

# (name, bytes per parameter: weights, gradients, optimizer state, note)
MEMORY_OPTIONS = (
    ("fp32 weights + AdamW (this benchmark; bf16 autocast)", 4, 4, 8, "exact"),
    ("fp32 weights + 8-bit AdamW (optim: adamw_bnb_8bit)", 4, 4, 2, "needs bitsandbytes; blockwise-quantised state"),
    ("bf16 weights + bf16 AdamW (dtype: bfloat16, full FT)", 2, 2, 4, "loses most updates at lr 1e-5 (see README)"),
)


def held_bytes(trainer) -> int:
    """Bytes of a trainer's weights, their gradients (one per trainable weight, same dtype) and optimizer state."""
    import torch

    parameters = list(trainer.model.parameters())
    weights = sum(p.numel() * p.element_size() for p in parameters)
    gradients = sum(p.numel() * p.element_size() for p in parameters if p.requires_grad)
    state = sum(
        value.numel() * value.element_size()
        for values in trainer.optimizer.state.values()
        for value in values.values()
        if isinstance(value, torch.Tensor)
    )
    return weights + gradients + state


def parameter_count(preset: str) -> int:
    """Parameters of the preset's XGLM shape, counted on the meta device (no memory, no initialisation)."""
    import torch
    from transformers import XGLMConfig, XGLMForCausalLM

    shape = PRESETS[preset]
    config = XGLMConfig(
        vocab_size=shape["vocab"],
        d_model=shape["d_model"],
        num_layers=shape["layers"],
        attention_heads=shape["heads"],
        ffn_dim=shape["ffn"],
        max_position_embeddings=2048,
    )
    with torch.device("meta"):
        model = XGLMForCausalLM(config)
    return sum(p.numel() for p in model.parameters())  # the tied LM head counted once


def print_memory_plan(args, result) -> None:
    """Resident bytes (weights, gradients, optimizer state) of each option at XGLM-564M's shape, from the exact
    parameter count; in a GPU run at that preset also the AFP peak each option would reach, predicted from this
    run's measured peak (only the weight, gradient and state bytes change between the options)."""
    count = parameter_count("xglm-564m")
    print(
        f"\nmemory of weights + gradients + optimizer state at XGLM-564M's shape: {count:,} parameters (counted on "
        "the meta device; bytes computed, not measured; 8-bit AdamW's block statistics add ~0.03 B/param)"
    )
    header = f"{'option':55s} {'B/param':>7s} {'resident GiB':>12s}"
    measured = result is not None and result["device"] == "cuda" and args.preset == "xglm-564m"
    if measured:
        header += f" {'afp peak GiB (predicted)':>25s}"
    print(header + "  note")
    # the measured AFP peak holds this run's weights, gradients and optimizer state; another option changes only those
    step_part = result["peaks"]["afp"] - held_bytes(result["trainers"]["afp"]) if measured else None
    for name, weights, gradients, state, note in MEMORY_OPTIONS:
        per_parameter = weights + gradients + state
        line = f"{name:55s} {per_parameter:7d} {per_parameter * count / 2**30:12.2f}"
        if measured:
            line += f" {(step_part + per_parameter * count) / 2**30:25.2f}"
        print(line + f"  {note}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.preset == "xglm-564m":
        args.bf16 = True
    result = None
    if not args.skip_main:
        result = measure(args)
        print_point(args, result)
        if args.breakdown:
            print_breakdown(args, result)
    print_memory_plan(args, result)
    del result
    release_memory()
    if args.sweep_points:
        print_sweep(args)
    if args.padding_free_check:
        print_padding_free_check(args)
    print_padding_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
