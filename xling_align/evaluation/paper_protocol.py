"""The evaluation protocol of the AFP paper, as its public implementation runs it: prompts, choices, demonstrations.

The facts below were read from the authors' code (github.com/chongli17/CrossLingualAlignment, MIT):
`src/{paws_x,xnli,xcopa,xstorycloze,xwinograd}_prompt.py`, `data/PAWS-X/prompt_formats.json`,
`data/config/pawsx_en-zh_seed0.json` and `src/trainers.py` (`batch_prompts_inference_choices`). This module is
their one home; the `xling_afp_*` lm-eval tasks (`lm_eval_tasks/afp/`, written by `generate_tasks.py`) and
`xling-align reproduce` read them here. Which hub dataset and split hold a language's data is still the
benchmark table's business (`xling_align.evaluation.benchmark_table`).

How the reference scores one test item (its default configuration, the one its shipped config runs):

- **prompt language.** It fixes the template words and the choice words of the demonstrations AND of the
  query. The default is English for every test language, so a Chinese PAWS-X item reads
  `{sentence1}, right? {Yes|No}, {sentence2}` with Chinese sentences. Formats exist for English, Chinese
  and Arabic (`PROMPT_LANGUAGES`); the `_native` tasks use the test language's own format where it exists.
- **demonstrations.** k items of the prompt language's dev split, drawn once per seed and shared by every
  test item: Python's `random.seed(seed)`, `random.shuffle` of the whole split read in file order, the first
  k (`reference_order`). Each one is the example filled with its gold choice, followed by the separator
  (`</s>` as text; XNLI: a blank line).
- **scoring.** Every choice is the whole example (demonstrations + the query filled with that choice); the
  prediction is the argmax of the summed token log-probabilities of the whole text. The demonstrations are
  the same for every choice, so this is the argmax of log P(query with choice | demonstrations): lm-eval's
  `acc` with the demonstrations as context and the filled query as continuation.
- **tokenization.** The reference calls `tokenizer(text)`, so the model sees the tokens the tokenizer
  adds itself: XGLM prepends `</s>`. `lm_eval_model_args` gives the lm-eval model arguments that
  reproduce this.

Deviations from the reference, all deliberate and listed in `DEVIATIONS`.

Example:
    >>> from xling_align.evaluation.paper_protocol import protocol, reference_order
    >>> pawsx = protocol("pawsx")
    >>> row = {"sentence1": "他来了", "sentence2": "她走了", "label": 1}
    >>> pawsx.query_texts(row, "en")
    ['他来了, right? Yes, 她走了', '他来了, right? No, 她走了']
    >>> pawsx.gold(row), pawsx.demonstration_text(row, "en")
    (0, '他来了, right? Yes, 她走了</s>')
    >>> reference_order(10, seed=0)[:5]  # the positions of the 5 demonstrations seed 0 picks from 10 items
    [7, 8, 1, 5, 3]
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from xling_align.errors import XlingAlignError
from xling_align.evaluation.benchmark_table import HubSplit, benchmark

REFERENCE_URL = "https://github.com/chongli17/CrossLingualAlignment"
# `metadata.version` of every generated xling_afp_* task: bump it whenever a format or the sampling changes
PROTOCOL_VERSION = 1.0
# the reference's default prompt language, and the prompt languages it has formats for
DEFAULT_PROMPT_LANGUAGE = "en"
PROMPT_LANGUAGES = ("en", "zh", "ar")
# the seed of the reference's shipped config (`infer_seeds: [0]`)
DEFAULT_DEMONSTRATION_SEED = 0
# the reference separates demonstrations with the text `</s>` (XGLM's tokenizer reads it as its special token)
END_OF_TEXT = "</s>"


class UnknownPromptLanguage(XlingAlignError, ValueError):
    """A prompt language the reference has no format for; the message names the ones that exist."""


@dataclass(frozen=True)
class PromptFormat:
    """The texts of one benchmark in one prompt language.

    Parameters:
        example (`str`): a demonstration; `{choice}` is filled with the gold choice.
        query (`str`): a test item; `{choice}` is filled with each candidate in turn.
        choice_words (`tuple[str, ...]`): the candidates by choice index (`("Yes", "No")`); empty when the
            candidates are texts of the row (XCOPA's alternatives, XStoryCloze's endings, XWinograd's options).
        words (`Mapping[str, str]`): further words of the prompt language the row's values are mapped to
            (XCOPA: `cause`/`effect` and their conjunctions).
    """

    example: str
    query: str
    choice_words: tuple[str, ...] = ()
    words: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "words", MappingProxyType(dict(self.words)))


@dataclass(frozen=True, eq=False)
class PaperProtocol:
    """The reference's protocol for one benchmark.

    Parameters:
        benchmark (`str`): the benchmark's name in `xling_align.evaluation.benchmark_table`.
        scored_split (`str`): the split the reference scores (its `test_sample_path`): the test split.
        separator (`str`): the text after every demonstration (the reference's `CONNECTOR`).
        formats (`Mapping[str, PromptFormat]`): the formats by prompt language.
        fields (`Callable[[dict, PromptFormat], dict]`): a row (hub columns) -> the named fields of the format.
        candidates (`Callable[[dict, PromptFormat], list[str]]`): a row -> what fills `{choice}`, in choice order.
        gold (`Callable[[dict], int]`): a row -> the index of its correct choice.
        excluded_languages (`Mapping[str, str]`): benchmark languages without a task, and why.
        reference_files (`str`): where the facts come from in the reference.
    """

    benchmark: str
    scored_split: str
    separator: str
    formats: Mapping[str, PromptFormat]
    fields: Callable[[dict, PromptFormat], dict]
    candidates: Callable[[dict, PromptFormat], list[str]]
    gold: Callable[[dict], int]
    reference_files: str
    excluded_languages: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "formats", MappingProxyType(dict(self.formats)))
        object.__setattr__(self, "excluded_languages", MappingProxyType(dict(self.excluded_languages)))

    # ------------------------------------------------------------------------------ languages and data
    @property
    def languages(self) -> tuple[str, ...]:
        """The test languages of the `xling_afp_<benchmark>_<lang>` tasks."""
        return tuple(lang for lang in benchmark(self.benchmark).languages if lang not in self.excluded_languages)

    @property
    def native_languages(self) -> tuple[str, ...]:
        """Test languages with an in-language format other than English and a dev split: the `_native` tasks."""
        table = benchmark(self.benchmark)
        return tuple(
            lang
            for lang in self.languages
            if lang in self.formats and lang != DEFAULT_PROMPT_LANGUAGE and table.dev(lang) is not None
        )

    def prompt_format(self, prompt_lang: str) -> PromptFormat:
        """The format of `prompt_lang`; a language without one raises `UnknownPromptLanguage`."""
        if prompt_lang not in self.formats:
            raise UnknownPromptLanguage(
                f"the paper's protocol has no {self.benchmark} prompt in {prompt_lang!r}: the reference has formats "
                f"in {', '.join(self.formats)} only. Its default, which xling_afp_{self.benchmark}_<lang> follows, "
                f"uses the English prompt (template, choice words and demonstrations) for every test language; "
                f"in-language prompts exist as xling_afp_{self.benchmark}_<lang>_native for "
                f"{', '.join(self.native_languages) or 'no language of this benchmark'}."
            )
        return self.formats[prompt_lang]

    def scored(self, lang: str) -> HubSplit:
        """The split of `lang` the tasks score (the reference's test split)."""
        if lang in self.excluded_languages:
            raise ValueError(f"xling_afp_{self.benchmark} has no {lang} task: {self.excluded_languages[lang]}.")
        table = benchmark(self.benchmark)
        if lang not in table.languages:
            raise ValueError(
                f"{lang!r} is not a {self.benchmark} language: expected one of {', '.join(self.languages)}."
            )
        return HubSplit(table.hub_path, lang, self.scored_split)

    def demonstration_source(self, prompt_lang: str) -> HubSplit:
        """The dev split of `prompt_lang` the demonstrations are drawn from (the reference's `prompt_sample_path`)."""
        self.prompt_format(prompt_lang)
        source = benchmark(self.benchmark).dev(prompt_lang)
        if source is None:
            raise ValueError(
                f"{self.benchmark} has no {prompt_lang} dev split to draw demonstrations from; use the English "
                f"prompt (xling_afp_{self.benchmark}_<lang>), whose demonstrations come from the English dev split."
            )
        return source

    def splits_read(self, lang: str) -> list[HubSplit]:
        """Every split of `lang` the tasks read: its scored split, and its dev split if it gives demonstrations."""
        splits = [self.scored(lang)] if lang in self.languages else []
        if lang == DEFAULT_PROMPT_LANGUAGE or lang in self.native_languages:
            splits.append(self.demonstration_source(lang))
        return splits

    # ------------------------------------------------------------------------------ texts
    def _fill(self, template: str, row: dict, fmt: PromptFormat, choice: str) -> str:
        return template.format_map({**self.fields(row, fmt), "choice": choice})

    def query_texts(self, row: dict, prompt_lang: str) -> list[str]:
        """The test item filled with every candidate, in choice order: the texts lm-eval scores."""
        fmt = self.prompt_format(prompt_lang)
        return [self._fill(fmt.query, row, fmt, choice) for choice in self.candidates(row, fmt)]

    def example_texts(self, row: dict, prompt_lang: str) -> list[str]:
        """The demonstration format filled with every candidate (a demonstration shows the gold one)."""
        fmt = self.prompt_format(prompt_lang)
        return [self._fill(fmt.example, row, fmt, choice) for choice in self.candidates(row, fmt)]

    def demonstration_text(self, row: dict, prompt_lang: str) -> str:
        """One demonstration as the reference writes it: the example with its gold choice, then the separator."""
        return self.example_texts(row, prompt_lang)[self.gold(row)] + self.separator


def reference_order(size: int, seed: int) -> list[int]:
    """The positions of a split of `size` items in the order the reference's seed puts them.

    The reference seeds Python's global generator (`random.seed(seed)`) and shuffles the list of dev items
    in place; its k demonstrations are the first k of that order. A shuffle depends only on the list's
    length and the generator, so shuffling positions gives the same order.
    """
    order = list(range(size))
    random.Random(seed).shuffle(order)
    return order


def lm_eval_model_args(tokenizer) -> dict:
    """lm-eval `hf` model arguments that give the model the token sequences the reference scores.

    The reference encodes every text with `tokenizer(text)`, i.e. with the special tokens the tokenizer adds
    itself, and scores every token after the first. lm-eval 0.4.13 conditions an empty context (0-shot) on
    `prefix_token_id` (default: the BOS token, `<s>` for XGLM), while XGLM's tokenizer prepends `</s>`:

    - a tokenizer that prepends a token (XGLM: `</s>`): `prefix_token_id` = that token, so 0-shot items
      are conditioned on it as in the reference; few-shot contexts get it from the tokenizer;
    - a tokenizer that appends tokens (ByT5's `</s>`): `add_bos_token=False`, so no end-of-text token lands
      between the demonstrations and the query;
    - a tokenizer that adds nothing (BLOOM, GPT-2): no argument. The reference then leaves the first token
      unscored and unconditioned, lm-eval conditions 0-shot items on the BOS token; the first token is the
      same for every choice, so only that conditioning differs.
    """
    with_special = tokenizer("a")["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    if len(with_special) > len(without) and with_special[-len(without) :] == without:
        return {"prefix_token_id": with_special[0]}
    if len(with_special) > len(without) and with_special[: len(without)] == without:
        return {"add_bos_token": False}
    return {}


# ------------------------------------------------------------------------------------------ the table
def _label_index(row: dict, column: str, values: tuple) -> int:
    value = row[column]
    if value not in values:
        raise ValueError(f"label {column}={value!r} is not one of {list(values)}: the row cannot be scored ({row}).")
    return values.index(value)


def _pawsx_gold(row: dict) -> int:
    # label 1 (paraphrase) is the first choice ("Yes"), label 0 the second ("No")
    return _label_index(row, "label", (1, 0))


_PAWSX = PaperProtocol(
    benchmark="pawsx",
    scored_split="test",  # test_2k.tsv; demonstrations from dev_2k.tsv (the hub's validation split)
    separator=END_OF_TEXT,
    formats={
        "en": PromptFormat(
            "{sentence1}, right? {choice}, {sentence2}",
            "{sentence1}, right? {choice}, {sentence2}",
            choice_words=("Yes", "No"),
        ),
        # the reference's Chinese demonstrations put a full-width comma after the choice, its queries ", "
        "zh": PromptFormat(
            "{sentence1}，对吗？ {choice}，{sentence2}",
            "{sentence1}，对吗？ {choice}, {sentence2}",
            choice_words=("对", "不对"),
        ),
        "ar": PromptFormat(
            "{sentence1}, أليس كذلك؟ {choice}, {sentence2}",
            "{sentence1}, أليس كذلك؟ {choice}, {sentence2}",
            choice_words=("نعم", "لا"),
        ),
    },
    fields=lambda row, fmt: {"sentence1": row["sentence1"], "sentence2": row["sentence2"]},
    candidates=lambda row, fmt: list(fmt.choice_words),
    gold=_pawsx_gold,
    reference_files="src/paws_x_prompt.py, data/PAWS-X/prompt_formats.json (f3), data/config/pawsx_en-zh_seed0.json",
)

_XNLI_EN = (
    "Premise: {premise}\nHypothesis: {hypothesis}\nQuestion: What is the relationship between premise and "
    "hypothesis, entailment, neutral, or contradiction?\nAnswer: {choice}"
)
_XNLI_ZH = "前提：{premise}\n假设：{hypothesis}\n问题: 前提和假设之间是什么关系，蕴涵，中立，还是矛盾？\n回答：{choice}"
_XNLI_AR = (
    "شرط مسبق: {premise}\nالافتراض: {hypothesis}\nالسؤال: ما هي العلاقة بين الفرضية والافتراضات؟ {middle}"
    "\nالإجابة: {choice}"
)
_XNLI = PaperProtocol(
    benchmark="xnli",
    scored_split="test",
    separator="\n\n",
    formats={
        # choices are letters; the reference's query template ends before the answer (see DEVIATIONS)
        "en": PromptFormat(_XNLI_EN, _XNLI_EN, choice_words=("A", "B", "C")),
        "zh": PromptFormat(_XNLI_ZH, _XNLI_ZH, choice_words=("A", "B", "C")),
        # the reference's Arabic demonstration and query templates word the question differently
        "ar": PromptFormat(
            _XNLI_AR.replace("{middle}", "الحاجة محايدة. أم التناقض؟"),
            _XNLI_AR.replace("{middle}", "الحياد أم التناقض؟"),
            choice_words=("A", "B", "C"),
        ),
    },
    fields=lambda row, fmt: {"premise": row["premise"], "hypothesis": row["hypothesis"]},
    candidates=lambda row, fmt: list(fmt.choice_words),
    gold=lambda row: _label_index(row, "label", (0, 1, 2)),  # entailment, neutral, contradiction = A, B, C
    reference_files="src/xnli_prompt.py",
)

_XCOPA_FORMAT = "{question}: {premise} {conjunction} {choice}"
_XCOPA_CONJUNCTION = {"cause": "because", "effect": "so"}  # the reference's conjunction of each question


def _xcopa_fields(row: dict, fmt: PromptFormat) -> dict:
    question = row["question"]
    if question not in _XCOPA_CONJUNCTION:
        raise ValueError(f"XCOPA question {question!r} is not 'cause' or 'effect': the row cannot be scored ({row}).")
    return {
        "question": fmt.words[question],
        "premise": row["premise"],
        "conjunction": fmt.words[_XCOPA_CONJUNCTION[question]],
    }


_XCOPA = PaperProtocol(
    benchmark="xcopa",
    scored_split="test",
    separator=END_OF_TEXT,
    formats={
        lang: PromptFormat(
            _XCOPA_FORMAT, _XCOPA_FORMAT, words=dict(zip(("cause", "effect", "because", "so"), words, strict=True))
        )
        for lang, words in (
            ("en", ("cause", "effect", "because", "so")),
            ("zh", ("起因", "影响", "因为", "所以")),
            ("ar", ("السبب", "تأثير", "لأن", "لذا")),
        )
    },
    fields=_xcopa_fields,
    candidates=lambda row, fmt: [row["choice1"], row["choice2"]],
    gold=lambda row: _label_index(row, "label", (0, 1)),
    reference_files="src/xcopa_prompt.py",
    excluded_languages={
        "en": "English is COPA, whose test split has no labels and whose validation split is the "
        "English dev split the demonstrations come from"
    },
)

_STORY_FORMAT = "{sentence1}{sentence2}{sentence3}{sentence4}{choice}"  # the reference joins the sentences as they are
_XSTORYCLOZE = PaperProtocol(
    benchmark="xstorycloze",
    scored_split="eval",  # the hub's `eval`; demonstrations from its `train` (XStoryCloze's dev set)
    separator=END_OF_TEXT,
    formats={lang: PromptFormat(_STORY_FORMAT, _STORY_FORMAT) for lang in PROMPT_LANGUAGES},
    fields=lambda row, fmt: {f"sentence{i}": row[f"input_sentence_{i}"] for i in range(1, 5)},
    candidates=lambda row, fmt: [row["sentence_quiz1"], row["sentence_quiz2"]],
    gold=lambda row: _label_index(row, "answer_right_ending", (1, 2)),
    reference_files="src/xstorycloze_prompt.py",
)


def _winograd_fields(row: dict, fmt: PromptFormat) -> dict:
    sentence = row["sentence"]
    if "_" not in sentence:
        raise ValueError(f"XWinograd sentence without the blank `_`: the row cannot be scored ({row}).")
    before, after = sentence.split("_", 1)
    return {"sentence_part1": before, "sentence_part2": after}


_WINOGRAD_FORMAT = "{sentence_part1}{choice}{sentence_part2}"
_XWINOGRAD = PaperProtocol(
    benchmark="xwinograd",
    scored_split="test",
    separator=END_OF_TEXT,
    formats={lang: PromptFormat(_WINOGRAD_FORMAT, _WINOGRAD_FORMAT) for lang in PROMPT_LANGUAGES},
    fields=_winograd_fields,
    candidates=lambda row, fmt: [row["option1"], row["option2"]],
    gold=lambda row: _label_index(row, "answer", ("1", "2")),
    reference_files="src/xwinograd_prompt.py",
)

PROTOCOLS: Mapping[str, PaperProtocol] = MappingProxyType(
    {entry.benchmark: entry for entry in (_XNLI, _PAWSX, _XCOPA, _XSTORYCLOZE, _XWINOGRAD)}
)

# where these tasks knowingly differ from the reference, and why (the task README lists them)
DEVIATIONS = (
    "XNLI: the reference's query template ends with `Answer: ` and has no `{choice}` slot, so its three "
    "candidate texts are identical and every item is predicted as the first choice. The tasks append the "
    "choice letter where its demonstrations put it (`Answer: A`).",
    "XWinograd: the reference reads a preprocessed file with the sentence split around the blank; the tasks "
    "split the hub's `sentence` at its `_`, which gives the same text when the blank is filled.",
    "XWinograd has no dev split and the reference ships no file for its demonstrations: English "
    "demonstrations come from WinoGrande's validation split (`allenai/winogrande`, `winogrande_xl`), the "
    "dataset whose format XWinograd shares. There is no `_native` XWinograd task.",
    "Demonstrations are positions in the hub's dev split. For PAWS-X it holds the rows of the released "
    "`dev_2k.tsv` that the reference reads (same seed, same items, if the order is kept); for the other "
    "benchmarks the reference's own files are not published, so the same seed picks the same positions.",
)


def protocol(name: str) -> PaperProtocol:
    """The protocol of benchmark `name`; a benchmark the paper did not evaluate raises ValueError."""
    if name not in PROTOCOLS:
        raise ValueError(f"the paper's protocol covers {', '.join(PROTOCOLS)}, not {name!r}.")
    return PROTOCOLS[name]
