"""The one table of facts about the evaluation benchmarks: languages, hub data, splits, columns, prompt words.

Every part that needs such a fact reads it here: the task generator (`lm_eval_tasks/generate_tasks.py`)
writes the `xling_*` YAMLs and READMEs from it, the tasks' data loader (`lm_eval_tasks/data_loader.py`)
finds the hub data and checks columns with it, `xling-align export-data` plans its files with it and
`xling-align report` recognises task names with it. It imports nothing beyond the standard library.

One `Benchmark` per benchmark, in `BENCHMARKS` (the order of reports and of the umbrella group). Splits
have three roles, each a `HubSplit` (hub dataset id, config, split; the split name is also the local file
name, `<data_dir>/<benchmark>/<lang>/<split>.jsonl`):

- `scored`: the split the `xling_*` tasks score (lm-eval 0.4.13's built-ins score the same one);
- `demonstrations`: the split their in-language demonstrations come from, never the scored one (None:
  test-only, 0-shot only);
- `dev`: the benchmark's development split (the paper draws its demonstrations from it).

A language whose data live elsewhere (English XCOPA is COPA; English XWinograd demonstrations are
WinoGrande) has an entry in `overrides`.

Example:
    >>> from xling_align.evaluation.benchmark_table import BENCHMARKS, benchmark
    >>> pawsx = benchmark("pawsx")
    >>> pawsx.scored("de")
    HubSplit(path='google-research-datasets/paws-x', name='de', split='test')
    >>> pawsx.demonstrations("en").split, pawsx.dev("en").split, pawsx.label_values
    ('train', 'validation', (0, 1))
    >>> benchmark("xcopa").scored("en")  # English XCOPA is COPA
    HubSplit(path='aps/super_glue', name='copa', split='validation')
    >>> [name for name, b in BENCHMARKS.items() if b.demonstrations(b.languages[1]) is None]
    ['xwinograd', 'belebele']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# `metadata.version` of every generated xling_* task: bump it whenever a prompt word or template changes
PROMPT_VERSION = 1.0

SCORED, DEMONSTRATIONS, DEV = "scored", "demonstrations", "dev"
SPLIT_ROLES = (SCORED, DEMONSTRATIONS, DEV)


@dataclass(frozen=True)
class HubSplit:
    """One split of one language: hub dataset `path`, its config `name`, its `split` (= the local file name)."""

    path: str
    name: str | None
    split: str


@dataclass(frozen=True)
class RepositoryFiles:
    """A hub repository with a loading script (refused by `datasets` >= 4), read from its own data files instead.

    `xling_align.data.hub_data` reads `file(config, split)` with `datasets`' `builder` and gives the rows the script's
    `columns` and `types`; what the script did beyond that is in `builder_options` and `drop_incomplete`.

    Parameters:
        script (`str`): the loading script's file name in the repository (the file `datasets` refuses).
        builder (`str`): `json` or `csv`.
        pattern (`str`): one split's file in the repository, with `{config}` and `{split}` filled in.
        splits (`tuple[str, ...]`): the split names the script gave.
        columns (`tuple[str, ...]`): the script's field names, in its order (`csv`: read by position).
        types (`Mapping[str, str]`): `datasets` value types other than `string`, e.g. `{"label": "int32"}`.
        builder_options (`Mapping[str, object]`): options of the builder (`csv`: separator, quoting).
        drop_incomplete (`bool`): rows lacking a field are left out (the script skipped them).
    """

    script: str
    builder: str
    pattern: str
    splits: tuple[str, ...]
    columns: tuple[str, ...]
    types: Mapping[str, str] = field(default_factory=dict)
    builder_options: Mapping[str, object] = field(default_factory=dict)
    drop_incomplete: bool = False

    def __post_init__(self):
        object.__setattr__(self, "types", MappingProxyType(dict(self.types)))
        object.__setattr__(self, "builder_options", MappingProxyType(dict(self.builder_options)))

    def file(self, config: str | None, split: str) -> str:
        """The repository path of one split's file."""
        return self.pattern.format(config=config, split=split)


@dataclass(frozen=True)
class Paper:
    """The paper that introduced a benchmark (task READMEs cite it)."""

    title: str
    url: str
    bibtex: str


