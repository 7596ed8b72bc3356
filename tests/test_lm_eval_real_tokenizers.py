"""`--model xling` against `--model hf` with real tokenizer files and a real pretrained checkpoint.

No pretrained hub checkpoint can be had offline here (tests download nothing), so:
- the package's own pretrained model, the clone testbed's base checkpoint (`xling_align/resources/clone_base`:
  a 4-layer Llama pretrained on 12.3M tokens, with its word-level tokenizer), scores its own tasks 0- and
  5-shot through both models;
- tokenizers built the way the real models ship them, trained on the fixture text, written with
  `save_pretrained` and read back from the folder by `AutoTokenizer`, as a user's checkpoint is:
  a Llama-2-style SentencePiece BPE with byte fallback that adds `<s>` (run with `add_bos_token=True`), a
  byte-level BPE in the GPT-2/Qwen style with a chat template (run with `apply_chat_template`), and XGLM's
  SentencePiece unigram with `</s>` first (`<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, run with
  `prefix_token_id=2`). Each sits next to a tiny random model of its architecture with large weights.

Parity, for both row layouts of xling (`pack_rows=True` and `False`): every request's log-likelihood within
1e-4 per 100 nats (at least 1e-4), the same `is_greedy`, the same accuracy per task.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval"
TASKS = ["xling_xnli_de_endemo", "xling_xcopa_et"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fixture_text() -> list[str]:
    texts = []
    for path in sorted((FIXTURES / "data").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.extend(value for value in json.loads(line).values() if isinstance(value, str))
    return texts


def llama_style(texts):
    """Llama 2's tokenizer.json: SentencePiece BPE with byte fallback (`<0x00>`..`<0xFF>` in the vocabulary after
    `<unk>`, `<s>`, `</s>`), `▁` for spaces, `<s>` added in front."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    pieces = Tokenizer(models.BPE(unk_token="<unk>"))  # the merges, over a small alphabet: the rest falls back
    pieces.normalizer = normalizer
    pieces.train_from_iterator(
        texts, trainers.BpeTrainer(vocab_size=384 - 259, limit_alphabet=40, special_tokens=["<unk>"])
    )
    learned = json.loads(pieces.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{byte:02X}>": 3 + byte for byte in range(256)}}
    for token in sorted(learned["vocab"], key=learned["vocab"].get):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in learned["merges"]]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizer
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens(["<unk>", "<s>", "</s>"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return tokenizer, dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>")


def qwen_style(texts):
    """GPT-2/Qwen2: byte-level BPE, no BOS, `<|endoftext|>` and the chat markers as special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=384,
            special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return tokenizer, dict(eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE)


def xglm_style(texts):
    """XGLM: SentencePiece unigram, `▁` for spaces, `</s>` (id 2) in front of every sequence."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(
        texts,
        trainers.UnigramTrainer(vocab_size=384, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>"),
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="</s> $A", pair="</s> $A </s> </s> $B", special_tokens=[("</s>", 2)]
    )
    return tokenizer, dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")


# style -> (tokenizer builder, architecture, extra model arguments, apply the chat template)
STYLES = {
    "llama-sentencepiece-bos": (llama_style, "llama", {"add_bos_token": True}, False),
    "qwen2-byte-level-chat-template": (qwen_style, "qwen2", {}, True),
    "xglm-eos-first": (xglm_style, "xglm", {"add_bos_token": True, "prefix_token_id": 2}, False),
}


@pytest.fixture(scope="module")
def texts():
    return fixture_text()


def evaluate(lm, tasks, shots, chat=False, limit=2, task_manager=None):
    """Per request (task, doc, choice) -> (log-likelihood, is_greedy), and the accuracy per task."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from xling_align.evaluation import lm_eval_plugin

    lm_eval_plugin.register()
    manager = task_manager or TaskManager(include_defaults=False, metadata={"data_dir": str(FIXTURES / "data")})
    output = lm_eval.simple_evaluate(
        model=lm,
        tasks=tasks,
        task_manager=manager,
        num_fewshot=shots,
        limit=limit,
        log_samples=True,
        apply_chat_template=chat,
        fewshot_as_multiturn=chat and bool(shots),
    )
    scores = {
        (task, sample["doc_id"], choice): (float(response[0][0]), bool(response[0][1]))
        for task, samples in output["samples"].items()
        for sample in samples
        for choice, response in enumerate(sample["resps"])
    }
    return scores, {task: output["results"][task]["acc,none"] for task in output["results"]}, output["samples"]


def assert_same(ours, theirs):
    assert ours[0].keys() == theirs[0].keys() and ours[0]
    for key, (loglikelihood, greedy) in theirs[0].items():
        assert ours[0][key][0] == pytest.approx(loglikelihood, abs=max(1e-4, 1e-6 * abs(loglikelihood))), key
        assert ours[0][key][1] == greedy, key
    assert ours[1] == theirs[1]


@pytest.mark.parametrize("style", list(STYLES))
def test_real_tokenizer_files_give_hf_scores_zero_and_five_shot(style, texts, tmp_path):
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from tests.test_prefix_scoring import sensitive_model
    from xling_align.evaluation.lm_eval_model import XlingLM

    build, arch, model_args, chat = STYLES[style]
    tokenizer, special = build(texts)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special).save_pretrained(tmp_path)
    sensitive_model(arch).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)  # as a user's folder is read
    sample = "Der Hund schläft." if arch != "xglm" else " ".join(texts[0].split()[:6])  # unigram: no byte fallback
    ids = loaded(sample)["input_ids"]
    assert {"llama": ids[0] == 1, "qwen2": bool(loaded.chat_template), "xglm": ids[0] == 2}[arch]
    assert loaded.decode(ids, skip_special_tokens=True) == sample
    assert len(loaded) <= 384  # the model's vocabulary

    # a 512-token window (faster): a longer prompt is cut from the left, by both models alike
    common = dict(pretrained=str(tmp_path), device="cpu", batch_size=4, max_length=512, **model_args)
    hf = HFLM(**common)
    both_layouts = [XlingLM(pack_rows=True, **common), XlingLM(pack_rows=False, **common)]
    for shots in (0, 5):
        theirs = evaluate(hf, TASKS, shots, chat)
        for xling in both_layouts:
            assert_same(evaluate(xling, TASKS, shots, chat), theirs)
        if chat:  # the prompt really went through the chat template
            assert "<|im_start|>" in next(iter(theirs[2].values()))[0]["arguments"][0][0]
    for xling in both_layouts:
        assert xling.prefix_scoring_stats.forwards > 0 and xling._prefix_sharing_off is None
    assert both_layouts[0]._prefix_scorer.pack_subtrees and not both_layouts[1]._prefix_scorer.pack_subtrees


def test_the_shipped_pretrained_clone_model_gives_hf_scores_zero_and_five_shot():
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from xling_align.clone.checkpoints import PRETRAINED_DIRS
    from xling_align.evaluation.lm_eval_model import XlingLM

    # its own tasks: facts asked in L2 with 5 L1 demonstrations, in-context episodes, L1 facts 0-shot
    manager = TaskManager(include_defaults=False)
    common = dict(pretrained=str(PRETRAINED_DIRS["base"]), device="cpu", dtype="float32", batch_size=8)
    hf = HFLM(**common)
    both_layouts = [XlingLM(pack_rows=True, **common), XlingLM(pack_rows=False, **common)]
    for tasks, shots in [
        (["xling_clone_l1_heldout", "xling_clone_icl_l2_l1demo"], 0),
        (["xling_clone_l2_heldout_l1demo"], 5),
    ]:
        theirs = evaluate(hf, tasks, shots, limit=12, task_manager=manager)
        for xling in both_layouts:
            assert_same(evaluate(xling, tasks, shots, limit=12, task_manager=manager), theirs)
    for xling in both_layouts:
        assert xling.prefix_scoring_stats.forwards > 0 and xling._prefix_sharing_off is None


def tricky_pairs(texts) -> list[tuple[str, str]]:
    """(context, continuation) pairs as lm-eval's tasks make them, and the edge cases of hf's encoding: repeated
    contexts (choices), trailing spaces and newlines moved to the continuation, an empty context, a context that
    starts with the prefix token's text, accents and scripts a byte fallback or an unknown token must handle."""
    demonstrations = "\n\n".join(texts[:5])
    pairs = []
    for text in texts[5:25]:
        context = f"{demonstrations}\n\n{text}, right?"
        pairs += [(context, " Yes, " + text[:20]), (context, " No, " + text[:20]), (context + " ", "Also")]
    pairs += [
        ("", " schläft der Hund?"),
        ("", "Ja"),
        ("Frage:\n", "\nAntwort"),
        ("Ça   ", "  va"),
        ("Der Hund schläft.", " 東京は大きい。"),
        ("x", "y"),
    ]
    return pairs


def requests_as_tokens(lm, pairs):
    """The `(context_enc, continuation_enc)` that `lm.loglikelihood` hands to `_loglikelihood_tokens`."""
    from lm_eval.api.instance import Instance

    seen = []

    def capture(requests, **kwargs):
        seen.extend((list(context), list(continuation)) for _, context, continuation in requests)
        return [(0.0, True)] * len(requests)

    lm._loglikelihood_tokens = capture
    lm.loglikelihood([Instance("loglikelihood", {}, pair, index) for index, pair in enumerate(pairs)])
    return seen


@pytest.mark.parametrize("source", [*STYLES, "smollm2-real", "clone-word-level"])
def test_batched_encoding_gives_hf_token_ids(source, texts, tmp_path, request):
    # xling encodes each distinct string once, in batched tokenizer calls; the ids must be hf's, request by request
    import transformers as tf
    from lm_eval.models.huggingface import HFLM

    from xling_align.evaluation.lm_eval_model import XlingLM

    model_args = {}
    if source in STYLES:
        build, _, model_args, _ = STYLES[source]
        tokenizer, special = build(texts)
        tf.PreTrainedTokenizerFast(tokenizer_object=tokenizer, **special).save_pretrained(tmp_path)
        folder = tmp_path
    elif source == "smollm2-real":
        folder = request.getfixturevalue("real_checkpoint_dir")
    else:
        from xling_align.clone.checkpoints import PRETRAINED_DIRS

        folder = PRETRAINED_DIRS["base"]
    loaded = tf.AutoTokenizer.from_pretrained(folder)
    config = tf.LlamaConfig(
        vocab_size=len(loaded),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    model = tf.LlamaForCausalLM(config).eval()  # never run: only the tokens are compared
    pairs = tricky_pairs(texts)
    for extra in ({}, {"add_bos_token": True}):
        arguments = dict(pretrained=model, tokenizer=loaded, batch_size=4, **{**model_args, **extra})
        hf = HFLM(**arguments)
        prefix_text = loaded.decode(hf.prefix_token_id)  # hf adds no special tokens to a text that starts with it
        with_prefix = pairs + [(prefix_text + "Der Hund", " schläft"), (prefix_text, " schläft")]
        theirs = requests_as_tokens(hf, with_prefix)
        ours = requests_as_tokens(XlingLM(**arguments), with_prefix)
        assert len(theirs) == len(with_prefix) and ours == theirs, extra
