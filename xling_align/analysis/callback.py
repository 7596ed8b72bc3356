"""`AlignmentEvalCallback`: translation retrieval on held-out pairs at every evaluation of a Trainer.

Selecting the best AFP checkpoint on the benchmark's test split leaks the test set (the reference
implementation does that). This callback gives a leak-free criterion instead: at each `evaluate()`, it
embeds held-out translation pairs with the model being trained (pooled `hidden_states[layer]`, the layer
of the contrastive loss) and adds to the evaluation metrics

- `eval_alignment_retrieval_accuracy`: top-1 retrieval accuracy, mean over both directions and all
  language pairs of the file (chance = 1 / number of pairs);
- `eval_alignment_retrieval_accuracy_<a>_to_<b>` for every direction;
- `eval_alignment_mexa` and `eval_alignment_cosine_margin` (means over language pairs).

With several layers (AFP's `contrastive_layer` as a list) every figure above is the mean over the layers, as
the contrastive loss is, and `eval_alignment_retrieval_accuracy_layer<k>` gives each layer's own.

How it reaches best-model selection and the logs (transformers 5.23, `Trainer.evaluate`): the trainer logs
the evaluation metrics first, then calls `on_evaluate(metrics=...)` with the same dict it returns to the
training loop, which passes it to `_determine_best_metric`. Adding keys to that dict in place is therefore
enough for `metric_for_best_model="alignment_retrieval_accuracy"` (and `load_best_model_at_end`,
`save_strategy="best"`). The log entry was already written, so the callback also merges its values into that
entry of `state.log_history` (trainer_state.json); with `trainer=` given it also sends them to the
callbacks' `on_log` (TensorBoard / W&B / the console).

Every process computes the same numbers on its own copy of the pairs, so it works unchanged under DDP; the
embedding path (`xling_align.alignment.pooling.embed_sentences`) enters through the engine's wrapper, so under FSDP2
or DeepSpeed ZeRO-3 the forward passes are collectives that every process joins with the same batches.
Evaluation needs an eval dataset, as for any metric of the Trainer.

Example:
    >>> # trainer = Trainer(model, args=TrainingArguments(..., eval_strategy="steps",
    >>> #                   metric_for_best_model="alignment_retrieval_accuracy", load_best_model_at_end=True),
    >>> #                   eval_dataset=..., callbacks=[AlignmentEvalCallback("heldout.en-de.tsv", layer=1)])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from transformers import TrainerCallback

from xling_align.alignment.pooling import check_pooling, embed_sentences
from xling_align.analysis.metrics import alignment_metrics
from xling_align.analysis.pairs import load_analysis_pairs

logger = logging.getLogger(__name__)

METRIC_PREFIX = "eval_alignment"


class AlignmentEvalCallback(TrainerCallback):
    """Adds held-out translation retrieval accuracy to every evaluation's metrics.

    Args:
        pairs_file: parallel file of held-out pairs (any format of `xling_align.data.load_parallel_pairs`);
            read and checked at construction.
        layer: `hidden_states` index to pool (0 = embeddings, 1 = first block, -1 = last), or a list of them
            (figures averaged over the layers); use the layer(s) of the contrastive loss to watch what AFP trains.
        pooling: `"mean"` or `"last"`.
        batch_size: sentences per forward pass.
        max_pairs: use at most this many pairs per language pair (None: all). Cost per evaluation is one
            forward over 2 x pairs sentences up to `layer`.
        trainer: optional Trainer; when given, the values are also sent to its callbacks' `on_log` (reporting
            integrations, console).
    """

    def __init__(
        self,
        pairs_file: str | os.PathLike,
        layer: int | Sequence[int] = -1,
        pooling: str = "mean",
        batch_size: int = 32,
        max_pairs: int | None = 1000,
        trainer=None,
    ):
        check_pooling(pooling, "AlignmentEvalCallback: pooling")
        self.pairs_file = str(pairs_file)
        self.pairs = load_analysis_pairs(pairs_file, max_pairs=max_pairs).pairs
        if isinstance(layer, (list, tuple)) and not layer:
            raise ValueError("AlignmentEvalCallback: layer is an empty list; name at least one hidden_states index.")
        self.layer = layer
        self.pooling = pooling
        self.batch_size = batch_size
        self.trainer = trainer
        self._last: tuple[int, dict[str, float]] | None = None  # (global_step, values)

    def compute(self, model, tokenizer) -> dict[str, float]:
        """The alignment metrics of `model` on the held-out pairs, keyed as they appear in the metrics."""
        if not isinstance(self.layer, (list, tuple)):
            return self._compute_at(model, tokenizer, self.layer)
        per_layer = [self._compute_at(model, tokenizer, layer) for layer in self.layer]
        values = {key: sum(figures[key] for figures in per_layer) / len(per_layer) for key in per_layer[0]}
        for layer, figures in zip(self.layer, per_layer, strict=True):
            values[f"{METRIC_PREFIX}_retrieval_accuracy_layer{layer}"] = figures[f"{METRIC_PREFIX}_retrieval_accuracy"]
        return values

    def _compute_at(self, model, tokenizer, layer: int) -> dict[str, float]:
        values: dict[str, float] = {}
        accuracies, mexa, margins = [], [], []
        for (lang_a, lang_b), pairs in self.pairs.items():
            side_a = embed_sentences(model, tokenizer, [a for a, _ in pairs], layer, self.pooling, self.batch_size)
            side_b = embed_sentences(model, tokenizer, [b for _, b in pairs], layer, self.pooling, self.batch_size)
            result = alignment_metrics(side_a, side_b)
            values[f"{METRIC_PREFIX}_retrieval_accuracy_{lang_a}_to_{lang_b}"] = result.retrieval_accuracy_a_to_b
            values[f"{METRIC_PREFIX}_retrieval_accuracy_{lang_b}_to_{lang_a}"] = result.retrieval_accuracy_b_to_a
            accuracies.append(result.retrieval_accuracy)
            mexa.append(result.mexa_alignment)
            margins.append(result.cosine_margin)
        values[f"{METRIC_PREFIX}_retrieval_accuracy"] = sum(accuracies) / len(accuracies)
        values[f"{METRIC_PREFIX}_mexa"] = sum(mexa) / len(mexa)
        values[f"{METRIC_PREFIX}_cosine_margin"] = sum(margins) / len(margins)
        return values

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if metrics is None or model is None:
            return
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a multimodal processor wraps the tokenizer
        if tokenizer is None:
            raise ValueError(
                "AlignmentEvalCallback needs the tokenizer to embed the held-out pairs; pass "
                "processing_class=tokenizer to the Trainer."
            )
        # several eval datasets call on_evaluate once each for the same step: compute once
        if self._last is None or self._last[0] != state.global_step:
            self._last = (state.global_step, self.compute(model, tokenizer))
            first_time = True
        else:
            first_time = False
        values = self._last[1]
        metrics.update(values)  # the dict the Trainer returns and selects the best checkpoint from
        if not first_time:
            return
        self._merge_into_history(state, metrics, values)
        if self.trainer is not None:
            # the reporting integrations and the console listen to on_log; calling it directly (not
            # trainer.log) keeps one log_history entry per evaluation
            handler = self.trainer.callback_handler
            self.trainer.control = handler.on_log(args, state, self.trainer.control, dict(values))
        logger.info("alignment on %s at step %d: %s", self.pairs_file, state.global_step, values)

    @staticmethod
    def _merge_into_history(state, metrics: dict, values: dict) -> None:
        """Add the values to the log entry the Trainer just wrote for this evaluation."""
        other_keys = set(metrics) - set(values)
        for entry in reversed(state.log_history):
            if entry.get("step") != state.global_step:
                break
            if other_keys & set(entry):
                entry.update(values)
                return
        state.log_history.append({**values, "step": state.global_step})
