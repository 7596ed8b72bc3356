"""Run a prefix-tree plan (`xling_align.prefix_tree`) on a causal LM: each shared prefix runs once.

`PrefixTreeScorer.score` runs the segments of a `PrefixPlan` in batches of up to `batch_size` rows,
parents before children, depth first (so the caches of finished subtrees are freed early):

- a row is a segment's tokens on top of its parent's key/value cache; rows of one batch may have
  parents of different lengths: the parents' caches are left-padded to the longest, the padding is
  masked out (`attention_mask`), and each row's `position_ids` continue from its own parent's length
  (models without `position_ids`, e.g. BLOOM, take positions from the mask);
- a batch of rows with parents of equal length (e.g. the choices of one item) needs neither: the cache
  is the parent's repeated along the batch dimension, and positions follow from the cache length;
- every forward gets a fresh cache: one buffer per layer, `[rows, heads, past + width, head_dim]`, into
  which the parents' keys/values are copied once and the forward writes its own (transformers 5.x
  writes into the cache it is given). A stored prefix is never handed to the model itself, so it stays
  the same for all of its children, whichever batches they run in;
- only the positions that are scored go through the LM head (`logits_to_keep`), and a shared segment
  keeps its cache only while segments below it are still to run.

Log-probabilities are `log_softmax(logits)` in `softmax_dtype`, under the same autocast as `HFLM`, and
`is_greedy` compares the arg-max of each scored position with its token, as `HFLM` does.

`check_against_full_forward` runs a small plan that uses every path above (a shared segment, a cache
continued by another shared segment, a batch of rows with parents of different lengths) and compares
it with plain full forwards; the `xling` lm-eval model calls it once before trusting a model.

Example:
    >>> import torch
    >>> from xling_align.tiny_models import build_tiny_model
    >>> from xling_align.prefix_scoring import PrefixTreeScorer
    >>> from xling_align.prefix_tree import TokenRequest, plan_prefix_tree
    >>> model, _ = build_tiny_model("xling-align/tiny-random-llama")
    >>> scorer = PrefixTreeScorer(model.eval(), batch_size=4)
    >>> requests = [TokenRequest(tuple(range(10, 30)) + (5, 6), 2), TokenRequest(tuple(range(10, 30)) + (7, 8), 2)]
    >>> scores = scorer.score(requests, plan_prefix_tree(requests))
    >>> len(scores), type(scores[0][0]), type(scores[0][1])
    (2, <class 'float'>, <class 'bool'>)
    >>> scorer.check_against_full_forward(tuple(range(3, 40))) < 1e-4
    True
"""

from __future__ import annotations

import contextlib
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, DynamicLayer

from xling_align.prefix_tree import PrefixPlan, TokenRequest, plan_prefix_tree

_PAD_ID = 0  # right padding is never attended to by real tokens (causal), so any valid id works; HFLM uses 0 too


class CachedScoringUnsupported(RuntimeError):
    """The model does not give a plain key/value cache that can be continued (e.g. sliding-window layers)."""


class _PrefilledLayer(DynamicLayer):
    """A cache layer over preallocated buffers `[batch, heads, past + width, head_dim]` whose first `past`
    positions are filled: `update` writes the new keys/values in place instead of concatenating."""

    def __init__(self, keys_buffer: torch.Tensor, values_buffer: torch.Tensor, past: int):
        super().__init__()
        self.lazy_initialization(keys_buffer, values_buffer)
        self._keys_buffer, self._values_buffer = keys_buffer, values_buffer
        self.keys, self.values = keys_buffer[:, :, :past], values_buffer[:, :, :past]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        start = self.keys.shape[-2]
        stop = start + key_states.shape[-2]
        self._keys_buffer[:, :, start:stop] = key_states
        self._values_buffer[:, :, start:stop] = value_states
        self.keys, self.values = self._keys_buffer[:, :, :stop], self._values_buffer[:, :, :stop]
        return self.keys, self.values


@dataclass
class ScoringStats:
    """What the model was asked to compute (summed over calls to `score`)."""

    forwards: int = 0
    tokens: int = 0  # real input tokens run through the model
    positions: int = 0  # batch rows x padded width: real tokens + right padding

    def reset(self) -> None:
        self.forwards = self.tokens = self.positions = 0


