"""What users get from `pip install`: a wheel in a fresh virtualenv, the real `lm_eval` command, uninstall.

The fresh virtualenvs reuse the development environment's packages through a `.pth` line (no
download), and get xling-align itself with `pip install --no-deps`. Everything runs with cwd in a temp
folder so the source checkout's `xling_align/` cannot be imported by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DATA = Path(__file__).parent / "fixtures" / "lm_eval" / "data"
PTH = "xling_align_lm_eval.pth"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}


def _run(args, cwd, timeout=300):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _fresh_venv(folder: Path) -> tuple[Path, Path]:
    """A virtualenv without pip whose site-packages also sees this environment's packages but not xling-align.

    The dependencies are reached through a folder of links to this environment's site-packages entries,
    leaving out xling-align's own (an installed copy there would shadow the one under test).
    """
    _run([sys.executable, "-m", "venv", "--without-pip", folder], cwd=folder.parent)
    python = folder / "bin" / "python"
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=folder.parent
        ).stdout.strip()
    )
    dependencies = folder / "dependencies"
    dependencies.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("xling_align", "__editable__", "_reuse_dev_packages")):
            (dependencies / entry.name).symlink_to(entry)
    (site / "_reuse_dev_packages.pth").write_text(f"{dependencies}\n")
    return python, site


def _pip(python, *args, cwd):
    return _run([sys.executable, "-m", "pip", "--python", python, *args], cwd=cwd)


def _source_copy(target: Path) -> Path:
    """The working tree's tracked and not-ignored files, so no stale build/ leaks in."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO).stdout.split("\0")
    for name in filter(None, listed):
        source, destination = REPO / name, target / name
        if source.is_file():  # a file deleted in the working tree is skipped
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


def _import_names(folder: Path, package: str) -> set[str]:
    """Dotted names of the modules under `folder`, imported as `package`."""
    return {
        ".".join([package, *path.relative_to(folder).with_suffix("").parts]).removesuffix(".__init__")
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts
    }


# the modules of the package, by import name, as the source tree lays them out
SOURCE_MODULES = (
    _import_names(REPO / "xling_align", "xling_align")
    | _import_names(REPO / "trainers", "xling_align.trainers")
    | _import_names(REPO / "lm_eval_tasks", "xling_align.lm_eval_tasks")
    | _import_names(REPO / "recipes", "xling_align.recipes")
)
# what a fresh interpreter prints about the import names (run in an install or a checkout)
WHERE_ARE_THE_SUBPACKAGES = "\n".join(
    [
        "import importlib.util, xling_align.trainers, xling_align.lm_eval_tasks",
        "print(xling_align.trainers.__file__)",
        "print(xling_align.lm_eval_tasks.__path__[0])",
        "print(importlib.util.find_spec('trainers'), importlib.util.find_spec('lm_eval_tasks'))",
    ]
)


def _synthetic_data(root: Path) -> Path:
    """Two made-up rows for every file the xling tasks read, in the offline layout: distinct items, and no file's
    item in another (a demonstration split holding a scored item is refused)."""
    from xling_align.commands.export_data import planned_files
    from xling_align.evaluation.benchmark_table import BENCHMARKS
    from xling_align.lm_eval_tasks.data_loader import local_path

    special = {"label": 0, "question": "cause", "answer": "1", "correct_answer_num": "2", "answer_right_ending": 1}
    for benchmark, lang, source in planned_files(list(BENCHMARKS), None):
        rows = [
            {
                column: special.get(column, f"Some {column} text, {source.split} row {i}.")
                for column in BENCHMARKS[benchmark].columns
            }
            for i in range(2)
        ]
        for i, row in enumerate(rows):
            if "sentence" in row:
                row["sentence"] = f"The cup {i} of the {source.split} split fell because _ was heavy."
        path = local_path(root, benchmark, lang, source.split)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return root


