"""Recipes in recipes/: they parse (offline, nothing downloaded) into the settings they promise."""

import os
from pathlib import Path

import pytest

from xling_align.pipeline.training_script import RecipeError, parse_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@pytest.fixture
def no_downloads(monkeypatch):
    """Any network connection fails the test: parsing a recipe must not download anything."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_xglm_564m_recipe_is_the_reference_setting(no_downloads):
    # --use_cpu only lets bf16 pass validation on this CPU-only machine; it is not a hyperparameter
    script_args, training_args, model_args = parse_recipe(
        ["--config", str(RECIPES / "xglm-564m.yaml"), "--use_cpu", "true", "--data_input", "/data/bactrian-x"]
    )
    # the reference values, written out from the AFP paper's public scripts (docs: METHOD.md)
    expected_training = {
        "learning_rate": 1e-5,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.03,
        "max_length": 512,
        "max_steps": 5000,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "bf16": True,
        "packing": False,
        "contrastive_weight": 1.0,
        "sft_weight": 1.5,
        "contrastive_temperature": 0.05,
        "contrastive_layer": 1,
        "contrastive_pooling": "last",
        "contrastive_symmetric": False,
        "gather_across_processes": True,
    }
    for name, value in expected_training.items():
        actual = getattr(training_args, name)
        actual = getattr(actual, "value", actual)  # enums (SchedulerType) compare by value
        assert actual == value, f"{name}: {actual!r} != reference {value!r}"
    assert model_args.model_name_or_path == "facebook/xglm-564M"
    assert model_args.use_peft is False  # full fine-tuning
    assert script_args.data_source == "bactrian-x"
    assert script_args.languages == ["en", "zh"]
    # the reference's data options, plus held-out pairs for checkpoint selection (it selected on a test split)
    assert script_args.data_options == {
        "mode": "bilingual",
        "cross_probability": 0.5,
        "repeat": 3,
        "seed": 42,
        "heldout_size": 200,
    }
    assert training_args.load_best_model_at_end and training_args.metric_for_best_model == "eval_contrastive_loss"


@pytest.mark.parametrize("name", ["tiny", "xglm-564m", "bloom-560m", "llama-lora", "qwen-lora"])
def test_every_recipe_parses(name, no_downloads):
    script_args, training_args, model_args = parse_recipe(
        ["--config", str(RECIPES / f"{name}.yaml"), "--use_cpu", "true"]
    )
    assert model_args.model_name_or_path
    assert training_args.contrastive_layer == 1 and training_args.contrastive_pooling == "last"
    if name.endswith("-lora"):
        assert model_args.use_peft and model_args.lora_target_modules == "all-linear"


def test_command_line_overrides_the_recipe():
    _, training_args, _ = parse_recipe(
        ["--config", str(RECIPES / "tiny.yaml"), "--max_steps", "3", "--contrastive_layer", "2", "--output_dir", "x"]
    )
    assert (training_args.max_steps, training_args.contrastive_layer, training_args.output_dir) == (3, 2, "x")


def test_output_is_the_same_setting_as_output_dir():
    tiny = str(RECIPES / "tiny.yaml")
    assert parse_recipe(["--config", tiny, "--output", "a"])[1].output_dir == "a"
    assert parse_recipe(["--config", tiny, "--output_dir", "b"])[1].output_dir == "b"
    assert parse_recipe(["--config", tiny])[1].output_dir == "runs/tiny"  # the recipe's output_dir


def test_tiny_recipe_finds_its_data_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script_args, _, _ = parse_recipe(["--config", str(RECIPES / "tiny.yaml")])
    for path in (script_args.dataset_path, script_args.eval_dataset_path):
        assert os.path.isabs(path) and os.path.isfile(path)
        assert Path(path).parent.name == "tiny" and Path(path).parent.parent.name == "resources"


def test_unknown_recipe_key_names_it_and_the_closest(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text((RECIPES / "tiny.yaml").read_text() + "\ncontrastive_temprature: 0.1\n")
    with pytest.raises(RecipeError) as caught:
        parse_recipe(["--config", str(recipe)])
    message = str(caught.value)
    assert "'contrastive_temprature'" in message and "did you mean 'contrastive_temperature'" in message
    assert str(recipe) in message


@pytest.mark.parametrize("flag", ["--learnin_rate", "--learning_rat"])  # a prefix is not taken as the full name
def test_unknown_command_line_flag_names_it_and_the_closest(flag):
    with pytest.raises(RecipeError, match=f"unknown setting '{flag[2:]}'.*did you mean 'learning_rate'"):
        parse_recipe(["--config", str(RECIPES / "tiny.yaml"), flag, "0.1"])


@pytest.mark.parametrize(
    ("line", "flags", "expected"),
    [
        ("max_steps: 40x", [], "recipe '{recipe}': max_steps: '40x' is not a valid integer"),
        ("max_steps: 2.5", [], "recipe '{recipe}': max_steps: 2.5 is not a valid integer"),
        ("learning_rate: [0.1]", [], "recipe '{recipe}': learning_rate: [0.1] is not a valid number"),
        ("seed: 0", ["--learning_rate", "fast"], "command line: learning_rate: 'fast' is not a valid number"),
        ("seed: 0", ["--bf16", "maybe"], "command line: bf16: Truthy value expected"),
    ],
)
def test_mistyped_value_is_one_line_naming_key_value_and_type(tmp_path, capsys, line, flags, expected):
    from xling_align.cli import main as cli_main

    recipe = tmp_path / "typo.yaml"
    key = line.split(":")[0] + ":"  # the recipe's own line for that key gives way (a key may be set once)
    kept = [text for text in (RECIPES / "tiny.yaml").read_text().splitlines() if not text.startswith(key)]
    recipe.write_text("\n".join(kept) + f"\n{line}\n")
    assert cli_main(["train", "--config", str(recipe), *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1  # one line, no usage text
    assert captured.err.startswith("xling-align train: error: " + expected.format(recipe=recipe))


def test_recipe_modules_examples_run():
    import doctest

    from xling_align.pipeline import recipe_parser, script_arguments

    assert doctest.testmod(recipe_parser).failed == 0 and doctest.testmod(script_arguments).failed == 0


def test_invalid_afp_value_is_reported_with_its_field():
    with pytest.raises(RecipeError, match="contrastive_temperature"):
        parse_recipe(["--config", str(RECIPES / "tiny.yaml"), "--contrastive_temperature", "0"])


def test_missing_pkg_file_is_reported():
    with pytest.raises(RecipeError, match="holds no 'resources/tiny/nope.jsonl'"):
        parse_recipe(
            ["--config", str(RECIPES / "tiny.yaml"), "--dataset_path", "pkg://xling_align/resources/tiny/nope.jsonl"]
        )


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in sorted((RECIPES / "accelerate").glob("*.yaml")):
        kinds[path.stem] = load_config_from_file(str(path)).distributed_type.value
    assert kinds == {
        "cpu-2proc": "MULTI_GPU",
        "ddp": "MULTI_GPU",
        "deepspeed-zero2": "DEEPSPEED",
        "fsdp": "FSDP",
    }


def test_gpu_recipe_on_a_cpu_machine_says_how_to_run_it():
    import torch

    if torch.cuda.is_available():
        pytest.skip("bf16 is available here")
    with pytest.raises(RecipeError, match="pass --bf16 false"):
        parse_recipe(["--config", str(RECIPES / "xglm-564m.yaml")])


def test_a_folder_named_like_a_shipped_recipe_does_not_hide_it(tmp_path, monkeypatch):
    """`--config tiny` in a folder that holds a model or run called `tiny/` still means the shipped recipe."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    script_args, _, _ = parse_recipe(["--config", "tiny"])
    assert Path(script_args.dataset_path).parent.name == "tiny"
    (tmp_path / "my-run").mkdir()
    with pytest.raises(RecipeError) as error:
        parse_recipe(["--config", "my-run"])
    assert "'my-run': is a folder, not a YAML file" in str(error.value) and "tiny" in str(error.value)


