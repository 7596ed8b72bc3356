"""`xling-align demo` end to end, shrunk (few steps, few documents), through the command's own `main`; its
bad-input errors; a quiet console."""

import json
import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REQUIRED = ("l1_heldout", "l2_bilingual", "l2_heldout", "l2_heldout_l1demo")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One shrunk demo with the default arms (every alignment arm trained live for 2 steps)."""
    import contextlib
    import io

    from xling_align.cli import main

    out = tmp_path_factory.mktemp("demo") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            ["demo", "--output", str(out), "--steps", "2", "--limit", "3", "--live", "all", "--heldout-pairs", "8"]
        )
    return code, out, stdout.getvalue(), stderr.getvalue()


def test_demo_writes_results_summary_and_plots(demo_run):
    from xling_align.clone.alignment import BEST_VARIANT

    code, out, stdout, _ = demo_run
    assert code == 0
    arms = ["base", "control", "cif", "mcl", "afp", BEST_VARIANT]
    assert sorted(p.name for p in out.glob("results_*.json")) == sorted(f"results_clone_{a}.json" for a in arms)
    for plot in ("accuracy.png", "retrieval_by_layer.png", "retention.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"chance", "arms", "testbed", "best_variant", "minus_base", "retention"}
    assert summary["chance"] == pytest.approx(0.2) and summary["best_variant"] == BEST_VARIANT
    assert summary["testbed"] == "v3" and list(summary["arms"]) == arms
    for arm in arms[1:]:  # v3's paired differences, from the same figures
        assert summary["minus_base"][arm]["l2_heldout"] == pytest.approx(
            summary["arms"][arm]["l2_heldout"] - summary["arms"]["base"]["l2_heldout"]
        )
    for arm in arms[1:]:  # v4's retention: the arm's L1 figures over the base's
        for figure in ("icl_l1", "l1_heldout"):
            assert summary["retention"][arm][figure] == pytest.approx(
                summary["arms"][arm][figure] / summary["arms"]["base"][figure], abs=1e-6
            )
    assert "ICL L1 kept" in stdout and "ICL L1 kept" in (out / "summary.md").read_text()
    for arm, figures in summary["arms"].items():
        # every accuracy in the summary is the one lm-eval wrote to that arm's results file
        results = json.loads((out / f"results_clone_{arm}.json").read_text())["results"]
        assert set(REQUIRED) <= set(figures)
        for task, metrics in results.items():
            assert figures[task.removeprefix("xling_clone_")] == metrics["acc,none"]
        for kind in ("sentence_retrieval", "sentence_retrieval_last", "entity_retrieval"):
            assert sorted(figures[kind], key=int) == [str(k) for k in range(5)]  # embeddings + 4 blocks
            assert all(0.0 <= v <= 1.0 for v in figures[kind].values())
    table_row = next(line for line in stdout.splitlines() if line.startswith("| afp |"))
    assert f"{summary['arms']['afp']['l2_heldout']:.3f}" in table_row
    assert "L2 held-out" in (out / "summary.md").read_text()


def test_demo_console_shows_stages_bars_and_the_table_only(demo_run):
    _, _, stdout, stderr = demo_run
    console = stdout + stderr
    for stage in ("[1/4]", "[2/4]", "[3/4]", "[4/4]"):
        assert stage in stdout
    for noise in (
        "Custom kwargs",
        "already-initialized",
        "is not of type `str`",
        "FutureWarning",
        "Tokenizing inputs",
        "Running loglikelihood",
        "train_runtime",
        "Loading weights",
        "Writing model shards",
    ):
        assert noise not in console, noise


def test_shipped_arms_are_used_only_when_their_settings_match():
    from xling_align.clone.alignment import AlignmentSettings
    from xling_align.clone.experiment import ExperimentPlan, _shipped_arm

    assert _shipped_arm(ExperimentPlan(arms=["cif"], live=()), "cif") is not None
    assert _shipped_arm(ExperimentPlan(arms=["cif"], live=(), optimisation=AlignmentSettings(steps=3)), "cif") is None
    assert _shipped_arm(ExperimentPlan(arms=["cif"], live=(), seed=1), "cif") is None


def _demo(args, capsys):
    from xling_align.commands.demo import main

    code = main(args)
    return code, capsys.readouterr().err


def test_unknown_arm_is_refused(tmp_path, capsys):
    code, err = _demo(["--output", str(tmp_path / "out"), "--arms", "base,afpp"], capsys)
    assert code == 2 and "unknown arm(s) ['afpp']" in err and "afp_entity" in err


def test_a_layer_the_model_does_not_have_is_refused(tmp_path, capsys):
    code, err = _demo(["--output", str(tmp_path / "out"), "--arms", "base,afp_mid", "--layer", "9"], capsys)
    assert code == 2 and "contrastive layer 9" in err and "4 decoder layers" in err
    code, err = _demo(["--output", str(tmp_path / "out"), "--arms", "base,afp", "--layer", "2"], capsys)
    assert code == 2 and "applies to the 'afp_mid' arm only" in err


def test_a_world_with_an_empty_split_is_refused(tmp_path, capsys):
    from xling_align.clone.checkpoints import PRETRAINED_DIRS
    from xling_align.clone.checksum import write_manifest

    folder = tmp_path / "ckpt"
    shutil.copytree(PRETRAINED_DIRS["base"], folder)
    world = json.loads((folder / "clone_world.json").read_text())
    world["dev_per_category"] = 0
    (folder / "clone_world.json").write_text(json.dumps(world))
    write_manifest(folder)  # a consistent manifest: the world itself is what is wrong
    code, err = _demo(["--output", str(tmp_path / "out"), "--checkpoint", str(folder)], capsys)
    assert code == 2 and "dev_per_category=0" in err and "empty" in err


def test_a_tampered_checkpoint_is_refused_with_the_regenerate_command(tmp_path, capsys):
    from xling_align.clone.checkpoints import PRETRAINED_DIRS

    folder = tmp_path / "ckpt"
    shutil.copytree(PRETRAINED_DIRS["control"], folder)
    (folder / "tokenizer.json").write_text("{}")
    code, err = _demo(["--output", str(tmp_path / "out"), "--control-checkpoint", str(folder)], capsys)
    assert code == 2 and "tokenizer.json fails its SHA-256 check" in err
    assert "python -m xling_align.clone.pretrain --preset control_v3 --output" in err


def test_an_unwritable_output_is_refused(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, err = _demo(["--output", str(blocker / "out")], capsys)
    assert code == 2 and "cannot write to the output folder" in err and "--output" in err


def test_a_tampered_shipped_arm_is_refused_with_the_command_that_rebuilds_it(tmp_path, monkeypatch):
    from xling_align.clone import experiment
    from xling_align.clone.checkpoints import shipped_arm_dir

    copy = tmp_path / "cif"
    shutil.copytree(shipped_arm_dir("cif"), copy)
    (copy / "model.safetensors").write_bytes(b"damaged")
    monkeypatch.setattr(experiment, "shipped_arm_dir", lambda arm: copy)
    plan = experiment.ExperimentPlan(arms=["base", "cif"], live=())
    with pytest.raises(
        experiment.ExperimentError,
        match=r"model\.safetensors fails its SHA-256 check.*"
        r"benchmarks/clone_ablation\.py --ship-arms cif",
    ):
        experiment.run_experiment(plan, tmp_path / "out")
