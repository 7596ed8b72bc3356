"""Resumable pipeline stages: one manifest per finished stage, recording what went in and what came out.

A stage is done when `<folder>/<stage>.json` exists and its recorded inputs equal the current ones; a stage
whose inputs changed (a different recipe, an upstream stage redone, another `--limit`) is not done. Inputs
are plain JSON values; files enter them through `fingerprint` (content hash, or size and modification time
for large files and folders), so a stage downstream of a redone one sees new inputs. A manifest is written
only after the stage finished, atomically: an interrupted stage leaves no manifest and runs again.

Example:
    >>> import tempfile
    >>> log = StageLog(tempfile.mkdtemp())
    >>> log.done("train", {"steps": 5}) is None
    True
    >>> log.record("train", {"steps": 5}, {"model": "runs/model"}, seconds=1.5)
    >>> log.done("train", {"steps": 5})["outputs"]
    {'model': 'runs/model'}
    >>> log.done("train", {"steps": 6}) is None, log.changed("train", {"steps": 6})
    (True, ['steps: 5 -> 6'])
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

_HASHED_FILE_LIMIT = 256 * 1024 * 1024  # larger files are fingerprinted by size and modification time


def _normalise(value):
    # a JSON round trip: tuples and lists, ints and floats compare as they will after saving
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: str | os.PathLike | None) -> dict | None:
    """What identifies a file or folder as a stage input: its content hash, or sizes and times when large."""
    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        stat = path.stat()
        if stat.st_size <= _HASHED_FILE_LIMIT:
            return {"path": str(path), "sha256": sha256_of(path)}
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        listing = [(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return {
            "path": str(path),
            "files": len(files),
            "listing_sha256": hashlib.sha256(json.dumps(listing).encode()).hexdigest(),
        }
    return {"path": str(path), "missing": True}


class StageLog:
    """The manifests of one pipeline run, one JSON file per stage under `folder`."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, stage: str) -> Path:
        return self.folder / f"{stage}.json"

    def read(self, stage: str) -> dict | None:
        path = self.path(stage)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def done(self, stage: str, inputs: dict) -> dict | None:
        """The manifest of `stage` if it finished with these `inputs`, else None."""
        manifest = self.read(stage)
        if manifest is None or manifest.get("inputs") != _normalise(inputs):
            return None
        return manifest

    def changed(self, stage: str, inputs: dict, limit: int = 5) -> list[str]:
        """`key: old -> new` for every recorded input of `stage` that differs from `inputs` (empty: none or no
        manifest)."""
        manifest = self.read(stage)
        if manifest is None:
            return []
        old, new = manifest.get("inputs", {}), _normalise(inputs)
        keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
        lines = [f"{key}: {_short(old.get(key))} -> {_short(new.get(key))}" for key in keys[:limit]]
        return lines + ([f"... and {len(keys) - limit} more"] if len(keys) > limit else [])

    def record(self, stage: str, inputs: dict, outputs: dict, seconds: float) -> None:
        """Write the manifest of a finished stage (atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = {
            "stage": stage,
            "inputs": _normalise(inputs),
            "outputs": _normalise(outputs),
            "seconds": round(seconds, 2),
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        temporary = self.folder / f".{stage}.json.partial"
        temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, self.path(stage))

    def forget(self, stage: str) -> None:
        """Remove the manifest of `stage`, so that it runs again."""
        self.path(stage).unlink(missing_ok=True)


def _short(value, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."