@dataclass(frozen=True, eq=False)
class Benchmark:
    """Everything the package knows about one benchmark.

    Parameters:
        > Identity

        name (`str`): the short name in task, group and folder names (`xling_<name>_<lang>`).
        paper (`Paper`): where the benchmark comes from.
        builtin_task_prefix (`str`): lm-eval 0.4.13's own tasks are `<prefix>_<lang>` (`paws_de`).

        > Languages

        languages (`tuple[str, ...]`): the benchmark's own language codes (its hub configs), in task order.
        english (`str`): the code of English among them (the language of `_endemo` demonstrations).

        > Data

        hub_path (`str`): hub dataset id; its config is the language code (unless `overrides` says otherwise).
        scored_split, demo_split, dev_split (`str` / `str | None`): split names of the three roles (module
            docstring); None when the benchmark has no such split.
        overrides (`Mapping[tuple[str, str], HubSplit | None]`): `(language, role) -> HubSplit` for a language
            whose split of that role lives elsewhere.
        columns (`tuple[str, ...]`): the hub's column names the prompts read; a data file must have them.
        label_column (`str`): the column holding the gold answer.
        label_values (`tuple`): the gold answer's values as the hub stores them (type included), in the
            order of the task's choices: `label_values[i]` is choice `i`.
        label_names (`tuple[str, ...]`): what each label value means, in the same order (error messages).
        column_values (`Mapping[str, tuple[str, ...]]`): the only values a non-label column may hold
            (XCOPA's `question` is `cause` or `effect`); other columns hold free text.
        item_columns (`tuple[str, ...]`): the columns that make one scored item (what the prompt shows, the
            label aside); two rows with equal values there ask the model the same question. Default: `columns`
            without the label column.
        id_columns (`tuple[str, ...]`): the hub's columns that identify an item (`id`, `idx`, `story_id`,
            `link` + `question_number`), unique within a published split; empty where the hub has none (XNLI,
            XWinograd). A local file need not have them; where it does, a repeated id is a copied row.
        published_rows (`Mapping[str, int]`): rows of each published split (by split name; every language),
            from the dataset cards; `published_rows_by_language` (`(language, split) -> rows`) where the
            languages differ (XWinograd). A scored local file with fewer rows gets a warning.

        > Prompts (lm-eval's built-in prompts, word for word)

        prompt_words (`Mapping[str, tuple[str, ...]]`): per language, the words named by `prompt_word_names`;
            empty for benchmarks whose prompt has no language-specific words.
        prompt_word_names (`tuple[str, ...]`): what each prompt word is, e.g. `("right", "yes", "no")`.
        detokenized_languages (`frozenset[str]`): languages whose sentences lm-eval detokenizes (PAWS-X).
        notes (`tuple[str, ...]`): README sentences about the data of particular languages.
    """

    name: str
    paper: Paper
    builtin_task_prefix: str
    languages: tuple[str, ...]
    hub_path: str
    scored_split: str
    demo_split: str | None
    dev_split: str | None
    columns: tuple[str, ...]
    label_column: str
    label_values: tuple
    label_names: tuple[str, ...] = ()
    column_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    item_columns: tuple[str, ...] = ()
    id_columns: tuple[str, ...] = ()
    published_rows: Mapping[str, int] = field(default_factory=dict)
    published_rows_by_language: Mapping[tuple[str, str], int] = field(default_factory=dict)
    english: str = "en"
    overrides: Mapping[tuple[str, str], HubSplit | None] = field(default_factory=dict)
    prompt_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prompt_word_names: tuple[str, ...] = ()
    detokenized_languages: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        # read-only views: the table is shared by every caller
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))
        object.__setattr__(self, "prompt_words", MappingProxyType(dict(self.prompt_words)))
        object.__setattr__(self, "column_values", MappingProxyType(dict(self.column_values)))
        object.__setattr__(self, "published_rows", MappingProxyType(dict(self.published_rows)))
        object.__setattr__(self, "published_rows_by_language", MappingProxyType(dict(self.published_rows_by_language)))
        if not self.item_columns:
            object.__setattr__(self, "item_columns", tuple(c for c in self.columns if c != self.label_column))

    def split(self, lang: str, role: str) -> HubSplit | None:
        """The split of `role` (`scored`, `demonstrations`, `dev`) for `lang`, or None if there is none."""
        if role not in SPLIT_ROLES:
            raise ValueError(f"unknown split role {role!r}: expected one of {', '.join(SPLIT_ROLES)}")
        if (lang, role) in self.overrides:
            return self.overrides[lang, role]
        name = {SCORED: self.scored_split, DEMONSTRATIONS: self.demo_split, DEV: self.dev_split}[role]
        return None if name is None else HubSplit(self.hub_path, lang, name)

    def scored(self, lang: str) -> HubSplit:
        """The split the `xling_<name>_<lang>` task scores."""
        return self.split(lang, SCORED)

    def demonstrations(self, lang: str) -> HubSplit | None:
        """The split demonstrations in `lang` come from (never the scored one), or None (0-shot only)."""
        return self.split(lang, DEMONSTRATIONS)

    def dev(self, lang: str) -> HubSplit | None:
        """The development split of `lang`, or None when the benchmark has none."""
        return self.split(lang, DEV)

    def published_size(self, lang: str, split: str) -> int | None:
        """Rows of the published `split` of `lang` (dataset cards), or None when the table does not record it."""
        return self.published_rows_by_language.get((lang, split), self.published_rows.get(split))

    def words(self, lang: str) -> dict[str, str]:
        """The prompt words of `lang` by name, e.g. `{"right": "richtig", "yes": "Ja", "no": "Nein"}`."""
        return dict(zip(self.prompt_word_names, self.prompt_words[lang], strict=True))


