"""What a third-party `AFPTrainer` subclass returns from `encode_pairs` / `compute_contrastive_loss` is checked.

A wrong shape used to fail deep inside the loss, a wrong type with a bare AttributeError, and vectors or a
loss without a gradient trained nothing without a word. Each now stops at the first step, naming the method.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from datasets import Dataset  # noqa: E402
from transformers import ByT5Tokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from xling_align import AFPConfig, AFPTrainer  # noqa: E402
from xling_align.alignment.contrastive_loss import ContrastiveOutput  # noqa: E402

PAIRS = 4


def _train(tmp_path, trainer_class, **settings):
    tokenizer = ByT5Tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=384,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    rows = Dataset.from_dict(
        {
            "source_sentence": [f"Good morning {i}" for i in range(PAIRS)],
            "target_sentence": [f"Guten Morgen {i}" for i in range(PAIRS)],
        }
    )
    args = AFPConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=PAIRS,
        report_to="none",
        save_strategy="no",
        **settings,
    )
    trainer = trainer_class(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    return trainer


def _vectors_subclass(change):
    class Vectors(AFPTrainer):
        def encode_pairs(self, model, input_ids, attention_mask):
            return change(super().encode_pairs(model, input_ids, attention_mask))

    return Vectors


def _loss_subclass(change):
    class Loss(AFPTrainer):
        def compute_contrastive_loss(self, source_embeddings, target_embeddings):
            return change(super().compute_contrastive_loss(source_embeddings, target_embeddings))

    return Loss


@pytest.mark.parametrize(
    ("change", "error", "expected"),
    [
        (lambda v: v[: v.shape[0] // 2], ValueError, rf"returned shape \({PAIRS}, 32\) for {2 * PAIRS} sentences"),
        (lambda v: v[:, None, :], ValueError, rf"returned shape \({2 * PAIRS}, 1, 32\)"),
        (lambda v: list(v), TypeError, "returned a list; it must return one tensor"),
        (
            lambda v: v.detach(),
            RuntimeError,
            "returned vectors without a gradient, so the contrastive loss would train nothing",
        ),
    ],
)
def test_encode_pairs_results_that_cannot_be_used_are_named(tmp_path, change, error, expected):
    with pytest.raises(error, match="Vectors.encode_pairs " + expected):
        _train(tmp_path, _vectors_subclass(change))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda output: float(output.loss.detach()),
            "returned a float; it must return a xling_align.alignment.contrastive_loss.ContrastiveOutput",
        ),
        (lambda output: output.loss, "returned a Tensor; it must return"),
        (
            lambda output: output._replace(loss=float(output.loss.detach())),
            "returned a loss of a float; ContrastiveOutput.loss must",
        ),
        (lambda output: output._replace(loss=output.loss.expand(3)), r"returned a loss of shape \(3,\)"),
    ],
)
def test_compute_contrastive_loss_results_of_the_wrong_kind_are_named(tmp_path, change, expected):
    with pytest.raises(TypeError, match="Loss.compute_contrastive_loss " + expected):
        _train(tmp_path, _loss_subclass(change))


def test_a_detached_contrastive_loss_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="Loss.compute_contrastive_loss returned a loss without a gradient"):
        _train(tmp_path, _loss_subclass(lambda output: output._replace(loss=output.loss.detach())))


def test_overrides_that_return_what_is_documented_train(tmp_path):
    """The checks refuse nothing valid: another loss as a ContrastiveOutput, with an int num_correct, trains."""

    def unchanged(output):
        return output  # the default result passes through the checks as it is

    class Cosine(AFPTrainer):
        def compute_contrastive_loss(self, source_embeddings, target_embeddings):
            similarity = torch.nn.functional.cosine_similarity(source_embeddings, target_embeddings)
            return ContrastiveOutput((1 - similarity).mean(), 0, len(source_embeddings), len(source_embeddings))

    before = None
    for trainer_class in (_loss_subclass(unchanged), Cosine):
        trainer = _train(tmp_path, trainer_class)
        logged = next(entry for entry in trainer.state.log_history if "contrastive_loss" in entry)
        assert logged["contrastive_loss"] > 0 and logged["contrastive_loss"] != before
        before = logged["contrastive_loss"]


def _ids_subclass(change):
    class Ids(AFPTrainer):
        def tokenize_pair(self, source, target, max_length):
            return change(source, target, *super().tokenize_pair(source, target, max_length))

    return Ids


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda source, target, s, t: (source, target), "returned str 'Good morning 0' as one side of row 0"),
        (lambda source, target, s, t: s + t, "returned list .* for row 0 of the train dataset"),
        (lambda source, target, s, t: ({"input_ids": s}, {"input_ids": t}), "returned dict .* as one side of row 0"),
    ],
)
def test_tokenize_pair_results_that_are_not_two_id_lists_are_named(tmp_path, change, expected):
    with pytest.raises(TypeError, match="Ids.tokenize_pair " + expected + ".*it must return two lists of token ids"):
        _train(tmp_path, _ids_subclass(change))


def test_tokenize_pair_may_return_one_dimensional_tensors(tmp_path):
    reference = _train(tmp_path / "lists", AFPTrainer)
    tensors = _train(
        tmp_path / "tensors", _ids_subclass(lambda source, target, s, t: (torch.tensor(s), torch.tensor(t)))
    )
    assert tensors.train_dataset["source_input_ids"] == reference.train_dataset["source_input_ids"]
