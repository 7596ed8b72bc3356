"""The `xling_afp_*` tasks reproduce the AFP reference implementation's evaluation, string for string.

The expected texts are computed here, independently of `xling_align.evaluation.paper_protocol`: from a transcription of
the reference's format strings (`data/PAWS-X/prompt_formats.json`, f3; `src/*_prompt.py`) used as data with
`str.format_map`, and from the reference's demonstration sampling (`random.seed(seed)`, `random.shuffle` of the
dev rows read in file order, the first k). The PAWS-X rows are written here in the reference's TSV format
(`id, sentence1, sentence2, label` with a header), read the way the reference reads them, and put into the
local data layout the tasks read. The scores are checked against a by-hand computation with a tiny XGLM-like
model whose tokenizer, like XGLM's, prepends `</s>`: the reference's summed log-probability of the whole text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from xling_align.evaluation import lm_eval_plugin

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "lm_eval" / "data"

# ---------------------------------------------------------------- the reference's formats, transcribed as data
REFERENCE_PAWSX_F3 = {
    "en": {
        "EXAMPLE_FORMAT": "{sentence1}, right? {label}, {sentence2}",
        "CHOICES": ["Yes", "No"],
        "CONNECTOR": "</s>",
        "FEW_SHOT_FORMAT": "{demos}{sentence1}, right? {choice}, {sentence2}",
    },
    "zh": {
        "EXAMPLE_FORMAT": "{sentence1}，对吗？ {label}，{sentence2}",
        "CHOICES": ["对", "不对"],
        "CONNECTOR": "</s>",
        "FEW_SHOT_FORMAT": "{demos}{sentence1}，对吗？ {choice}, {sentence2}",
    },
}
REFERENCE_PAWSX_GOLD_LABELS = ["1", "0"]  # label "1" is the first choice

# our own rows, in the reference's TSV format (tab-separated, header line first)
DEV_TSV = """id\tsentence1\tsentence2\tlabel
1\tThe river flows to the sea.\tThe sea receives the river.\t1
2\tShe bought a red car.\tHe sold a blue bike.\t0
3\tThe museum opened in 1901.\tIn 1901 the museum opened.\t1
4\tTom plays the violin.\tThe violin plays Tom.\t0
5\tRain fell all night.\tIt rained through the night.\t1
6\tThe shop closes at five.\tThe shop opens at five.\t0
7\tBirds sing at dawn.\tAt dawn the birds sing.\t1
8\tHe wrote two novels.\tHe read two novels.\t0
"""
TEST_TSV = """id\tsentence1\tsentence2\tlabel
11\t他在北京出生。\t他出生于北京。\t1
12\t这本书很旧。\t这本书是新的。\t0
13\t火车八点出发。\t八点火车开走了。\t1
"""


def read_reference_tsv(text: str) -> list[dict]:
    """What the reference's `read_tsv` keeps of each line: skip the header, split on tabs."""
    rows = []
    for key, line in enumerate(text.splitlines()):
        if key == 0:
            continue
        fields = line.strip().split("\t")
        rows.append({"id": fields[0], "sentence1": fields[1], "sentence2": fields[2], "answer": fields[3]})
    return rows


def reference_texts(dev: list[dict], test_row: dict, shots: int, seed: int, lang: str) -> list[str]:
    """The reference's text of every choice of `test_row` (`prompt_language=lang`), demonstrations included."""
    fmt = REFERENCE_PAWSX_F3[lang]
    random.seed(seed)
    demos = ""
    if shots > 0:
        pool = [dict(row) for row in dev]
        random.shuffle(pool)
        for row in pool[:shots]:
            row["label"] = fmt["CHOICES"][REFERENCE_PAWSX_GOLD_LABELS.index(row["answer"])]
            demos += fmt["EXAMPLE_FORMAT"].format_map(row) + fmt["CONNECTOR"]
    return [
        fmt["FEW_SHOT_FORMAT"].format_map({**test_row, "demos": demos, "choice": choice}) for choice in fmt["CHOICES"]
    ]


def _hub_row(row: dict) -> dict:
    return {
        "id": int(row["id"]),
        "sentence1": row["sentence1"],
        "sentence2": row["sentence2"],
        "label": int(row["answer"]),
    }


