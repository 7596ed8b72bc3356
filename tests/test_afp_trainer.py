"""AFPTrainer on tiny random models: equivalence with SFTTrainer, metrics, LoRA, architectures, bad input."""

import copy

import pytest
import torch
from datasets import Dataset

from tests.conftest import ARCHITECTURES, build_tiny_model
from xling_align import AFPConfig, AFPTrainer, embed_sentences
from xling_align.alignment.contrastive_loss import ContrastiveOutput

ROWS = {
    "prompt": [
        "Greet. Answer in German:",
        "Thank. Answer in French:",
        "",
        "Count. Answer in Spanish:",
        "Name a fruit. Answer in German:",
        "",
        "Say yes. Answer in French:",
        "Say no. Answer in Spanish:",
    ],
    "completion": [" Hallo!", " Merci.", "", " uno dos", " Apfel", "", " Oui.", " No."],
    "source_sentence": [
        "Good morning",
        "Thank you",
        "The cat sleeps.",
        "",
        "I like apples.",
        "Where is it?",
        "See you soon",
        "Good night",
    ],
    "target_sentence": [
        "Guten Morgen",
        "Merci",
        "Le chat dort.",
        "",
        "Me gustan las manzanas.",
        "Wo ist es?",
        "A bientot",
        "Buenas noches",
    ],
}


def rows(**overrides):
    data = {**ROWS, **overrides}
    return Dataset.from_dict(data)


def afp_args(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path),
        report_to="none",
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        gradient_checkpointing=False,
        disable_tqdm=True,
        seed=0,
    )
    return AFPConfig(**{**defaults, **kwargs})


def make_trainer(tmp_path, tokenizer, arch="llama", model=None, dataset=None, trainer_class=AFPTrainer, **kwargs):
    model = model if model is not None else build_tiny_model(arch, num_layers=3)
    return trainer_class(
        model=model,
        args=afp_args(tmp_path, **kwargs),
        processing_class=tokenizer,
        train_dataset=dataset if dataset is not None else rows(),
    )


def collate_all(trainer):
    dataset = trainer.train_dataset
    return trainer._prepare_inputs(trainer.data_collator([dataset[i] for i in range(len(dataset))]))


def test_without_the_contrastive_term_it_equals_sft_trainer(tmp_path, byte_tokenizer):
    from trl import SFTConfig, SFTTrainer

    model = build_tiny_model("llama", num_layers=2)
    instructions = Dataset.from_dict({k: ROWS[k] for k in ("prompt", "completion")}).filter(lambda r: r["completion"])
    common = dict(
        report_to="none",
        max_steps=2,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        learning_rate=1e-2,
        optim="sgd",
        save_strategy="no",
        gradient_checkpointing=False,
        bf16=False,
        disable_tqdm=True,
        seed=0,
        logging_steps=1,
    )
    sft = SFTTrainer(
        model=copy.deepcopy(model),
        args=SFTConfig(output_dir=str(tmp_path / "sft"), **common),
        processing_class=byte_tokenizer,
        train_dataset=instructions,
    )
    afp = AFPTrainer(
        model=copy.deepcopy(model),
        args=AFPConfig(output_dir=str(tmp_path / "afp"), contrastive_weight=0.0, sft_weight=1.0, **common),
        processing_class=byte_tokenizer,
        train_dataset=rows(),
    )

    # one batch: same loss and same gradients
    losses = []
    for trainer in (sft, afp):
        trainer.model.train()
        trainer.model.zero_grad()
        loss = trainer.compute_loss(trainer.model, collate_all(trainer))
        loss.backward()
        losses.append((loss.item(), [p.grad.clone() for p in trainer.model.parameters()]))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-6)
    for sft_grad, afp_grad in zip(losses[0][1], losses[1][1], strict=True):
        torch.testing.assert_close(sft_grad, afp_grad)

    # two optimizer steps with gradient accumulation: same parameters afterwards
    sft.model.zero_grad()
    afp.model.zero_grad()
    sft.train()
    afp.train()
    for sft_param, afp_param in zip(sft.model.parameters(), afp.model.parameters(), strict=True):
        torch.testing.assert_close(sft_param, afp_param)
    assert [h["loss"] for h in sft.state.log_history if "loss" in h] == pytest.approx(
        [h["loss"] for h in afp.state.log_history if "loss" in h], rel=1e-5
    )


