"""The `xling` model of lm-eval: `hf`, plus AFP adapter folders, plus prefix-shared scoring.

`pretrained=DIR` may be
- a full checkpoint (config.json + weights): loaded exactly as `--model hf` would;
- a LoRA/PEFT adapter folder (adapter_config.json): the base model is read from the adapter's
  `base_model_name_or_path` (a hub id, or a path tried as given, relative to the adapter folder and
  to its parent), the tokenizer from the adapter folder when it holds one. `base_model=...` overrides the
  base, and `merge_lora=True` merges the adapter into the weights after loading (faster scoring);
- a hub id (`org/name`), handed to `hf` unchanged.
A path that is none of these (no such folder, a folder without config.json or adapter_config.json)
stops at once with a message that names it and says what is expected (exit code 2 on the command line).

Log-likelihood requests are scored on a token prefix tree (`xling_align.evaluation.prefix_tree`,
`xling_align.evaluation.prefix_scoring`): tokens shared by several requests (the demonstrations, the context of
an item, the common start of its choices) run through the model once, and their key/value cache serves
every request below them. The tokens are `hf`'s own (`_encode_pair`'s split and special tokens, the same
left truncation to the model's window; encoded in a few batched tokenizer calls, each distinct context
once), so the scores are those of `--model hf` up to float rounding (1e-4 in float32). Sliding-window
models (Gemma 2/3, Mistral, Qwen2 with `use_sliding_window`) are served exactly: the window is part of
the attention masks. A forward holds at most `batch_size` times the longest request's length in positions,
`hf`'s largest. With `pack_rows` (default `auto`: on an accelerator, and on a CPU for a model with at least
20M parameters outside its embeddings), an item whose context and choices are few enough tokens runs as
one forward row (a tree-shaped attention mask, positions per token), so a forward holds many items and
xling runs fewer forwards than `hf`.
Requests that share nothing, `loglikelihood_rolling` and generation take `hf`'s own path; so does
everything when `prefix_sharing=False`, or when a one-time check finds that the model's cache cannot be
continued exactly (then a warning says so). A second one-time check does the same for packed rows: a
model that takes no `position_ids` or gives other scores with a tree mask (e.g. an attention kernel that
ignores 4D masks) scores one segment per row, with a warning.

Every other argument is `hf`'s.

Example (a shell; DIR is an AFPTrainer output folder):
    lm_eval --model xling --model_args pretrained=DIR,merge_lora=True --tasks xling_pawsx
    lm_eval --model xling --model_args pretrained=DIR,prefix_sharing=False --tasks xling_pawsx  # as hf
    lm_eval --model xling --model_args pretrained=DIR,pack_rows=True --tasks xling_pawsx  # packed rows on a CPU too
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from xling_align.evaluation.adapters import ModelFolderError, find_base_model, model_argument_flag, model_source_kind
from xling_align.evaluation.prefix_scoring import CachedScoringUnsupported, PrefixTreeScorer, body_parameters
from xling_align.evaluation.prefix_tree import TokenRequest, plan_prefix_tree

__all__ = ["XlingLM", "body_parameters", "find_base_model"]

logger = logging.getLogger(__name__)

_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model", "vocab.json")
# largest tolerated difference of one request's log-likelihood in the one-time check of the cache
_CHECK_TOLERANCE = {torch.float32: 1e-3, torch.float64: 1e-6}
_HALF_PRECISION_CHECK_TOLERANCE = 0.25
# pack_rows=auto on a CPU: packed rows for models with at least this many parameters outside the embeddings
PACKING_MIN_BODY_PARAMETERS = 20_000_000


def _running_lm_eval_command() -> bool:
    """Whether this process is lm-eval's command line (`lm_eval`, `python -m lm_eval`, `xling-eval`)."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == "lm_eval.__main__":
        return True
    entry = getattr(main, "cli_evaluate", None) or getattr(main, "main", None)
    return getattr(entry, "__module__", None) in {"lm_eval.__main__", "xling_align.commands.xling_eval"}


