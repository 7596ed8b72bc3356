"""Padding-free instruction batches (`padding_free=True`): exact where the attention allows it, refused elsewhere."""

import pytest
from datasets import Dataset

from tests.conftest import build_tiny_model
from xling_align import AFPConfig, AFPTrainer
from xling_align.trainers.engine_checks import UnsupportedSetupError
from xling_align.trainers.padding_free import padding_free_mismatch

# instructions of very different lengths, so a padded batch carries much padding; every row has a pair
ROWS = {
    "prompt": ["Say hello in German:", "Count to three:", "Hi", "Name a colour in French:"] * 2,
    "completion": [" Hallo!", " one two three and that is all", " Hey there", " rouge"] * 2,
    "source_sentence": ["Good morning", "Thank you very much", "Yes", "The cat sleeps"] * 2,
    "target_sentence": ["Guten Morgen", "Danke schön", "Ja", "Le chat dort"] * 2,
}


def _train(tmp_path, byte_tokenizer, padding_free: bool, arch: str = "llama", steps: int = 3, **overrides):
    args = AFPConfig(
        output_dir=str(tmp_path / f"pf-{padding_free}"),
        max_steps=steps,
        per_device_train_batch_size=4,
        report_to="none",
        activation_checkpointing=False,
        padding_free=padding_free,
        logging_steps=1,
        seed=0,
        save_strategy="no",
        disable_tqdm=True,
        **overrides,
    )
    trainer = AFPTrainer(
        model=build_tiny_model(arch), args=args, train_dataset=Dataset.from_dict(ROWS), processing_class=byte_tokenizer
    )
    trainer.train()
    return trainer


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # no dropout: the same random draws in both runs
def test_padding_free_afp_run_has_the_padded_runs_losses_and_weights(tmp_path, byte_tokenizer, arch):
    padded = _train(tmp_path, byte_tokenizer, padding_free=False, arch=arch)
    flat = _train(tmp_path, byte_tokenizer, padding_free=True, arch=arch)
    assert flat.data_collator.base_collator.padding_free  # the batches really were flattened

    def logged(trainer, key):
        return [entry[key] for entry in trainer.state.log_history if key in entry and "train_runtime" not in entry]

    for key in ("loss", "contrastive_loss"):
        assert len(logged(flat, key)) == 3
        assert logged(flat, key) == pytest.approx(logged(padded, key), abs=1e-6), key
    difference = max(
        (a - b).abs().max().item() for a, b in zip(padded.model.parameters(), flat.model.parameters(), strict=True)
    )
    assert difference <= 1e-6


def test_padding_free_keeps_max_length(tmp_path, byte_tokenizer):
    # TRL refuses padding_free with max_length (it says max_length would not be enforced); AFPTrainer lets the
    # preparation truncate as without padding-free, and max_length is the user's value again afterwards
    trainer = _train(tmp_path, byte_tokenizer, padding_free=True, steps=1, max_length=24)
    assert trainer.args.max_length == 24
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    assert max(lengths) == 24 and min(lengths) < 24


def test_the_max_length_is_hidden_from_trls_check_only_until_the_first_preparation():
    from types import SimpleNamespace

    from xling_align.trainers.trl_workarounds import give_back_max_length, padding_free_length_check_passed

    def args(**kwargs):
        return SimpleNamespace(
            **{"padding_free": True, "packing": False, "max_length": 24, "dataset_kwargs": None, **kwargs}
        )

    trainer, given = SimpleNamespace(), args()
    seen = []
    with padding_free_length_check_passed(trainer, given):
        seen.append(given.max_length)  # what TRL's check reads
        give_back_max_length(trainer, given)  # the first preparation
        seen.append(given.max_length)
        give_back_max_length(trainer, given)  # a later preparation: nothing left to give back
        seen.append(given.max_length)
    assert seen == [None, 24, 24] and given.max_length == 24 and not vars(trainer)
    with pytest.raises(RuntimeError):  # __init__ failing before any preparation: max_length is back all the same
        with padding_free_length_check_passed(trainer, given):
            raise RuntimeError
    assert given.max_length == 24
    for kept in (args(packing=True), args(padding_free=False), args(dataset_kwargs={"skip_prepare_dataset": True})):
        with padding_free_length_check_passed(trainer, kept):
            assert kept.max_length == 24  # TRL's own rules apply


def test_padding_free_is_refused_where_rows_would_attend_to_each_other(tmp_path, byte_tokenizer):
    # XGLM builds its causal mask without position_ids: a flattened batch would mix its rows
    with pytest.raises(UnsupportedSetupError, match=r"padding_free=True needs .*XGLMForCausalLM.*attend to the row"):
        _train(tmp_path, byte_tokenizer, padding_free=True, arch="xglm", steps=1)


@pytest.mark.parametrize(
    "arch, exact", [("llama", True), ("qwen2", True), ("gpt2", True), ("xglm", False), ("bloom", False)]
)
def test_padding_free_probe_per_architecture(arch, exact):
    model = build_tiny_model(arch)
    model.train()
    assert (padding_free_mismatch(model) is None) == exact
    assert model.training  # the probe gives the model back in its mode


def test_padding_free_module_examples():
    import doctest

    from xling_align.trainers import padding_free

    assert doctest.testmod(padding_free).failed == 0


@pytest.mark.parametrize("arch, exact", [("llama", True), ("xglm", False)])
def test_padding_free_probe_in_bf16(arch, exact):
    # the recipes load bf16 models: the probe's verdict must not change with the precision
    import torch

    model = build_tiny_model(arch).to(torch.bfloat16)
    assert (padding_free_mismatch(model) is None) == exact
