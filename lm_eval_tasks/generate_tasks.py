"""Write every `xling_*` task YAML, group YAML and benchmark README from the benchmark table.

The facts (languages, splits, prompt words, papers) live in `xling_align/evaluation/benchmark_table.py`; this script
only turns them into lm-eval task files. Run it after changing the table (and bump `PROMPT_VERSION` there
when a prompt changes):

    python -m xling_align.lm_eval_tasks.generate_tasks          # rewrite the generated files
    python -m xling_align.lm_eval_tasks.generate_tasks --check  # exit 1 if they are out of date

Only files carrying this generator's header are written or removed (the six benchmark folders,
`_xling.yaml` and `afp/`); other folders under lm_eval_tasks/ (e.g. `clone/`) keep their own generators.

Two families:
- `xling_*` (the six benchmark folders): the XGLM-style prompts of lm-eval 0.4.13's built-in tasks, word
  for word, so 0-shot scores equal the built-ins on the same data;
- `xling_afp_*` (`afp/`): the AFP paper's evaluation protocol, from `xling_align/evaluation/paper_protocol.py`
  (its prompt formats, choices, separators and demonstration sampling).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from xling_align.evaluation.benchmark_table import BENCHMARKS, PROMPT_VERSION, benchmark
from xling_align.evaluation.paper_protocol import DEVIATIONS, PROTOCOL_VERSION, PROTOCOLS, REFERENCE_URL, protocol
from xling_align.lm_eval_tasks.generated_files import generator_main

TASKS_DIR = Path(__file__).resolve().parent
GENERATOR = "xling_align.lm_eval_tasks.generate_tasks"
LOADER = "xling_align.lm_eval_tasks.data_loader.load_benchmark"
UTILS = "xling_align.lm_eval_tasks.utils"
# reads the `demos` split only when a demonstration is drawn (0-shot runs never need it)
DEMONSTRATION_SAMPLER = "xling_align.lm_eval_tasks.demonstrations.DemonstrationSampler"
PAPER_TASKS = "xling_align.lm_eval_tasks.paper_tasks"
AFP_DIR = "afp"


# ------------------------------------------------------------------------------------ the prompts
def _jinja_list(items: list[str]) -> str:
    return "{{[" + ", ".join(items) + "]}}"


def _quoted(text: str) -> str:
    """A Jinja string literal (the words contain single quotes, e.g. French, never double ones)."""
    assert '"' not in text, text
    return f'"{text}"'


def prompt_fields(name: str, lang: str) -> dict:
    """The language-specific prompt of one task (keys of a TaskConfig)."""
    table = benchmark(name)
    if name == "xnli":
        right, yes, also, no = table.prompt_words[lang]
        return {
            "doc_to_choice": _jinja_list(
                [f"premise+{_quoted(f', {right}? {word}, ')}+hypothesis" for word in (yes, also, no)]
            )
        }
    if name == "pawsx":
        right, yes, no = table.prompt_words[lang]
        fields = {
            "doc_to_choice": _jinja_list(
                [f"sentence1+{_quoted(f', {right}? {word}, ')}+sentence2" for word in (no, yes)]
            )
        }
        if lang in table.detokenized_languages:
            fields["process_docs"] = Function(f"{UTILS}.pawsx_process_docs")
        return fields
    if name == "xcopa":
        because, therefore = table.prompt_words[lang]
        return {
            "doc_to_text": "{{premise.strip()[:-1]}} {{ {'cause': "
            + _quoted(because)
            + ", 'effect': "
            + _quoted(therefore)
            + "}[question] }}"
        }
    return {}  # xstorycloze, xwinograd, belebele: the template's prompt fits every language


def template(name: str) -> dict:
    """The benchmark's shared task settings (`_<benchmark>_template_yaml`)."""
    acc = {"metric": "acc", "aggregation": "mean", "higher_is_better": True}
    common = {
        "custom_dataset": Function(LOADER),
        "output_type": "multiple_choice",
        "metric_list": [acc],
        "metadata": {"version": PROMPT_VERSION},
    }
    if name in ("xnli", "pawsx"):
        # the whole sentence is the choice; pawsx joins it to an empty context without a space
        common.update(doc_to_text="", doc_to_target="label")
        if name == "pawsx":
            common["target_delimiter"] = ""
    elif name == "xcopa":
        common.update(doc_to_target="label", doc_to_choice=Function(f"{UTILS}.xcopa_choices"))
    elif name == "xstorycloze":
        story = "{{[input_sentence_1, input_sentence_2, input_sentence_3, input_sentence_4]|join(' ')}}"
        common.update(
            doc_to_text=story,
            doc_to_target="{{answer_right_ending-1}}",
            doc_to_choice="{{[sentence_quiz1, sentence_quiz2]}}",
        )
    elif name == "xwinograd":
        common.update(
            doc_to_text=Function(f"{UTILS}.xwinograd_gold_context"),
            doc_to_target=Function(f"{UTILS}.xwinograd_continuation"),
            doc_to_choice=Function(f"{UTILS}.xwinograd_contexts"),
        )
    elif name == "belebele":
        common.update(
            doc_to_text="P: {{flores_passage}}\nQ: {{question.strip()}}\nA: {{mc_answer1}}\nB: "
            "{{mc_answer2}}\nC: {{mc_answer3}}\nD: {{mc_answer4}}\nAnswer:",
            doc_to_choice=["A", "B", "C", "D"],
            doc_to_target="{{" + repr(list(benchmark(name).label_values)) + ".index(correct_answer_num)}}",
        )
        common["metric_list"] = [acc, {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]
    return common


def task_name(name: str, lang: str, english_demos: bool = False) -> str:
    return f"xling_{name}_{lang}" + ("_endemo" if english_demos else "")


def task_config(name: str, lang: str, english_demos: bool) -> dict:
    """One task: in-language demonstrations, or English demonstrations with the English prompt."""
    table = benchmark(name)
    demo_lang = table.english if english_demos else lang
    has_demos = table.demonstrations(demo_lang) is not None
    config = {
        "include": f"_{name}_template_yaml",
        "task": task_name(name, lang, english_demos),
        "dataset_kwargs": {
            "xling_benchmark": name,
            "xling_lang": lang,
            "xling_demo_lang": demo_lang if has_demos else None,
        },
        "test_split": table.scored(lang).split,
        **prompt_fields(name, lang),
    }
    if not has_demos:
        config["fewshot_config"] = {"sampler": Function(f"{UTILS}.NoDemonstrations"), "samples": []}
    else:
        demo_prompt = prompt_fields(name, demo_lang) if english_demos else {}
        config["fewshot_config"] = {"split": "demos", "sampler": Function(DEMONSTRATION_SAMPLER), **demo_prompt}
    return config


def has_english_demo_variant(name: str) -> bool:
    table = benchmark(name)
    return table.demonstrations(table.english) is not None


def group_config(name: str, tasks: list[str], english_demos: bool) -> dict:
    metrics = ["acc", "acc_norm"] if name == "belebele" else ["acc"]
    return {
        "group": f"xling_{name}" + ("_endemo" if english_demos else ""),
        "task": tasks,
        "aggregate_metric_list": [
            {"metric": metric, "aggregation": "mean", "weight_by_size": True} for metric in metrics
        ],
        "metadata": {"version": PROMPT_VERSION},
    }


# ------------------------------------------------------------------------------------ YAML output
class Function(str):
    """A dotted path written as `!function path` (lm-eval resolves it when the task is built)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Function, lambda dumper, value: dumper.represent_scalar("!function", str(value)))


def _dump(config: dict) -> str:
    return yaml.dump(config, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)


def _readme(name: str, groups: dict[str, list[str]]) -> str:
    table = benchmark(name)
    other = next(lang for lang in table.languages if lang != table.english)  # a non-English language
    demos = table.demonstrations(other)
    lines = [
        f"# xling_{name}",
        "",
        f"Paper: {table.paper.title}. {table.paper.url}",
        "",
        "## Prompts",
        f"The prompts are those of lm-evaluation-harness 0.4.13's built-in `{name}` tasks, word for word",
        "(XGLM-style prompts, Lin et al. 2022), so 0-shot scores equal the built-ins on the same data.",
        f"Scored split: `{table.scored(other).split}`. Demonstrations: "
        + (f"`{demos.split}` of the same language" if demos else "none")
        + " (never the scored split).",
        *table.notes,
        "",
        "`_endemo` tasks: the query is in the task's language with its own prompt; the demonstrations are",
        "English items with the English prompt. This is not the AFP paper's protocol, whose query also uses",
        f"the English prompt: that is `xling_afp_{name}_<lang>` (see `../afp/README.md`).",
        "",
        "## Groups and tasks",
    ]
    for group, tasks in groups.items():
        lines += ["", f"- `{group}` (size-weighted mean of acc): " + ", ".join(f"`{t}`" for t in tasks)]
    lines += ["", "## Citation", "", "```bibtex", table.paper.bibtex, "```", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------- the paper's protocol (xling_afp_*)
def afp_task_name(name: str, lang: str, native: bool = False) -> str:
    return f"xling_afp_{name}_{lang}" + ("_native" if native else "")


def afp_template(name: str) -> dict:
    """The shared settings of one benchmark's `xling_afp_*` tasks (`afp/<benchmark>/_afp_<benchmark>_template_yaml`).

    Every choice is the whole example (context: the demonstrations; continuation: the filled query), the
    demonstrations are joined by the reference's separator, and the seeded dev split gives them.
    """
    entry = protocol(name)
    return {
        "custom_dataset": Function(f"{PAPER_TASKS}.load_paper_protocol"),
        "output_type": "multiple_choice",
        "test_split": entry.scored_split,
        "doc_to_text": "",
        "doc_to_choice": Function(f"{PAPER_TASKS}.query_texts"),
        "doc_to_target": Function(f"{PAPER_TASKS}.gold"),
        "target_delimiter": "",
        "fewshot_delimiter": entry.separator,
        "fewshot_config": {
            "split": "dev",
            "sampler": Function(f"{PAPER_TASKS}.PaperDemonstrations"),
            "doc_to_choice": Function(f"{PAPER_TASKS}.example_texts"),
        },
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": PROTOCOL_VERSION},
    }


def afp_task_config(name: str, lang: str, native: bool) -> dict:
    return {
        "include": f"_afp_{name}_template_yaml",
        "task": afp_task_name(name, lang, native),
        "dataset_kwargs": {"xling_benchmark": name, "xling_lang": lang, "xling_prompt_lang": lang if native else "en"},
    }


def _afp_group(group: str, tasks: list[str]) -> dict:
    return {
        "group": group,
        "task": tasks,
        "aggregate_metric_list": [{"metric": "acc", "aggregation": "mean", "weight_by_size": True}],
        "metadata": {"version": PROTOCOL_VERSION},
    }


def _afp_readme(groups: dict[str, list[str]]) -> str:
    rows = []
    for name, entry in PROTOCOLS.items():
        dev = entry.demonstration_source("en")
        separator = entry.separator.replace("\n", "\\n")
        rows.append(
            f"| `{name}` | {len(entry.languages)} | {entry.scored_split} | `{dev.path}` `{dev.name}` "
            f"{dev.split} | `{separator}` | {', '.join(entry.native_languages) or '–'} |"
        )
    lines = [
        "# xling_afp: the AFP paper's evaluation protocol",
        "",
        "Li, Wang, Zhang, Zong. *Improving In-context Learning of Multilingual Generative Language Models with",
        "Cross-lingual Alignment*. NAACL 2024 (arXiv 2311.08089). The protocol is read from the authors' code,",
        f"{REFERENCE_URL} (`src/*_prompt.py`, `data/PAWS-X/prompt_formats.json`,",
        "`data/config/pawsx_en-zh_seed0.json`, `src/trainers.py`); its facts live in",
        "`xling_align/evaluation/paper_protocol.py`.",
        "",
        "## What a task does (the reference's default configuration)",
        "- `xling_afp_<benchmark>_<lang>`: English prompt language for every test language: the English",
        "  template and English choice words, for the demonstrations and for the query (a Chinese PAWS-X item",
        "  reads `{sentence1}, right? {Yes|No}, {sentence2}` with Chinese sentences).",
        "- `xling_afp_<benchmark>_<lang>_native`: the test language's own format and demonstrations from its own",
        "  dev split, where the reference has one (Chinese, Arabic).",
        "- Demonstrations: `--num_fewshot k` items of the prompt language's dev split, drawn once per seed and",
        "  shared by every test item, as the reference draws them (Python `random.seed(seed)`, `random.shuffle`",
        "  of the whole split, the first k). The seed is `--metadata '{\"demo_seed\": 0}'` (default 0, the",
        "  reference's); lm-eval's own few-shot seed is not used. Each demonstration is the example with its",
        "  gold choice, followed by the separator (`</s>` as text; XNLI: a blank line).",
        "- Scoring: every choice is the whole example; lm-eval's `acc` takes the argmax of its summed",
        "  log-probability given the demonstrations, which is the reference's argmax of the summed",
        "  log-probability of demonstrations plus example (the demonstrations are the same for every choice).",
        "- Tokens: the reference encodes with the tokenizer's own special tokens; XGLM's tokenizer prepends",
        "  `</s>`, so run XGLM with `--model_args ...,prefix_token_id=2` (0-shot items are then conditioned on",
        "  `</s>`, not on `<s>`). `xling_align.evaluation.paper_protocol.lm_eval_model_args(tokenizer)` "
        "computes this for",
        "  any tokenizer; `xling-align reproduce` passes it.",
        "",
        "| benchmark | languages | scored split | demonstrations | separator | `_native` |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Same data layout as every `xling_*` task: the hub, or `XLING_DATA_DIR` / `--metadata data_dir`",
        "(`DIR/<benchmark>/<lang>/<split>.jsonl`; `xling-align export-data` writes these splits too).",
        "",
        "## Where these tasks differ from the reference",
        "",
        *[f"- {deviation}" for deviation in DEVIATIONS],
        "",
        "## Groups and tasks",
        "",
        "The umbrella `xling_afp` is beside `xling` (lm-eval's prompts), not inside it: the two protocols score",
        "different texts, and a mean over both would mean nothing. `--tasks 'xling_*'` runs both, each task once.",
    ]
    for group, tasks in groups.items():
        lines += ["", f"- `{group}` (size-weighted mean of acc): " + ", ".join(f"`{t}`" for t in tasks)]
    lines += [
        "",
        "## Citation",
        "",
        "```bibtex",
        "@inproceedings{li-etal-2024-improving,\n  title={Improving In-context Learning of Multilingual "
        "Generative Language Models with Cross-lingual Alignment},\n  author={Li, Chong and Wang, Shaonan "
        "and Zhang, Jiajun and Zong, Chengqing},\n  booktitle={NAACL},\n  year={2024},\n  pages={8051--8069}\n}",
        "```",
        "",
    ]
    return "\n".join(lines)


def afp_generated_files() -> dict[str, str]:
    """The `afp/` folder: per benchmark a template, the tasks and their groups; the umbrella and README."""
    files: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for name, entry in PROTOCOLS.items():
        folder = f"{AFP_DIR}/{name}"
        files[f"{folder}/_afp_{name}_template_yaml"] = _dump(afp_template(name))
        for native, langs in ((False, entry.languages), (True, entry.native_languages)):
            if not langs:
                continue
            tasks = []
            for lang in langs:
                config = afp_task_config(name, lang, native)
                files[f"{folder}/{config['task']}.yaml"] = _dump(config)
                tasks.append(config["task"])
            group = f"xling_afp_{name}" + ("_native" if native else "")
            files[f"{folder}/_{group}.yaml"] = _dump(_afp_group(group, tasks))
            groups[group] = tasks
    files[f"{AFP_DIR}/_xling_afp.yaml"] = _dump(_afp_group("xling_afp", list(groups)))
    files[f"{AFP_DIR}/README.md"] = _afp_readme(groups)
    return files


def generated_files() -> dict[str, str]:
    """Every generated file (path relative to the task folder) and its content, without the header."""
    files: dict[str, str] = {}
    umbrella: list[str] = []
    for name, table in BENCHMARKS.items():
        files[f"{name}/_{name}_template_yaml"] = _dump(template(name))
        groups: dict[str, list[str]] = {}
        variants = [False, True] if has_english_demo_variant(name) else [False]
        for english_demos in variants:
            langs = [lang for lang in table.languages if not (english_demos and lang == table.english)]
            tasks = []
            for lang in langs:
                config = task_config(name, lang, english_demos)
                files[f"{name}/{config['task']}.yaml"] = _dump(config)
                tasks.append(config["task"])
            group = group_config(name, tasks, english_demos)
            files[f"{name}/_{group['group']}.yaml"] = _dump(group)
            groups[group["group"]] = tasks
            umbrella.append(group["group"])
        files[f"{name}/README.md"] = _readme(name, groups)
    files["_xling.yaml"] = _dump(
        {
            "group": "xling",
            "task": umbrella,
            "aggregate_metric_list": [{"metric": "acc", "aggregation": "mean", "weight_by_size": True}],
            "metadata": {"version": PROMPT_VERSION},
        }
    )
    files.update(afp_generated_files())
    return files


def main(argv: list[str] | None = None) -> int:
    return generator_main(__doc__, generated_files, TASKS_DIR, GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