def _stop_on_the_command_line(error: Exception) -> None:
    """On lm-eval's command line, a bad model argument ends with its message and the usage-error exit code."""
    if _running_lm_eval_command():
        print(f"lm_eval --model xling: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def packing_pays(model, device) -> bool:
    """`pack_rows=auto`: packed rows (fewer, larger forwards, each with a tree mask built on the host) pay where a
    token's forward costs more than that host work: on an accelerator (each forward has a fixed cost), and on a
    CPU for a model with at least `PACKING_MIN_BODY_PARAMETERS` parameters in its blocks (README, "Faster scoring":
    measured faster on the real SmolLM2-135M, slower on 1-4 layer models of d_model 16-128)."""
    if torch.device(device).type != "cpu":
        return True
    try:
        return body_parameters(model) >= PACKING_MIN_BODY_PARAMETERS
    except (AttributeError, NotImplementedError):  # no embeddings to tell apart: count everything
        return sum(parameter.numel() for parameter in model.parameters()) >= PACKING_MIN_BODY_PARAMETERS


def encode_like_hf(lm: HFLM, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """`(context_enc, continuation_enc)` of every `(context, continuation)`, exactly as `HFLM.loglikelihood` gives
    them (its `_encode_pair`: trailing spaces of the context move to the continuation, the continuation is what
    `tok(context + continuation)` adds after `tok(context)`; an empty context becomes `prefix_token_id`), with
    each distinct string encoded once, in one batched tokenizer call per set of special-token arguments.
    """
    bos_text = lm.tokenizer.decode(lm.prefix_token_id)
    default = {} if lm.add_bos_token is None else {"add_special_tokens": lm.add_bos_token}
    strings: dict[tuple[str, bool | None], list[int] | None] = {}  # (text, add_special_tokens) -> ids

    def wanted(text: str, add_special_tokens: bool | None = None) -> tuple[str, bool | None]:
        # HFLM.tok_encode: an explicit add_special_tokens wins; else no special tokens before a leading BOS text
        if add_special_tokens is None:
            add_special_tokens = False if text.startswith(bos_text) else default.get("add_special_tokens")
        key = (text, add_special_tokens)
        strings.setdefault(key, None)
        return key

    plans = []
    for context, continuation in pairs:
        if context == "":
            plans.append((None, wanted(continuation, False)))
            continue
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        plans.append((wanted(context), wanted(context + continuation)))
    by_arguments: dict[bool | None, list[str]] = {}
    for text, add_special_tokens in strings:
        by_arguments.setdefault(add_special_tokens, []).append(text)
    for add_special_tokens, texts in by_arguments.items():
        arguments = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        for text, ids in zip(texts, lm.tokenizer(texts, **arguments)["input_ids"], strict=True):
            strings[text, add_special_tokens] = ids
    encoded = []
    for context_key, whole_key in plans:
        whole = strings[whole_key]
        if context_key is None:  # an empty context: hf's prefix token, unless the continuation starts with it
            encoded.append(
                ([lm.prefix_token_id], list(whole)) if lm.prefix_token_id != whole[0] else (whole[:1], whole[1:])
            )
        else:
            context = strings[context_key]
            encoded.append((list(context), whole[len(context) :]))
    return encoded


class XlingLM(HFLM):
    """`HFLM` with AFP adapter folders and prefix-shared log-likelihoods (see the module docstring).

    Args:
        pretrained: checkpoint folder, adapter folder or hub id.
        base_model: the base of an adapter folder, instead of its `base_model_name_or_path`.
        merge_lora: merge the adapter into the base weights after loading.
        prefix_sharing: score log-likelihoods on a token prefix tree (default); False scores as `hf`.
        pack_rows: run an item's context and choices in one forward row (after a one-time check): fewer,
            larger forwards. "auto" (default): by the model's cost (`packing_pays`): on an accelerator, and
            on a CPU for a model whose blocks cost more than the host work packing adds (README, "Faster scoring").
        **kwargs: `HFLM`'s arguments.
    """

    def __init__(
        self,
        pretrained,
        base_model: str | None = None,
        merge_lora: bool | str = False,
        prefix_sharing: bool | str = True,
        pack_rows: bool | str = "auto",
        **kwargs,
    ):
        try:
            merge_lora = model_argument_flag(merge_lora, "merge_lora")
            prefix_sharing = model_argument_flag(prefix_sharing, "prefix_sharing")
            if str(pack_rows).strip().lower() == "auto":
                pack_rows = None  # decided by the model's cost once it is loaded
            else:
                try:
                    pack_rows = model_argument_flag(pack_rows, "pack_rows")
                except ValueError:
                    raise ValueError(f"pack_rows={pack_rows}: expected True, False or auto.") from None
        except ValueError as error:
            _stop_on_the_command_line(error)
            raise
        adapter = None
        if isinstance(pretrained, (str, os.PathLike)) and not kwargs.get("peft") and not kwargs.get("gguf_file"):
            try:
                kind = model_source_kind(pretrained)
                folder = Path(pretrained).expanduser()
                if kind == "adapter":
                    adapter = str(folder)
                    pretrained = find_base_model(folder, base_model)
                    kwargs["peft"] = adapter
                    if kwargs.get("tokenizer") is None and any((folder / f).is_file() for f in _TOKENIZER_FILES):
                        kwargs["tokenizer"] = adapter  # AFPTrainer saves the tokenizer with the adapter
                elif base_model is not None:
                    raise ValueError(
                        f"base_model={base_model} was given but {folder} holds no adapter_config.json: "
                        "base_model is only for adapter folders; drop it for a full checkpoint."
                    )
            except (ModelFolderError, FileNotFoundError, ValueError) as error:
                _stop_on_the_command_line(error)
                raise
        elif base_model is not None:
            raise ValueError("base_model is only for an adapter folder given as pretrained=; drop it.")
        super().__init__(pretrained=pretrained, **kwargs)
        if merge_lora:
            if not hasattr(self._model, "merge_and_unload"):
                raise ValueError(
                    f"merge_lora=True but {pretrained} was loaded without an adapter: nothing to merge; "
                    "drop merge_lora."
                )
            self._model = self._model.merge_and_unload()
        self.adapter_path = adapter
        self.prefix_sharing = prefix_sharing
        self.pack_rows = pack_rows if pack_rows is not None else packing_pays(self.model, self.device)
        self._prefix_scorer: PrefixTreeScorer | None = None
        self._prefix_sharing_off: str | None = None  # why the one-time check turned sharing off

    # ------------------------------------------------------------------------ prefix-shared scoring
    def loglikelihood(self, requests, disable_tqdm: bool = False):
        # hf's tokens, encoded in a few batched tokenizer calls, each distinct context once (hf: twice per request)
        if not self.prefix_sharing or self.backend != "causal" or getattr(self, "enable_thinking", False):
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        pairs = [request.args for request in requests]
        encoded = encode_like_hf(self, pairs)
        return self._loglikelihood_tokens(
            [(pair, context, continuation) for pair, (context, continuation) in zip(pairs, encoded, strict=True)],
            disable_tqdm=disable_tqdm,
        )

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        # loglikelihood_rolling passes windows without a request key and its own batch size: hf's path
        if (
            not self.prefix_sharing
            or self.backend != "causal"
            or override_bs is not None
            or any(request[0] is None for request in requests)
        ):
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)

        # hf's tokens, cut to the model's window as hf cuts them: (context + continuation)[-(max_length + 1):]
        token_requests, positions, truncated = [], [], set()
        for index, (_, context, continuation) in enumerate(requests):
            if not context or not continuation or len(continuation) > self.max_length:
                continue  # hf's path, which refuses these with its own assertion
            whole = context + continuation
            if len(whole) > self.max_length + 1:
                truncated.add(index)
            token_requests.append(TokenRequest(tuple(whole[-(self.max_length + 1) :]), len(continuation)))
            positions.append(index)
        plan = plan_prefix_tree(token_requests)
        scorer = self._scorer(token_requests[0] if plan.segments else None)
        shared_positions = set(positions) - {positions[i] for i in plan.unshared} if scorer else set()
        if truncated & shared_positions:  # hf's path warns about its own, once per request
            logger.warning(
                "%d requests are longer than the model's window (%d tokens) and were truncated from the left, "
                "exactly as --model hf does.",
                len(truncated & shared_positions),
                self.max_length,
            )

        results: list = [None] * len(requests)
        progress = tqdm(
            total=len(requests), desc="Running loglikelihood requests", disable=disable_tqdm or self.rank != 0
        )
        unshared = [index for index in range(len(requests)) if index not in shared_positions]
        if unshared:
            scored = super()._loglikelihood_tokens([requests[i] for i in unshared], disable_tqdm=True)
            for index, answer in zip(unshared, scored, strict=True):
                results[index] = answer
            progress.update(len(unshared))
        if shared_positions:
            scored = scorer.score(token_requests, plan, progress=progress.update)
            for index, answer in zip(positions, scored, strict=True):
                if answer is not None:
                    results[index] = answer
                    self.cache_hook.add_partial("loglikelihood", requests[index][0], answer)
        progress.close()
        return results

    def _scorer(self, sample: TokenRequest | None) -> PrefixTreeScorer | None:
        """The prefix-tree scorer, after a one-time check of this model's cache (None: use hf's path)."""
        if self._prefix_scorer is not None or self._prefix_sharing_off is not None or sample is None:
            return self._prefix_scorer
        batch_size = self.batch_size
        if not isinstance(batch_size, int):  # "auto" / "auto:N": hf's own detection, once
            batch_size = self._detect_batch_size()
        scorer = PrefixTreeScorer(
            self.model,
            batch_size=batch_size,
            autocast_dtype=self.mixed_precision_dtype,
            softmax_dtype=self.softmax_dtype,
            pack_subtrees=self.pack_rows,
        )
        compute_dtype = self.mixed_precision_dtype or next(self.model.parameters()).dtype
        tolerance = _CHECK_TOLERANCE.get(compute_dtype, _HALF_PRECISION_CHECK_TOLERANCE)
        reason = None
        if getattr(getattr(self.model, "active_peft_config", None), "is_prompt_learning", False):
            reason = "a prompt-learning adapter adds virtual tokens that a continued cache does not see"
        else:
            try:
                difference = scorer.check_against_full_forward(sample.tokens)
            except CachedScoringUnsupported as error:
                reason = str(error)
            else:
                if not difference <= tolerance:
                    reason = (
                        f"scores through a continued cache differ from full forwards by {difference:.3g} "
                        f"(tolerated: {tolerance:g})"
                    )
        if reason is not None:
            self._prefix_sharing_off = reason
            logger.warning("xling: prefix sharing is off for this model (%s); scoring as --model hf does.", reason)
            return None
        packing_off = self._check_packing(scorer, sample, tolerance) if self.pack_rows else None
        if packing_off is not None:
            scorer.pack_subtrees = False
            logger.warning(
                "xling: packing an item's context and choices into one forward row is off for this "
                "model (%s); prefix sharing stays on, one segment per row.",
                packing_off,
            )
        scorer.stats.reset()
        self._prefix_scorer = scorer
        return scorer

    @staticmethod
    def _check_packing(scorer: PrefixTreeScorer, sample: TokenRequest, tolerance: float) -> str | None:
        """Why rows packed with a tree mask cannot be trusted for this model (None: they can)."""
        if not scorer.pack_subtrees:
            return "the model takes no position_ids"
        try:
            difference = scorer.check_against_full_forward(sample.tokens, packed=True)
        except CachedScoringUnsupported as error:
            return str(error)
        except (RuntimeError, ValueError, TypeError) as error:  # e.g. an attention kernel refusing a 4D mask
            return f"the model refused a 4D attention mask: {type(error).__name__}: {error}"
        if not difference <= tolerance:
            return f"packed rows differ from full forwards by {difference:.3g} (tolerated: {tolerance:g})"
        return None

    @property
    def prefix_scoring_stats(self):
        """Forwards, tokens and padded positions run by the prefix-tree scorer (None before its first use)."""
        return self._prefix_scorer.stats if self._prefix_scorer is not None else None
