"""The `xling` lm-eval model: full checkpoints, LoRA adapter folders (base found from the adapter), merging."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny base model and a LoRA adapter on it, saved the way AFPTrainer saves them."""
    from peft import LoraConfig, get_peft_model

    from xling_align.tiny_models import build_tiny_model

    root = tmp_path_factory.mktemp("xling-model")
    model, tokenizer = build_tiny_model("xling-align/tiny-random-gpt2")
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    # init_lora_weights=False: a random B matrix, so the adapter really changes the outputs
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["c_attn"], init_lora_weights=False))
    peft_model.save_pretrained(root / "adapter")
    tokenizer.save_pretrained(root / "adapter")
    config_path = root / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "base"  # relative: found next to the adapter folder
    config_path.write_text(json.dumps(config))
    return root


def _logits(model, text="Hallo, world"):
    ids = torch.tensor([list(text.encode("utf-8"))]) + 3  # ByT5 ids: byte + 3
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_full_checkpoint_loads_like_hf(saved):
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    ours = XlingLM(pretrained=str(saved / "base"), device="cpu")
    theirs = HFLM(pretrained=str(saved / "base"), device="cpu")
    assert ours.adapter_path is None
    assert torch.equal(_logits(ours.model), _logits(theirs.model))


def test_adapter_folder_finds_its_base_and_can_be_merged(saved):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    base = AutoModelForCausalLM.from_pretrained(saved / "base")
    base_logits = _logits(base)
    reference = _logits(PeftModel.from_pretrained(base, saved / "adapter"))
    assert not torch.allclose(reference, base_logits)  # the adapter matters

    unmerged = XlingLM(pretrained=str(saved / "adapter"), device="cpu")
    assert unmerged.adapter_path == str(saved / "adapter")
    assert isinstance(unmerged.model, PeftModel)
    assert torch.allclose(_logits(unmerged.model), reference, atol=1e-6)

    merged = XlingLM(pretrained=str(saved / "adapter"), device="cpu", merge_lora="True")
    assert not isinstance(merged.model, PeftModel)
    assert torch.allclose(_logits(merged.model), reference, atol=1e-5)


