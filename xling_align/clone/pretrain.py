"""Pretrain a base model of the cloned-language testbed, deterministically.

The shipped checkpoints (`xling_align/resources/clone_base/`, `xling_align/resources/clone_control/`) are
this script's output; the run is single-threaded with deterministic torch algorithms, so on the same torch
build it reproduces the shipped weights bit for bit (compare `SHA256SUMS`):

    python -m xling_align.clone.pretrain --preset base --output /tmp/clone_base
    python -m xling_align.clone.pretrain --preset control --output /tmp/clone_control
    python -m xling_align.clone.pretrain --preset base_v3 --output /tmp/clone_v3_base        # v3: continues
    python -m xling_align.clone.pretrain --preset control_v3 --output /tmp/clone_v3_control  # the v2 ones

`base` is plain next-token pretraining on the bilingual corpus. `control` is the positive control: the same
corpus and model plus PreAlign-style word-level alignment (Li et al., EMNLP 2024): an InfoNCE loss that
pulls each dictionary word's hidden state towards its translation's at every layer (the embeddings
included), and code-switching of L1 text (never in a unit carrying a held-out fact). Any field can be
overridden on the command line (`--steps`, `--l2-share`, ...) for pilots and ablations.

Weights are stored in float16 (`--storage-dtype`) to keep the wheel small; `load_checkpoint` casts them
back to float32.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from xling_align.clone.checkpoints import readable_by_all
from xling_align.clone.checksum import verify_manifest, write_manifest
from xling_align.clone.corpus import CorpusConfig, token_blocks
from xling_align.clone.tokenizer import build_tokenizer
from xling_align.clone.world import World, WorldConfig, build_world

WORLD_FILE = "clone_world.json"
PRETRAIN_FILE = "clone_pretraining.json"
STORAGE_DTYPES = ("float16", "bfloat16", "float32")


@dataclass(frozen=True)
class PretrainConfig:
    """World, corpus, model size and optimisation of a base-model pretraining run (defaults = `base`)."""

    seed: int = field(default=0, metadata={"help": "seed of the world, the corpus and the initialisation"})
    # world
    anchor_share: float = field(default=0.5, metadata={"help": "bilingual entities with the same name in L1 and L2"})
    dev_per_category: int = field(default=2, metadata={"help": "held-out dev entities per category"})
    test_per_category: int = field(default=6, metadata={"help": "held-out test entities per category"})
    # corpus
    l2_share: float = field(default=0.3, metadata={"help": "fraction of units in L2"})
    fact_share: float = field(default=0.45, metadata={"help": "fraction of units stating a fact"})
    episode_share: float = field(default=0.25, metadata={"help": "fraction of units that are in-context episodes"})
    label_episode_share: float = field(
        default=0.0, metadata={"help": "fraction of units that are label-word episodes (arbitrary labels; v3)"}
    )
    code_switch_share: float = field(default=0.0, metadata={"help": "fraction of L1 units code-switched (control)"})
    code_switch_rate: float = field(default=0.3, metadata={"help": "fraction of words switched in such a unit"})
    # word-level alignment (control)
    word_alignment_weight: float = field(
        default=0.0, metadata={"help": "weight of the PreAlign-style word InfoNCE at every layer (0 = off)"}
    )
    word_alignment_pairs: int = field(default=64, metadata={"help": "dictionary pairs per step for that loss"})
    word_alignment_temperature: float = field(default=0.1, metadata={"help": "temperature of that InfoNCE"})
    # model
    hidden_size: int = field(default=128, metadata={"help": "model width"})
    num_layers: int = field(default=4, metadata={"help": "decoder blocks"})
    num_heads: int = field(default=4, metadata={"help": "attention heads"})
    intermediate_size: int = field(default=512, metadata={"help": "MLP width"})
    # optimisation
    steps: int = field(default=3000, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=32, metadata={"help": "blocks per step"})
    block_size: int = field(default=128, metadata={"help": "tokens per block"})
    learning_rate: float = field(default=4e-3, metadata={"help": "peak AdamW learning rate"})
    warmup_steps: int = field(default=200, metadata={"help": "linear warm-up steps before the cosine decay"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    storage_dtype: str = field(default="float16", metadata={"help": "dtype of the saved weights"})
    # continued pretraining (v3)
    init_from: str = field(
        default="",
        metadata={
            "help": "checkpoint folder to continue from ('' = fresh initialisation; a shipped "
            "one as pkg://xling_align/resources/clone_base); its world must be this run's"
        },
    )
    corpus_seed: int = field(
        default=-1,
        metadata={
            "help": "seed of the corpus stream (-1 = seed); a continued "
            "run uses another one so it does not replay the first text"
        },
    )

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.block_size < 8:
            raise ValueError(
                f"PretrainConfig(steps={self.steps}, batch_size={self.batch_size}, "
                f"block_size={self.block_size}) is too small; use steps>=1, batch_size>=1, block_size>=8."
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}; "
                "pick sizes that divide."
            )
        if self.storage_dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype={self.storage_dtype!r} is not one of {STORAGE_DTYPES}.")
        if self.word_alignment_weight < 0 or self.word_alignment_pairs < 2:
            raise ValueError(
                f"word_alignment_weight={self.word_alignment_weight} must be >= 0 and "
                f"word_alignment_pairs={self.word_alignment_pairs} >= 2 (InfoNCE needs negatives)."
            )
        self.world_config()  # validates the world fields
        self.corpus_config()

    def world_config(self) -> WorldConfig:
        return WorldConfig(
            seed=self.seed,
            anchor_share=self.anchor_share,
            dev_per_category=self.dev_per_category,
            test_per_category=self.test_per_category,
        )

    def corpus_config(self) -> CorpusConfig:
        return CorpusConfig(
            l2_share=self.l2_share,
            fact_share=self.fact_share,
            episode_share=self.episode_share,
            label_episode_share=self.label_episode_share,
            code_switch_share=self.code_switch_share,
            code_switch_rate=self.code_switch_rate,
        )


PRESETS: dict[str, dict] = {
    "base": {},
    "control": {"word_alignment_weight": 1.0, "code_switch_share": 0.5},
}
# testbed v3: the v2 checkpoints continued on a corpus with label-word episodes (in-context label binding),
# the same continuation for both, the control keeping its alignment and code-switching (see the README)
_V3_CONTINUATION = {
    "corpus_seed": 1,
    "steps": 1200,
    "learning_rate": 3e-3,
    "warmup_steps": 50,
    "fact_share": 0.35,
    "episode_share": 0.1,
    "label_episode_share": 0.4,
}
PRESETS["base_v3"] = {**_V3_CONTINUATION, "init_from": "pkg://xling_align/resources/clone_base"}
PRESETS["control_v3"] = {
    **_V3_CONTINUATION,
    **PRESETS["control"],
    "init_from": "pkg://xling_align/resources/clone_control",
}
# fields added for v3: written to a checkpoint's record only when set, so v2 runs keep their manifests
_V3_FIELDS = ("label_episode_share", "init_from", "corpus_seed")


def build_model(config: PretrainConfig, vocab_size: int, pad_token_id: int) -> LlamaForCausalLM:
    """A freshly initialised small Llama decoder (seed the generator before calling for determinism)."""
    model_config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        pad_token_id=pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
    )
    return LlamaForCausalLM(model_config)


def dictionary_pairs(world: World, vocab: dict[str, int]) -> torch.Tensor:
    """(n, 2) token ids of every L1 word and its distinct L2 word (the bilingual dictionary; no facts)."""
    pairs = [(vocab[w], vocab[world.l2_words[w]]) for w in world.l1_vocabulary if world.l2_words[w] != w]
    return torch.tensor(pairs, dtype=torch.long)


def word_alignment_loss(model, pairs: torch.Tensor, temperature: float) -> torch.Tensor:
    """PreAlign-style loss: symmetric InfoNCE between each word's hidden state and its translation's, each
    word fed alone, averaged over every hidden_states index (0 = the embeddings, tied to the output rows)."""
    ids = torch.cat([pairs[:, 0], pairs[:, 1]]).unsqueeze(1)
    hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
    n = pairs.shape[0]
    labels = torch.arange(n)
    total = 0.0
    for states in hidden:
        vectors = torch.nn.functional.normalize(states[:, 0], dim=-1)
        logits = vectors[:n] @ vectors[n:].T / temperature
        total = total + 0.5 * (
            torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)
        )
    return total / len(hidden)


def _continued_model(config: PretrainConfig, world: World, vocab: dict[str, int]) -> LlamaForCausalLM:
    """The model of `config.init_from` in float32, checked to belong to this run's world and vocabulary."""
    from xling_align.package_paths import resolve_path

    folder = Path(resolve_path(config.init_from))
    start_world = load_world(folder)
    if start_world.config != world.config:
        raise ValueError(
            f"init_from={config.init_from!r} was pretrained on world {start_world.config}, not this run's "
            f"{world.config}; pass matching world fields or another checkpoint."
        )
    model, tokenizer, _ = load_checkpoint(folder)
    if tokenizer.get_vocab() != vocab:
        raise ValueError(
            f"init_from={config.init_from!r} has another vocabulary than this run's world; it was not "
            "pretrained by this version of the testbed. Regenerate it."
        )
    model.train()
    return model


