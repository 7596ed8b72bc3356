"""Engine setups the pair pass cannot serve stop at once with a message naming them; models without findable
decoder blocks and out-of-range layers are refused the same way, under any engine."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset

from tests.conftest import build_tiny_model
from xling_align import AFPConfig, AFPTrainer
from xling_align.alignment.model_parts import decoder_blocks
from xling_align.alignment.pooling import embed_sentences
from xling_align.trainers.engine_checks import (
    UnsupportedSetupError,
    check_pair_pass_support,
    check_requested_engine_runs,
    describe_engine,
)

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = shutil.which("accelerate", path=os.path.dirname(sys.executable))
ROWS = {
    "prompt": ["Greet. Answer in German:", ""],
    "completion": [" Hallo!", ""],
    "source_sentence": ["Good morning", "Thank you"],
    "target_sentence": ["Guten Morgen", "Danke"],
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(tmp_path, accelerate_config, *extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        LAUNCHER,
        "launch",
        "--config_file",
        str(REPO / "recipes/accelerate" / accelerate_config),
        "--num_processes",
        "2",
        "--mixed_precision",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "xling_align",
        "train",
        "--config",
        str(REPO / "recipes/tiny.yaml"),
        "--output_dir",
        "out",
        "--max_steps",
        "1",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--max_train_samples",
        "16",
        *extra,
    ]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def training_tracebacks(output: str) -> list[str]:
    """Tracebacks of the training processes (torchrun prefixes their lines with [rankN]); the launcher's own
    report that a child exited non-zero is not one of them."""
    return [line for line in output.splitlines() if line.startswith("[rank") and "Traceback" in line]


@pytest.mark.skipif(LAUNCHER is None or torch.cuda.is_available(), reason="needs the accelerate launcher, no GPU")
@pytest.mark.parametrize(("config", "engine"), [("fsdp.yaml", "FSDP"), ("deepspeed-zero2.yaml", "DeepSpeed")])
def test_sharding_configs_stop_at_once_on_a_cpu_naming_the_engine(tmp_path, config, engine):
    # accelerate would silently train plain data parallel here; the command must say it cannot shard instead
    result = launch(tmp_path, config)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert engine in output
    assert not (tmp_path / "out" / "model.safetensors").exists()
    if "xling-align train: error" in output:  # ours (without deepspeed installed, accelerate stops first)
        assert f"xling-align train: error: {engine} was requested" in output
        assert not training_tracebacks(output)
        assert_reported_once(result, f"xling-align train: error: {engine} was requested")


def assert_reported_once(result, message_start: str) -> None:
    """What a user reads under a launcher: the line once, and the launcher's report naming one failed process
    (exit status 2) whose traceback line is that message; the launcher exits 1."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    printed = [line for line in output.splitlines() if line.startswith(message_start)]
    quoted = [line for line in output.splitlines() if line.strip().startswith(f"traceback : {message_start}")]
    assert len(printed) == 1 and output.count(message_start) == len(printed) + len(quoted), output[-3000:]
    assert "<NO_OTHER_FAILURES>" in output and "exitcode  : 2" in output
    report_end = output.rstrip().splitlines()
    assert report_end[-1].startswith("=====") and report_end[-2].strip().startswith(f"traceback : {message_start}")


@pytest.mark.skipif(
    shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
    reason="torch's torchrun launcher is not installed next to this Python",
)
def test_a_recipe_mistake_under_torchrun_is_printed_once(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        torchrun,
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "xling_align",
        "train",
        "--config",
        "tiny",
        "--output_dir",
        "out",
        "--learning_rate",
        "fast",
    ]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert_reported_once(result, "xling-align train: error: command line: learning_rate: 'fast' is not a valid number")


@pytest.mark.skipif(LAUNCHER is None, reason="the accelerate launcher is not installed next to this Python")
def test_contrastive_layer_beyond_depth_stops_under_ddp(tmp_path):
    result = launch(tmp_path, "cpu-2proc.yaml", "--contrastive_layer", "7")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "contrastive_layer=7 is outside the model's hidden states" in output and "has 2 decoder layers" in output
    assert not training_tracebacks(output)
    assert_reported_once(result, "xling-align train: error: the trainer refused the data or settings")


def test_requested_engine_without_gpu_is_refused(monkeypatch):
    args = SimpleNamespace(use_cpu=True)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    check_requested_engine_runs(args)  # nothing requested: fine
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(UnsupportedSetupError, match="FSDP was requested .* silently fall back to plain data parallel"):
        check_requested_engine_runs(args)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(UnsupportedSetupError, match="DeepSpeed was requested"):
        check_requested_engine_runs(args)


