"""Scores of lm-eval result files as Markdown tables and a bar chart (what `xling-align report` prints).

Read by the `report` command and by `xling-align reproduce`; the tables' layout is described in
`xling_align/commands/report.py`.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from xling_align.evaluation.benchmark_table import BENCHMARKS, english_codes

# lm-eval's built-in task prefix -> benchmark name (`paws_de` is PAWS-X)
_BUILTIN_PREFIX = {entry.builtin_task_prefix: name for name, entry in BENCHMARKS.items()}
_XLING_TASK = re.compile(r"^xling_(?P<bench>" + "|".join(BENCHMARKS) + r")_(?P<lang>.+?)(?P<endemo>_endemo)?$")
_AFP_TASK = re.compile(r"^xling_afp_(?P<bench>" + "|".join(BENCHMARKS) + r")_(?P<lang>.+?)(?P<native>_native)?$")
_BUILTIN_TASK = re.compile(r"^(?P<prefix>" + "|".join(_BUILTIN_PREFIX) + r")_(?P<lang>[A-Za-z]{2,3}(?:_[A-Za-z]{4})?)$")
ENGLISH = english_codes()
IN_LANGUAGE = "in-language demonstrations"
ENGLISH_DEMOS = "English demonstrations (_endemo)"
PAPER_PROTOCOL = "paper protocol, English prompt (xling_afp)"
PAPER_PROTOCOL_NATIVE = "paper protocol, in-language prompt (xling_afp _native)"


@dataclass(frozen=True)
class Score:
    benchmark: str
    setting: str
    lang: str
    acc: float  # in [0, 1]
    task: str = ""
    shots: int | None = None  # lm-eval's `n-shot` (None: the file does not say)
    documents: int | None = None  # documents scored (`n-samples` effective; fewer than all with --limit)
    total_documents: int | None = None  # documents of the task (`n-samples` original)


def parse_task(name: str) -> tuple[str, str, str] | None:
    """`(benchmark, setting, language)` of a task name, or None for tasks this report does not know.

    >>> parse_task("xling_pawsx_zh_endemo")
    ('pawsx', 'English demonstrations (_endemo)', 'zh')
    >>> parse_task("paws_de")
    ('pawsx', 'in-language demonstrations', 'de')
    >>> parse_task("xling_afp_pawsx_zh")
    ('pawsx', 'paper protocol, English prompt (xling_afp)', 'zh')
    """
    match = _AFP_TASK.match(name)
    if match:
        return match["bench"], PAPER_PROTOCOL_NATIVE if match["native"] else PAPER_PROTOCOL, match["lang"]
    match = _XLING_TASK.match(name)
    if match:
        setting = ENGLISH_DEMOS if match["endemo"] else IN_LANGUAGE
        return match["bench"], setting, match["lang"]
    match = _BUILTIN_TASK.match(name)
    if match:
        return _BUILTIN_PREFIX[match["prefix"]], IN_LANGUAGE, match["lang"]
    return None


def find_results_file(path: Path) -> Path:
    """`path` itself, or the newest `results*.json` under a folder given as `lm_eval --output_path`.

    lm-eval writes one sub-folder per model there; a folder that holds several models' results is refused (the
    newest would silently stand for all of them, e.g. the same run on both sides of the comparison).
    """
    if path.is_dir():
        found = sorted(path.rglob("results*.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise FileNotFoundError(
                f"{path} is a folder without any results*.json below it: pass the file lm-eval wrote."
            )
        runs = sorted({str(file.parent) for file in found})
        if len(runs) > 1:
            raise ValueError(
                f"{path} holds the results of {len(runs)} models ({', '.join(runs[:4])}"
                f"{', ...' if len(runs) > 4 else ''}): pass the folder or results file of one of them."
            )
        if len(found) > 1:
            print(
                f"xling-align report: {path}: using the newest of its {len(found)} results files, {found[-1].name}",
                file=sys.stderr,
            )
        return found[-1]
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: pass a results JSON written by lm_eval --output_path.")
    return path


def load_scores(path: Path) -> list[Score]:
    """The accuracy of every known task in one lm-eval results file (groups are skipped)."""
    path = find_results_file(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(
            f"{path} is not UTF-8 text: pass a results file written by lm-eval (results_*.json)."
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON ({err.msg}): pass a results file written by lm-eval.") from None
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, dict):
        raise ValueError(f"{path} has no `results` mapping: is it an lm-eval results file (results_*.json)?")
    groups = set(payload.get("groups", {}))
    shots, samples = payload.get("n-shot") or {}, payload.get("n-samples") or {}
    scores = []
    for task, metrics in results.items():
        parsed = parse_task(task)
        if parsed is None or task in groups or "acc,none" not in metrics:
            continue
        counts = samples.get(task) or {}
        scores.append(
            Score(
                *parsed,
                float(metrics["acc,none"]),
                task=task,
                shots=_int_or_none(shots.get(task)),
                documents=_int_or_none(counts.get("effective")),
                total_documents=_int_or_none(counts.get("original")),
            )
        )
    if not scores:
        found = ", ".join(sorted(results)[:5]) or "none"
        raise ValueError(
            f"{path} holds no xling_* (or built-in xnli/paws/xcopa/...) task with an `acc` (its tasks: "
            f"{found}): pass the results of an xling_* run."
        )
    check_one_score_per_cell(scores, path)
    return scores


def _int_or_none(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# ------------------------------------------------------------------- only like is compared with like
def _cell_key(score: Score) -> tuple:
    return score.benchmark, score.setting, score.shots, score.lang


def check_one_score_per_cell(scores: list[Score], path: Path) -> None:
    """Refuse a file holding two tasks for one table cell (e.g. `xling_pawsx_de` and the built-in `paws_de`)."""
    seen: dict[tuple, str] = {}
    for score in scores:
        other = seen.setdefault(_cell_key(score), score.task)
        if other != score.task:
            raise ValueError(
                f"{path} holds two results for {score.benchmark} {score.lang} ({other} and {score.task}); "
                "the report would show only one of them. Report them from separate result files."
            )


def check_comparable(runs: list[list[Score]], labels: list[str]) -> list[str]:
    """Refuse runs whose scores of one task cover different documents; return notes on what else differs.

    Raises:
        ValueError: a task scored on different numbers of documents (another `lm_eval --limit`), naming both runs.
    """
    documents: dict[tuple, dict[str, int]] = {}
    shots: dict[tuple, dict[str, set]] = {}
    for label, run in zip(labels, runs):
        for score in run:
            if score.documents is not None:
                documents.setdefault(_cell_key(score), {})[label] = score.documents
            shots.setdefault((score.benchmark, score.setting), {}).setdefault(label, set()).add(score.shots)
    for (benchmark, _setting, _shots, lang), by_run in documents.items():
        if len(set(by_run.values())) > 1:
            counts = ", ".join(f"{label}: {count}" for label, count in by_run.items())
            raise ValueError(
                f"the runs scored different numbers of {benchmark} {lang} documents ({counts}), so their scores are "
                "not comparable (a different lm_eval --limit?). Evaluate every model on the same documents (the same "
                "lm_eval --limit, or none) and report again."
            )
    notes = []
    for (benchmark, setting), by_run in shots.items():
        if len({frozenset(counts) for counts in by_run.values()}) > 1:
            described = ", ".join(
                f"{label}: {'/'.join('?' if n is None else str(n) for n in sorted(counts, key=str))}"
                for label, counts in by_run.items()
            )
            notes.append(
                f"{benchmark} ({setting}) was run with different numbers of demonstrations ({described} "
                "shots); each shot count has its own table, and scores are never subtracted across them."
            )
    return notes


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _table_title(benchmark: str, setting: str, shots: int | None) -> str:
    return f"## {benchmark} — {setting}" + ("" if shots is None else f", {shots}-shot")


def build_tables(runs: list[list[Score]], labels: list[str]) -> str:
    """The Markdown report for `runs` (one list of scores per results file)."""
    keys = sorted(
        {(s.benchmark, s.setting, s.shots) for run in runs for s in run},
        key=lambda key: (list(BENCHMARKS).index(key[0]), key[1] != IN_LANGUAGE, key[2] or 0),
    )
    lookup = [{(s.benchmark, s.setting, s.shots, s.lang): s.acc for s in run} for run in runs]
    english_of = [
        {(s.benchmark, s.shots): s.acc for s in run if s.setting == IN_LANGUAGE and s.lang in ENGLISH} for run in runs
    ]
    # the paper-protocol tables score English themselves, in the same setting
    english_same_setting = [
        {(s.benchmark, s.setting, s.shots): s.acc for s in run if s.lang in ENGLISH} for run in runs
    ]
    with_diff = len(runs) >= 2
    out = []
    for benchmark, setting, shots in keys:
        table_key = (benchmark, setting, shots)
        langs = sorted(
            {lang for table in lookup for (*key, lang) in table if tuple(key) == table_key},
            key=lambda lang: (lang not in ENGLISH, lang),
        )
        header = ["language", *labels] + ([f"{labels[-1]} − {labels[0]}"] if with_diff else [])
        out += [
            _table_title(benchmark, setting, shots),
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]

        def row(name: str, values: list[float | None]) -> str:
            cells = [_cell(v) for v in values]
            if with_diff:
                first, last = values[0], values[-1]
                cells.append(_cell(last - first, signed=True) if first is not None and last is not None else "–")
            return f"| {name} | " + " | ".join(cells) + " |"

        for lang in langs:
            out.append(row(lang, [table.get((*table_key, lang)) for table in lookup]))
        # averages over the languages every run with this table has: a missing language never shifts a mean
        present = [table for table in lookup if any((*table_key, lang) in table for lang in langs)]
        common = [lang for lang in langs if all((*table_key, lang) in table for table in present)]
        per_run = [[table[(*table_key, lang)] for lang in common if (*table_key, lang) in table] for table in lookup]
        rest = [
            [table[(*table_key, lang)] for lang in common if lang not in ENGLISH and (*table_key, lang) in table]
            for table in lookup
        ]
        out.append(row("**average**", [_mean(values) for values in per_run]))
        out.append(row("**average without English**", [_mean(values) for values in rest]))
        gaps = []
        same_setting = setting in (IN_LANGUAGE, PAPER_PROTOCOL)  # tables that score English themselves
        for index, values in enumerate(rest):
            english = (
                english_same_setting[index].get(table_key)
                if same_setting
                else english_of[index].get((benchmark, shots))
            )
            mean_rest = _mean(values)
            gaps.append(english - mean_rest if english is not None and mean_rest is not None else None)
        gap_name = "**English − rest**" if same_setting else "**English (in-language) − rest**"
        out.append(row(gap_name, gaps))
        out.append("")
        out += _table_notes(runs, labels, table_key, langs, common)
    return "\n".join(out)


def _table_notes(
    runs: list[list[Score]], labels: list[str], table_key: tuple, langs: list[str], common: list[str]
) -> list[str]:
    """Lines under a table: languages left out of the averages, subsets scored because of `lm_eval --limit`."""
    notes = []
    if common != langs:
        left_out = [lang for lang in langs if lang not in common]
        notes.append(
            f"Averages over the {len(common)} language(s) every run has ({', '.join(common) or 'none'}); "
            f"left out: {', '.join(left_out)}."
        )
    partial = sorted(
        {
            (s.task, s.documents, s.total_documents)
            for run in runs
            for s in run
            if (s.benchmark, s.setting, s.shots) == table_key
            and s.documents is not None
            and s.total_documents is not None
            and s.documents < s.total_documents
        }
    )
    if partial:
        described = ", ".join(f"{task} {done} of {total}" for task, done, total in partial)
        notes.append(f"Scored on a subset (lm_eval --limit): {described} documents; not the benchmark's score.")
    return [*notes, ""] if notes else []


def plot(runs: list[list[Score]], labels: list[str], path: Path) -> None:
    """A grouped bar chart: one bar per run for every (benchmark, setting, language)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    keys = sorted(
        {_cell_key(s) for run in runs for s in run},
        key=lambda k: (list(BENCHMARKS).index(k[0]), k[1] != IN_LANGUAGE, k[2] or 0, k[3] not in ENGLISH, k[3]),
    )
    lookup = [{_cell_key(s): s.acc for s in run} for run in runs]
    width = 0.8 / len(runs)
    fig, axis = plt.subplots(figsize=(max(6.0, 0.35 * len(keys) * len(runs) + 2), 4))
    for index, (label, table) in enumerate(zip(labels, lookup)):
        xs = [position + index * width for position in range(len(keys))]
        axis.bar(xs, [100 * table.get(key, float("nan")) for key in keys], width=width, label=label)
    marks = {ENGLISH_DEMOS: "*", PAPER_PROTOCOL: "†", PAPER_PROTOCOL_NATIVE: "‡"}
    names = [f"{b}{marks.get(st, '')}{'' if n is None else f' {n}-shot'} {lang}" for b, st, n, lang in keys]
    axis.set_xticks([p + 0.4 - width / 2 for p in range(len(keys))], names, rotation=90, fontsize=7)
    axis.set_ylabel("accuracy (%)")
    axis.set_title("xling tasks (* English demonstrations, † paper protocol, ‡ its in-language prompt)")
    axis.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