def test_short_xglm_run_logs_metrics_and_changes_parameters(tmp_path, byte_tokenizer):
    model = build_tiny_model("xglm", num_layers=2)
    before = copy.deepcopy(model.state_dict())
    trainer = AFPTrainer(
        model=model,
        processing_class=byte_tokenizer,
        train_dataset=rows(),
        eval_dataset=rows(),
        args=afp_args(tmp_path, max_steps=3, eval_strategy="steps", eval_steps=3, per_device_eval_batch_size=4),
    )
    trainer.train()
    logged = {key for entry in trainer.state.log_history for key in entry}
    for name in ("contrastive_loss", "contrastive_accuracy", "eval_contrastive_loss", "eval_contrastive_accuracy"):
        assert name in logged, f"{name} not logged: {sorted(logged)}"
    values = [entry["contrastive_accuracy"] for entry in trainer.state.log_history if "contrastive_accuracy" in entry]
    assert all(0.0 <= value <= 1.0 for value in values)
    changed = [name for name, value in model.state_dict().items() if not torch.equal(value, before[name])]
    assert "model.embed_tokens.weight" in changed and "model.layers.1.fc1.weight" in changed


def test_total_loss_is_the_weighted_sum_and_the_pair_pass_stops_at_the_layer(tmp_path, byte_tokenizer):
    trainer = make_trainer(tmp_path, byte_tokenizer, contrastive_layer=1, contrastive_weight=0.7, sft_weight=1.3)
    model = trainer.model
    calls = {"blocks": [0, 0, 0], "lm_head": 0}

    def count_block(index):
        def hook(module, args, output):
            calls["blocks"][index] += 1

        return hook

    def count_lm_head(module, args, output):
        calls["lm_head"] += args[0].numel() // args[0].shape[-1]  # token positions projected to the vocabulary

    for index, block in enumerate(model.model.layers):
        block.register_forward_hook(count_block(index))
    model.lm_head.register_forward_hook(count_lm_head)
    batch = collate_all(trainer)
    model.eval()
    with torch.no_grad():
        total = trainer.compute_loss(model, dict(batch)).item()
    # the instruction pass ran every block (its LM head is TRL's fused one), the pair pass block 0 only
    assert calls["blocks"] == [2, 1, 1]
    calls.update(blocks=[0, 0, 0], lm_head=0)
    with torch.no_grad():
        trainer.encode_pairs(model, batch["pair_input_ids"], batch["pair_attention_mask"])
        # entered through the model's own forward, whose LM head gets an empty slice: no logits
        assert calls == {"blocks": [1, 0, 0], "lm_head": 0}
        model(input_ids=batch["pair_input_ids"])  # the hooks do see a full forward
        assert calls == {"blocks": [2, 1, 1], "lm_head": batch["pair_input_ids"].numel()}

    # independent reference: SFT loss from the logits, InfoNCE from embed_sentences
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    sft = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
    )
    pairs = [(s, t) for s, t in zip(ROWS["source_sentence"], ROWS["target_sentence"], strict=True) if s]
    vectors = embed_sentences(
        model, byte_tokenizer, [s for s, _ in pairs] + [t for _, t in pairs], layer=1, pooling="last"
    )
    source = torch.nn.functional.normalize(vectors[: len(pairs)])
    target = torch.nn.functional.normalize(vectors[len(pairs) :])
    info_nce = torch.nn.functional.cross_entropy(source @ target.T / 0.05, torch.arange(len(pairs)))
    assert total == pytest.approx(1.3 * sft.item() + 0.7 * info_nce.item(), rel=1e-4)


