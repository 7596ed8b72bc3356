"""benchmarks/afp_step_time.py runs at a small scale on CPU and reports every figure it promises (values not judged)."""

import runpy
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "afp_step_time.py"


def test_step_time_benchmark_reports_all_figures(capsys):
    module = runpy.run_path(str(SCRIPT))
    assert module["main"](["--steps", "1", "--warmup", "0", "--batch-size", "1", "--instruction-tokens", "32",
                           "--pair-tokens", "8", "--peak-tflops", "1"]) == 0
    output = capsys.readouterr().out
    for name in ("sft", "afp", "afp-full"):
        row = next(line for line in output.splitlines() if line.split() and line.split()[0] == name)
        assert row.split()[5].endswith("%")  # MFU against the given peak
    assert "afp/sft: step-time ratio" in output and "afp-full/sft: step-time ratio" in output
    assert "tokens/s" in output and "est. peak MiB" in output


def test_model_flops_count_the_pair_pass_only_through_the_blocks_it_runs():
    module = runpy.run_path(str(SCRIPT))
    args = module["parse_args"](["--batch-size", "2", "--instruction-tokens", "64", "--pair-tokens", "16"])
    from transformers import XGLMConfig, XGLMForCausalLM

    model = XGLMForCausalLM(XGLMConfig(vocab_size=512, d_model=32, num_layers=4, attention_heads=4, ffn_dim=64))
    sft, afp, full = (module["step_flops"](model, args, name) for name in ("sft", "afp", "afp-full"))
    block = sum(p.numel() for p in model.model.layers[0].parameters())
    pair_tokens = 2 * 2 * 16
    assert afp - sft == 6 * block * pair_tokens + 12 * 32 * 16 * pair_tokens  # one block (contrastive_layer=1)
    assert full - sft == 6 * (4 * block + 512 * 32) * pair_tokens + 12 * 4 * 32 * 16 * pair_tokens