def _learning_rate(step: int, config: PretrainConfig) -> float:
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


def pretrain(
    config: PretrainConfig,
    output: str | Path,
    progress: bool = True,
    description: str = "pretraining",
    monitor: Callable[[int, LlamaForCausalLM, World], None] | None = None,
    monitor_every: int = 250,
) -> Path:
    """Pretrain on the bilingual corpus and save model, tokenizer, world and manifest to `output`.

    Args:
        config: world, corpus, model and optimisation.
        output: the checkpoint folder.
        progress: show a progress bar and the final loss.
        description: the progress bar's label.
        monitor: pilot hook, called as `monitor(step, model, world)` every `monitor_every` steps and at the end
            (model in eval mode, no gradients); it draws no random numbers, so the weights do not change.
        monitor_every: steps between monitor calls.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    world = build_world(config.world_config())
    tokenizer = build_tokenizer(world)
    vocab = tokenizer.get_vocab()
    corpus_seed = config.seed if config.corpus_seed < 0 else config.corpus_seed
    blocks = token_blocks(
        world,
        config.corpus_config(),
        vocab,
        seed=corpus_seed,
        num_blocks=config.steps * config.batch_size,
        block_size=config.block_size,
    )
    data = torch.tensor(blocks, dtype=torch.long).view(config.steps, config.batch_size, config.block_size)
    pairs = dictionary_pairs(world, vocab)

    # one thread + deterministic kernels: the same torch build gives the same bits on any machine load
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(config.seed)
        pair_generator = torch.Generator().manual_seed(corpus_seed + 1)
        model = (
            _continued_model(config, world, vocab)
            if config.init_from
            else build_model(config, len(tokenizer), tokenizer.pad_token_id)
        )
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, betas=(0.9, 0.98)
        )
        model.train()
        started = time.perf_counter()
        bar = tqdm(range(config.steps), desc=description, disable=not progress)
        loss_value = float("nan")
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(step, config)
            batch = data[step]
            loss = model(input_ids=batch, labels=batch).loss
            if config.word_alignment_weight > 0:
                chosen = torch.randperm(len(pairs), generator=pair_generator)[: config.word_alignment_pairs]
                loss = loss + config.word_alignment_weight * word_alignment_loss(
                    model, pairs[chosen], config.word_alignment_temperature
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            loss_value = loss.item()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss_value:.3f}")
            if monitor is not None and ((step + 1) % monitor_every == 0 or step + 1 == config.steps):
                model.eval()
                with torch.no_grad():
                    monitor(step + 1, model, world)
                model.train()
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)

    model.eval()
    model.to(getattr(torch, config.storage_dtype)).save_pretrained(output)
    tokenizer.save_pretrained(output)
    (output / WORLD_FILE).write_text(json.dumps(world.config.to_dict(), indent=2, sort_keys=True) + "\n")
    # no timings in the shipped files: they would change the manifest from run to run
    record = {
        k: v
        for k, v in asdict(config).items()
        if k not in _V3_FIELDS or v != PretrainConfig.__dataclass_fields__[k].default
    }
    (output / PRETRAIN_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    readable_by_all(output)
    write_manifest(output)
    if progress:
        print(f"final loss {loss_value:.4f}; {config.steps} steps in {seconds:.0f} s; saved to {output}")
    return output


def load_world(folder: str | Path) -> World:
    """The world a checkpoint folder was pretrained on (from its `clone_world.json`)."""
    path = Path(folder) / WORLD_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {folder} is not a clone checkpoint; regenerate one with "
            "`python -m xling_align.clone.pretrain --preset base --output DIR`."
        )
    return build_world(WorldConfig(**json.loads(path.read_text())))


def load_checkpoint(folder: str | Path, verify: bool = True):
    """(model in float32, eval mode; tokenizer; world) of a clone checkpoint folder, checked against its manifest."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if verify:
        verify_manifest(folder)
    # stored in float16 to keep the wheel small; computed in float32
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder), load_world(folder)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xling_align.clone.pretrain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", required=True, help="folder to write the checkpoint to")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="base",
        help="base model or positive control (default: base); fields below override it",
    )
    for spec in fields(PretrainConfig):
        parser.add_argument(
            f"--{spec.name.replace('_', '-')}",
            type=type(spec.default),
            default=None,
            help=f"{spec.metadata.get('help', '')} (default: {spec.default})",
        )
    return parser


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    config = replace(PretrainConfig(), **PRESETS[args.preset])
    overrides = {
        spec.name: getattr(args, spec.name) for spec in fields(PretrainConfig) if getattr(args, spec.name) is not None
    }
    return replace(config, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        print(f"python -m xling_align.clone.pretrain: error: {error}", file=sys.stderr)
        return 2
    pretrain(config, args.output, description=f"pretraining ({args.preset})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