def test_missing_base_model_says_where_it_looked(saved, tmp_path, monkeypatch):
    from xling_align.evaluation.lm_eval_model import XlingLM, find_base_model

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    config = json.loads((saved / "adapter" / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "./gone"}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        XlingLM(pretrained=str(adapter), device="cpu")
    message = str(error.value)
    for place in ("gone", str(adapter / "gone"), str(tmp_path / "gone")):
        assert place in message
    assert "base_model=" in message
    # a hub id is tried only when the hub may be reached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="offline"):
        find_base_model(adapter, "someone/some-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert find_base_model(adapter, "someone/some-model") == "someone/some-model"
    assert find_base_model(saved / "adapter") == str(saved / "base")


def test_base_model_argument_needs_an_adapter(saved):
    from xling_align.evaluation.lm_eval_model import XlingLM

    with pytest.raises(ValueError, match="only for adapter folders"):
        XlingLM(pretrained=str(saved / "base"), base_model="x", device="cpu")


# --------------------------------------------------------------- a pretrained= that holds no model
def _lm_eval_command(pretrained, cwd):
    import os
    import subprocess
    import sys
    from pathlib import Path

    command = [
        str(Path(sys.executable).parent / "lm_eval"),
        "run",
        "--model",
        "xling",
        "--model_args",
        f"pretrained={pretrained}",
        "--tasks",
        "xling_pawsx_de",
        "--limit",
        "1",
        "--device",
        "cpu",
    ]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_lm_eval_stops_with_a_message_on_a_folder_without_a_model(tmp_path):
    (tmp_path / "empty-run").mkdir()
    # both commands at once: most of their time is the interpreter importing torch
    runs = {
        name: _lm_eval_command(path, tmp_path)
        for name, path in [("missing", "runs/afp/final"), ("empty", tmp_path / "empty-run")]
    }
    for name, process in runs.items():
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, (name, stderr[-3000:])
        assert "Traceback" not in stderr and "Repo id must be" not in stderr, stderr[-3000:]
        assert "config.json" in stderr and "adapter_config.json" in stderr  # what is expected
    # (the path named in each message is checked below without a subprocess)


def test_lm_eval_stops_with_a_message_on_an_adapter_whose_base_is_gone(saved, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    gone = tmp_path / "no-such-base"
    config = json.loads((saved / "adapter" / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(gone)}))
    process = _lm_eval_command(adapter, tmp_path)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("lm_eval --model xling: error: ") and str(adapter) in last and "base_model=" in last
    assert f"no config.json in {gone} and" in last  # an absolute base path is one place, named once


def test_a_flag_that_is_neither_true_nor_false_is_refused(saved):
    """`merge_lora=ture` used to read as false without a word."""
    from xling_align.evaluation.lm_eval_model import XlingLM

    for name in ("merge_lora", "prefix_sharing"):
        with pytest.raises(ValueError, match=f"^{name}=ture: expected True or False.$"):
            XlingLM(pretrained=str(saved / "adapter"), device="cpu", **{name: "ture"})


def test_a_path_without_a_model_is_named_with_what_is_expected(saved, tmp_path, monkeypatch):
    from xling_align.evaluation.adapters import ModelFolderError
    from xling_align.evaluation.lm_eval_model import XlingLM

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelFolderError, match=r"pretrained=runs/afp/final: there is no folder .*runs/afp/final"):
        XlingLM(pretrained="runs/afp/final", device="cpu")
    with pytest.raises(ModelFolderError, match="no folder"):
        XlingLM(pretrained="./afp", device="cpu")
    (tmp_path / "out").mkdir()  # "out/afp" has a hub id's form, but "out" is a local folder: a typo
    with pytest.raises(ModelFolderError, match=r"no folder .*out/afp \(the folder .*out exists, so this is a local"):
        XlingLM(pretrained="out/afp", device="cpu")
    (tmp_path / "run").mkdir()
    with pytest.raises(ModelFolderError, match=r"the folder .*run holds no model \(no config.json, no adapter_config"):
        XlingLM(pretrained="run", device="cpu")
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(ModelFolderError, match="is a file, not a folder"):
        XlingLM(pretrained="weights.bin", device="cpu")
    # a training output folder that holds only checkpoints: the message points at one
    import shutil

    shutil.copytree(saved / "adapter", tmp_path / "run" / "checkpoint-5")
    shutil.copytree(saved / "adapter", tmp_path / "run" / "checkpoint-10")
    with pytest.raises(
        ModelFolderError,
        match=r"It holds model folders \(checkpoint-5, checkpoint-10\): pass one of "
        r"them, e.g. pretrained=run/checkpoint-10",
    ):
        XlingLM(pretrained="run", device="cpu")


def test_a_hub_id_still_goes_to_hf(monkeypatch, tmp_path):
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.adapters import model_source_kind
    from xling_align.evaluation.lm_eval_model import XlingLM

    monkeypatch.chdir(tmp_path)
    received = {}

    def fake_init(self, pretrained, **kwargs):
        received["pretrained"] = pretrained
        raise RuntimeError("stop here: nothing is downloaded")

    monkeypatch.setattr(HFLM, "__init__", fake_init)
    for hub_id in ("facebook/xglm-564M", "gpt2"):
        assert model_source_kind(hub_id) == "hub"
        with pytest.raises(RuntimeError, match="stop here"):
            XlingLM(pretrained=hub_id)
        assert received["pretrained"] == hub_id


def test_pack_rows_auto_chooses_by_the_model_cost_not_only_the_device(real_checkpoint_dir):
    # a CPU: a tiny model scores one segment per row, a model with a real body (SmolLM2-135M, ~106M parameters
    # outside its tied embeddings) packed rows; an accelerator always packs
    import transformers as tf

    from xling_align.evaluation.lm_eval_model import PACKING_MIN_BODY_PARAMETERS, body_parameters, packing_pays
    from xling_align.tiny_models import build_tiny_model

    tiny, _ = build_tiny_model("xling-align/tiny-random-llama")
    config = tf.AutoConfig.from_pretrained(real_checkpoint_dir)
    with torch.device("meta"):  # the shape is enough: no weights are read
        real = tf.AutoModelForCausalLM.from_config(config)
    embeddings = config.vocab_size * config.hidden_size
    assert body_parameters(real) == sum(p.numel() for p in real.parameters()) - embeddings  # tied: counted once
    assert body_parameters(real) > PACKING_MIN_BODY_PARAMETERS > body_parameters(tiny)
    assert not packing_pays(tiny, "cpu") and packing_pays(real, "cpu")
    assert packing_pays(tiny, "cuda:0")