def test_a_setting_written_twice_in_a_recipe_is_refused_with_both_lines(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text((RECIPES / "tiny.yaml").read_text(encoding="utf-8") + "max_steps: 3\n", encoding="utf-8")
    first = 1 + next(
        number
        for number, line in enumerate((RECIPES / "tiny.yaml").read_text().splitlines())
        if line.startswith("max_steps:")
    )
    with pytest.raises(RecipeError) as error:
        parse_recipe(["--config", str(recipe)])
    assert f"'max_steps' is set twice (lines {first} and " in str(error.value) and str(recipe) in str(error.value)
    nested = tmp_path / "nested.yaml"
    nested.write_text(f"dataset_path: {RECIPES / 'tiny.yaml'}\ndata_options:\n  seed: 0\n  seed: 1\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="'seed' is set twice .lines 3 and 4."):
        parse_recipe(["--config", str(nested)])


@pytest.mark.parametrize("written, expected", [("en zh", ["en", "zh"]), ("en, zh", ["en", "zh"]), ("de", ["de"])])
def test_languages_written_as_one_string_are_the_codes_it_names(tmp_path, written, expected):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        (RECIPES / "tiny.yaml")
        .read_text(encoding="utf-8")
        .replace("languages: [en, de, fr, zh]", f"languages: {written}"),
        encoding="utf-8",
    )
    script_args, _, _ = parse_recipe(["--config", str(recipe)])
    assert script_args.languages == expected


def test_a_language_code_yaml_reads_as_a_boolean_is_named(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        (RECIPES / "tiny.yaml")
        .read_text(encoding="utf-8")
        .replace("languages: [en, de, fr, zh]", "languages: [en, no]"),
        encoding="utf-8",
    )
    with pytest.raises(RecipeError, match=r"False is not a language code; quote codes .* \[en, 'no'\]"):
        parse_recipe(["--config", str(recipe)])


@pytest.mark.parametrize(
    "name, arch", [("xglm-564m", "xglm"), ("bloom-560m", "bloom"), ("llama-lora", "llama"), ("qwen-lora", "qwen2")]
)
def test_recipes_use_padding_free_exactly_where_their_architecture_keeps_flattened_rows_apart(name, arch, no_downloads):
    from tests.conftest import build_tiny_model
    from xling_align.trainers.padding_free import padding_free_mismatch

    _, training_args, model_args = parse_recipe(["--config", str(RECIPES / f"{name}.yaml"), "--use_cpu", "true"])
    model = build_tiny_model(arch)
    model.config._attn_implementation = model_args.attn_implementation or "eager"
    assert training_args.padding_free == (padding_free_mismatch(model) is None)


@pytest.mark.parametrize("name", ["xglm-564m", "bloom-560m"])
def test_full_fine_tuning_recipes_keep_fp32_weights(name, no_downloads):
    # bf16 weights would round away most AdamW updates at lr 1e-5; bf16 is the autocast compute only
    _, training_args, model_args = parse_recipe(["--config", str(RECIPES / f"{name}.yaml"), "--use_cpu", "true"])
    assert not model_args.use_peft and training_args.learning_rate <= 1e-4
    assert model_args.dtype == "float32" and training_args.bf16


def test_bf16_weights_lose_most_updates_of_size_1e_5():
    # the figure the recipes' comment quotes: N(0, 0.02) weights moved by 1e-5, rounded to bf16
    import torch

    weights = (torch.randn(100_000, generator=torch.Generator().manual_seed(0)) * 0.02).to(torch.bfloat16)
    moved = (weights.float() + 1e-5).to(torch.bfloat16)
    assert (moved == weights).float().mean().item() == pytest.approx(0.84, abs=0.01)
