"""AFPConfig: defaults of the reference scripts, validation that names the field, CPU-friendly bf16."""

import pytest
import torch

from xling_align import AFPConfig


def make(tmp_path, **kwargs):
    return AFPConfig(output_dir=str(tmp_path), report_to="none", **kwargs)


def test_defaults_reproduce_the_reference_scripts(tmp_path):
    config = make(tmp_path)
    assert (config.contrastive_weight, config.sft_weight) == (1.0, 1.5)
    assert config.contrastive_temperature == 0.05
    assert (config.contrastive_layer, config.contrastive_pooling) == (1, "last")
    assert config.contrastive_symmetric is False and config.gather_across_processes is True
    assert config.alignment_eval_file is None
    assert config.packing is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only default")
def test_bf16_default_is_off_without_a_bf16_gpu(tmp_path):
    # SFTConfig's default bf16=True makes TrainingArguments fail on a CPU-only machine
    assert make(tmp_path).bf16 is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"contrastive_temperature": 0.0}, "contrastive_temperature=0.0"),
        ({"contrastive_temperature": -1.0}, "contrastive_temperature=-1.0"),
        ({"contrastive_weight": -0.5}, "contrastive_weight=-0.5"),
        ({"sft_weight": float("nan")}, "sft_weight=nan"),
        ({"contrastive_weight": 0.0, "sft_weight": 0.0}, "both 0"),
        ({"contrastive_pooling": "max"}, "contrastive_pooling='max'"),
        ({"contrastive_layer": 1.5}, "contrastive_layer=1.5"),
        ({"contrastive_max_length": 0}, "contrastive_max_length=0"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size=0 must be a positive integer"),
        ({"per_device_eval_batch_size": -2}, "per_device_eval_batch_size=-2"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps=0"),
        ({"max_length": 0}, "max_length=0 must be a positive number"),
        ({"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": True}}, "use_reentrant"),
    ],
)
def test_invalid_values_fail_naming_the_field(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        make(tmp_path, **kwargs)


def test_packing_is_allowed_with_and_without_the_contrastive_term(tmp_path):
    # the pairs travel with the packed instructions (trainers/afp_packing.py; tests/test_packing_with_pairs.py)
    assert make(tmp_path, packing=True, contrastive_weight=0.0).packing is True
    assert make(tmp_path, packing=True, contrastive_weight=1.0, eval_packing=True).packing is True


def test_command_line_parsing_reaches_the_afp_fields(tmp_path):
    from trl import TrlParser

    (config,) = TrlParser((AFPConfig,)).parse_args_and_config(
        [
            "--output_dir",
            str(tmp_path),
            "--contrastive_layer",
            "-1",
            "--contrastive_pooling",
            "mean",
            "--contrastive_symmetric",
            "true",
            "--alignment_eval_file",
            "pairs.tsv",
            "--report_to",
            "none",
        ]
    )
    assert (config.contrastive_layer, config.contrastive_pooling) == (-1, "mean")
    assert config.contrastive_symmetric is True and config.alignment_eval_file == "pairs.tsv"
