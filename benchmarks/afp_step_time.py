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

Memory: on a GPU, the peak of `torch.cuda.max_memory_allocated` during a step. On a CPU there is no allocator
peak to read, so the script reports the bytes autograd keeps for the backward pass (activations, counted once
per storage), the part of the memory that the pair pass changes, and an estimated peak = parameters +
gradients + AdamW states + those activations.

Usage:
    python benchmarks/afp_step_time.py                                   # CPU-sized: 8 layers, d_model 128
    python benchmarks/afp_step_time.py --steps 2 --warmup 1              # a quick CPU check
    python benchmarks/afp_step_time.py --preset xglm-564m --peak-tflops 989   # GPU: XGLM-564M shape, bf16,
                                                                         # batch 4, length 512 (H100 bf16 peak)
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
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s in the step's precision (e.g. 989 for an H100's dense bf16); "
                        "MFU is reported when given")
    args = parser.parse_args(argv)
    for name in ("batch_size", "instruction_tokens", "pair_tokens", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def step_flops(model, args, variant: str) -> float:
    """Model FLOPs of one training step of `variant` (see the module docstring for the convention)."""
    from xling_align.model_parts import decoder_blocks, hidden_size, normalize_layer, num_decoder_layers

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
    return Dataset.from_dict({
        "prompt": [text(i, prompt_chars) for i in range(count)],
        "completion": [" " + text(i + 1000, completion_chars - 1) for i in range(count)],
        "source_sentence": [text(i + 2000, pair_tokens - 1) for i in range(count)],
        "target_sentence": [text(i + 3000, pair_tokens - 1) for i in range(count)],
    })


def build_trainers(args):
    """The three trainers, each with its own copy of the same model, its optimizer and its fixed batch."""
    import torch
    from transformers import ByT5Tokenizer, XGLMConfig, XGLMForCausalLM
    from trl import SFTConfig, SFTTrainer

    from xling_align import AFPConfig, AFPTrainer
    from xling_align.pooling import pool_hidden_states

    class FullModelPairPass(AFPTrainer):
        """The reference implementation's pair pass: the whole model, LM head included, then hidden_states[K]."""

        def encode_pairs(self, model, input_ids, attention_mask):
            outputs = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                            use_cache=False)
            hidden = outputs.hidden_states[self.args.contrastive_layer]
            return pool_hidden_states(hidden, attention_mask, self.args.contrastive_pooling)

    shape = PRESETS[args.preset]
    torch.manual_seed(0)
    config = XGLMConfig(vocab_size=shape["vocab"], d_model=shape["d_model"], num_layers=shape["layers"],
                        attention_heads=shape["heads"], ffn_dim=shape["ffn"], max_position_embeddings=2048,
                        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, pad_token_id=0, bos_token_id=1,
                        eos_token_id=1)
    if args.preset == "xglm-564m" and device_is_cpu():
        print("note: --preset xglm-564m on a CPU: three copies of a 564M-parameter model with AdamW need ~30 GB; "
              "the preset is meant for a GPU", file=sys.stderr)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = XGLMForCausalLM(config).to(device)
    tokenizer = ByT5Tokenizer()
    rows = build_rows(args.instruction_tokens, args.pair_tokens, count=args.batch_size)
    common = dict(output_dir=tempfile.mkdtemp(prefix="afp-bench-"), per_device_train_batch_size=args.batch_size,
                  learning_rate=1e-5, report_to="none", save_strategy="no", disable_tqdm=True, bf16=False,
                  activation_checkpointing=args.gradient_checkpointing, max_length=args.instruction_tokens, seed=0)
    afp_args = AFPConfig(contrastive_layer=args.contrastive_layer, contrastive_max_length=args.pair_tokens, **common)
    trainers = {
        "sft": SFTTrainer(model=copy.deepcopy(model), args=SFTConfig(**common), processing_class=tokenizer,
                          train_dataset=rows.remove_columns(["source_sentence", "target_sentence"])),
        "afp": AFPTrainer(model=copy.deepcopy(model), args=afp_args, processing_class=tokenizer, train_dataset=rows),
        "afp-full": FullModelPairPass(model=copy.deepcopy(model), args=afp_args, processing_class=tokenizer,
                                      train_dataset=rows),
    }
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


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if args.preset == "xglm-564m":
        args.bf16 = True
    trainers, batches, device = build_trainers(args)
    autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    times = {name: [] for name in VARIANTS}
    peaks = {name: 0 for name in VARIANTS}
    for step in range(args.warmup + args.steps):
        order = VARIANTS[step % 3 :] + VARIANTS[: step % 3]  # rotate, so no variant always runs first
        for name in order:
            batch, num_items = batches[name]
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            sync()
            start = time.perf_counter()
            run_step(trainers[name], batch, num_items, autocast)
            sync()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
            if device == "cuda":
                peaks[name] = max(peaks[name], torch.cuda.max_memory_allocated())
    if device == "cpu":
        static = sum(p.numel() * p.element_size() for p in trainers["sft"].model.parameters()) * 4  # + grad, AdamW x2
        activations = {name: saved_activation_bytes(trainers[name], *batches[name], autocast) for name in VARIANTS}
        peaks = {name: static + activations[name] for name in VARIANTS}

    shape = PRESETS[args.preset]
    median = {name: statistics.median(times[name]) for name in VARIANTS}
    tokens = args.batch_size * args.instruction_tokens
    flops = {name: step_flops(trainers[name].model, args, name) for name in VARIANTS}
    mfu = {name: flops[name] / median[name] / (args.peak_tflops * 1e12) if args.peak_tflops else None
           for name in VARIANTS}
    print(f"model: XGLM-shaped, {shape['layers']} layers, d_model {shape['d_model']}, vocab {shape['vocab']}, "
          f"{'bf16' if args.bf16 else 'fp32'}, "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}; "
          f"batch {args.batch_size}: instructions of {args.instruction_tokens} tokens, pairs of 2 x {args.pair_tokens} "
          f"tokens; contrastive_layer={args.contrastive_layer}; device {device} ({torch.get_num_threads()} threads); "
          f"median of {args.steps} interleaved steps after {args.warmup} warm-up")
    memory_name = "peak MiB" if device == "cuda" else "est. peak MiB"
    print(f"{'variant':9s} {'step ms':>9s} {'steps/s':>8s} {'tokens/s':>9s} {'TFLOP/step':>10s} {'MFU':>6s} "
          f"{memory_name:>14s}" + ("" if device == "cuda" else f" {'activations MiB':>16s}"))
    for name in VARIANTS:
        utilisation = f"{mfu[name]:6.1%}" if mfu[name] is not None else f"{'-':>6s}"
        line = (f"{name:9s} {median[name] * 1000:9.1f} {1 / median[name]:8.2f} {tokens / median[name]:9.0f} "
                f"{flops[name] / 1e12:10.4f} {utilisation} {peaks[name] / 2**20:14.1f}")
        if device == "cpu":
            line += f" {activations[name] / 2**20:16.1f}"
        print(line)
    for name in ("afp", "afp-full"):
        line = (f"{name}/sft: step-time ratio {median[name] / median['sft']:.3f}, "
                f"peak-memory ratio {peaks[name] / peaks['sft']:.3f}")
        if device == "cpu":
            line += f", activation-memory ratio {activations[name] / activations['sft']:.3f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
