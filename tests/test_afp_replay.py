"""Replay rows (`AFPConfig.replay_share` / `replay_file`, `replay_text` rows): the mixed loss against plain torch,
the share, padding-free and packing, gradient accumulation, LoRA, and the errors."""

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset

from tests.conftest import build_tiny_model
from xling_align import AFPConfig, AFPTrainer
from xling_align.trainers.afp_replay import REPLAY_FLAG

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROWS = {
    "prompt": ["Say hello in German:", "Count to three:", "Hi", "Name a colour in French:"],
    "completion": [" Hallo!", " one two three", " Hey there", " rouge"],
    "source_sentence": ["Good morning", "Thank you very much", "Yes", "The cat sleeps"],
    "target_sentence": ["Guten Morgen", "Danke schön", "Ja", "Le chat dort"],
}
REPLAY_TEXTS = ["The river runs to the sea.", "Der Hund schläft im Garten.", "Le soleil brille.", "Snow fell at night."]


def _config(tmp_path, **overrides):
    values = dict(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=4,
        report_to="none",
        activation_checkpointing=False,
        logging_steps=1,
        seed=0,
        save_strategy="no",
        disable_tqdm=True,
        learning_rate=1e-3,
    )
    values.update(overrides)
    return AFPConfig(**values)


def _trainer(tmp_path, byte_tokenizer, rows=None, replay=REPLAY_TEXTS, model=None, **overrides):
    overrides.setdefault("replay_share", 0.5 if replay is not None else 0.0)
    return AFPTrainer(
        model=model or build_tiny_model("llama"),
        args=_config(tmp_path, **overrides),
        train_dataset=Dataset.from_dict(rows or ROWS),
        processing_class=byte_tokenizer,
        replay_dataset=Dataset.from_dict({"text": replay}) if replay is not None else None,
    )


def _reference_loss(model, tokenizer, features, sft_weight, replay_weight):
    """Plain torch, row by row: sft_weight * mean completion-token CE + replay_weight * mean replay-token CE
    (contrastive term off), each mean over its own tokens of the whole batch."""
    sums = {False: 0.0, True: 0.0}
    counts = {False: 0, True: 0}
    for feature in features:
        kind = bool(feature.get(REPLAY_FLAG))
        start = 0
        for length in feature.get("seq_lengths") or [len(feature["input_ids"])]:  # a packed row's sequences apart
            ids = torch.tensor([feature["input_ids"][start : start + length]])
            targets = torch.tensor([feature["labels"][start : start + length]])[:, 1:]
            start += length
            logits = model(input_ids=ids).logits[:, :-1]
            sums[kind] = sums[kind] + F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
            )
            counts[kind] += int(targets.ne(-100).sum())
    return sft_weight * sums[False] / counts[False] + replay_weight * sums[True] / counts[True]


@pytest.mark.parametrize("layout", ["padded", "padding_free", "packed"])
def test_mixed_loss_matches_plain_torch(tmp_path, byte_tokenizer, layout):
    options = {
        "padded": {},
        "padding_free": {"padding_free": True},
        "packed": {"packing": True, "max_length": 48, "packing_strategy": "bfd"},
    }[layout]
    trainer = _trainer(tmp_path, byte_tokenizer, contrastive_weight=0.0, sft_weight=1.5, replay_weight=0.7, **options)
    features = [trainer.train_dataset[index] for index in range(len(trainer.train_dataset))]
    if layout != "packed":
        assert sum(bool(f[REPLAY_FLAG]) for f in features) == 4  # share 0.5 of 4 instructions: 4 replay rows
    model = trainer.model.eval()
    batch = trainer.data_collator(features)
    assert batch["input_ids"].shape[0] == (4 if layout == "padded" else 1)
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        expected = _reference_loss(model, byte_tokenizer, features, 1.5, 0.7)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    replay_logged = trainer._metrics["eval"]["replay_loss"][-1]
    only_replay = _reference_loss(model, byte_tokenizer, features, 0.0, 1.0)
    assert replay_logged == pytest.approx(only_replay.item(), rel=1e-5)


