"""Replay rows in a built AFP dataset: documents of plain text interleaved with the training rows at a share.

`xling-align data build --replay-file FILE --replay-share S` adds them. A replay row has the row columns empty
(`kind` "replay") and the document in `replay_text`; `AFPTrainer` trains on all its tokens in its own term
(`replay_loss`, `AFPConfig.replay_weight`). Every row of such a build gets the `replay_text` column ("" on the
others), so the file loads with one schema.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from xling_align.data.columns import KIND, REPLAY_TEXT, ROW_COLUMNS, SOURCE_LANG


def text_file_documents(path: str) -> list[str]:
    """The documents of a plain-text file, one per non-empty line (also AFPTrainer's `replay_file` reader)."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def seeded_order(count: int, seed: int) -> list[int]:
    """The order replay documents are drawn in (repeated when more are needed than there are)."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


def read_replay_file(path: str) -> list[str]:
    """The documents of a plain-text file, one per non-empty line."""
    texts = text_file_documents(path)
    if not texts:
        raise ValueError(
            f"xling-align data build --replay-file {path}: no non-empty line; give plain text, one document per line"
        )
    return texts


class ReplayInterleaver:
    """Adds replay rows to a stream of built rows so that `share` of all rows are replay rows.

    After each built row, replay rows follow while they are fewer than `share / (1 - share)` times the built
    rows so far (so the share holds along the file, not only at its end). Documents come in a seeded order,
    repeated when more are needed than the file holds. `added` counts the replay rows written.
    """

    def __init__(self, texts: list[str], share: float, seed: int, language: str = ""):
        if not 0 < share < 1:
            raise ValueError(
                f"xling-align data build --replay-share {share}: give the share of replay rows, a number in (0, 1)"
            )
        self.texts, self.share, self.language = texts, share, language
        self.order = seeded_order(len(texts), seed)
        self.added = 0

    def rows(self, built: Iterable[dict]) -> Iterator[dict]:
        ratio = self.share / (1.0 - self.share)
        count = 0
        for row in built:
            count += 1
            yield {**row, REPLAY_TEXT: ""}
            while self.added + 1 <= round(ratio * count):
                yield self._replay_row(self.texts[self.order[self.added % len(self.order)]])
                self.added += 1

    def _replay_row(self, text: str) -> dict:
        row = {name: "" for name in ROW_COLUMNS}
        row.update({SOURCE_LANG: self.language, KIND: "replay", REPLAY_TEXT: text})
        return row
