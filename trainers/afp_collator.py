"""`AFPDataCollator`: SFTTrainer's collator for the instructions, plus the translation pairs and replay rows of a batch.

`AFPTrainer` wraps whatever collator SFTTrainer built (or the one the user passed) in it. A batch then holds:
- the instructions, collated by the wrapped collator (padded, or padding-free);
- `pair_input_ids` / `pair_attention_mask`: `(2 * pairs, seq_len)`, the sources of the rows that have a pair (all
  the pairs of a packed row), then their targets, right-padded (so positions match an unpadded forward for every
  architecture); `(0, 0)` when no row of the batch has a pair;
- with replay (`trainers/afp_replay.py`), the rows flagged `afp_replay` collated apart by the same wrapped
  collator, under `replay_*` keys. A batch lacking one kind gets a one-token unlabelled stand-in for it, so both
  forwards run on every process (as distributed engines require) and the term of the missing kind is exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from xling_align.alignment.pooling import pad_right
from xling_align.data.columns import PAIR_TOKEN_COLUMNS, REPLAY_FLAG

from .afp_packing import pair_lists_of_batch
from .afp_replay import REPLAY_PREFIX, stand_in_feature


@dataclass
class AFPDataCollator:
    """Wraps SFTTrainer's collator: instructions as it collates them, plus the pairs of the batch.

    Adds `pair_input_ids` / `pair_attention_mask`: `(2 * pairs, seq_len)`, the sources of the rows that have a
    pair (all the pairs of a packed row), then their targets, right-padded (so positions match an unpadded
    forward for every architecture); `(0, 0)` when no row of the batch has a pair.
    """

    base_collator: Any
    pad_token_id: int
    replay: bool = False
    eos_id: int = 0

    def __call__(self, features: list[dict[str, Any]], return_tensors: str | None = None) -> dict[str, Any]:
        dropped = (*PAIR_TOKEN_COLUMNS, REPLAY_FLAG)
        instruction_features = [
            {k: v for k, v in f.items() if k not in dropped} for f in features if not f.get(REPLAY_FLAG)
        ]
        if not self.replay:
            return self._with_pairs(self.base_collator(instruction_features), features)
        replay_features = [{k: v for k, v in f.items() if k not in dropped} for f in features if f.get(REPLAY_FLAG)]
        packed = bool(features) and "seq_lengths" in features[0]
        # a batch lacking one kind gets a one-token unlabelled stand-in: both forwards run on every process
        batch = self.base_collator(instruction_features or [stand_in_feature(self.eos_id, packed)])
        replay_batch = self.base_collator(replay_features or [stand_in_feature(self.eos_id, packed)])
        batch.update({REPLAY_PREFIX + key: value for key, value in replay_batch.items()})
        return self._with_pairs(batch, features)

    def _with_pairs(self, batch: dict[str, Any], features: list[dict[str, Any]]) -> dict[str, Any]:
        sources, targets = pair_lists_of_batch(features)  # one pair per row, or a packed row's pairs
        if sources:
            batch["pair_input_ids"], batch["pair_attention_mask"] = pad_right(sources + targets, self.pad_token_id)
        else:
            batch["pair_input_ids"] = torch.zeros(0, 0, dtype=torch.long)
            batch["pair_attention_mask"] = torch.zeros(0, 0, dtype=torch.long)
        return batch
