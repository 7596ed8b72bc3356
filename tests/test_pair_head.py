"""Projection heads: `pair_head=` is trained, saved next to the model or adapter, reloaded (also on resume), LoRA-aware;
a trainable module kept on the trainer outside the model is refused by name."""

import copy

import pytest
import torch
from datasets import Dataset
from torch import nn

from tests.conftest import build_tiny_model
from xling_align import AFPConfig, AFPTrainer
from xling_align.trainers.engine_checks import UnsupportedSetupError
from xling_align.trainers.pair_head import PAIR_HEAD_FILE, load_pair_head

ROWS = {
    "prompt": ["Greet. Answer in German:", "Thank. Answer in French:", "", ""],
    "completion": [" Hallo!", " Merci.", "", ""],
    "source_sentence": ["Good morning", "Thank you", "The cat sleeps.", "Where is it?"],
    "target_sentence": ["Guten Morgen", "Merci", "El gato duerme.", "Wo ist es?"],
}


def make_head(seed=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 8))


def make_trainer(tmp_path, tokenizer, model=None, head=None, **kwargs):
    settings = dict(
        output_dir=str(tmp_path / "run"),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        activation_checkpointing=False,
        disable_tqdm=True,
        seed=0,
    )
    settings.update(kwargs)
    peft_config = settings.pop("peft_config", None)
    return AFPTrainer(
        model=model if model is not None else build_tiny_model("llama", num_layers=2),
        args=AFPConfig(**settings),
        train_dataset=Dataset.from_dict(ROWS),
        processing_class=tokenizer,
        pair_head=head,
        peft_config=peft_config,
    )


def pair_vectors(trainer):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    trainer.model.eval()
    with torch.no_grad():
        return trainer.encode_pairs(trainer.model, batch["pair_input_ids"], batch["pair_attention_mask"])


def test_head_is_trained_saved_and_reloaded(tmp_path, byte_tokenizer):
    head = make_head()
    initial = copy.deepcopy(head.state_dict())
    trainer = make_trainer(tmp_path, byte_tokenizer, head=head)
    trainer.train()
    assert not torch.allclose(head[0].weight, initial["0.weight"])  # it is in the optimizer
    vectors = pair_vectors(trainer)
    assert vectors.shape == (8, 8)  # the head's output size

    trainer.save_model(str(tmp_path / "final"))
    from safetensors.torch import load_file

    model_keys = load_file(str(tmp_path / "final" / "model.safetensors")).keys()
    assert not any("xling_pair_head" in key for key in model_keys)  # transformers' own file stays loadable
    assert (tmp_path / "final" / PAIR_HEAD_FILE).is_file()

    from transformers import AutoModelForCausalLM

    reloaded_model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "final"))
    reloaded_head = load_pair_head(make_head(seed=99), str(tmp_path / "final"))
    again = make_trainer(tmp_path, byte_tokenizer, model=reloaded_model, head=reloaded_head)
    torch.testing.assert_close(pair_vectors(again), vectors)


def test_head_under_lora_trains_with_the_adapter_and_reloads(tmp_path, byte_tokenizer):
    from peft import LoraConfig, PeftModel

    head = make_head()
    initial = copy.deepcopy(head.state_dict())
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = make_trainer(tmp_path, byte_tokenizer, head=head, peft_config=lora)
    base_before = build_tiny_model("llama", num_layers=2).state_dict()
    trainer.train()
    assert not torch.allclose(head[0].weight, initial["0.weight"])  # not frozen by PEFT
    base = trainer.model.get_base_model()
    assert torch.equal(base.model.embed_tokens.weight, base_before["model.embed_tokens.weight"])  # base frozen
    vectors = pair_vectors(trainer)

    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "adapter" / PAIR_HEAD_FILE).is_file()
    reloaded = PeftModel.from_pretrained(build_tiny_model("llama", num_layers=2), str(tmp_path / "adapter"))
    reloaded_head = load_pair_head(make_head(seed=99), str(tmp_path / "adapter"))
    again = make_trainer(tmp_path, byte_tokenizer, model=reloaded, head=reloaded_head)
    torch.testing.assert_close(pair_vectors(again), vectors)


def test_resuming_restores_the_head(tmp_path, byte_tokenizer):
    straight = make_trainer(tmp_path / "a", byte_tokenizer, head=make_head(), max_steps=2)
    straight.train()
    first = make_trainer(
        tmp_path / "b", byte_tokenizer, head=make_head(), max_steps=2, save_strategy="steps", save_steps=1
    )
    first.train()
    assert (tmp_path / "b" / "run" / "checkpoint-1" / PAIR_HEAD_FILE).is_file()
    resumed_head = make_head(seed=7)  # other initial weights: only the checkpoint can make it equal
    resumed = make_trainer(tmp_path / "b", byte_tokenizer, head=resumed_head, max_steps=2)
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "run" / "checkpoint-1"))
    for name, value in straight.pair_head.state_dict().items():
        torch.testing.assert_close(resumed_head.state_dict()[name], value, msg=name)


def test_a_trainable_module_on_the_trainer_outside_the_model_is_refused(tmp_path, byte_tokenizer):
    class ProjectedAFPTrainer(AFPTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.proj = nn.Linear(32, 16)  # what the old docstring invited: gradients, but never optimised

        def encode_pairs(self, model, input_ids, attention_mask):
            return self.proj(super().encode_pairs(model, input_ids, attention_mask))

    trainer = ProjectedAFPTrainer(
        model=build_tiny_model("llama", num_layers=2),
        args=AFPConfig(output_dir=str(tmp_path), max_steps=1, report_to="none", per_device_train_batch_size=4),
        train_dataset=Dataset.from_dict(ROWS),
        processing_class=byte_tokenizer,
    )
    with pytest.raises(
        UnsupportedSetupError,
        match=r"ProjectedAFPTrainer\.proj is a Linear with 528 trainable "
        r"parameters outside the model.*pair_head=proj",
    ):
        trainer.train()
    trainer.proj.requires_grad_(False)  # a frozen module is fine
    trainer.train()


def test_pair_head_refuses_find_unused_parameters(tmp_path, byte_tokenizer):
    with pytest.raises(UnsupportedSetupError, match="ddp_find_unused_parameters=True"):
        make_trainer(tmp_path, byte_tokenizer, head=make_head(), ddp_find_unused_parameters=True)
    assert make_trainer(tmp_path, byte_tokenizer, head=make_head()).args.ddp_find_unused_parameters is False