@pytest.fixture(scope="module")
def pawsx_data(tmp_path_factory):
    """The TSV rows in the tasks' local layout: English dev (hub: validation), Chinese dev and test."""
    root = tmp_path_factory.mktemp("pawsx-data")
    dev, test = read_reference_tsv(DEV_TSV), read_reference_tsv(TEST_TSV)
    for lang, split, rows in (("en", "validation", dev), ("zh", "validation", dev), ("zh", "test", test)):
        folder = root / "pawsx" / lang
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps(_hub_row(r), ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    return root, dev, test


# --------------------------------------------------------------------- a tiny model with XGLM's tokenization
def xglm_like_tokenizer():
    """Byte-level, no merges, any language; like XGLM's tokenizer it prepends `</s>` and reads `</s>` in text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    byte_chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate(specials + byte_chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    backend.post_processor = processors.TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def xglm_like():
    import torch
    from transformers import XGLMConfig, XGLMForCausalLM

    tokenizer = xglm_like_tokenizer()
    torch.manual_seed(0)
    config = XGLMConfig(
        vocab_size=384,
        d_model=32,
        num_layers=2,
        attention_heads=4,
        ffn_dim=64,
        max_position_embeddings=2048,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    return XGLMForCausalLM(config).eval(), tokenizer


def reference_score(model, tokenizer, text: str) -> float:
    """The reference's score: `tokenizer(text)`, summed log-probability of every token after the first."""
    import torch

    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits.float(), dim=-1)
    return float(logprobs[0, :-1].gather(-1, ids[0, 1:, None]).sum())


def _evaluate(model, tokenizer, tasks, shots, metadata, limit=None):
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from xling_align.evaluation.paper_protocol import lm_eval_model_args

    lm_eval_plugin.register()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu", **lm_eval_model_args(tokenizer))
    manager = TaskManager(include_defaults=False, metadata=metadata)
    return lm_eval.simple_evaluate(
        model=lm, tasks=tasks, task_manager=manager, num_fewshot=shots, limit=limit, log_samples=True, verbosity="ERROR"
    )


# ------------------------------------------------------------------------------------------------ PAWS-X
def test_the_tokenizer_like_xglms_gets_prefix_token_id_of_its_prepended_token():
    from xling_align.evaluation.paper_protocol import lm_eval_model_args

    tokenizer = xglm_like_tokenizer()
    assert tokenizer("a")["input_ids"][0] == 2  # what XGLM's tokenizer does: `</s>` first
    assert lm_eval_model_args(tokenizer) == {"prefix_token_id": 2}
    from transformers import ByT5Tokenizer

    assert lm_eval_model_args(ByT5Tokenizer()) == {"add_bos_token": False}  # ByT5 appends `</s>`


@pytest.mark.parametrize("shots", [0, 5])
@pytest.mark.parametrize("task, prompt_lang", [("xling_afp_pawsx_zh", "en"), ("xling_afp_pawsx_zh_native", "zh")])
def test_pawsx_zh_prompts_and_predictions_equal_the_reference(pawsx_data, xglm_like, shots, task, prompt_lang):
    root, dev, test = pawsx_data
    model, tokenizer = xglm_like
    out = _evaluate(model, tokenizer, [task], shots, {"data_dir": str(root), "demo_seed": 0})
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    assert len(samples) == len(test)
    correct = 0
    for sample, row in zip(samples, test):
        expected = reference_texts(dev, row, shots, seed=0, lang=prompt_lang)
        contexts = [arguments[0] for arguments in sample["arguments"]]
        assert [context + continuation for context, continuation in sample["arguments"]] == expected
        # the demonstrations are the context, the same for every choice; the whole example is the continuation
        assert len(set(contexts)) == 1 and (contexts[0] == "") == (shots == 0)
        if shots:
            assert contexts[0].count("</s>") == shots and contexts[0].endswith("</s>")
        # scores: the reference's summed log-probability of the whole text, by hand
        by_hand = [reference_score(model, tokenizer, text) for text in expected]
        demos_only = reference_score(model, tokenizer, contexts[0]) if shots else 0.0
        lm_eval_loglik = [response[0] for response in sample["filtered_resps"]]
        assert lm_eval_loglik == pytest.approx([score - demos_only for score in by_hand], abs=1e-3)
        prediction = max(range(len(by_hand)), key=by_hand.__getitem__)
        assert prediction == max(range(len(lm_eval_loglik)), key=lm_eval_loglik.__getitem__)
        gold = REFERENCE_PAWSX_GOLD_LABELS.index(row["answer"])
        assert sample["target"] == gold
        correct += prediction == gold
    assert out["results"][task]["acc,none"] == pytest.approx(correct / len(test))


