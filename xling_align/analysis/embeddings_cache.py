"""Sentence vectors per layer on disk: bounded memory for 10,000+ sentences, reuse across analyses.

Each list of sentences embedded by one model gets a folder named by a hash of
(model fingerprint, pooling, max_length, the sentences themselves) holding one `layer_<k>.npy`
(float32, `(n, hidden)`) per layer and a `meta.json` saying what is inside. Vectors are written batch by
batch into memory-mapped files, so memory holds one batch of hidden states, never all layers of all
sentences. A later analysis with the same model files (same paths, sizes and modification times), pooling
and sentences reads the files back without loading the model; layers not yet on disk are computed in one
pass and added. Files are written under a temporary name and renamed when complete, so an interrupted run
leaves no half-written layer behind.

Example:
    >>> import tempfile
    >>> from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM
    >>> config = LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
    ...                      num_attention_heads=4, num_key_value_heads=2)
    >>> model = LlamaForCausalLM(config)
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> arrays = cache.layer_vectors(lambda: (model, ByT5Tokenizer()), "tiny-llama", ["Hi", "Hallo"], [1, 2])
    >>> arrays[1].shape
    (2, 32)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from xling_align.alignment.pooling import iter_sentence_vectors

# bump when the stored layout or the way vectors are computed changes, so old caches are not reused
CACHE_FORMAT_VERSION = 1


def model_fingerprint(model_path: str | os.PathLike) -> str:
    """Identify a model's weights: its resolved path plus name, size and mtime of each file in its folder.

    Overwriting a checkpoint in place changes the fingerprint; a hub id (not a local folder) is used as is.

    Example:
        >>> model_fingerprint("org/some-model")
        'org/some-model'
    """
    path = Path(model_path)
    if not path.is_dir():
        return str(model_path)
    entries = []
    for file in sorted(path.iterdir()):
        if file.is_file():
            stat = file.stat()
            entries.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
    return f"{path.resolve()}@{digest}"


def sentences_digest(sentences: Sequence[str]) -> str:
    """Hash of an ordered list of sentences (the file content that matters for the vectors)."""
    hasher = hashlib.sha256()
    for sentence in sentences:
        hasher.update(sentence.encode("utf-8"))
        hasher.update(b"\x00")
    return hasher.hexdigest()


class EmbeddingCache:
    """A folder of per-layer sentence vectors, keyed by model, pooling, max_length and sentences.

    Args:
        root: folder of the cache (created if missing).
        pooling: `"mean"` or `"last"`.
        batch_size: sentences per forward pass when something has to be computed.
        max_length: truncate sentences to this many tokens (None: keep them whole).
    """

    def __init__(
        self, root: str | os.PathLike, pooling: str = "mean", batch_size: int = 32, max_length: int | None = None
    ):
        self.root = Path(root)
        self.pooling = pooling
        self.batch_size = batch_size
        self.max_length = max_length

    def entry_dir(self, fingerprint: str, sentences: Sequence[str]) -> Path:
        """The folder holding the vectors of these sentences under this model and these settings."""
        key = json.dumps(
            {
                "version": CACHE_FORMAT_VERSION,
                "model": fingerprint,
                "pooling": self.pooling,
                "max_length": self.max_length,
                "sentences": sentences_digest(sentences),
            },
            sort_keys=True,
        )
        return self.root / hashlib.sha256(key.encode()).hexdigest()[:24]

    def layer_vectors(
        self,
        load_model: Callable[[], tuple[object, object]],
        fingerprint: str,
        sentences: Sequence[str],
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Memory-mapped `(n, hidden)` float32 arrays per layer, computing the missing layers in one pass.

        Args:
            load_model: called only when some layer is missing; returns `(model, tokenizer)`.
            fingerprint: identity of the model's weights (see `model_fingerprint`).
            sentences: the sentences, in the order of the rows.
            layers: non-negative `hidden_states` indices.

        Returns:
            `{layer: read-only memory-mapped array}`.
        """
        folder = self.entry_dir(fingerprint, sentences)
        missing = [layer for layer in layers if not (folder / f"layer_{layer}.npy").exists()]
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
            self._compute(load_model, folder, sentences, missing, fingerprint)
        return {layer: np.load(folder / f"layer_{layer}.npy", mmap_mode="r") for layer in layers}

    def _compute(self, load_model, folder: Path, sentences, layers: list[int], fingerprint: str) -> None:
        model, tokenizer = load_model()
        partial = {layer: folder / f"layer_{layer}.npy.partial" for layer in layers}
        arrays: dict[int, np.ndarray] = {}
        batches = iter_sentence_vectors(
            model, tokenizer, sentences, layers, self.pooling, self.batch_size, self.max_length
        )
        for rows, pooled in batches:
            for layer, vectors in pooled.items():
                if layer not in arrays:
                    arrays[layer] = np.lib.format.open_memmap(
                        partial[layer], mode="w+", dtype=np.float32, shape=(len(sentences), vectors.shape[1])
                    )
                arrays[layer][rows.numpy()] = vectors.numpy()
        for array in arrays.values():
            array.flush()
        arrays.clear()  # close the memory maps before the files get their final names
        for layer in layers:
            os.replace(partial[layer], folder / f"layer_{layer}.npy")
        meta = {
            "model": fingerprint,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "n_sentences": len(sentences),
            "first_sentence": sentences[0] if sentences else None,
        }
        (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
