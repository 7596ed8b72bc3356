"""Hub datasets read with `datasets` >= 4, which refuses repositories that ship a loading script.

A data-only repository (parquet, or files `datasets` recognises) is read as always: `load_dataset(repo, config)`.
A repository with a loading script (`xstory_cloze.py`, `Bactrian-X.py`, ...) is never handed to
`load_dataset(repo)`: its own data files are read by `datasets`' built-in `json` / `csv` builders, from
`hf://datasets/<repo>/<file>`, and given the field names and types the script gave them. Which repositories
have a script, where their files are and what the script did are `RepositoryFiles` entries: the benchmarks'
in `xling_align.evaluation.benchmark_table.SCRIPT_REPOSITORIES`, Bactrian-X's in `xling_align.data.bactrian_x`.

`base` replaces `hf://datasets/<repo>` (tests point it at a local folder laid out like the repository, its
script included: were the script route taken there, `datasets` would refuse the folder).

When the hub cannot be reached, `HubUnreachableError` says which dataset and the local alternative (the
caller's `offline_hint`).

Example:
    >>> from xling_align.evaluation.benchmark_table import SCRIPT_REPOSITORIES
    >>> SCRIPT_REPOSITORIES["Muennighoff/xwinograd"].file("fr", "test")
    'test/fr.jsonl'
"""

from __future__ import annotations

from xling_align.errors import XlingAlignError
from xling_align.evaluation.benchmark_table import SCRIPT_REPOSITORIES, RepositoryFiles

HUB_FILES = "hf://datasets/{repo}"
# what the network stack raises when the hub is out of reach (beside the builtin ConnectionError)
_UNREACHABLE_NAMES = {
    "ConnectError",
    "ConnectTimeout",
    "TransportError",
    "TimeoutException",
    "ReadTimeout",
    "NetworkError",
    "OfflineModeIsEnabled",
    "LocalEntryNotFoundError",
}


class HubUnreachableError(XlingAlignError, ConnectionError):
    """The hub (or the dataset's files on it) could not be reached; the message names the local alternative."""


def _unreachable(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionError) or any(
            kind.__name__ in _UNREACHABLE_NAMES for kind in type(error).__mro__
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


def script_repository(repo: str) -> RepositoryFiles | None:
    """How to read `repo` without its loading script, or None for a data-only repository."""
    from xling_align.data.bactrian_x import BACTRIAN_X_FILES, BACTRIAN_X_HUB_NAME

    return {**SCRIPT_REPOSITORIES, BACTRIAN_X_HUB_NAME: BACTRIAN_X_FILES}.get(repo)


def _read_repository_files(
    repo: str, files: RepositoryFiles, config: str | None, split: str, base: str | None, streaming: bool
):
    import datasets

    if split not in files.splits:
        raise ValueError(f"{repo} has no split {split!r}: its splits are {', '.join(files.splits)}.")
    location = (base or HUB_FILES.format(repo=repo)).rstrip("/")
    data_file = f"{location}/{files.file(config, split)}"
    options = dict(files.builder_options)
    if files.builder == "csv":  # the script read the columns by position, as text, and skipped the header
        text = datasets.Features({column: datasets.Value("string") for column in files.columns})
        options.update(column_names=list(files.columns), header=0, features=text)
    dataset = datasets.load_dataset(
        files.builder, data_files={split: data_file}, split=split, streaming=streaming, **options
    )
    missing = [column for column in files.columns if column not in (dataset.column_names or files.columns)]
    if missing:
        raise ValueError(
            f"{data_file}: no column(s) {', '.join(missing)} (found: {', '.join(dataset.column_names)}); "
            f"the loading script of {repo} gave {', '.join(files.columns)}. Has the repository changed?"
        )
    dataset = dataset.select_columns(list(files.columns))
    if files.drop_incomplete:  # the script skipped short rows: their last field is missing (empty as read here)
        last = files.columns[-1]
        dataset = dataset.filter(
            lambda row: all(row[column] is not None for column in files.columns) and row[last].strip() != ""
        )
    types = {column: datasets.Value(files.types.get(column, "string")) for column in files.columns}
    return dataset.cast(datasets.Features(types))


def load_hub_dataset(
    repo: str, config: str | None, split: str, offline_hint: str, base: str | None = None, streaming: bool = False
):
    """One split of a hub dataset, through its own files where the repository has a loading script.

    Args:
        repo: hub dataset id.
        config: its config (a language); None for none.
        split: the split.
        offline_hint: what to do without the hub (the caller's local alternative), for the error message.
        base: where the repository's files are (default `hf://datasets/<repo>`); only for script repositories.
        streaming: an `IterableDataset` instead of a downloaded `Dataset`.

    Raises:
        HubUnreachableError: the hub could not be reached (names the dataset and `offline_hint`).
    """
    import datasets

    files = script_repository(repo)
    try:
        if files is not None:
            return _read_repository_files(repo, files, config, split, base, streaming)
        return datasets.load_dataset(base or repo, config, split=split, streaming=streaming)
    except Exception as error:
        if not _unreachable(error):
            raise
        what = f"{repo}" + (f" (config {config}, split {split})" if config else f" (split {split})")
        raise HubUnreachableError(f"Could not reach the Hugging Face hub for {what}: {error}. {offline_hint}") from None
