"""AFPTrainer under DDP: 2 CPU processes with gloo take the same optimizer step as 1 process with the whole batch."""

import os
import runpy
import subprocess
import sys

import pytest
import torch

# Runs as a file: under torchrun (2 processes, 2 rows each) and, in the test process, on 4 rows at once.
SCRIPT = """
import os
import sys

import torch
from datasets import Dataset
from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM

from xling_align import AFPConfig, AFPTrainer


def build_model():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                        num_attention_heads=4, num_key_value_heads=2, pad_token_id=0,
                                        eos_token_id=1, bos_token_id=1))


def train_one_step(output_dir, per_device_batch_size, replay=False):
    model = build_model()
    distributed = "RANK" in os.environ  # launched by torchrun
    rows = Dataset.from_dict({
        "prompt": ["Greet. Answer in German:", "Thank. Answer in French:", "Count. Answer in Spanish:", ""],
        "completion": [" Hallo!", " Merci beaucoup.", " uno", ""],
        "source_sentence": ["Good morning", "Thank you", "The cat sleeps.", "Where is it?"],
        "target_sentence": ["Guten Morgen", "Merci", "El gato duerme.", "Wo ist es?"],
    })
    args = AFPConfig(output_dir=output_dir, max_steps=1, per_device_train_batch_size=per_device_batch_size,
                     optim="sgd", learning_rate=0.5, gradient_checkpointing=True, save_strategy="no",
                     report_to="none", use_cpu=True, ddp_backend="gloo" if distributed else None, seed=0,
                     disable_tqdm=True, contrastive_symmetric=True, logging_steps=1,
                     replay_share=0.5 if replay else 0.0, replay_weight=0.8)
    # with replay: 4 plain-text rows join the 4 AFP rows, spread unevenly over the processes' batches
    texts = Dataset.from_dict({"text": ["The river runs to the sea.", "Der Hund schläft.", "Il pleut.", "Hola."]})
    trainer = AFPTrainer(model=model, args=args, train_dataset=rows, processing_class=ByT5Tokenizer(),
                         replay_dataset=texts if replay else None)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "contrastive_loss" in entry][0]
    return {name: value.detach().clone() for name, value in model.state_dict().items()}, logged


if __name__ == "__main__":
    replay = sys.argv[3] == "replay"
    state, logged = train_one_step(sys.argv[1], per_device_batch_size=4 if replay else 2, replay=replay)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({"state": state, "logged": logged}, sys.argv[2])
"""


@pytest.mark.parametrize("replay", [False, True])
def test_two_gloo_processes_take_the_same_step_as_one(tmp_path, replay):
    script = tmp_path / "afp_ddp.py"
    script.write_text(SCRIPT)
    result_file = tmp_path / "ddp_result.pt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path / "ddp_out"),
        str(result_file),
        "replay" if replay else "plain",
    ]
    completed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]
    ddp = torch.load(result_file)

    module = runpy.run_path(str(script))
    single_state, single_logged = module["train_one_step"](str(tmp_path / "one"), 8 if replay else 4, replay)
    if replay:
        assert ddp["logged"]["replay_loss"] == pytest.approx(single_logged["replay_loss"], rel=1e-4)
    assert ddp["logged"]["contrastive_loss"] == pytest.approx(single_logged["contrastive_loss"], rel=1e-4)
    assert ddp["logged"]["contrastive_accuracy"] == pytest.approx(single_logged["contrastive_accuracy"])
    assert ddp["logged"]["loss"] == pytest.approx(single_logged["loss"], rel=1e-4)
    for name, value in single_state.items():
        torch.testing.assert_close(ddp["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    # the step moved the weights, so the comparison is not between two untouched models
    initial = module["build_model"]().state_dict()
    moved = [name for name, value in single_state.items() if not torch.allclose(value, initial[name])]
    assert "model.embed_tokens.weight" in moved and "model.layers.2.mlp.up_proj.weight" in moved
