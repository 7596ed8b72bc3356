"""Write every `xling_*` task YAML, group YAML and benchmark README from the benchmark table.

The facts (languages, splits, prompt words, papers) live in `xling_align/benchmark_table.py`; this script
only turns them into lm-eval task files. Run it after changing the table (and bump `PROMPT_VERSION` there
when a prompt changes):

    python -m xling_align.lm_eval_tasks.generate_tasks          # rewrite the generated files
    python -m xling_align.lm_eval_tasks.generate_tasks --check  # exit 1 if they are out of date

Only files carrying this generator's header are written or removed (the six benchmark folders and
`_xling.yaml`); other folders under lm_eval_tasks/ (e.g. `clone/`) keep their own generators. Prompts are
the XGLM-style prompts of lm-eval 0.4.13's built-in tasks, word for word, so 0-shot scores equal the
built-ins on the same data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from xling_align.benchmark_table import BENCHMARKS, PROMPT_VERSION, benchmark
from xling_align.lm_eval_tasks.generated_files import generator_main

TASKS_DIR = Path(__file__).resolve().parent
GENERATOR = "xling_align.lm_eval_tasks.generate_tasks"
LOADER = "xling_align.lm_eval_tasks.data_loader.load_benchmark"
UTILS = "xling_align.lm_eval_tasks.utils"
# reads the `demos` split only when a demonstration is drawn (0-shot runs never need it)
DEMONSTRATION_SAMPLER = "xling_align.lm_eval_tasks.demonstrations.DemonstrationSampler"


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
        "English items with the English prompt (the paper's cross-lingual demonstration setting).",
        "",
        "## Groups and tasks",
    ]
    for group, tasks in groups.items():
        lines += ["", f"- `{group}` (size-weighted mean of acc): " + ", ".join(f"`{t}`" for t in tasks)]
    lines += ["", "## Citation", "", "```bibtex", table.paper.bibtex, "```", ""]
    return "\n".join(lines)


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
    return files


def main(argv: list[str] | None = None) -> int:
    return generator_main(__doc__, generated_files, TASKS_DIR, GENERATOR, argv)


if __name__ == "__main__":
    sys.exit(main())
