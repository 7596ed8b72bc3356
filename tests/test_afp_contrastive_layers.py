"""`contrastive_layer` as a list: config parsing, the averaged loss against an independent reference, one pass."""

import pytest
import torch
from datasets import Dataset

from tests.conftest import build_tiny_model
from xling_align import AFPConfig, AFPTrainer

PAIRS = {
    "prompt": ["Greet. Answer in German:", "", "Count. Answer in Spanish:", ""],
    "completion": [" Hallo!", "", " uno dos", ""],
    "source_sentence": ["Good morning", "The cat sleeps.", "I like apples.", "Where is it?"],
    "target_sentence": ["Guten Morgen", "Le chat dort.", "Me gustan las manzanas.", "Wo ist es?"],
}


def make_trainer(tmp_path, tokenizer, **kwargs):
    settings = dict(
        output_dir=str(tmp_path),
        report_to="none",
        max_steps=1,
        per_device_train_batch_size=4,
        save_strategy="no",
        activation_checkpointing=False,
        disable_tqdm=True,
        seed=0,
    )
    args = AFPConfig(**{**settings, **kwargs})
    return AFPTrainer(
        model=build_tiny_model("llama", num_layers=3),
        args=args,
        processing_class=tokenizer,
        train_dataset=Dataset.from_dict(PAIRS),
    )


def reference_info_nce(model, tokenizer, layer: int) -> torch.Tensor:
    """InfoNCE at one layer from a full forward, written here without the package's pooling or loss code."""
    sources = [s for s in PAIRS["source_sentence"]]
    targets = [t for t in PAIRS["target_sentence"]]
    vectors = []
    for sentence in sources + targets:
        ids = tokenizer(sentence)["input_ids"][:-1]  # ByT5 appends EOS; `last` pooling skips it
        hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layer]
        vectors.append(hidden[0, -1])
    vectors = torch.nn.functional.normalize(torch.stack(vectors), dim=-1)
    n = len(sources)
    logits = vectors[:n] @ vectors[n:].T / 0.05
    return torch.nn.functional.cross_entropy(logits, torch.arange(n))


@pytest.mark.parametrize(
    ("given", "stored", "as_list"),
    [(2, 2, [2]), ([2], 2, [2]), ([1, 3], [1, 3], [1, 3]), ("1,3", [1, 3], [1, 3]), ("0 -1", [0, -1], [0, -1])],
)
def test_config_stores_one_layer_as_an_int_and_several_as_a_list(tmp_path, given, stored, as_list):
    config = AFPConfig(output_dir=str(tmp_path), report_to="none", contrastive_layer=given)
    assert config.contrastive_layer == stored
    assert config.contrastive_layers == as_list


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([], "must be a hidden_states index"),
        ([1, 1], "names a layer twice"),
        (True, "must be a hidden_states"),
        ("one", "must be a hidden_states index"),
        ([1, 2.5], "must be a hidden_states index"),
    ],
)
def test_config_refuses_bad_layer_lists(tmp_path, given, message):
    with pytest.raises(ValueError, match=message):
        AFPConfig(output_dir=str(tmp_path), report_to="none", contrastive_layer=given)


def test_command_line_and_recipe_take_a_list(tmp_path):
    from xling_align.pipeline.training_script import parse_recipe

    _, args, _ = parse_recipe(["--config", "tiny", "--contrastive_layer", "1", "2"])
    assert args.contrastive_layer == [1, 2]
    _, args, _ = parse_recipe(["--config", "tiny"])
    assert args.contrastive_layer == 1
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "model_name_or_path: xling-align/tiny-random-llama\n"
        "dataset_path: pkg://xling_align/resources/tiny/train.jsonl\ncontrastive_layer: [1, 3]\n"
    )
    _, args, _ = parse_recipe(["--config", str(recipe)])
    assert args.contrastive_layers == [1, 3]


def test_the_loss_is_the_mean_of_the_single_layer_losses_and_one_pass_stops_at_the_deepest(tmp_path, byte_tokenizer):
    trainer = make_trainer(tmp_path, byte_tokenizer, contrastive_layer=[1, 2], sft_weight=0.0)
    model = trainer.model
    runs = [0, 0, 0]
    for index, block in enumerate(model.model.layers):
        block.register_forward_hook(lambda module, args, output, index=index: runs.__setitem__(index, runs[index] + 1))
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(4)]))
    model.eval()
    with torch.no_grad():
        vectors = trainer.encode_pairs(model, batch["pair_input_ids"], batch["pair_attention_mask"])
        assert runs == [1, 1, 0]  # one pass for both layers, block 3 never runs
        assert vectors.shape == (2, 8, model.config.hidden_size)
        loss = trainer.compute_loss(model, dict(batch)).item()
        expected = [reference_info_nce(model, byte_tokenizer, layer).item() for layer in (1, 2)]
    assert expected[0] != pytest.approx(expected[1], rel=1e-3)  # the two layers really differ
    assert loss == pytest.approx(sum(expected) / 2, rel=1e-4)


def test_a_one_element_list_trains_exactly_like_the_integer(tmp_path, byte_tokenizer):
    losses = []
    for layer in (2, [2]):
        trainer = make_trainer(
            tmp_path / str(layer),
            byte_tokenizer,
            contrastive_layer=layer,
            max_steps=2,
            logging_steps=1,
            learning_rate=1e-3,
        )
        trainer.train()
        losses.append([entry["loss"] for entry in trainer.state.log_history if "loss" in entry])
    assert losses[0] == losses[1]


def test_training_on_several_layers_logs_mean_accuracy_and_refuses_the_same_layer_twice(tmp_path, byte_tokenizer):
    trainer = make_trainer(tmp_path, byte_tokenizer, contrastive_layer=[0, -1], logging_steps=1)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "contrastive_accuracy" in entry]
    assert logged and all(0.0 <= entry["contrastive_accuracy"] <= 1.0 for entry in logged)
    with pytest.raises(ValueError, match=r"names the same hidden state twice.*\[3, 3\]"):
        make_trainer(tmp_path, byte_tokenizer, contrastive_layer=[3, -1])


def test_alignment_callback_averages_several_layers_and_reports_each(tmp_path, byte_tokenizer):
    from tests.test_analysis_cli import PAIRS as HELD_OUT
    from xling_align.analysis.callback import AlignmentEvalCallback

    path = tmp_path / "heldout.en-de.tsv"
    path.write_text("en\tde\n" + "".join(f"{en}\t{de}\n" for en, de in HELD_OUT), encoding="utf-8")
    model = build_tiny_model("llama", num_layers=3).eval()
    single = {layer: AlignmentEvalCallback(path, layer=layer).compute(model, byte_tokenizer) for layer in (1, 3)}
    both = AlignmentEvalCallback(path, layer=[1, 3]).compute(model, byte_tokenizer)
    for key in ("eval_alignment_retrieval_accuracy", "eval_alignment_mexa", "eval_alignment_cosine_margin"):
        assert both[key] == pytest.approx((single[1][key] + single[3][key]) / 2)
    for layer in (1, 3):
        assert (
            both[f"eval_alignment_retrieval_accuracy_layer{layer}"]
            == single[layer]["eval_alignment_retrieval_accuracy"]
        )
