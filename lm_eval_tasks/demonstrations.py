"""Demonstration splits read only when a demonstration is drawn: a 0-shot run never needs them.

lm-eval 0.4.13 builds a task before it knows `--num_fewshot` (the evaluator sets it on the built task), and
while building it turns the few-shot split into a list (`ConfigurableTask.__init__`: `list(fewshot_docs())`,
handed to the task's sampler). Loading the demonstration split there would make every 0-shot run read (or
download) a training split it never uses, and refuse a local copy that holds only the scored split.

So the data loader puts a `DeferredSplit` under the `demos` split: lm-eval's `list()` of it holds one
placeholder (the split itself), and the tasks' sampler, `DemonstrationSampler` (named in every generated
`fewshot_config`), loads the real rows the first time a demonstration is drawn. A `process_docs` that lm-eval
applies to the few-shot split (`filter` / `map` calls) is recorded and replayed on the loaded rows.

Example:
    >>> import datasets
    >>> from xling_align.lm_eval_tasks.demonstrations import DeferredSplit, DemonstrationSampler
    >>> loads = []
    >>> split = DeferredSplit(lambda: loads.append(1) or datasets.Dataset.from_list([{"x": 1}, {"x": 2}]), "demo rows")
    >>> sampler = DemonstrationSampler(list(split.filter(lambda doc: doc["x"] > 1)), rnd=0)
    >>> loads  # nothing read yet
    []
    >>> sampler.sample(1), loads
    ([{'x': 2}], [1])
"""

from __future__ import annotations

from collections.abc import Callable

from lm_eval.api.samplers import ContextSampler


class DeferredSplit:
    """A dataset split loaded by `load()` on first use; `filter` / `map` are recorded until then.

    Args:
        load: returns the split as a `datasets.Dataset` (called at most once per sampler).
        description: what the split is, for messages (e.g. "the pawsx en demonstrations (train split)").
    """

    def __init__(self, load: Callable, description: str, steps: tuple = ()):
        self._load = load
        self.description = description
        self._steps = steps

    def _then(self, method: str, function, kwargs) -> DeferredSplit:
        return DeferredSplit(self._load, self.description, self._steps + ((method, function, kwargs),))

    def filter(self, function, **kwargs) -> DeferredSplit:
        return self._then("filter", function, kwargs)

    def map(self, function, **kwargs) -> DeferredSplit:
        return self._then("map", function, kwargs)

    def __iter__(self):
        # what lm-eval's `list(fewshot_docs())` receives: this placeholder, resolved by DemonstrationSampler
        yield self

    def __repr__(self) -> str:
        return f"DeferredSplit({self.description})"

    def _read_as_a_document(self, *_):
        # reached when a task reads the placeholder as a document: its sampler is not DemonstrationSampler
        raise RuntimeError(
            f"{self.description} is read only when a demonstration is drawn, by DemonstrationSampler; a task whose "
            "fewshot_config has `split: demos` from xling_align's data loader needs `sampler: !function "
            "xling_align.lm_eval_tasks.demonstrations.DemonstrationSampler`."
        )

    __getitem__ = get = keys = _read_as_a_document

    def load(self) -> list[dict]:
        """The rows, with the recorded `filter` / `map` steps applied."""
        dataset = self._load()
        for method, function, kwargs in self._steps:
            dataset = getattr(dataset, method)(function, **kwargs)
        return list(dataset)


class DemonstrationSampler(ContextSampler):
    """lm-eval's default sampler (random demonstrations), reading a `DeferredSplit` when first asked."""

    def __init__(self, df=None, *, rnd=None, fewshot_indices=None, **kwargs):
        super().__init__(df, rnd=rnd, fewshot_indices=fewshot_indices, **kwargs)
        deferred = list(df or [])
        self._deferred = deferred[0] if len(deferred) == 1 and isinstance(deferred[0], DeferredSplit) else None
        self._description = self._deferred.description if self._deferred is not None else "the demonstration split"

    def fewshot_docs(self):
        if self._deferred is not None:
            self.df, self._deferred = self._deferred.load(), None
        return super().fewshot_docs()

    def sample(self, n, eval_doc=None, df=None, **kwargs):
        if n > 0 and not df:
            available = len(self.fewshot_docs())
            if available < n:
                raise ValueError(
                    f"{n} demonstration(s) asked for, but {self._description} holds {available} usable row(s): lower "
                    "--num_fewshot, or give a demonstration split with more rows."
                )
        return super().sample(n, eval_doc=eval_doc, df=df, **kwargs)
