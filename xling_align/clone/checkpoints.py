"""The checkpoints shipped with the testbed, where they live, how each is verified and regenerated.

- `clone_v3_base/`: the base model the demo uses (testbed v3): `clone_base/` continued on a corpus with
  label-word episodes, so that it binds labels in context;
- `clone_v3_control/`: the positive control, `clone_control/` continued the same way (keeping its word
  alignment and code-switching);
- `clone_base/`, `clone_control/`: the v2 models (plain pretraining on the bilingual corpus; the control with
  PreAlign-style word alignment and code-switching during pretraining), what v3 continues from;
- `clone_arms/<arm>/`: alignment arms trained from the (v3) base (seed 0, the default alignment settings), so
  the demo can score them without training them; `alignment.json` records how.

Every folder carries a `SHA256SUMS` manifest; a damaged file stops the demo with the command that rebuilds
the folder. Weights are stored in float16 and loaded in float32.

Example:
    >>> regenerate_command("control")
    'python -m xling_align.clone.pretrain --preset control_v3 --output {folder}'
"""

from __future__ import annotations

import json
from pathlib import Path

from xling_align.clone.checksum import verify_manifest, write_manifest

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
PRETRAINED_DIRS = {"base": RESOURCES / "clone_v3_base", "control": RESOURCES / "clone_v3_control"}
# the pretraining preset of each shipped folder (v2's folders are v3's starting points)
PRESET_OF_FOLDER = {
    "clone_v3_base": "base_v3",
    "clone_v3_control": "control_v3",
    "clone_base": "base",
    "clone_control": "control",
}
ARMS_DIR = RESOURCES / "clone_arms"
ALIGNMENT_FILE = "alignment.json"


def regenerate_command(arm: str) -> str:
    """The command that rebuilds a shipped checkpoint (`{folder}`: where it goes)."""
    if arm in PRETRAINED_DIRS:
        preset = PRESET_OF_FOLDER[PRETRAINED_DIRS[arm].name]
        return f"python -m xling_align.clone.pretrain --preset {preset} --output {{folder}}"
    return f"python benchmarks/clone_ablation.py --ship-arms {arm} --arms-dir {{folder}}/.."


def shipped_arm_dir(arm: str) -> Path:
    return ARMS_DIR / arm


def verify(folder: str | Path, arm: str) -> None:
    """Check a checkpoint folder against its manifest (raises `ChecksumError` with the regenerate command)."""
    verify_manifest(folder, regenerate=regenerate_command(arm))


def read_alignment_record(folder: str | Path) -> dict | None:
    """How a shipped arm was trained (`alignment.json`), or None if the folder has no record."""
    path = Path(folder) / ALIGNMENT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def readable_by_all(folder: Path) -> None:
    """safetensors writes its file as owner-only; shipped files must be readable by every user of the wheel."""
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o644)


def save_arm(model, tokenizer, folder: str | Path, record: dict, world_file: Path) -> Path:
    """Save an aligned model as a shipped arm: float16 weights, tokenizer, world, `alignment.json`, manifest."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.to(torch.float16).save_pretrained(folder)
    model.to(torch.float32)
    tokenizer.save_pretrained(folder)
    (folder / world_file.name).write_text(world_file.read_text())
    (folder / ALIGNMENT_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    readable_by_all(folder)
    write_manifest(folder)
    return folder