def _accelerate_reports(monkeypatch, device_type):
    """Make accelerate report `device_type` (None: no accelerator) as this machine's accelerator."""
    from accelerate import utils as accelerate_utils

    monkeypatch.setattr(accelerate_utils, "get_torch_accelerator_backend", lambda *a, **k: (device_type, None))


@pytest.mark.skipif(torch.accelerator.is_available(), reason="checks a machine without accelerator")
def test_a_cpu_only_machine_has_no_accelerator(monkeypatch):
    from accelerate import utils as accelerate_utils

    from xling_align.trainers.accelerators import accelerator_type, has_accelerator

    assert accelerator_type() is None and has_accelerator() is False
    # an accelerate without the helper: torch's own answer, the same here
    monkeypatch.delattr(accelerate_utils, "get_torch_accelerator_backend")
    assert accelerator_type() is None and has_accelerator() is False


@pytest.mark.parametrize(
    ("device_type", "counted"),
    [(None, False), ("mps", False), ("cuda", True), ("xpu", True), ("npu", True), ("hpu", True)],
)
def test_the_trainer_its_config_and_the_train_command_ask_the_same_function(
    monkeypatch, tmp_path, device_type, counted
):
    from xling_align.pipeline.training_script import _launched_without_accelerator
    from xling_align.trainers.accelerators import accelerator_type, has_accelerator

    _accelerate_reports(monkeypatch, device_type)
    assert accelerator_type() == device_type and has_accelerator() is counted
    # AFPConfig keeps pinned memory only with an accelerator that uses it
    config = AFPConfig(output_dir=str(tmp_path), report_to="none", bf16=False)
    assert config.dataloader_pin_memory is counted
    # xling-align train under several processes defaults to use_cpu without one
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert _launched_without_accelerator() is not counted
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert _launched_without_accelerator() is False
    # an FSDP request is refused without one (and with one, unless use_cpu)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    if counted:
        check_requested_engine_runs(SimpleNamespace(use_cpu=False))
    else:
        reason = "only accelerator is Apple MPS" if device_type == "mps" else "this machine has no GPU"
        with pytest.raises(UnsupportedSetupError, match=reason):
            check_requested_engine_runs(SimpleNamespace(use_cpu=False))


@pytest.mark.parametrize(
    ("parallelism", "message"),
    [
        ({"cp_size": 2}, "context parallelism \\(cp_size=2"),
        ({"sp_size": 4}, "sequence parallelism \\(sp_size=4"),
        ({"tp_size": 2}, "tensor parallelism \\(tp_size=2"),
    ],
)
def test_parallelism_that_splits_sequences_or_layers_is_refused(parallelism, message):
    from accelerate.utils import DistributedType

    accelerator = SimpleNamespace(
        parallelism_config=SimpleNamespace(**parallelism), distributed_type=DistributedType.MULTI_GPU
    )
    with pytest.raises(UnsupportedSetupError, match=message):
        check_pair_pass_support(accelerator)


def test_fsdp1_is_refused_and_fsdp2_accepted():
    from accelerate.utils import DistributedType

    def accelerator(version):
        return SimpleNamespace(
            parallelism_config=None,
            distributed_type=DistributedType.FSDP,
            state=SimpleNamespace(fsdp_plugin=SimpleNamespace(fsdp_version=version)),
        )

    with pytest.raises(UnsupportedSetupError, match="FSDP version 1 .* fsdp_version: 2"):
        check_pair_pass_support(accelerator(1))
    check_pair_pass_support(accelerator(2))


def test_model_without_findable_blocks_names_what_was_searched(tmp_path, byte_tokenizer):
    model = build_tiny_model("llama", num_layers=2)
    model.config.num_hidden_layers = 3  # the config no longer matches the block list
    with pytest.raises(
        ValueError,
        match=r"cannot find the 3 decoder blocks of LlamaForCausalLM: searched its "
        r"backbone LlamaModel .* at layers, h, blocks, decoder.layers, block .* "
        r"found \(length\): layers \(2\)",
    ):
        decoder_blocks(model)
    with pytest.raises(ValueError, match="cannot find the 3 decoder blocks"):
        embed_sentences(model, byte_tokenizer, ["a"], layer=1)
    args = AFPConfig(output_dir=str(tmp_path), report_to="none", max_steps=1)
    with pytest.raises(UnsupportedSetupError, match="cannot find the 3 decoder blocks"):
        AFPTrainer(model=model, args=args, train_dataset=Dataset.from_dict(ROWS), processing_class=byte_tokenizer)


def test_describe_engine_names_the_wrappers():
    from peft import LoraConfig, get_peft_model

    model = build_tiny_model("llama", num_layers=1)
    assert describe_engine(model) == "no engine"
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert describe_engine(peft_model) == "PEFT"
    assert describe_engine(torch.compile(peft_model)) == "torch.compile + PEFT"