def test_the_zh_query_reads_the_english_template_with_chinese_sentences(pawsx_data, xglm_like):
    root, dev, test = pawsx_data
    model, tokenizer = xglm_like
    out = _evaluate(model, tokenizer, ["xling_afp_pawsx_zh"], 5, {"data_dir": str(root)}, limit=1)
    context, continuation = out["samples"]["xling_afp_pawsx_zh"][0]["arguments"][0]
    assert continuation == "他在北京出生。, right? Yes, 他出生于北京。"
    # seed 0 (the default) shuffles 8 rows to positions 4, 1, 5, 2, 0, ...: dev rows 5, 2, 6, 3, 1
    assert context == (
        "Rain fell all night., right? Yes, It rained through the night.</s>"
        "She bought a red car., right? No, He sold a blue bike.</s>"
        "The shop closes at five., right? No, The shop opens at five.</s>"
        "The museum opened in 1901., right? Yes, In 1901 the museum opened.</s>"
        "The river flows to the sea., right? Yes, The sea receives the river.</s>"
    )


def test_another_seed_draws_the_reference_s_other_demonstrations(pawsx_data, xglm_like):
    root, dev, test = pawsx_data
    model, tokenizer = xglm_like
    out = _evaluate(model, tokenizer, ["xling_afp_pawsx_zh"], 3, {"data_dir": str(root), "demo_seed": 7}, limit=1)
    sample = out["samples"]["xling_afp_pawsx_zh"][0]
    expected = reference_texts(dev, test[0], 3, seed=7, lang="en")
    assert [c + k for c, k in sample["arguments"]] == expected
    assert expected != reference_texts(dev, test[0], 3, seed=0, lang="en")


# ------------------------------------------------------------------------------- the other four benchmarks
def _rows(benchmark, lang, split):
    path = FIXTURE_DATA / benchmark / lang / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _demos(rows, shots, seed, render_gold, connector):
    random.seed(seed)
    pool = list(rows)
    random.shuffle(pool)
    return "".join(render_gold(row) + connector for row in pool[:shots])


# src/xnli_prompt.py, English: the query template ends before the answer (no `{choice}`: see the deviation below)
XNLI_EXAMPLE = (
    "Premise: {premise}\nHypothesis: {hypothesis}\nQuestion: What is the relationship between premise "
    "and hypothesis, entailment, neutral, or contradiction?\nAnswer: {label}"
)
XNLI_FEW_SHOT = (
    "{demos}Premise: {premise}\nHypothesis: {hypothesis}\nQuestion: What is the relationship between "
    "premise and hypothesis, entailment, neutral, or contradiction?\nAnswer: "
)
# src/xcopa_prompt.py, English
XCOPA_FORMAT = "{question}: {premise} {conjunction} {label}"
XCOPA_WORDS = {"cause": ("cause", "because"), "effect": ("effect", "so")}


def _xnli_expected(test, dev, shots):
    demos = _demos(dev, shots, 0, lambda r: XNLI_EXAMPLE.format_map({**r, "label": "ABC"[r["label"]]}), "\n\n")
    # the reference's query has no `{choice}`; the tasks append the letter where the demonstrations put it
    assert "{choice}" not in XNLI_FEW_SHOT
    return [XNLI_FEW_SHOT.format_map({**test, "demos": demos}) + letter for letter in "ABC"]


def _xcopa_expected(test, dev, shots):
    def fill(row, alternative):
        question, conjunction = XCOPA_WORDS[row["question"]]
        return XCOPA_FORMAT.format_map({**row, "question": question, "conjunction": conjunction, "label": alternative})

    demos = _demos(dev, shots, 0, lambda r: fill(r, r[f"choice{r['label'] + 1}"]), "</s>")
    return [demos + fill(test, test["choice1"]), demos + fill(test, test["choice2"])]


def _story_expected(test, dev, shots):
    def fill(row, ending):  # "{sentence1}{sentence2}{sentence3}{sentence4}{choice}": joined without spaces
        return "".join(row[f"input_sentence_{i}"] for i in range(1, 5)) + ending

    demos = _demos(dev, shots, 0, lambda r: fill(r, r[f"sentence_quiz{r['answer_right_ending']}"]), "</s>")
    return [demos + fill(test, test["sentence_quiz1"]), demos + fill(test, test["sentence_quiz2"])]


