"""Seeded random choices of the row builders, taken from a hash of their key rather than a random stream.

The same key gives the same choice on every run and platform, and skipping a malformed record does not
shift the choices of the records after it.

Example:
    >>> uniforms(0, "en", "de", "item-1", 0) == uniforms(0, "en", "de", "item-1", 0)
    True
    >>> sorted(choose_heldout(range(10), 3, seed=0)) == sorted(choose_heldout(range(10), 3, seed=0))
    True
"""

from __future__ import annotations

import hashlib
import random


def uniforms(*key) -> tuple[float, float]:
    """Two independent uniform numbers in [0, 1) determined by `key` (stable across runs and platforms)."""
    digest = hashlib.blake2b("\x1f".join(map(str, key)).encode("utf-8"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "big") / 2**64, int.from_bytes(digest[8:], "big") / 2**64


def choose_heldout(keys, size: int, seed: int) -> set:
    """A seeded sample of `size` keys (item ids, or a `range` of record indices)."""
    if not size:
        return set()
    ordered = keys if isinstance(keys, range) else sorted(keys)  # a fixed order: the file order must not matter
    return set(random.Random(f"heldout|{seed}").sample(ordered, min(size, len(ordered))))
