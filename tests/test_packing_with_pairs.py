"""`packing=True` with the contrastive term: the instructions packed by TRL, each translation pair carried along."""

from collections import Counter

import pytest
from datasets import Dataset

from tests.conftest import build_tiny_model
from xling_align import AFPConfig, AFPTrainer


def _rows(count: int = 12, pair_only: int = 3) -> Dataset:
    # row i: an instruction naming i and its pair naming i, of lengths that vary (so packing has work to do);
    # then `pair_only` rows with a pair and no instruction
    prompts = [f"Question {i}: say {'a' * (i % 5)} in German" for i in range(count)] + [""] * pair_only
    completions = [f" answer {i}" + " x" * (i % 7) for i in range(count)] + [""] * pair_only
    sources = [f"source {i}" for i in range(count + pair_only)]
    targets = [f"target {i}" for i in range(count + pair_only)]
    return Dataset.from_dict(
        {"prompt": prompts, "completion": completions, "source_sentence": sources, "target_sentence": targets}
    )


def _trainer(
    tmp_path, byte_tokenizer, packing: bool, strategy: str = "bfd", steps: int = 2, eval_dataset=None, **overrides
):
    args = AFPConfig(
        output_dir=str(tmp_path / f"pack-{packing}-{strategy}"),
        max_steps=steps,
        per_device_train_batch_size=2,
        report_to="none",
        activation_checkpointing=False,
        packing=packing,
        packing_strategy=strategy,
        max_length=96,
        logging_steps=1,
        seed=0,
        save_strategy="no",
        disable_tqdm=True,
        **overrides,
    )
    return AFPTrainer(
        model=build_tiny_model("llama"),
        args=args,
        train_dataset=_rows(),
        eval_dataset=eval_dataset,
        processing_class=byte_tokenizer,
    )


def _scored_tokens(batch) -> Counter:
    # every label the loss uses: TRL's loss shifts labels by one, so position 0 of a row never counts
    labels = batch["labels"][:, 1:]
    return Counter(labels[labels != -100].tolist())


def _decoded_pairs(trainer, batch) -> list[tuple[str, str]]:
    ids, mask = batch["pair_input_ids"], batch["pair_attention_mask"]
    texts = [trainer._tokenizer.decode(row[m.bool()]) for row, m in zip(ids, mask, strict=True)]
    half = len(texts) // 2
    return list(zip(texts[:half], texts[half:], strict=True))


@pytest.mark.parametrize("strategy", ["bfd", "bfd_split", "wrapped"])
def test_packed_rows_score_every_answer_token_once_and_carry_every_pair_once(tmp_path, byte_tokenizer, strategy):
    unpacked = _trainer(tmp_path, byte_tokenizer, packing=False)
    packed = _trainer(tmp_path, byte_tokenizer, packing=True, strategy=strategy)
    assert len(packed.train_dataset) < len(unpacked.train_dataset)  # rows really were packed

    def whole_epoch(trainer):
        dataset = trainer.train_dataset
        return [trainer.data_collator([dataset[i]]) for i in range(len(dataset))]

    packed_batches, unpacked_batches = whole_epoch(packed), whole_epoch(unpacked)
    if strategy != "wrapped":
        assert "position_ids" in packed_batches[0]  # BFD: collated padding-free, rows kept apart
    # the same completion tokens are learnt, each once (the packed collator masks each row's first token)
    packed_scored = sum(map(_scored_tokens, packed_batches), Counter())
    unpacked_scored = sum(map(_scored_tokens, unpacked_batches), Counter())
    if strategy == "wrapped":
        # TRL's wrapped packing cuts rows anywhere: the token right after a cut starts a packed row, so nothing
        # predicts it (a cost of that strategy, pairs or not); nothing is scored twice
        assert not packed_scored - unpacked_scored
        assert (unpacked_scored - packed_scored).total() <= len(packed_batches) - 1
    else:
        assert packed_scored == unpacked_scored
    # every pair once, and an instruction's pair in the packed row that holds the instruction's answer
    seen = []
    for batch in packed_batches:
        pairs = _decoded_pairs(packed, batch)
        seen += pairs
        answers = packed._tokenizer.decode(batch["input_ids"][0])
        for source, target in pairs:
            number = source.split()[1]
            assert target == f"target {number}"
            if int(number) < 12 and strategy == "bfd":  # the pair-only rows (12..14) are dealt out in turn
                assert f"answer {number}" in answers
    assert sorted(seen) == sorted((f"source {i}", f"target {i}") for i in range(15))


def test_packed_afp_run_trains_and_logs_the_contrastive_loss(tmp_path, byte_tokenizer):
    trainer = _trainer(
        tmp_path, byte_tokenizer, packing=True, steps=3, eval_packing=True, eval_dataset=_rows(count=4, pair_only=2)
    )
    assert "seq_lengths" in trainer.eval_dataset.column_names  # the held-out rows are packed too
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "contrastive_loss" in entry]
    assert len(logged) == 3
    assert all(entry["contrastive_loss"] > 0 and entry["loss"] > 0 for entry in logged)
    assert trainer.contrastive_skipped_batches == 0  # every packed batch brought several pairs
    assert any((a != b).any() for a, b in zip(before, trainer.model.parameters(), strict=True))
    metrics = trainer.evaluate()
    assert metrics["eval_contrastive_loss"] > 0 and metrics["eval_contrastive_skipped"] == 0