class PrefixTreeScorer:
    """Scores the requests of a `PrefixPlan` with a causal LM (see the module docstring).

    Args:
        model: a transformers causal LM (or a PEFT model around one) whose forward accepts a
            `DynamicCache` (`cache=` or `past_key_values=`).
        batch_size: rows per forward.
        autocast_dtype: the dtype of `torch.autocast` around each forward (None: no autocast).
        softmax_dtype: the dtype of `log_softmax` (None: the logits' dtype).
    """

    def __init__(self, model, batch_size: int, autocast_dtype: torch.dtype | None = None,
                 softmax_dtype: torch.dtype | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.autocast_dtype = autocast_dtype
        self.softmax_dtype = softmax_dtype
        self.stats = ScoringStats()
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT passes kwargs on
        parameters = inspect.signature(inner.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._takes_position_ids = "position_ids" in parameters
        self._takes_logits_to_keep = "logits_to_keep" in parameters

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --------------------------------------------------------------------------------------- scoring
    def score(self, requests: list[TokenRequest], plan: PrefixPlan,
              progress: Callable[[int], None] | None = None) -> list[tuple[float, bool] | None]:
        """`(log-likelihood, is_greedy)` per request of the plan; None for `plan.unshared` ones.

        `progress(n)` is called with the number of requests finished by each forward.
        """
        # per request, its scored log-probabilities in position order (ancestors run before descendants),
        # summed at the end in one tensor as HFLM sums them: the same rounding as --model hf
        pieces: list[list[torch.Tensor]] = [[] for _ in requests]
        misses = torch.zeros(len(requests), dtype=torch.long)
        caches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        waiting_children = {index: len(segment.children) for index, segment in enumerate(plan.segments)}
        ready = deque(plan.roots)
        while ready:
            batch = self._next_batch(ready, plan)
            finished = self._run_batch(requests, plan, batch, caches, pieces, misses)
            children = [child for index in batch for child in plan.segments[index].children]
            ready.extendleft(reversed(children))  # depth first: finish a subtree, free its caches
            for index in batch:
                parent = plan.segments[index].parent
                if parent is not None:
                    waiting_children[parent] -= 1
                    if waiting_children[parent] == 0:
                        del caches[parent]
            if progress is not None:
                progress(finished)
        unshared = set(plan.unshared)
        return [None if index in unshared else (float(torch.cat(pieces[index])[None].sum()), bool(misses[index] == 0))
                for index in range(len(requests))]

    def _next_batch(self, ready: deque, plan: PrefixPlan) -> list[int]:
        """The next segment in depth-first order, and ready segments of a similar shape to fill its batch.

        Similar: width and parent length each within a factor of 2 of the first segment's (or at most 32
        tokens apart), so that little of a batch is padding; segments passed over keep their place.
        """
        def close(a: int, b: int) -> bool:
            return abs(a - b) <= max(32, min(a, b))

        batch = [ready.popleft()]
        width, past = len(plan.segments[batch[0]].tokens), plan.segments[batch[0]].start
        passed = []
        while ready and len(batch) < self.batch_size and len(passed) < 4 * self.batch_size:
            index = ready.popleft()
            segment = plan.segments[index]
            (batch if close(len(segment.tokens), width) and close(segment.start, past) else passed).append(index)
        ready.extendleft(reversed(passed))
        return batch

    def _run_batch(self, requests, plan, batch, caches, pieces, misses) -> int:
        segments = [plan.segments[index] for index in batch]
        rows, width = len(segments), max(len(segment.tokens) for segment in segments)
        past = max(segment.start for segment in segments)
        device = self.device
        input_ids = torch.full((rows, width), _PAD_ID, dtype=torch.long)
        for row, segment in enumerate(segments):
            input_ids[row, : len(segment.tokens)] = torch.tensor(segment.tokens, dtype=torch.long)
        kwargs = {"input_ids": input_ids.to(device), "use_cache": past > 0 or any(s.shared for s in segments)}
        if past > 0:
            kwargs[self._cache_argument] = self._stack_parent_caches(segments, caches, past, width)
        if any(segment.start != past or len(segment.tokens) != width for segment in segments):
            # right padding alone would need no mask (causal), but transformers warns about padded ids without one
            mask = torch.zeros((rows, past + width), dtype=torch.long)
            for row, segment in enumerate(segments):
                mask[row, past - segment.start : past + len(segment.tokens)] = 1
            kwargs["attention_mask"] = mask.to(device)
            if self._takes_position_ids and any(segment.start != past for segment in segments):
                starts = torch.tensor([segment.start for segment in segments])
                ends = torch.tensor([segment.end for segment in segments])
                # padding repeats a row's last position: never read, and never past the model's window
                positions = torch.minimum(starts[:, None] + torch.arange(width), ends[:, None] - 1)
                kwargs["position_ids"] = positions.to(device)

        # which (row, position) pairs are read, for which request, with which target token
        owners, counts, row_index, offsets, targets = [], [], [], [], []
        finished = 0
        for row, segment in enumerate(segments):
            for request_index in segment.scored_requests:
                request = requests[request_index]
                first = max(segment.start, request.first_scored)
                count = segment.end - first
                owners.append(request_index)
                counts.append(count)
                row_index += [row] * count
                offsets += range(first - segment.start, segment.end - segment.start)
                targets += request.tokens[first + 1 : segment.end + 1]
                finished += request.input_length <= segment.end
        keep = width - min(offsets) if offsets else 1
        if self._takes_logits_to_keep:
            kwargs["logits_to_keep"] = keep

        autocast = (torch.autocast(device_type=device.type, dtype=self.autocast_dtype)
                    if self.autocast_dtype is not None else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            output = self.model(**kwargs)
        self.stats.forwards += 1
        self.stats.tokens += sum(len(segment.tokens) for segment in segments)
        self.stats.positions += rows * width

        if any(segment.shared and segment.children for segment in segments):
            cache = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
            layers = self._continuable_layers(cache)
            for row, (index, segment) in enumerate(zip(batch, segments, strict=True)):
                if segment.shared and segment.children:
                    # this row's real keys/values: its parent's (after the left padding) and its own; a view,
                    # not a copy: the batch's buffer lives until the last shared row's subtree is done
                    window = slice(past - segment.start, past + len(segment.tokens))
                    caches[index] = [(layer.keys[row : row + 1, :, window], layer.values[row : row + 1, :, window])
                                     for layer in layers]
        if offsets:
            logits = output.logits[:, -keep:]
            logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
            rows_t = torch.tensor(row_index, device=device)
            columns = torch.tensor(offsets, device=device) - (width - keep)
            targets_t = torch.tensor(targets, device=device)
            selected = logprobs[rows_t, columns, targets_t]
            hits = logprobs[rows_t, columns].argmax(dim=-1) == targets_t
            for request_index, chunk in zip(owners, selected.cpu().split(counts), strict=True):
                pieces[request_index].append(chunk)
            misses.index_add_(0, torch.tensor(owners).repeat_interleave(torch.tensor(counts)), (~hits).long().cpu())
        return finished

    def _stack_parent_caches(self, segments, caches, past, width):
        """A fresh cache holding each row's parent cache, left-padded to `past` positions.

        One buffer per layer holds the batch's past and the `width` positions the forward adds, so the
        parents are copied once and the new keys/values are written in place (no concatenation). A root
        segment in the batch (no parent) gets `past` masked positions of padding only.
        """
        parents = [caches[segment.parent] if segment.parent is not None else None for segment in segments]
        some_parent = next(parent for parent in parents if parent is not None)
        same_parent = all(parent is parents[0] for parent in parents)
        layers = []
        for layer in range(len(some_parent)):
            buffers = []
            for kind in (0, 1):  # keys, values
                like = some_parent[layer][kind]
                # zeros, not empty: masked scores still multiply the padding, which must be finite
                buffer = like.new_zeros((len(parents), like.shape[1], past + width, like.shape[-1]))
                if same_parent:
                    buffer[:, :, :past] = like
                else:
                    for row, parent in enumerate(parents):
                        if parent is not None:
                            length = parent[layer][kind].shape[-2]
                            buffer[row, :, past - length : past] = parent[layer][kind][0]
                buffers.append(buffer)
            layers.append(_PrefilledLayer(*buffers, past))
        return Cache(layers=layers)

    @staticmethod
    def _continuable_layers(cache):
        layers = getattr(cache, "layers", None) if isinstance(cache, Cache) else None
        if not layers or any(type(layer) not in (DynamicLayer, _PrefilledLayer) for layer in layers):
            kinds = sorted({type(layer).__name__ for layer in layers or []}) or [type(cache).__name__]
            raise CachedScoringUnsupported(
                f"the model returned a {type(cache).__name__} with {', '.join(kinds)} layers; prefix sharing "
                "needs a cache of plain DynamicLayer layers (no sliding window)"
            )
        return layers

    # ---------------------------------------------------------------------------------- self-check
    def check_against_full_forward(self, sample: tuple[int, ...]) -> float:
        """Largest difference of a request's log-likelihood, shared path versus plain full forwards.

        Runs a small plan built from the token ids `sample` (repeated to 40 tokens if shorter) that uses a
        shared segment continued by another, and a batch of rows whose parents differ in length; `is_greedy`
        disagreeing counts as an infinite difference.

        Raises:
            CachedScoringUnsupported: the model's cache cannot be continued.
        """
        tokens = tuple((list(sample) * (40 // max(len(sample), 1) + 1))[:40])
        backwards = tokens[::-1]  # starts with another token: a second root of another length
        requests = [TokenRequest(tokens[:24], 8),  # shares 16 tokens with the next, 8 with the third
                    TokenRequest(tokens[:16] + tokens[17:25], 6),
                    TokenRequest(tokens[:8] + tokens[9:21], 5),
                    TokenRequest(backwards[:12] + backwards[13:19], 4),
                    TokenRequest(backwards[:12] + backwards[14:20], 3)]
        plan = plan_prefix_tree(requests, min_shared_tokens=1)
        saved, self.batch_size = self.batch_size, 8
        try:
            shared = self.score(requests, plan)
        finally:
            self.batch_size = saved
        worst = 0.0
        for request, (value, greedy) in zip(requests, shared, strict=True):
            reference, reference_greedy = self._full_forward(request)
            if greedy != reference_greedy:
                return float("inf")
            worst = max(worst, abs(value - reference))
        return worst

    def _full_forward(self, request: TokenRequest) -> tuple[float, bool]:
        autocast = (torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)
                    if self.autocast_dtype is not None else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            logits = self.model(input_ids=torch.tensor([request.tokens[:-1]], device=self.device)).logits
        logprobs = F.log_softmax(logits[0, -request.num_scored :], dim=-1, dtype=self.softmax_dtype)
        targets = torch.tensor(request.tokens[-request.num_scored :], device=self.device)
        selected = logprobs.gather(-1, targets[:, None])[:, 0]
        return float(selected.sum()), bool((logprobs.argmax(-1) == targets).all())