def benchmark(name: str) -> Benchmark:
    """The benchmark called `name`; an unknown name raises ValueError listing the known ones."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}: expected one of {', '.join(BENCHMARKS)}.")
    return BENCHMARKS[name]


def english_codes() -> frozenset[str]:
    """The code of English in every benchmark (`en`, `eng_Latn`)."""
    return frozenset(entry.english for entry in BENCHMARKS.values())


# ------------------------------------------------------------------------------------------- the table
_XNLI = Benchmark(
    name="xnli",
    paper=Paper(
        "XNLI: Evaluating Cross-lingual Sentence Representations (Conneau et al., EMNLP 2018)",
        "https://aclanthology.org/D18-1269/",
        "@inproceedings{conneau2018xnli,\n  title={XNLI: Evaluating Cross-lingual Sentence Representations},\n"
        "  author={Conneau, Alexis and Rinott, Ruty and Lample, Guillaume and Williams, Adina and Bowman, "
        "Samuel R. and Schwenk, Holger and Stoyanov, Veselin},\n  booktitle={EMNLP},\n  year={2018}\n}",
    ),
    builtin_task_prefix="xnli",
    languages=("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh"),
    hub_path="facebook/xnli",
    scored_split="validation",
    demo_split="train",
    dev_split="validation",
    columns=("premise", "hypothesis", "label"),
    label_column="label",
    label_values=(0, 1, 2),
    label_names=("entailment", "neutral", "contradiction"),
    published_rows={"validation": 2490, "test": 5010},
    # "{premise}, {right}? {yes|also|no}, {hypothesis}" (lm-eval's xnli/utils.py words)
    prompt_word_names=("right", "yes", "also", "no"),
    prompt_words={
        "ar": ("صحيح", "نعم", "لذا", "رقم"),
        "bg": ("правилно", "да", "така", "не"),
        "de": ("richtig", "Ja", "Auch", "Nein"),
        "el": ("σωστός", "Ναί", "Έτσι", "όχι"),
        "en": ("right", "Yes", "Also", "No"),
        "es": ("correcto", "Sí", "Asi que", "No"),
        "fr": ("correct", "Oui", "Aussi", "Non"),
        "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
        "ru": ("правильно", "Да", "Так", "Нет"),
        "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
        "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"),
        "tr": ("doğru", "Evet", "Böylece", "Hayır"),
        "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"),
        "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
        "zh": ("正确", "是的", "所以", "不是的"),
    },
)

_PAWSX = Benchmark(
    name="pawsx",
    paper=Paper(
        "PAWS-X: A Cross-lingual Adversarial Dataset for Paraphrase Identification (Yang et al., EMNLP 2019)",
        "https://aclanthology.org/D19-1382/",
        "@inproceedings{yang2019pawsx,\n  title={PAWS-X: A Cross-lingual Adversarial Dataset for Paraphrase "
        "Identification},\n  author={Yang, Yinfei and Zhang, Yuan and Tar, Chris and Baldridge, Jason},\n"
        "  booktitle={EMNLP-IJCNLP},\n  year={2019}\n}",
    ),
    builtin_task_prefix="paws",
    languages=("en", "de", "es", "fr", "ja", "ko", "zh"),
    hub_path="google-research-datasets/paws-x",
    scored_split="test",
    demo_split="train",
    dev_split="validation",
    columns=("sentence1", "sentence2", "label"),
    label_column="label",
    label_values=(0, 1),
    label_names=("not a paraphrase", "paraphrase"),
    id_columns=("id",),
    published_rows={"validation": 2000, "test": 2000},
    # "{sentence1}, {right}? {no|yes}, {sentence2}"
    prompt_word_names=("right", "yes", "no"),
    prompt_words={
        "en": ("right", "Yes", "No"),
        "de": ("richtig", "Ja", "Nein"),
        "es": ("verdad", "Sí", "No"),
        "fr": ("n'est-ce pas", "Oui", "Non"),
        "ja": ("ですね", "はい", "いいえ"),
        "ko": ("맞죠", "예", "아니요"),
        "zh": ("对吧", "是", "不是"),
    },
    detokenized_languages=frozenset({"en", "de", "es", "fr"}),  # as lm-eval's paws_en/de/es/fr
)

_COPA = "aps/super_glue", "copa"  # XCOPA translates COPA's test set; English lives in SuperGLUE's COPA
_XCOPA = Benchmark(
    name="xcopa",
    paper=Paper(
        "XCOPA: A Multilingual Dataset for Causal Commonsense Reasoning (Ponti et al., EMNLP 2020)",
        "https://aclanthology.org/2020.emnlp-main.185/",
        "@inproceedings{ponti2020xcopa,\n  title={{XCOPA}: A Multilingual Dataset for Causal Commonsense "
        "Reasoning},\n  author={Ponti, Edoardo Maria and Glava{\\v{s}}, Goran and Majewska, Olga and Liu, "
        "Qianchu and Vuli{\\'c}, Ivan and Korhonen, Anna},\n  booktitle={EMNLP},\n  year={2020}\n}",
    ),
    builtin_task_prefix="xcopa",
    languages=("en", "et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh"),
    hub_path="cambridgeltl/xcopa",
    scored_split="test",
    demo_split="validation",
    dev_split="validation",
    overrides={
        # COPA's test split has no labels: its validation split is scored, train gives demonstrations
        ("en", SCORED): HubSplit(*_COPA, "validation"),
        ("en", DEMONSTRATIONS): HubSplit(*_COPA, "train"),
        ("en", DEV): HubSplit(*_COPA, "validation"),
    },
    columns=("premise", "choice1", "choice2", "question", "label"),
    label_column="label",
    label_values=(0, 1),
    label_names=("choice1", "choice2"),
    column_values={"question": ("cause", "effect")},
    id_columns=("idx",),
    published_rows={"validation": 100, "test": 500},  # COPA's (English) validation split: 100 too
    # "{premise without its final mark} {because|therefore}" + " {alternative}"
    prompt_word_names=("because", "therefore"),
    prompt_words={
        "en": ("because", "therefore"),
        "et": ("sest", "seetõttu"),
        "ht": ("poukisa", "donk sa"),
        "id": ("karena", "maka"),
        "it": ("perché", "quindi"),
        "qu": ("imataq", "chaymi"),
        "sw": ("kwa sababu", "kwa hiyo"),
        "ta": ("காரணமாக", "எனவே"),
        "th": ("เพราะ", "ดังนั้น"),
        "tr": ("çünkü", "bu yüzden"),
        "vi": ("bởi vì", "vì vậy"),
        "zh": ("因为", "所以"),
    },
    notes=(
        "English (`xling_xcopa_en`, and the demonstrations of `_endemo`) is COPA (`aps/super_glue`, "
        "`copa`): validation is scored, train gives demonstrations.",
    ),
)

_XSTORYCLOZE = Benchmark(
    name="xstorycloze",
    paper=Paper(
        "Few-shot Learning with Multilingual Language Models (Lin et al., EMNLP 2022), which introduced XStoryCloze",
        "https://arxiv.org/abs/2112.10668",
        "@inproceedings{lin2022fewshot,\n  title={Few-shot Learning with Multilingual Generative Language "
        "Models},\n  author={Lin, Xi Victoria and others},\n  booktitle={EMNLP},\n  year={2022}\n}",
    ),
    builtin_task_prefix="xstorycloze",
    languages=("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh"),
    hub_path="juletxara/xstory_cloze",
    scored_split="eval",
    demo_split="train",
    dev_split="train",  # the hub's `train` is XStoryCloze's small development set
    columns=(
        "input_sentence_1",
        "input_sentence_2",
        "input_sentence_3",
        "input_sentence_4",
        "sentence_quiz1",
        "sentence_quiz2",
        "answer_right_ending",
    ),
    label_column="answer_right_ending",
    label_values=(1, 2),
    label_names=("sentence_quiz1", "sentence_quiz2"),
    id_columns=("story_id",),
    published_rows={"eval": 1511},
)

_XWINOGRAD = Benchmark(
    name="xwinograd",
    paper=Paper(
        "It's All in the Heads (Tikhonov and Ryabinin, Findings of ACL 2021) and Crosslingual "
        "Generalization through Multitask Finetuning (Muennighoff et al., ACL 2023)",
        "https://arxiv.org/abs/2106.12066",
        "@inproceedings{tikhonov2021heads,\n  title={It's All in the Heads: Using Attention Heads as a "
        "Baseline for Cross-Lingual Transfer in Commonsense Reasoning},\n  author={Tikhonov, Alexey and "
        "Ryabinin, Max},\n  booktitle={Findings of ACL-IJCNLP},\n  year={2021}\n}",
    ),
    builtin_task_prefix="xwinograd",
    languages=("en", "fr", "jp", "pt", "ru", "zh"),
    hub_path="Muennighoff/xwinograd",
    scored_split="test",
    demo_split=None,  # test-only
    dev_split=None,
    overrides={
        ("en", DEMONSTRATIONS): HubSplit("allenai/winogrande", "winogrande_xl", "train"),
        # WinoGrande's own dev split: the English dev split of the paper-protocol tasks
        ("en", DEV): HubSplit("allenai/winogrande", "winogrande_xl", "validation"),
    },
    columns=("sentence", "option1", "option2", "answer"),
    label_column="answer",
    label_values=("1", "2"),  # strings on the hub
    label_names=("option1", "option2"),
    published_rows_by_language={
        ("en", "test"): 2325,
        ("fr", "test"): 83,
        ("jp", "test"): 959,
        ("pt", "test"): 263,
        ("ru", "test"): 315,
        ("zh", "test"): 504,
    },
    notes=(
        "XWinograd is test-only: in-language tasks other than English are 0-shot only (asking for shots is "
        "an error); English demonstrations come from WinoGrande (`allenai/winogrande`, `winogrande_xl`, "
        "train).",
    ),
)

_BELEBELE = Benchmark(
    name="belebele",
    paper=Paper(
        "The Belebele Benchmark: a Parallel Reading Comprehension Dataset in 122 Language Variants "
        "(Bandarkar et al., ACL 2024)",
        "https://arxiv.org/abs/2308.16884",
        "@inproceedings{bandarkar2024belebele,\n  title={The Belebele Benchmark: a Parallel Reading "
        "Comprehension Dataset in 122 Language Variants},\n  author={Bandarkar, Lucas and others},\n"
        "  booktitle={ACL},\n  year={2024}\n}",
    ),
    builtin_task_prefix="belebele",
    languages=tuple(
        """acm_Arab afr_Latn als_Latn amh_Ethi apc_Arab arb_Arab arb_Latn ars_Arab ary_Arab arz_Arab
        asm_Beng azj_Latn bam_Latn ben_Beng ben_Latn bod_Tibt bul_Cyrl cat_Latn ceb_Latn ces_Latn ckb_Arab
        dan_Latn deu_Latn ell_Grek eng_Latn est_Latn eus_Latn fin_Latn fra_Latn fuv_Latn gaz_Latn grn_Latn
        guj_Gujr hat_Latn hau_Latn heb_Hebr hin_Deva hin_Latn hrv_Latn hun_Latn hye_Armn ibo_Latn ilo_Latn
        ind_Latn isl_Latn ita_Latn jav_Latn jpn_Jpan kac_Latn kan_Knda kat_Geor kaz_Cyrl kea_Latn khk_Cyrl
        khm_Khmr kin_Latn kir_Cyrl kor_Hang lao_Laoo lin_Latn lit_Latn lug_Latn luo_Latn lvs_Latn mal_Mlym
        mar_Deva mkd_Cyrl mlt_Latn mri_Latn mya_Mymr nld_Latn nob_Latn npi_Deva npi_Latn nso_Latn nya_Latn
        ory_Orya pan_Guru pbt_Arab pes_Arab plt_Latn pol_Latn por_Latn ron_Latn rus_Cyrl shn_Mymr sin_Latn
        sin_Sinh slk_Latn slv_Latn sna_Latn snd_Arab som_Latn sot_Latn spa_Latn srp_Cyrl ssw_Latn sun_Latn
        swe_Latn swh_Latn tam_Taml tel_Telu tgk_Cyrl tgl_Latn tha_Thai tir_Ethi tsn_Latn tso_Latn tur_Latn
        ukr_Cyrl urd_Arab urd_Latn uzn_Latn vie_Latn war_Latn wol_Latn xho_Latn yor_Latn zho_Hans zho_Hant
        zsm_Latn zul_Latn""".split()
    ),
    english="eng_Latn",
    hub_path="facebook/belebele",
    scored_split="test",
    demo_split=None,  # test-only, and its passages are parallel across languages
    dev_split=None,
    columns=(
        "flores_passage",
        "question",
        "mc_answer1",
        "mc_answer2",
        "mc_answer3",
        "mc_answer4",
        "correct_answer_num",
    ),
    label_column="correct_answer_num",
    label_values=("1", "2", "3", "4"),  # strings on the hub
    label_names=("mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4"),
    id_columns=("link", "question_number"),
    published_rows={"test": 900},
    notes=(
        "Belebele is test-only and its passages are parallel across languages, so every demonstration "
        "would leak a translation of some query: 0-shot only, no `_endemo` variant.",
    ),
)

# Hub repositories of the table that ship a loading script: `datasets` >= 4 refuses `load_dataset(repo)` on them
# ("Dataset scripts are no longer supported"), so their files are read directly (`xling_align.data.hub_data`). The
# others (facebook/xnli, google-research-datasets/paws-x, cambridgeltl/xcopa, facebook/belebele, aps/super_glue,
# allenai/winogrande) are data-only and load as they are.
SCRIPT_REPOSITORIES: Mapping[str, RepositoryFiles] = MappingProxyType(
    {
        # xstory_cloze.py: csv.reader(delimiter="\t", quotechar='"', skipinitialspace=True), header skipped, eight
        # fields by position (rows with another count skipped), story_id a string, answer_right_ending int32
        "juletxara/xstory_cloze": RepositoryFiles(
            script="xstory_cloze.py",
            builder="csv",
            pattern="spring2016.val.{config}.tsv.split_20_80_{split}.tsv",
            splits=("train", "eval"),
            columns=(
                "story_id",
                "input_sentence_1",
                "input_sentence_2",
                "input_sentence_3",
                "input_sentence_4",
                "sentence_quiz1",
                "sentence_quiz2",
                "answer_right_ending",
            ),
            types={"answer_right_ending": "int32"},
            builder_options={
                "sep": "\t",
                "quotechar": '"',
                "skipinitialspace": True,
                "keep_default_na": False,
                "on_bad_lines": "skip",
            },
            drop_incomplete=True,
        ),
        # xwinograd.py: test/<lang>.jsonl, one object a line; sentence, option1, option2 and answer, all strings
        "Muennighoff/xwinograd": RepositoryFiles(
            script="xwinograd.py",
            builder="json",
            pattern="test/{config}.jsonl",
            splits=("test",),
            columns=("sentence", "option1", "option2", "answer"),
        ),
    }
)

BENCHMARKS: Mapping[str, Benchmark] = MappingProxyType(
    {entry.name: entry for entry in (_XNLI, _PAWSX, _XCOPA, _XSTORYCLOZE, _XWINOGRAD, _BELEBELE)}
)