def test_contrastive_term_is_divided_by_accumulation_steps_with_token_normalisation(tmp_path, byte_tokenizer):
    trainer = make_trainer(tmp_path, byte_tokenizer, sft_weight=0.0)
    batch = collate_all(trainer)
    trainer.model.eval()
    trainer.current_gradient_accumulation_steps = 4
    with torch.no_grad():
        plain = trainer.compute_loss(trainer.model, dict(batch)).item()
        normalised = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=torch.tensor(10)).item()
    assert normalised == pytest.approx(plain / 4, rel=1e-6)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architectures_train_with_gradient_checkpointing_and_match_embed_sentences(tmp_path, byte_tokenizer, arch):
    trainer = make_trainer(
        tmp_path,
        byte_tokenizer,
        arch=arch,
        max_steps=1,
        gradient_checkpointing=True,
        contrastive_layer=2,
        contrastive_pooling="mean",
    )
    trainer.train()
    assert any("contrastive_loss" in entry for entry in trainer.state.log_history)
    sentences = ["Good morning", "Le chat dort.", "Wo ist es?"]
    input_ids, mask = __import__("xling_align.alignment.pooling", fromlist=["pad_right"]).pad_right(
        [byte_tokenizer(s)["input_ids"] for s in sentences], byte_tokenizer.pad_token_id
    )
    trainer.model.eval()
    with torch.no_grad():
        ours = trainer.encode_pairs(trainer.model, input_ids, mask)
    expected = embed_sentences(trainer.model, byte_tokenizer, sentences, layer=2, pooling="mean")
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_lora_adapter_trains_saves_and_reloads(tmp_path, byte_tokenizer):
    from peft import LoraConfig, PeftModel

    base = build_tiny_model("llama", num_layers=2)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = AFPTrainer(
        model=copy.deepcopy(base),
        processing_class=byte_tokenizer,
        train_dataset=rows(),
        peft_config=lora,
        args=afp_args(tmp_path / "run", max_steps=3, learning_rate=1e-2, gradient_checkpointing=True),
    )
    trainer.train()
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # lora_B starts at zero
    trainer.save_model(str(tmp_path / "adapter"))
    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path / "adapter")).eval()
    trainer.model.eval()
    input_ids = torch.tensor([byte_tokenizer("Guten Morgen")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=input_ids).logits, trainer.model(input_ids=input_ids).logits)
        assert not torch.allclose(base(input_ids=input_ids).logits, reloaded(input_ids=input_ids).logits)


class MeanSquaredAlignmentTrainer(AFPTrainer):
    """A subclass replacing InfoNCE by the mean squared distance of the pair vectors."""

    def compute_contrastive_loss(self, source_embeddings, target_embeddings):
        loss = (source_embeddings - target_embeddings).pow(2).sum(-1).mean()
        return ContrastiveOutput(
            loss=loss, num_correct=0, num_sources=len(source_embeddings), num_pairs=len(source_embeddings)
        )


def test_subclass_can_replace_the_contrastive_loss(tmp_path, byte_tokenizer):
    trainer = make_trainer(
        tmp_path,
        byte_tokenizer,
        trainer_class=MeanSquaredAlignmentTrainer,
        sft_weight=0.0,
        contrastive_pooling="mean",
        contrastive_layer=-1,
    )
    batch = collate_all(trainer)
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch)).item()
    pairs = [(s, t) for s, t in zip(ROWS["source_sentence"], ROWS["target_sentence"], strict=True) if s]
    source = embed_sentences(trainer.model, byte_tokenizer, [s for s, _ in pairs], layer=-1)
    target = embed_sentences(trainer.model, byte_tokenizer, [t for _, t in pairs], layer=-1)
    assert loss == pytest.approx((source - target).pow(2).sum(-1).mean().item(), rel=1e-4)


