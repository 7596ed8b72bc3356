"""Pilot of testbed v3's continued pretraining: does in-context label binding appear, do the facts survive?

Continues a clone checkpoint (default: the shipped v2 base) with `xling_align.clone.pretrain` and, every
`--every` steps, prints figures measured with `xling_align.clone.probe` (a next-token argmax over the choices,
the same score lm-eval gives these one-token answers) on items that are never the reported test items:

- `icl_l1` / `icl_l2` / `icl_l2_l1demo`: in-context documents built like the `xling_clone_icl_*` tasks but
  from another random seed (fresh entity -> label draws, so not the scored documents);
- `icl_words_l1`: the same with five label words (`xling_align.clone.corpus.label_words`) instead of digits;
- `L1 dev`, `L2 dev`: held-out *dev* entities' facts asked in L1 / L2 (never the test entities);
- `L2 bil`: bilingual distinct-name entities' facts in L2 (the L2 ceiling's items; no held-out fact).

Example (one core, a few hundred steps):
    OMP_NUM_THREADS=1 python benchmarks/clone_icl_pilot.py --output /tmp/pilot --steps 300 \\
        --label-episode-share 0.3 --learning-rate 2e-3
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import fields, replace

import torch

from xling_align.clone.pretrain import PretrainConfig, pretrain
from xling_align.clone.probe import episode_accuracy, fact_accuracy
from xling_align.clone.tasks import episode_rows
from xling_align.clone.world import LABELS

PILOT_DOCUMENT_SEED = 424_242  # not the tasks' seed: the scored in-context documents are never used here


def pilot_documents(world, query_lang: str, demo_lang: str, seed: int = PILOT_DOCUMENT_SEED) -> list[dict]:
    return episode_rows(world, query_lang, demo_lang, seed=seed)


def label_word_documents(world, lang: str, seed: int = PILOT_DOCUMENT_SEED) -> list[dict]:
    """As `pilot_documents`, with five labels drawn from the label-word pool (`corpus.label_words`) per document."""
    from xling_align.clone.corpus import label_words

    rng = random.Random(seed + 1)
    pool = label_words(world, lang)
    rows = []
    for entity in (e for e in world.entities if e not in world.anchors):
        shown = [entity, *rng.sample([e for e in world.entities if e != entity], len(LABELS) - 1)]
        words = rng.sample(pool, len(shown))
        labels = dict(zip(shown, words))
        rng.shuffle(shown)
        demos = [f"{world.episode_prompt(e, lang)} {labels[e]}" for e in shown]
        rows.append(
            {
                "query": " . ".join([*demos, world.episode_prompt(entity, lang)]),
                "choices": words,
                "label": words.index(labels[entity]),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--every", type=int, default=100, help="steps between measurements")
    defaults = {
        "init_from": "pkg://xling_align/resources/clone_base",
        "corpus_seed": 1,
        "steps": 300,
        "warmup_steps": 30,
        "learning_rate": 2e-3,
    }
    for spec in fields(PretrainConfig):
        default = defaults.get(spec.name, spec.default)
        parser.add_argument(f"--{spec.name.replace('_', '-')}", type=type(spec.default), default=default)
    args = parser.parse_args()
    config = replace(PretrainConfig(), **{spec.name: getattr(args, spec.name) for spec in fields(PretrainConfig)})
    started = time.process_time()

    def monitor(step, model, world):
        from xling_align.clone.tokenizer import build_tokenizer

        tokenizer = build_tokenizer(world)
        figures = {
            "icl_l1": episode_accuracy(model, tokenizer, pilot_documents(world, "l1", "l1")),
            "icl_l2": episode_accuracy(model, tokenizer, pilot_documents(world, "l2", "l2")),
            "icl_l2_l1demo": episode_accuracy(model, tokenizer, pilot_documents(world, "l2", "l1")),
            "icl_words_l1": episode_accuracy(model, tokenizer, label_word_documents(world, "l1")),
            "L1 dev": fact_accuracy(model, tokenizer, world, world.dev_entities, "l1"),
            "L2 dev": fact_accuracy(model, tokenizer, world, world.dev_entities, "l2"),
            "L2 bil": fact_accuracy(model, tokenizer, world, world.distinct_bilingual_entities, "l2"),
        }
        shown = "  ".join(f"{k} {v:.3f}" for k, v in figures.items())
        print(f"step {step:5d}  {shown}  ({time.process_time() - started:.0f} CPU s)", flush=True)

    torch.set_num_threads(1)
    pretrain(config, args.output, progress=False, monitor=monitor, monitor_every=args.every)
    print(f"done: {config.steps} steps, {time.process_time() - started:.0f} CPU s", flush=True)


if __name__ == "__main__":
    main()
