"""SHA-256 manifest of a checkpoint folder: written after pretraining, verified before the demo uses it.

The manifest `SHA256SUMS` lists `<hex digest>  <file name>` for every file of the folder (as
`sha256sum` writes it, so `sha256sum -c SHA256SUMS` checks it too).

Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hello")
    >>> _ = write_manifest(folder)
    >>> verify_manifest(folder)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from xling_align.errors import XlingAlignError

MANIFEST_NAME = "SHA256SUMS"
REGENERATE_HINT = "python -m xling_align.clone.pretrain --preset base --output {folder}"


class ChecksumError(XlingAlignError, RuntimeError):
    """A checkpoint folder does not match its SHA-256 manifest."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: str | Path) -> Path:
    """Write `folder/SHA256SUMS` for every other file of `folder` (sorted by name) and return its path."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != MANIFEST_NAME)
    manifest = folder / MANIFEST_NAME
    manifest.write_text("".join(f"{sha256_of(p)}  {p.name}\n" for p in files))
    return manifest


def verify_manifest(folder: str | Path, regenerate: str = REGENERATE_HINT) -> None:
    """Raise `ChecksumError`, naming the file and how to regenerate, if `folder` does not match its manifest.

    Args:
        folder: the checkpoint folder.
        regenerate: the command that rebuilds it (`{folder}` is filled in), quoted in the error.
    """
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    hint = regenerate.format(folder=folder)
    if not manifest.is_file():
        raise ChecksumError(
            f"{manifest} is missing, so the checkpoint in {folder} cannot be verified; regenerate it with `{hint}`."
        )
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        expected, name = line.split(maxsplit=1)
        path = folder / name.strip()
        if not path.is_file():
            raise ChecksumError(f"{path} is listed in {manifest} but missing; regenerate the checkpoint with `{hint}`.")
        actual = sha256_of(path)
        if actual != expected:
            raise ChecksumError(
                f"{path} fails its SHA-256 check (expected {expected[:12]}..., got {actual[:12]}...): "
                f"the shipped checkpoint is damaged or was modified; reinstall xling-align or "
                f"regenerate it with `{hint}`."
            )