def test_single_pair_batches_are_skipped_and_pair_only_batches_have_zero_sft_loss(tmp_path, byte_tokenizer):
    pair_only = Dataset.from_dict(
        {"source_sentence": ["Good morning", "Thank you"], "target_sentence": ["Guten Morgen", "Danke"]}
    )
    trainer = make_trainer(tmp_path, byte_tokenizer, dataset=pair_only, per_device_train_batch_size=1, max_steps=2)
    batch = collate_all(trainer)
    trainer.model.train()
    trainer.args.contrastive_weight = 0.0  # the SFT term alone on a batch without instruction tokens
    sft = trainer.compute_loss(trainer.model, dict(batch))
    assert sft.item() == 0.0
    trainer.args.contrastive_weight = 1.0
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert trainer.contrastive_skipped_batches == 2
    assert all(loss == loss for loss in losses)  # no NaN
    assert [e["contrastive_skipped"] for e in trainer.state.log_history if "contrastive_skipped" in e] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (rows(prompt=[""] * 8, completion=[""] * 8), "row 3 of the train dataset has neither"),
        (rows(target_sentence=[""] + ROWS["target_sentence"][1:]), "row 0 of the train dataset has an empty target"),
        (rows(completion=[""] + ROWS["completion"][1:]), "row 0 of the train dataset has a prompt but an empty"),
        (Dataset.from_dict({"prompt": ["a"], "completion": ["b"]}), r"columns \['prompt', 'completion'\] but no"),
        (Dataset.from_dict({"src": ["a"], "tgt": ["b"]}), r"has columns \['src', 'tgt'\]"),
        (Dataset.from_dict({"source_sentence": ["a"], "target": ["b"]}), "has column 'source_sentence' but not"),
        (rows().to_iterable_dataset(), "IterableDataset"),
    ],
)
def test_bad_datasets_are_refused_with_the_reason(tmp_path, byte_tokenizer, dataset, message):
    with pytest.raises(ValueError, match=message):
        make_trainer(tmp_path, byte_tokenizer, dataset=dataset)


def test_contrastive_layer_beyond_the_depth_is_refused(tmp_path, byte_tokenizer):
    with pytest.raises(ValueError, match="contrastive_layer.*has 3 decoder layers"):
        make_trainer(tmp_path, byte_tokenizer, contrastive_layer=4)


def test_tokenizer_without_pad_token_gets_one(tmp_path, byte_tokenizer):
    byte_tokenizer.pad_token = None
    trainer = make_trainer(tmp_path, byte_tokenizer, max_steps=1)
    assert byte_tokenizer.pad_token == byte_tokenizer.eos_token
    batch = collate_all(trainer)
    assert batch["pair_input_ids"][batch["pair_attention_mask"] == 0].eq(byte_tokenizer.eos_token_id).all()
    assert torch.isfinite(trainer.compute_loss(trainer.model, batch))


def test_alignment_eval_file_adds_the_callback(tmp_path, byte_tokenizer):
    callback_module = pytest.importorskip("xling_align.analysis.callback")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("en\tde\nGood morning\tGuten Morgen\nThank you\tDanke\n")
    trainer = make_trainer(tmp_path, byte_tokenizer, alignment_eval_file=str(pairs))
    assert any(isinstance(c, callback_module.AlignmentEvalCallback) for c in trainer.callback_handler.callbacks)


def test_module_example_trains_and_reloads_the_pair_head():
    import doctest

    from xling_align.trainers import afp_trainer

    result = doctest.testmod(afp_trainer)
    assert result.attempted > 0 and result.failed == 0


def test_model_card_names_the_method():
    assert AFPTrainer._name == "AFP" and AFPTrainer._paper["id"] == "2311.08089"
    assert "afp" in AFPTrainer._tag_names


