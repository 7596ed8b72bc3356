"""benchmarks/afp_step_time.py runs at a small scale on CPU and reports every figure it promises; its deterministic
figures (FLOPs, tokens per step, autograd memory ratios, host reads) are checked, its timings never."""

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "afp_step_time.py"


@pytest.fixture(scope="module")
def bench():
    return runpy.run_path(str(SCRIPT))


def test_step_time_benchmark_reports_all_figures(bench, capsys):
    assert (
        bench["main"](
            [
                "--steps",
                "1",
                "--warmup",
                "0",
                "--batch-size",
                "1",
                "--instruction-tokens",
                "32",
                "--pair-tokens",
                "8",
                "--peak-tflops",
                "1",
                "--breakdown",
                "--sweep",
                "1x16",
                "--length-rows",
                "400",
                "--padding-free-check",
            ]
        )
        == 0
    )
    output = capsys.readouterr().out
    for name in ("sft", "afp", "afp-full"):
        row = next(line for line in output.splitlines() if line.split() and line.split()[0] == name)
        assert row.split()[5].endswith("%")  # MFU against the given peak
    assert "afp/sft: step-time ratio" in output and "afp-full/sft: step-time ratio" in output
    assert "tokens/s" in output and "est. peak MiB" in output
    # the overhead breakdown: one row per phase, plus operator calls and scalar reads
    for phase in bench["PHASES"] + ("operator calls (aten)", "scalar reads (.item())"):
        assert any(line.startswith(phase) for line in output.splitlines()), phase
    # the sweep: one row per point, with the AFP/SFT ratio and MFU of both
    sweep = [line.split() for line in output.splitlines() if line.split()[:2] == ["1", "16"]]
    assert len(sweep) == 1 and all(row[7].endswith("%") and row[8].endswith("%") for row in sweep)
    # AFP steps padded vs padding-free on the same batches (a padding-free batch never computes more tokens)
    lines = output.splitlines()
    check = next(i for i, line in enumerate(lines) if line.startswith("padding-free check:"))
    padded_row, free_row = lines[check + 2].split(), lines[check + 3].split()
    assert (padded_row[0], free_row[0]) == ("padded", "padding-free")
    assert float(free_row[2]) <= float(padded_row[2])
    assert lines[check + 4].startswith("padding-free/padded: step-time ratio")
    # padded vs real tokens per step
    for collation in ("padded", "padding-free", "packed (bfd)"):
        assert any(line.startswith(collation) for line in output.splitlines()), collation


def test_model_flops_count_the_pair_pass_only_through_the_blocks_it_runs(bench):
    args = bench["parse_args"](["--batch-size", "2", "--instruction-tokens", "64", "--pair-tokens", "16"])
    from transformers import XGLMConfig, XGLMForCausalLM

    model = XGLMForCausalLM(XGLMConfig(vocab_size=512, d_model=32, num_layers=4, attention_heads=4, ffn_dim=64))
    sft, afp, full = (bench["step_flops"](model, args, name) for name in ("sft", "afp", "afp-full"))
    block = sum(p.numel() for p in model.model.layers[0].parameters())
    pair_tokens = 2 * 2 * 16
    assert afp - sft == 6 * block * pair_tokens + 12 * 32 * 16 * pair_tokens  # one block (contrastive_layer=1)
    assert full - sft == 6 * (4 * block + 512 * 32) * pair_tokens + 12 * 4 * 32 * 16 * pair_tokens


def test_tokens_per_step_of_each_collation(bench):
    lengths = [10, 2, 3, 7, 5, 1]  # in this order, batches of 2: (10, 2), (3, 7), (5, 1)
    table = bench["tokens_per_step"](lengths, batch_size=2, max_length=12, shuffle_seed=None)
    assert table["padded"] == {"rows": 2, "real": 28 / 3, "computed": (20 + 14 + 10) / 3, "steps": 3}
    assert table["padding-free"]["computed"] == table["padding-free"]["real"] == 28 / 3
    # BFD into rows of 12 tokens: (10, 2), (7, 5), (3, 1) -> 3 packed rows, 2 steps of 2 packed rows
    assert table["packed (bfd)"] == {"rows": 3, "real": 14, "computed": 14, "steps": 2}


def test_bactrian_shaped_lengths_pad_a_batch_of_four_by_about_three_quarters(bench):
    # the synthetic distribution is seeded: its figures are stable (numpy's default_rng); many short rows, a long
    # tail, so a batch padded to its longest row computes ~1.8 x its real tokens
    lengths = bench["bactrian_like_lengths"](20000, max_length=512)
    assert sorted(lengths)[10000] == pytest.approx(117, abs=3) and max(lengths) == 512
    table = bench["tokens_per_step"](lengths[:2000], batch_size=4, max_length=512)
    padded = table["padded"]
    assert 1.6 < padded["computed"] / padded["real"] < 2.0
    assert table["packed (bfd)"]["rows"] > 3 * 4  # ~14 rows per step of 4 packed rows of 512


def test_afp_step_reads_no_more_device_values_than_an_sft_step(bench):
    # the pair pass keeps its metrics on the device until the next log: no .item() (a host-device sync on a GPU)
    args = bench["parse_args"](["--batch-size", "2", "--instruction-tokens", "32", "--pair-tokens", "8"])
    trainers, batches, _ = bench["build_trainers"](args, ("sft", "afp"))
    import contextlib

    profiles = {
        name: bench["profile_steps"](trainers[name], *batches[name], contextlib.nullcontext, steps=1)
        for name in ("sft", "afp")
    }
    reads = {name: profile["scalar reads"] for name, profile in profiles.items()}
    assert reads["afp"] == reads["sft"]


def test_memory_plan_counts_xglm_564m_parameters_exactly(bench):
    # the tied LM head counted once: what fp32 weights + AdamW (16 B/param) hold before any activation
    count = bench["parameter_count"]("xglm-564m")
    assert count == 564_463_616
    assert 16 * count / 2**30 == pytest.approx(8.41, abs=0.005)
