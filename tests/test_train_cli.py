"""`xling-align train` end to end on the tiny recipe (offline, CPU), and its errors for bad input."""

import json
import os
from pathlib import Path

import pytest

from xling_align.pipeline.training_data import TrainingDataError
from xling_align.pipeline.training_script import RecipeError

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "recipes" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`xling-align train` on the tiny recipe (20 steps), run from a directory outside the repository.

    In-process through the CLI entry point (what `xling-align` and `python -m xling_align` call), so the
    suite pays for the torch/transformers/peft imports once; tests/test_train_ddp.py runs the same command
    in separate processes.
    """
    from xling_align.cli import main as cli_main

    workdir = tmp_path_factory.mktemp("tiny-run")
    previous = os.getcwd()
    os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded
    os.chdir(workdir)
    try:
        status = cli_main(
            [
                "train",
                "--config",
                str(TINY),
                "--output_dir",
                "out",
                "--max_steps",
                "20",
                "--eval_steps",
                "10",
                "--save_steps",
                "10",
                "--logging_steps",
                "5",
            ]
        )
    finally:
        os.chdir(previous)
    assert status == 0
    return workdir / "out", status


def test_tiny_recipe_writes_model_tokenizer_and_logs(tiny_run):
    output_dir, _ = tiny_run
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "trainer_state.json", "README.md"):
        assert (output_dir / name).is_file(), name
    state = json.loads((output_dir / "trainer_state.json").read_text())
    train_logs = [entry for entry in state["log_history"] if "contrastive_loss" in entry]
    eval_logs = [entry for entry in state["log_history"] if "eval_contrastive_loss" in entry]
    assert [entry["step"] for entry in train_logs] == [5, 10, 15, 20]
    assert [entry["step"] for entry in eval_logs] == [10, 20]
    assert all(0 <= entry["contrastive_accuracy"] <= 1 for entry in train_logs)
    assert all(0 <= entry["eval_alignment_retrieval_accuracy"] <= 1 for entry in eval_logs)  # alignment_eval_file
    # checkpoint selection on held-out pairs
    assert state["best_metric"] == min(entry["eval_contrastive_loss"] for entry in eval_logs)


def test_tiny_recipe_trains_the_model(tiny_run):
    import torch
    from transformers import AutoModelForCausalLM

    from xling_align.tiny_models import build_tiny_model

    output_dir, _ = tiny_run
    trained = AutoModelForCausalLM.from_pretrained(output_dir)
    initial, _ = build_tiny_model("xling-align/tiny-random-xglm", seed=0)  # the recipe's seed is 0
    initial_weights = dict(initial.named_parameters())
    changed = [name for name, value in trained.named_parameters() if not torch.equal(value, initial_weights[name])]
    assert "model.layers.0.self_attn.q_proj.weight" in changed
    assert len(changed) > len(initial_weights) // 2


def test_model_card_names_method_paper_languages_and_data(tiny_run):
    output_dir, _ = tiny_run
    card = (output_dir / "README.md").read_text()
    header = card.split("---")[1]
    assert "language:\n- en\n- de\n- fr\n- zh" in header
    assert "afp" in header and "xling-align" in header  # tags
    assert "AFP" in card and "2311.08089" in card and "contrastive" in card
    assert "resources/tiny/train.jsonl" in card and "resources/tiny/heldout.jsonl" in card
    assert "random test model" in card
    assert "huggingface.co/None" not in card


def test_output_dir_holding_a_different_run_is_refused(tiny_run, capsys):
    from xling_align.cli import main as cli_main  # what `xling-align` and `python -m xling_align` run

    output_dir, _ = tiny_run
    status = cli_main(["train", "--config", str(TINY), "--output_dir", str(output_dir), "--learning_rate", "0.5"])
    stderr = capsys.readouterr().err
    assert status == 2
    assert stderr.startswith("xling-align train: error: ")
    assert "holds a different run" in stderr and "training.learning_rate: 0.001 -> 0.5" in stderr
    assert "--overwrite_output_dir" in stderr


def test_same_run_again_needs_resume_or_overwrite(tmp_path):
    from xling_align.pipeline.run_directory import OutputDirError, check_output_dir, write_run_signature

    write_run_signature(tmp_path, {"seed": 0})
    (tmp_path / "checkpoint-5").mkdir()
    with pytest.raises(OutputDirError, match="already holds this run.*--resume_from_checkpoint"):
        check_output_dir(tmp_path, {"seed": 0}, resuming=False, overwrite=False)
    check_output_dir(tmp_path, {"seed": 0}, resuming=True, overwrite=False)
    check_output_dir(tmp_path, {"seed": 1}, resuming=False, overwrite=True)
    assert not (tmp_path / "checkpoint-5").exists()


def test_foreign_non_empty_output_dir_is_refused(tmp_path):
    from xling_align.pipeline.run_directory import OutputDirError, check_output_dir

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not written by `xling-align train`"):
        check_output_dir(tmp_path, {"seed": 0}, resuming=False, overwrite=False)


def test_model_not_available_offline_says_so(monkeypatch):
    from xling_align.pipeline.training_script import load_model_and_tokenizer, parse_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, training_args, model_args = parse_recipe(
        ["--config", str(TINY), "--model_name_or_path", "xling-align-tests/no-such-model"]
    )
    with pytest.raises(RecipeError) as caught:
        load_model_and_tokenizer(model_args, training_args)
    message = str(caught.value)
    assert "'xling-align-tests/no-such-model' cannot be loaded" in message and "HF_HUB_OFFLINE" in message


def test_unknown_test_model_suggests_the_closest():
    from xling_align.pipeline.training_script import load_model_and_tokenizer, parse_recipe

    _, training_args, model_args = parse_recipe(
        ["--config", str(TINY), "--model_name_or_path", "xling-align/tiny-random-xglmm"]
    )
    with pytest.raises(RecipeError, match="Did you mean xling-align/tiny-random-xglm"):
        load_model_and_tokenizer(model_args, training_args)


def test_dataset_without_needed_columns_lists_found_and_needed(tmp_path):
    from xling_align.pipeline.training_data import load_training_data
    from xling_align.pipeline.training_script import parse_recipe

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"question": "q", "answer": "a"}\n{"question": "q2", "answer": "a2"}\n')
    script_args, _, _ = parse_recipe(["--config", str(TINY), "--dataset_path", str(rows)])
    with pytest.raises(TrainingDataError) as caught:
        load_training_data(script_args)
    message = str(caught.value)
    assert "['answer', 'question']" in message
    assert "prompt + completion" in message and "source_sentence + target_sentence" in message


def test_held_out_parallel_file_becomes_pair_rows():
    from xling_align.pipeline.training_data import load_training_data
    from xling_align.pipeline.training_script import parse_recipe

    script_args, _, _ = parse_recipe(
        [
            "--config",
            str(TINY),
            "--eval_dataset_path",
            "pkg://xling_align/resources/tiny/heldout.en-zh.tsv",
            "--max_eval_samples",
            "1000",
        ]
    )
    data = load_training_data(script_args)
    evaluation = data.eval_dataset
    assert data.eval_source == script_args.eval_dataset_path
    lines = (REPO / "xling_align/resources/tiny/heldout.en-zh.tsv").read_text(encoding="utf-8").splitlines()
    assert len(evaluation) == len(lines) - 1  # minus the header
    assert evaluation[0]["source_sentence"] == lines[1].split("\t")[0]
    assert evaluation[0]["target_sentence"] == lines[1].split("\t")[1]
    assert set(evaluation["prompt"]) == {""} and set(evaluation["target_lang"]) == {"zh"}


def test_evaluation_without_eval_data_is_refused(tmp_path):
    from xling_align.pipeline.training_script import main, parse_recipe

    args = parse_recipe(
        [
            "--config",
            str(TINY),
            "--output_dir",
            str(tmp_path / "out"),
            "--eval_dataset_path",
            "",
            "--alignment_eval_file",
            "",
        ]
    )
    with pytest.raises(RecipeError, match="eval_strategy=steps but no evaluation data"):
        main(*args)


def test_selecting_on_an_alignment_metric_needs_its_file(tmp_path):
    """Trainer used to raise a KeyError at the first evaluation, after training up to it."""
    from xling_align.pipeline.training_script import main, parse_recipe

    args = parse_recipe(
        [
            "--config",
            str(TINY),
            "--output_dir",
            str(tmp_path / "out"),
            "--alignment_eval_file",
            "",
            "--metric_for_best_model",
            "eval_alignment_retrieval_accuracy",
        ]
    )
    with pytest.raises(
        RecipeError,
        match="metric_for_best_model=eval_alignment_retrieval_accuracy is logged only with alignment_eval_file",
    ):
        main(*args)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("checkpoint-*"))


def test_raw_data_source_is_built_by_the_data_module_with_held_out_pairs():
    from xling_align.data import DataBuildConfig, RowBuilder
    from xling_align.package_paths import resolve_path
    from xling_align.pipeline.training_data import load_training_data
    from xling_align.pipeline.training_script import parse_recipe

    bactrian = "pkg://xling_align/resources/tiny/bactrian"
    script_args, _, _ = parse_recipe(
        [
            "--config",
            str(TINY),
            "--dataset_path",
            "",
            "--eval_dataset_path",
            "",
            "--max_eval_samples",
            "1000",
            "--data_source",
            "bactrian-x",
            "--data_input",
            bactrian,
            "--languages",
            "en",
            "de",
            "--data_options",
            '{"mode": "bilingual", "repeat": 1, "seed": 3, "heldout_size": 10}',
        ]
    )
    data = load_training_data(script_args)
    train, evaluation = data.train_dataset, data.eval_dataset
    reference = RowBuilder(
        DataBuildConfig(
            languages=["en", "de"],
            input_dir=resolve_path(bactrian),
            mode="bilingual",
            repeat=1,
            seed=3,
            heldout_size=10,
        )
    )
    expected_rows = list(reference.rows())
    assert train.to_list() == expected_rows
    assert [(row["source_sentence"], row["target_sentence"]) for row in evaluation] == [
        (source, target) for _, _, source, target in reference.heldout
    ]
    assert len(evaluation) == 10 and set(evaluation["kind"]) == {"pair"}
    # what the model card is told: the loader's own decisions, not re-derived
    assert data.languages == ["en", "de"] and data.eval_source == "10 pairs held out by the data builder"
    assert data.train_source == f"bactrian-x: {resolve_path(bactrian)}"


def test_bad_data_options_name_the_problem():
    from xling_align.pipeline.training_data import load_training_data
    from xling_align.pipeline.training_script import parse_recipe

    script_args, _, _ = parse_recipe(
        [
            "--config",
            str(TINY),
            "--dataset_path",
            "",
            "--data_source",
            "bactrian-x",
            "--data_input",
            "pkg://xling_align/resources/tiny/bactrian",
            "--languages",
            "en",
            "de",
            "fr",
            "--data_options",
            '{"mode": "bilingual"}',
        ]
    )
    with pytest.raises(TrainingDataError, match="bilingual mode takes exactly two languages"):
        load_training_data(script_args)


def test_lora_run_saves_an_adapter_that_reloads(tmp_path):
    from peft import PeftModel

    from xling_align.pipeline.training_script import main, parse_recipe
    from xling_align.tiny_models import build_tiny_model

    output_dir = tmp_path / "lora"
    args = parse_recipe(
        [
            "--config",
            str(TINY),
            "--output_dir",
            str(output_dir),
            "--use_peft",
            "true",
            "--lora_r",
            "4",
            "--lora_target_modules",
            "all-linear",
            "--max_steps",
            "2",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--load_best_model_at_end",
            "false",
            "--alignment_eval_file",
            "",
            "--disable_tqdm",
            "true",
        ]
    )
    trainer = main(*args)
    assert (output_dir / "adapter_config.json").is_file() and (output_dir / "adapter_model.safetensors").is_file()
    assert not (output_dir / "model.safetensors").exists()
    assert "with a LoRA adapter" in (output_dir / "README.md").read_text()
    base, _ = build_tiny_model("xling-align/tiny-random-xglm", seed=0)
    reloaded = PeftModel.from_pretrained(base, output_dir)
    trained = dict(trainer.model.named_parameters())
    lora_weights = [name for name, _ in reloaded.named_parameters() if "lora_B" in name]
    assert lora_weights
    import torch

    for name in lora_weights:
        assert torch.equal(dict(reloaded.named_parameters())[name], trained[name])


def test_replay_from_the_command_line_with_lora(tmp_path):
    from xling_align.pipeline.training_script import main, parse_recipe

    replay = tmp_path / "replay.txt"
    replay.write_text("The river runs to the sea.\nDer Hund schläft im Garten.\nLe soleil brille.\n", encoding="utf-8")
    args = parse_recipe(
        [
            "--config",
            str(TINY),
            "--output_dir",
            str(tmp_path / "replay"),
            "--use_peft",
            "true",
            "--lora_r",
            "4",
            "--lora_target_modules",
            "all-linear",
            "--max_steps",
            "2",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--load_best_model_at_end",
            "false",
            "--alignment_eval_file",
            "",
            "--disable_tqdm",
            "true",
            "--logging_steps",
            "1",
            "--replay_file",
            str(replay),
            "--replay_share",
            "0.25",
            "--replay_weight",
            "0.5",
        ]
    )
    assert args[1].replay_share == 0.25 and args[1].replay_weight == 0.5
    trainer = main(*args)
    replay_rows = sum(trainer.train_dataset["afp_replay"])
    assert replay_rows == round(0.25 * (len(trainer.train_dataset) - replay_rows) / 0.75)
    assert any(entry.get("replay_loss", 0) > 0 for entry in trainer.state.log_history)
