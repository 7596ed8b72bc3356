"""Write the tiny multilingual sample shipped in `xling_align/resources/tiny/` (used by `recipes/tiny.yaml`).

The sentences are the project's own: a small hand-written grammar ("The cat sees the dog in the garden.")
rendered in English, German, French and Chinese, with the German cases and French elisions written by
hand. Nothing comes from a corpus, so the sample can ship with the package under its licence.

Output (all UTF-8):
- `parallel.en-{de,fr,zh}.tsv`: training translation pairs, a header row naming the two language codes.
- `heldout.en-{de,fr,zh}.tsv`: different sentences for checkpoint selection (never seen in training).
- `bactrian/{en,de,fr,zh}.json`: a Bactrian-X-format instruction sample (`instruction`, `input`,
  `output`, `id`; the same `id` is the same item in every language).
- `heldout.jsonl`: the held-out pairs of every language pair as pair-only AFP rows (empty prompt and
  completion), an evaluation set for `eval_contrastive_loss` and a `alignment_eval_file`.
- `train.jsonl`: prepared AFP rows built from that sample by `xling_align.data` in pivot mode (English
  pivot; cross-lingual instructions, monolingual instructions and translation pairs of the instructions),
  the same rows as `xling-align data build --source bactrian-x --input-dir .../bactrian
  --languages en de fr zh --mode pivot --repeat 1 --seed 0`.

Run from the repository root (output is identical run to run):

    python scripts/make_tiny_data.py
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

from xling_align.data.rows import make_row

LANGUAGES = ("en", "de", "fr", "zh")

# noun -> (English, German nominative, German accusative, French, Chinese)
NOUNS = {
    "cat": ("the cat", "die Katze", "die Katze", "le chat", "猫"),
    "dog": ("the dog", "der Hund", "den Hund", "le chien", "狗"),
    "girl": ("the girl", "das Mädchen", "das Mädchen", "la fille", "女孩"),
    "boy": ("the boy", "der Junge", "den Jungen", "le garçon", "男孩"),
    "horse": ("the horse", "das Pferd", "das Pferd", "le cheval", "马"),
    "woman": ("the woman", "die Frau", "die Frau", "la femme", "女人"),
    "cow": ("the cow", "die Kuh", "die Kuh", "la vache", "牛"),
    "farmer": ("the farmer", "der Bauer", "den Bauern", "le fermier", "农民"),
    "mouse": ("the mouse", "die Maus", "die Maus", "la souris", "老鼠"),
    "rabbit": ("the rabbit", "das Kaninchen", "das Kaninchen", "le lapin", "兔子"),
    "teacher": ("the teacher", "die Lehrerin", "die Lehrerin", "la maîtresse", "老师"),
    "baker": ("the baker", "der Bäcker", "den Bäcker", "le boulanger", "面包师"),
}
# verb -> (English 3sg, English base, German 3sg, French 3sg, Chinese)
VERBS = {
    "see": ("sees", "see", "sieht", "voit", "看见"),
    "like": ("likes", "like", "mag", "aime", "喜欢"),
    "find": ("finds", "find", "findet", "trouve", "找到"),
    "hear": ("hears", "hear", "hört", "entend", "听见"),
    "watch": ("watches", "watch", "beobachtet", "regarde", "看着"),
    "draw": ("draws", "draw", "zeichnet", "dessine", "画"),
    "call": ("calls", "call", "ruft", "appelle", "叫"),
}
# place -> (English, German, French, Chinese prefix before the verb)
PLACES = {
    "garden": ("in the garden", "im Garten", "dans le jardin", "在花园里"),
    "house": ("in the house", "im Haus", "dans la maison", "在房子里"),
    "park": ("in the park", "im Park", "dans le parc", "在公园里"),
    "kitchen": ("in the kitchen", "in der Küche", "dans la cuisine", "在厨房里"),
    "field": ("in the field", "auf dem Feld", "dans le champ", "在田里"),
}


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def render_sentence(subject: str, verb: str, obj: str, place: str | None) -> dict[str, str]:
    """One clause in every language: `{subject} {verb} {object} [{place}].`"""
    s_en, s_de, _, s_fr, s_zh = NOUNS[subject]
    o_en, _, o_de, o_fr, o_zh = NOUNS[obj]
    v_en, _, v_de, v_fr, v_zh = VERBS[verb]
    p_en, p_de, p_fr, p_zh = PLACES[place] if place else ("", "", "", "")
    tail = lambda words: " ".join(w for w in words if w)  # noqa: E731 - drops the empty place
    return {
        "en": _capitalise(tail([s_en, v_en, o_en, p_en])) + ".",
        "de": _capitalise(tail([s_de, v_de, o_de, p_de])) + ".",
        "fr": _capitalise(tail([s_fr, v_fr, o_fr, p_fr])) + ".",
        "zh": f"{s_zh}{p_zh}{v_zh}{o_zh}。",
    }


def render_questions(subject: str, verb: str, obj: str, place: str | None) -> list[dict[str, dict[str, str]]]:
    """Reading-comprehension items about one sentence: (question, answer) in every language."""
    s_en, s_de, _, s_fr, s_zh = NOUNS[subject]
    o_en, _, o_de, o_fr, o_zh = NOUNS[obj]
    v_en, v_en_base, v_de, v_fr, v_zh = VERBS[verb]
    items = [
        {  # who does it? -> the subject
            "question": {
                "en": f"Who {v_en} {o_en}?",
                "de": f"Wer {v_de} {o_de}?",
                "fr": f"Qui {v_fr} {o_fr} ?",
                "zh": f"谁{v_zh}{o_zh}？",
            },
            "answer": {
                "en": _capitalise(s_en) + ".",
                "de": _capitalise(s_de) + ".",
                "fr": _capitalise(s_fr) + ".",
                "zh": f"{s_zh}。",
            },
        },
        {  # whom? -> the object (German keeps the accusative in the short answer)
            "question": {
                "en": f"Who does {s_en} {v_en_base}?",
                "de": f"Wen {v_de} {s_de}?",
                "fr": f"Qui est-ce que {s_fr} {v_fr} ?",
                "zh": f"{s_zh}{v_zh}谁？",
            },
            "answer": {
                "en": _capitalise(o_en) + ".",
                "de": _capitalise(o_de) + ".",
                "fr": _capitalise(o_fr) + ".",
                "zh": f"{o_zh}。",
            },
        },
    ]
    if place:
        p_en, p_de, p_fr, p_zh = PLACES[place]
        items.append(
            {
                "question": {
                    "en": "Where does it happen?",
                    "de": "Wo passiert das?",
                    "fr": "Où cela se passe-t-il ?",
                    "zh": "这发生在哪里？",
                },
                "answer": {
                    "en": _capitalise(p_en) + ".",
                    "de": _capitalise(p_de) + ".",
                    "fr": _capitalise(p_fr) + ".",
                    "zh": f"{p_zh}。",
                },
            }
        )
    return items


def all_clauses() -> list[tuple[str, str, str, str | None]]:
    """Every (subject, verb, object, place) with subject != object, in a fixed order."""
    return [(s, v, o, p) for s in NOUNS for v in VERBS for o in NOUNS if o != s for p in (None, *PLACES)]


def _write_tsv(path: Path, lang_a: str, lang_b: str, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow([lang_a, lang_b])
        for row in rows:
            writer.writerow([row[lang_a], row[lang_b]])


def build(output_dir: Path, train_pairs: int, heldout_pairs: int, instruction_items: int, seed: int) -> None:
    rng = random.Random(seed)
    clauses = all_clauses()
    rng.shuffle(clauses)
    train_clauses = clauses[:train_pairs]
    heldout_clauses = clauses[train_pairs : train_pairs + heldout_pairs]
    train_sentences = [render_sentence(*clause) for clause in train_clauses]
    heldout_sentences = [render_sentence(*clause) for clause in heldout_clauses]

    output_dir.mkdir(parents=True, exist_ok=True)
    for other in LANGUAGES[1:]:
        _write_tsv(output_dir / f"parallel.en-{other}.tsv", "en", other, train_sentences)
        _write_tsv(output_dir / f"heldout.en-{other}.tsv", "en", other, heldout_sentences)

    with (output_dir / "heldout.jsonl").open("w", encoding="utf-8") as handle:
        for other in LANGUAGES[1:]:
            for sentence in heldout_sentences:
                row = make_row("en", other, "pair", source_sentence=sentence["en"], target_sentence=sentence[other])
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    # instruction items come from the training sentences only, so held-out pairs stay unseen
    items = []
    for clause, sentence in zip(train_clauses, train_sentences):
        question = rng.choice(render_questions(*clause))
        items.append(
            {
                "id": f"tiny-{len(items):04d}",
                "instruction": question["question"],
                "input": sentence,
                "output": question["answer"],
            }
        )
        if len(items) == instruction_items:
            break
    bactrian_dir = output_dir / "bactrian"
    bactrian_dir.mkdir(exist_ok=True)
    for lang in LANGUAGES:
        records = [
            {
                "instruction": item["instruction"][lang],
                "input": item["input"][lang],
                "output": item["output"][lang],
                "id": item["id"],
            }
            for item in items
        ]
        (bactrian_dir / f"{lang}.json").write_text(
            json.dumps(records, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )

    # the prepared rows come from the package's own builder, exactly as `xling-align data build` makes them
    from xling_align.data import DataBuildConfig, iter_rows

    config = DataBuildConfig(
        languages=list(LANGUAGES), source="bactrian-x", input_dir=str(bactrian_dir), mode="pivot", repeat=1, seed=seed
    )
    with (output_dir / "train.jsonl").open("w", encoding="utf-8") as handle:
        for row in iter_rows(config):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("xling_align/resources/tiny"))
    parser.add_argument("--train-pairs", type=int, default=300, help="translation pairs per language pair")
    parser.add_argument("--heldout-pairs", type=int, default=64, help="held-out pairs per language pair")
    parser.add_argument("--instruction-items", type=int, default=200, help="instruction items per language")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build(args.output_dir, args.train_pairs, args.heldout_pairs, args.instruction_items, args.seed)
    print(f"wrote the tiny sample to {args.output_dir}")


if __name__ == "__main__":
    main()