def _winograd_expected(test, dev, shots):
    def fill(row, option):  # "{sentence_part1}{choice}{sentence_part2}": the blank filled
        before, after = row["sentence"].split("_", 1)
        return before + option + after

    demos = _demos(dev, shots, 0, lambda r: fill(r, r[f"option{r['answer']}"]), "</s>")
    return [demos + fill(test, test["option1"]), demos + fill(test, test["option2"])]


OTHER_BENCHMARKS = {
    # task: (expected texts, test rows, English dev rows, gold of a row)
    "xling_afp_xnli_zh": (_xnli_expected, ("xnli", "zh", "test"), ("xnli", "en", "validation"), lambda r: r["label"]),
    "xling_afp_xcopa_zh": (
        _xcopa_expected,
        ("xcopa", "zh", "test"),
        ("xcopa", "en", "validation"),
        lambda r: r["label"],
    ),
    "xling_afp_xstorycloze_zh": (
        _story_expected,
        ("xstorycloze", "zh", "eval"),
        ("xstorycloze", "en", "train"),
        lambda r: r["answer_right_ending"] - 1,
    ),
    "xling_afp_xwinograd_zh": (
        _winograd_expected,
        ("xwinograd", "zh", "test"),
        ("xwinograd", "en", "validation"),
        lambda r: int(r["answer"]) - 1,
    ),
}


@pytest.mark.parametrize("shots", [0, 2])
def test_the_other_benchmarks_render_the_reference_s_texts(xglm_like, shots):
    model, tokenizer = xglm_like
    out = _evaluate(model, tokenizer, list(OTHER_BENCHMARKS), shots, {"data_dir": str(FIXTURE_DATA)}, limit=3)
    for task, (expected_texts, test_split, dev_split, gold) in OTHER_BENCHMARKS.items():
        test_rows, dev_rows = _rows(*test_split), _rows(*dev_split)
        samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
        assert len(samples) == 3, task
        for sample in samples:
            row = test_rows[sample["doc_id"]]
            assert [c + k for c, k in sample["arguments"]] == expected_texts(row, dev_rows, shots), task
            assert sample["target"] == gold(row), task
            by_hand = [reference_score(model, tokenizer, c + k) for c, k in sample["arguments"]]
            loglik = [response[0] for response in sample["filtered_resps"]]
            assert max(range(len(by_hand)), key=by_hand.__getitem__) == max(range(len(loglik)), key=loglik.__getitem__)


# ------------------------------------------------------------------------------------------------ errors
def test_a_prompt_language_without_a_format_is_refused_with_the_ones_that_exist():
    from xling_align.evaluation.paper_protocol import UnknownPromptLanguage
    from xling_align.lm_eval_tasks.paper_tasks import load_paper_protocol

    with pytest.raises(UnknownPromptLanguage) as error:
        load_paper_protocol(
            xling_benchmark="pawsx", xling_lang="de", xling_prompt_lang="de", data_dir=str(FIXTURE_DATA)
        )
    message = str(error.value)
    assert "no pawsx prompt in 'de'" in message and "en, zh, ar" in message
    assert "uses the English prompt" in message and "xling_afp_pawsx_<lang>_native for zh" in message


def test_more_shots_than_the_dev_split_holds_is_refused(xglm_like):
    model, tokenizer = xglm_like
    with pytest.raises(
        ValueError,
        match=r"9 demonstrations asked for \(--num_fewshot 9\), but pawsx en validation "
        r"\(google-research-datasets/paws-x, 8 rows, seed 0\) holds only 8",
    ):
        _evaluate(model, tokenizer, ["xling_afp_pawsx_zh"], 9, {"data_dir": str(FIXTURE_DATA)}, limit=1)


def test_the_protocol_s_languages_and_splits():
    from xling_align.evaluation.paper_protocol import PROTOCOLS, protocol

    assert set(PROTOCOLS) == {"xnli", "pawsx", "xcopa", "xstorycloze", "xwinograd"}
    assert protocol("xcopa").languages[0] == "et" and "en" not in protocol("xcopa").languages
    assert protocol("xnli").native_languages == ("ar", "zh")
    assert protocol("xwinograd").native_languages == ()  # no Chinese dev split
    for entry in PROTOCOLS.values():
        for lang in entry.languages:  # never demonstrations from the scored split
            assert entry.scored(lang) != entry.demonstration_source("en")
    with pytest.raises(ValueError, match="covers xnli, pawsx, xcopa, xstorycloze, xwinograd, not 'belebele'"):
        protocol("belebele")