def test_wheel_in_a_fresh_venv_runs_lm_eval_and_uninstalls_cleanly(tmp_path, tiny_gpt2_folder):
    source = _source_copy(tmp_path / "src")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", source, "-w", tmp_path / "dist"],
        cwd=tmp_path,
    )
    wheel = next((tmp_path / "dist").glob("xling_align-*.whl"))
    python, site = _fresh_venv(tmp_path / "venv")
    _pip(python, "install", "--no-deps", "--ignore-installed", wheel, cwd=tmp_path)

    # the hook file is installed at the top of site-packages and recorded; nothing else outside xling_align/
    assert (site / PTH).is_file()
    record = next(site.glob("xling_align-*.dist-info")).joinpath("RECORD").read_text()
    assert f"\n{PTH}," in "\n" + record
    top_level = {line.split("/")[0].split(",")[0] for line in record.splitlines() if not line.startswith("..")}
    assert top_level == {"xling_align", PTH, next(site.glob("xling_align-*.dist-info")).name}
    # trainers/ and lm_eval_tasks/ are inside xling_align/ (package-dir), every module of the tree is there
    installed = _import_names(site / "xling_align", "xling_align")
    assert installed == SOURCE_MODULES
    lines = _run([python, "-c", WHERE_ARE_THE_SUBPACKAGES], cwd=tmp_path).stdout.splitlines()
    assert lines == [
        str(site / "xling_align" / "trainers" / "__init__.py"),
        str(site / "xling_align" / "lm_eval_tasks"),
        "None None",
    ]

    # the real lm_eval console script of lm-eval 0.4.13, run by the fresh interpreter, on every xling task
    data = _synthetic_data(tmp_path / "data")
    lm_eval_script = Path(sysconfig.get_paths()["scripts"]) / "lm_eval"
    out = tmp_path / "results"
    _run(
        [
            python,
            lm_eval_script,
            "--model",
            "xling",
            "--model_args",
            f"pretrained={tiny_gpt2_folder}",
            "--device",
            "cpu",
            "--batch_size",
            "32",
            "--tasks",
            "xling_*",
            "--limit",
            "1",
            "--metadata",
            json.dumps({"data_dir": str(data)}),
            "--output_path",
            out,
        ],
        cwd=tmp_path,
        timeout=600,
    )
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    every_task = {path.stem for path in (REPO / "lm_eval_tasks").rglob("xling_*.yaml")}  # file name = task name
    assert len(every_task) > 219  # the six benchmarks' 219 tasks plus other folders' (clone/)
    assert set(results["n-samples"]) == every_task  # every task ran, once (a duplicate makes lm-eval raise)
    assert {"xling_pawsx", "xling_pawsx_endemo", "xling_belebele"} <= set(results["groups"])
    assert results["config"]["model"] == "xling"

    # the README's training command works outside a checkout: the recipes ship in the wheel (xling_align.recipes)
    shipped = _run([python, "-m", "xling_align.package_paths", "pkg://xling_align/recipes/tiny.yaml"], cwd=tmp_path)
    assert Path(shipped.stdout.strip()) == site / "xling_align" / "recipes" / "tiny.yaml"
    assert {path.name for path in (site / "xling_align" / "recipes" / "accelerate").iterdir()} >= {
        "ddp.yaml",
        "fsdp.yaml",
    }
    trained = _run(
        [
            tmp_path / "venv" / "bin" / "xling-align",
            "train",
            "--config",
            "tiny",
            "--output",
            "run",
            "--max_steps",
            "2",
            "--eval_steps",
            "1",
            "--save_steps",
            "1",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert "model and model card saved to run" in trained.stdout
    assert (tmp_path / "run" / "model.safetensors").is_file()

    _pip(python, "uninstall", "-y", "xling-align", cwd=tmp_path)
    assert not (site / PTH).exists() and not (site / "xling_align").exists()
    _run([python, "-c", "import lm_eval.tasks"], cwd=tmp_path)  # lm-eval still imports without us


def test_editable_install_imports_subpackages_and_installs_the_hook(tmp_path):
    python, site = _fresh_venv(tmp_path / "venv")
    _pip(python, "install", "-e", REPO, "--no-deps", "--no-build-isolation", "--ignore-installed", cwd=tmp_path)
    assert (site / PTH).is_file()
    lines = _run([python, "-c", WHERE_ARE_THE_SUBPACKAGES], cwd=tmp_path).stdout.splitlines()
    assert lines == [str(REPO / "trainers" / "__init__.py"), str(REPO / "lm_eval_tasks"), "None None"]
    hook = "import sys; print(any(type(f).__name__ == 'LmEvalImportHook' for f in sys.meta_path))"
    assert _run([python, "-c", hook], cwd=tmp_path).stdout.split() == ["True"]


def test_source_checkout_without_install_has_the_same_import_names(tmp_path):
    """pytest or `python -m xling_align` run from the repository root, nothing installed."""
    source = _source_copy(tmp_path / "src")
    python, _ = _fresh_venv(tmp_path / "venv")
    lines = _run(
        [python, "-c", WHERE_ARE_THE_SUBPACKAGES.replace("print(importlib", "0 and print(importlib")], cwd=source
    ).stdout.splitlines()
    assert lines == [str(source / "trainers" / "__init__.py"), str(source / "lm_eval_tasks")]
    assert "export-data" in _run([python, "-m", "xling_align", "--help"], cwd=source).stdout
    import xling_align.lm_eval_tasks
    import xling_align.trainers

    # this test session: the checkout (or an editable install of it) maps the names to the repository's folders;
    # with a wheel installed, its .pth imported the installed package before pytest started
    package = Path(xling_align.__file__).parent
    root = REPO if package == REPO / "xling_align" else package
    assert Path(xling_align.trainers.__file__) == root / "trainers" / "__init__.py"
    assert Path(xling_align.lm_eval_tasks.__path__[0]) == root / "lm_eval_tasks"


def test_repository_holds_no_symbolic_link():
    listed = _run(["git", "ls-files", "-s", "-z"], cwd=REPO).stdout.split("\0")
    assert [entry for entry in listed if entry.startswith("120000")] == []
    assert [path for path in REPO.rglob("*") if path.is_symlink() and ".venv" not in path.parts] == []


def test_every_package_folder_is_listed_in_pyproject():
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert config["package-dir"] == {
        "xling_align.trainers": "trainers",
        "xling_align.lm_eval_tasks": "lm_eval_tasks",
        "xling_align.recipes": "recipes",
    }
    packages = {name for name in SOURCE_MODULES if name + ".__init__" in _with_init_names()}
    assert set(config["packages"]) == packages


def _with_init_names() -> set[str]:
    """`<package>.__init__` for every folder of the tree that holds an __init__.py."""
    roots = {
        "xling_align": REPO / "xling_align",
        "xling_align.trainers": REPO / "trainers",
        "xling_align.lm_eval_tasks": REPO / "lm_eval_tasks",
        "xling_align.recipes": REPO / "recipes",
    }
    return {
        ".".join([package, *path.relative_to(folder).with_suffix("").parts])
        for package, folder in roots.items()
        for path in folder.rglob("__init__.py")
    }
