"""AlignmentEvalCallback inside a plain transformers Trainer: metrics, best-model selection, log history."""

import pytest
import torch
from transformers import TrainerCallback

from tests.conftest import build_tiny_model
from tests.test_analysis_cli import PAIRS
from xling_align.alignment.pooling import embed_sentences
from xling_align.analysis.callback import AlignmentEvalCallback
from xling_align.analysis.metrics import alignment_metrics


class _FixedLengthText(torch.utils.data.Dataset):
    """Causal-LM rows of 16 byte tokens (equal lengths: the default collator just stacks them)."""

    def __init__(self, tokenizer, texts):
        self.rows = [tokenizer(text)["input_ids"][:16] for text in texts]
        self.rows = [ids + [0] * (16 - len(ids)) for ids in self.rows]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        ids = torch.tensor(self.rows[index])
        return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}


@pytest.fixture
def pairs_tsv(tmp_path):
    path = tmp_path / "heldout.en-de.tsv"
    path.write_text("en\tde\n" + "".join(f"{en}\t{de}\n" for en, de in PAIRS), encoding="utf-8")
    return path


def _trainer(tmp_path, pairs_tsv, byte_tokenizer, attach_trainer=False):
    from transformers import Trainer, TrainingArguments

    texts = [f"{en} {de}" for en, de in PAIRS]
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        max_steps=4,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=5e-3,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        metric_for_best_model="alignment_retrieval_accuracy",
        load_best_model_at_end=True,
        report_to=[],
        use_cpu=True,
        logging_steps=1,
        disable_tqdm=True,
    )
    callback = AlignmentEvalCallback(pairs_tsv, layer=1, pooling="mean")
    trainer = Trainer(
        model=build_tiny_model("llama", num_layers=2),
        args=args,
        train_dataset=_FixedLengthText(byte_tokenizer, texts),
        eval_dataset=_FixedLengthText(byte_tokenizer, texts[:4]),
        processing_class=byte_tokenizer,
        callbacks=[callback],
    )
    if attach_trainer:
        callback.trainer = trainer
    return trainer


def test_callback_feeds_best_model_selection_and_log_history(tmp_path, pairs_tsv, byte_tokenizer):
    trainer = _trainer(tmp_path, pairs_tsv, byte_tokenizer)
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert [entry["step"] for entry in evaluations] == [2, 4]
    for entry in evaluations:  # merged into the evaluation's own log entry
        assert 0.0 <= entry["eval_alignment_retrieval_accuracy"] <= 1.0
        assert {"eval_alignment_retrieval_accuracy_en_to_de", "eval_alignment_retrieval_accuracy_de_to_en"} <= set(
            entry
        )
    best = max(evaluations, key=lambda entry: entry["eval_alignment_retrieval_accuracy"])
    assert trainer.state.best_metric == best["eval_alignment_retrieval_accuracy"]

    # a direct evaluate() returns the same number as an independent computation on the held-out pairs
    metrics = trainer.evaluate()
    a = embed_sentences(trainer.model, byte_tokenizer, [en for en, _ in PAIRS], layer=1)
    b = embed_sentences(trainer.model, byte_tokenizer, [de for _, de in PAIRS], layer=1)
    expected = alignment_metrics(a, b)
    assert metrics["eval_alignment_retrieval_accuracy"] == pytest.approx(expected.retrieval_accuracy)
    assert metrics["eval_alignment_retrieval_accuracy_en_to_de"] == pytest.approx(expected.retrieval_accuracy_a_to_b)
    assert metrics["eval_alignment_mexa"] == pytest.approx(expected.mexa_alignment)


def test_callback_logs_through_the_trainer_when_attached(tmp_path, pairs_tsv, byte_tokenizer):
    trainer = _trainer(tmp_path, pairs_tsv, byte_tokenizer, attach_trainer=True)
    seen = []

    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            seen.append(dict(logs))

    trainer.add_callback(Recorder())
    metrics = trainer.evaluate()
    assert "eval_alignment_retrieval_accuracy" in metrics
    assert any("eval_alignment_retrieval_accuracy" in logs for logs in seen)  # reporters see it


def test_callback_rejects_bad_pairs_file_at_construction(tmp_path):
    single = tmp_path / "single.tsv"
    single.write_text("en\ten\nA.\tB.\nC.\tD.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="single language"):
        AlignmentEvalCallback(single, layer=1)
    with pytest.raises(ValueError, match="pooling='max'"):
        AlignmentEvalCallback(single, pooling="max")


def test_afp_trainer_selects_checkpoints_by_held_out_alignment(tmp_path, pairs_tsv, byte_tokenizer):
    from datasets import Dataset

    from xling_align import AFPConfig, AFPTrainer

    rows = Dataset.from_dict({"source_sentence": [en for en, _ in PAIRS], "target_sentence": [de for _, de in PAIRS]})
    args = AFPConfig(
        output_dir=str(tmp_path / "afp"),
        max_steps=2,
        per_device_train_batch_size=6,
        per_device_eval_batch_size=6,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        metric_for_best_model="alignment_retrieval_accuracy",
        load_best_model_at_end=True,
        alignment_eval_file=str(pairs_tsv),
        contrastive_layer=1,
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = AFPTrainer(
        model=build_tiny_model("llama", num_layers=2),
        args=args,
        train_dataset=rows,
        eval_dataset=rows,
        processing_class=byte_tokenizer,
    )
    reported = []  # what reporting integrations (TensorBoard, W&B, console) receive through on_log

    class Recorder(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            reported.append(dict(logs or {}))

    trainer.add_callback(Recorder())
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_alignment_retrieval_accuracy" in entry]
    assert [entry["step"] for entry in evaluations] == [1, 2]
    # one log_history entry per evaluation holds both the trainer's eval metrics and the alignment ones
    assert all("eval_contrastive_loss" in entry for entry in evaluations)
    assert sum("eval_alignment_retrieval_accuracy" in logs for logs in reported) == 2
    assert trainer.state.best_metric == max(entry["eval_alignment_retrieval_accuracy"] for entry in evaluations)