def test_only_the_harmless_appended_eos_prefix_warning_is_silenced(byte_tokenizer, caplog):
    import logging

    from xling_align.trainers.trl_workarounds import quiet_about_appended_eos

    trl_logger = logging.getLogger("trl.trainer.sft_trainer")
    message = (
        "[RANK 0] The tokenized prompt is not a prefix of the tokenized prompt+completion, ... left out of the "
        "training sequence: {!r}. The model is trained on a context that differs"
    )
    with caplog.at_level(logging.WARNING, logger="trl.trainer.sft_trainer"):
        with quiet_about_appended_eos(byte_tokenizer):
            trl_logger.warning(message.format("</s>"))  # the tokenizer's own EOS: harmless, silenced
            trl_logger.warning(message.format(" Answer"))  # a real mismatch: still reported
        trl_logger.warning(message.format("</s>"))  # outside the preparation: untouched
    texts = [record.getMessage() for record in caplog.records]
    assert len(texts) == 2 and "' Answer'" in texts[0] and "'</s>'" in texts[1]


def test_the_pair_pass_reads_nothing_from_the_device(tmp_path, byte_tokenizer):
    """On a GPU the host queues the instruction pass while the pair pass runs, unless the pair pass reads a value
    from the device (`item()`, `bool()`, `tolist()`: aten's `_local_scalar_dense`). The pair pass reads only what
    the model's own forward reads (transformers checks the padding mask when it builds the attention mask); its
    metrics are read at log time instead, one read per log, and the logged numbers stay those of every step."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class ScalarReads(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ == "_local_scalar_dense":
                ScalarReads.count += 1
            return func(*args, **(kwargs or {}))

    trainer = make_trainer(tmp_path, byte_tokenizer, max_steps=2, logging_steps=2)
    inputs = collate_all(trainer)
    trainer.model.train()
    with torch.no_grad(), ScalarReads():
        trainer.model(input_ids=inputs["pair_input_ids"], attention_mask=inputs["pair_attention_mask"])
    forward_reads, ScalarReads.count = ScalarReads.count, 0
    with ScalarReads():
        term = trainer._contrastive_term(
            trainer.model, inputs["pair_input_ids"], inputs["pair_attention_mask"], "train"
        )
    assert term is not None and ScalarReads.count == forward_reads

    # the logged contrastive loss of a 2-step log is the mean of the two steps' terms
    trainer._pending_pair_metrics.clear()
    terms = []
    original = trainer._contrastive_term
    trainer._contrastive_term = lambda *args: terms.append(original(*args)) or terms[-1]
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "contrastive_loss" in entry]
    assert len(logged) == 1 and len(terms) == 2
    assert logged[0]["contrastive_loss"] == pytest.approx(sum(t.item() for t in terms) / 2, rel=1e-5)
    assert not trainer._pending_pair_metrics.get("train")


def test_a_pair_sentence_without_tokens_is_refused_when_tokenized(tmp_path, byte_tokenizer):
    class DroppingTrainer(AFPTrainer):  # a tokenizer that maps a sentence to no token
        def tokenize_pair(self, source, target, max_length):
            source_ids, target_ids = super().tokenize_pair(source, target, max_length)
            return source_ids, ([] if target == "Merci" else target_ids)

    with pytest.raises(ValueError, match=r"row 1 of the train dataset: its target_sentence 'Merci' has no token"):
        make_trainer(tmp_path, byte_tokenizer, trainer_class=DroppingTrainer)


def test_reloading_a_tied_checkpoint_does_not_report_the_tied_head_missing(tmp_path, byte_tokenizer, caplog):
    """load_best_model_at_end / resume: the LM head tied to the embeddings is stored once; only a really missing
    weight is reported."""
    import logging

    trainer = make_trainer(tmp_path, byte_tokenizer, arch="xglm")
    model = trainer.model
    assert model.lm_head.weight is model.model.embed_tokens.weight  # the tiny XGLM ties them
    stored = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        trainer._issue_warnings_after_load(model.load_state_dict(stored, strict=False))
        assert "missing keys" not in caplog.text
        del stored["model.layers.0.fc1.weight"]
        trainer._issue_warnings_after_load(model.load_state_dict(stored, strict=False))
    assert "There were missing keys in the checkpoint model loaded: ['model.layers.0.fc1.weight']" in caplog.text