def test_replay_weight_zero_leaves_the_afp_loss(tmp_path, byte_tokenizer):
    trainer = _trainer(tmp_path, byte_tokenizer, contrastive_weight=0.0, replay_weight=0.0)
    features = [trainer.train_dataset[index] for index in range(len(trainer.train_dataset))]
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model.eval(), dict(trainer.data_collator(features)))
        expected = _reference_loss(trainer.model, byte_tokenizer, features, 1.5, 0.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_share_sets_the_number_of_replay_rows(tmp_path, byte_tokenizer):
    rows = {key: values * 3 for key, values in ROWS.items()}  # 12 rows
    trainer = _trainer(tmp_path, byte_tokenizer, rows=rows, replay_share=0.25)
    flags = trainer.train_dataset[REPLAY_FLAG]
    assert sum(flags) == 4 and len(flags) == 16  # 4 / 16 = 0.25, texts repeated beyond the source's 4


def test_gradient_accumulation_matches_one_big_batch(tmp_path, byte_tokenizer):
    # two micro-batches of 4 with accumulation == one batch of 8: the replay term is a mean over the window's
    # replay tokens, as the SFT term is over its completion tokens
    common = dict(contrastive_weight=0.0, replay_weight=2.0, shuffle_dataset=False, max_steps=1)
    big = _trainer(tmp_path / "big", byte_tokenizer, per_device_train_batch_size=8, **common)
    big.train()
    accumulated = _trainer(
        tmp_path / "acc", byte_tokenizer, per_device_train_batch_size=4, gradient_accumulation_steps=2, **common
    )
    # the same rows in the same order, one batch vs two micro-batches
    assert big.train_dataset[REPLAY_FLAG] == accumulated.train_dataset[REPLAY_FLAG]
    accumulated.train()
    for a, b in zip(big.model.parameters(), accumulated.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("strategy,contrastive_weight", [("bfd", 1.0), ("wrapped", 1.0), ("bfd", 0.0)])
def test_packing_keeps_replay_rows_apart_and_trains(tmp_path, byte_tokenizer, strategy, contrastive_weight):
    trainer = _trainer(
        tmp_path,
        byte_tokenizer,
        packing=True,
        packing_strategy=strategy,
        max_length=64,
        contrastive_weight=contrastive_weight,
    )
    replay_rows = [row for row in trainer.train_dataset if row[REPLAY_FLAG]]
    assert replay_rows and all(not row.get("source_input_ids") for row in replay_rows)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "replay_loss" in entry]
    assert logged and logged[0]["replay_loss"] > 0


def test_lora_trains_with_replay(tmp_path, byte_tokenizer):
    from peft import LoraConfig

    trainer = AFPTrainer(
        model=build_tiny_model("llama"),
        args=_config(tmp_path, replay_share=0.5),
        train_dataset=Dataset.from_dict(ROWS),
        processing_class=byte_tokenizer,
        replay_dataset=Dataset.from_dict({"text": REPLAY_TEXTS}),
        peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    trainer.train()
    assert any("replay_loss" in entry for entry in trainer.state.log_history)


def test_replay_text_rows_of_the_dataset_are_replay_rows(tmp_path, byte_tokenizer):
    rows = {key: values + [""] * 2 for key, values in ROWS.items()}
    rows["replay_text"] = [""] * 4 + REPLAY_TEXTS[:2]
    trainer = _trainer(tmp_path, byte_tokenizer, rows=rows, replay=None)
    assert sum(trainer.train_dataset[REPLAY_FLAG]) == 2
    trainer.train()
    assert any("replay_loss" in entry for entry in trainer.state.log_history)


def test_replay_file_txt(tmp_path, byte_tokenizer):
    path = tmp_path / "replay.txt"
    path.write_text("\n".join(REPLAY_TEXTS) + "\n\n", encoding="utf-8")
    trainer = _trainer(tmp_path, byte_tokenizer, replay=None, replay_share=0.5, replay_file=str(path))
    assert sum(trainer.train_dataset[REPLAY_FLAG]) == 4


def test_errors_name_the_input(tmp_path, byte_tokenizer):
    with pytest.raises(ValueError, match=r"replay_share=1.0 must be a number in \[0, 1\)"):
        _config(tmp_path, replay_share=1.0)
    with pytest.raises(ValueError, match="replay_file=.* but replay_share=0"):
        _config(tmp_path, replay_file="x.txt")
    with pytest.raises(ValueError, match="replay_share=0.5 but no replay text"):
        _trainer(tmp_path, byte_tokenizer, replay=None, replay_share=0.5)
    with pytest.raises(ValueError, match="replay_file='missing.txt' does not exist"):
        _trainer(tmp_path, byte_tokenizer, replay=None, replay_share=0.5, replay_file="missing.txt")
    with pytest.raises(ValueError, match="was not prepared"):
        _trainer(tmp_path, byte_tokenizer, dataset_kwargs={"skip_prepare_dataset": True})
    with pytest.raises(ValueError, match="needs a 'text' column"):
        AFPTrainer(
            model=build_tiny_model("llama"),
            args=_config(tmp_path, replay_share=0.5),
            train_dataset=Dataset.from_dict(ROWS),
            processing_class=byte_tokenizer,
            replay_dataset=Dataset.from_dict({"body": REPLAY_TEXTS}),
        )
