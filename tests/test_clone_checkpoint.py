"""The shipped clone checkpoints: SHA-256 verification, tampering detection, float16 storage, deterministic
pretraining of both presets, and the control's word-alignment loss."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from xling_align.clone.checkpoints import ARMS_DIR, PRETRAINED_DIRS, regenerate_command, verify
from xling_align.clone.checksum import MANIFEST_NAME, ChecksumError, verify_manifest, write_manifest
from xling_align.clone.pretrain import (
    PretrainConfig,
    dictionary_pairs,
    load_checkpoint,
    load_world,
    main,
    pretrain,
    word_alignment_loss,
)

TINY = dict(
    steps=3,
    batch_size=2,
    block_size=16,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    intermediate_size=64,
    warmup_steps=1,
)


@pytest.mark.parametrize("arm", ["base", "control"])
def test_shipped_pretrained_checkpoints_pass_their_manifest_and_load_in_float32(arm):
    folder = PRETRAINED_DIRS[arm]
    verify(folder, arm)
    config = json.loads((folder / "config.json").read_text())
    assert config["dtype"] == "float16"  # stored small ...
    model, tokenizer, world = load_checkpoint(folder)
    assert next(model.parameters()).dtype == torch.float32  # ... computed in float32
    assert world.config == load_world(PRETRAINED_DIRS["base"]).config  # both arms live in one world
    pretraining = json.loads((folder / "clone_pretraining.json").read_text())
    assert (pretraining["word_alignment_weight"] > 0) == (arm == "control")


def test_shipped_checkpoints_fit_the_wheel_budget():
    arms = [p for p in ARMS_DIR.iterdir() if p.is_dir()] if ARMS_DIR.is_dir() else []
    folders = [*PRETRAINED_DIRS.values(), *arms]
    total = sum(f.stat().st_size for folder in folders for f in folder.iterdir())
    assert total < 20_000_000, f"shipped clone checkpoints take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("arm", ["base", "control"])
def test_tampered_file_fails_with_the_file_name_and_the_regenerate_command(tmp_path, arm):
    folder = tmp_path / "ckpt"
    shutil.copytree(PRETRAINED_DIRS[arm], folder)
    config = folder / "config.json"
    config.write_text(config.read_text().replace("4", "5", 1))
    with pytest.raises(ChecksumError, match=rf"config\.json fails its SHA-256 check.*--preset {arm}_v3 --output"):
        verify(folder, arm)


def test_regenerate_commands_name_the_script_of_each_kind():
    assert regenerate_command("base").startswith("python -m xling_align.clone.pretrain --preset base_v3 --output")
    assert "benchmarks/clone_ablation.py --ship-arms cif" in regenerate_command("cif")


def test_missing_manifest_and_missing_file_are_reported(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ChecksumError, match="SHA256SUMS is missing"):
        verify_manifest(tmp_path)
    write_manifest(tmp_path)
    (tmp_path / "a.txt").unlink()
    with pytest.raises(ChecksumError, match="a.txt is listed"):
        verify_manifest(tmp_path)


def test_manifest_matches_sha256sum_format(tmp_path):
    import hashlib

    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    write_manifest(tmp_path)
    digest = hashlib.sha256(b"\x00\x01").hexdigest()
    assert (tmp_path / MANIFEST_NAME).read_text() == f"{digest}  b.bin\n"


@pytest.mark.parametrize("control", [False, True])
def test_pretraining_is_bit_for_bit_reproducible(tmp_path, control):
    extra = dict(word_alignment_weight=1.0, code_switch_share=0.5) if control else {}
    first = pretrain(PretrainConfig(seed=1, **TINY, **extra), tmp_path / "a", progress=False)
    second = pretrain(PretrainConfig(seed=1, **TINY, **extra), tmp_path / "b", progress=False)
    other = pretrain(PretrainConfig(seed=2, **TINY, **extra), tmp_path / "c", progress=False)
    assert (first / MANIFEST_NAME).read_text() == (second / MANIFEST_NAME).read_text()
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    verify_manifest(second)


def test_word_alignment_loss_aligns_dictionary_words_at_every_layer():
    """Training on the PreAlign-style loss alone makes each word's nearest translation its own, at every layer."""
    from xling_align.clone.pretrain import build_model
    from xling_align.clone.tokenizer import build_tokenizer
    from xling_align.clone.world import build_world

    config = PretrainConfig(**TINY)
    world = build_world()
    tokenizer = build_tokenizer(world)
    torch.manual_seed(0)
    model = build_model(config, len(tokenizer), tokenizer.pad_token_id)
    pairs = dictionary_pairs(world, tokenizer.get_vocab())
    assert len(pairs) == len(world.l1_vocabulary) - len(world.anchors)

    def nearest_is_translation() -> float:
        with torch.no_grad():
            ids = torch.cat([pairs[:, 0], pairs[:, 1]]).unsqueeze(1)
            states = model(input_ids=ids, output_hidden_states=True).hidden_states
        scores = []
        for layer in states:
            v = torch.nn.functional.normalize(layer[:, 0], dim=-1)
            scores.append(((v[: len(pairs)] @ v[len(pairs) :].T).argmax(-1) == torch.arange(len(pairs))).float().mean())
        return float(min(scores))

    before = nearest_is_translation()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = word_alignment_loss(model, pairs, temperature=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert before < 0.2 and nearest_is_translation() > 0.9


def test_bad_pretraining_settings_are_refused(capsys):
    with pytest.raises(ValueError, match="not divisible"):
        PretrainConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="word_alignment_pairs"):
        PretrainConfig(word_alignment_pairs=1)
    assert main(["--output", "unused", "--test-per-category", "0"]) == 2
    assert "test_per_category=0" in capsys.readouterr().err


def test_ablation_script_regenerates_a_shipped_arm_the_demo_can_verify(tmp_path):
    """The command named in a failing arm checksum's message writes a folder that passes the same check."""
    import importlib.util

    from xling_align.clone.checkpoints import read_alignment_record

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "clone_ablation.py"  # the checkout, not the wheel
    spec = importlib.util.spec_from_file_location("clone_ablation", script)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    code = ablation.main(
        ["--ship-arms", "cif", "--arms-dir", str(tmp_path / "arms"), "--steps", "2", "--output", str(tmp_path / "work")]
    )
    assert code == 0
    verify(tmp_path / "arms" / "cif", "cif")
    record = read_alignment_record(tmp_path / "arms" / "cif")
    assert record["arm"] == "cif" and record["optimisation"]["steps"] == 2 and record["seed"] == 0
    assert json.loads((tmp_path / "arms" / "cif" / "config.json").read_text())["dtype"] == "float16"
