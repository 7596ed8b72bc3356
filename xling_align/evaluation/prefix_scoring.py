"""Run a prefix-tree plan (`xling_align.evaluation.prefix_tree`) on a causal LM: each shared prefix runs once.

`PrefixTreeScorer.score` turns the segments of a `PrefixPlan` into forward rows once per request list,
then runs them parents before children, depth first (so the caches of finished subtrees are freed early):

- a *packed* row holds a whole subtree of at most 1.5x the longest request's tokens (typically an item's
  context and all its choices) one segment after the other, with a tree-shaped 4D attention mask (a token
  sees its row's past, the segments above its own, and its own segment up to itself) and each token's
  position in its request. So a forward holds many items and xling runs fewer forwards than `lm_eval --model hf`;
- a larger subtree's top segment (e.g. demonstrations every document shares) runs alone and keeps its
  key/value cache; the rows below it run on top of that cache;
- rows of one forward may have parents of different lengths: the parents' caches are left-padded to the
  longest, the padding is masked out, and positions continue from each row's own parent (models without
  `position_ids`, e.g. BLOOM, take positions from a 2D mask and get one segment per row, no packing);
- a forward holds at most `batch_size` times the longest request in positions (rows x (past + width))
  and that times the longest request in attention scores: never more than hf's largest forward;
- rows are right-padded to their forward's widest, and a padded position costs as much as a real one, so the
  ready rows are sorted by width and cut into the forwards of least cost: padded positions, attention scores and
  a forward's own host work (`forward_costs`, from the model's shape and the device), rather than filled in
  depth-first order;
- every forward gets a fresh cache: one buffer per layer, `[rows, heads, past + width, head_dim]`, into
  which the parents' keys/values are copied once and the forward writes its own (transformers 5.x
  writes into the cache it is given). A stored prefix is never handed to the model itself, so it stays
  the same for all of its children, whichever batches they run in;
- only the scored positions go through the LM head and the log-softmax: a hook on the model's output
  embeddings hands the head the scored hidden states alone (`[1, scored, d]`; a final soft-capping after
  the head is elementwise and still applies), where hf runs both over the whole vocabulary at every
  position; the scored log-probabilities and arg-max hits stay on the device, in one tensor per forward,
  and are moved once at the end, where each request's are summed as one row of a tensor (HFLM's rounding);
- sliding-window layers (Gemma 2/3, Mistral, Qwen2 with `use_sliding_window`): every forward gets explicit
  4D masks, one per kind of layer (`config.layer_types`), with the window folded in (a token sees the keys
  of its own path at most `window - 1` positions back), and a cache of plain layers that keeps the whole
  prefix (the model's own sliding-window cache keeps only its last window).

Log-probabilities are `log_softmax(logits)` in `softmax_dtype`, under the same autocast as `HFLM`, and
`is_greedy` compares the arg-max of each scored position with its token, as `HFLM` does.

`check_against_full_forward` runs a small plan that uses every path above (a shared segment, a cache
continued by another shared segment, a batch of rows with parents of different lengths; with
`packed=True`, packed rows on a cache and without one) and compares it with plain full forwards; the
`xling` lm-eval model calls it once per path before trusting a model with it.

Example:
    >>> import torch
    >>> from xling_align.tiny_models import build_tiny_model
    >>> from xling_align.evaluation.prefix_scoring import PrefixTreeScorer
    >>> from xling_align.evaluation.prefix_tree import TokenRequest, plan_prefix_tree
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
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, DynamicLayer

from xling_align.evaluation.prefix_tree import PrefixPlan, TokenRequest, plan_prefix_tree

_PAD_ID = 0  # right padding is never attended to by real tokens (causal), so any valid id works; HFLM uses 0 too


class CachedScoringUnsupported(RuntimeError):
    """The model does not give a plain key/value cache that can be continued (e.g. an unknown attention kind)."""


_KNOWN_LAYER_TYPES = {"full_attention", "sliding_attention"}


def attention_windows(config) -> dict[str | None, int | None] | None:
    """The sliding windows of a model's attention: None when every layer attends to its whole past (one plain
    causal mask); else, per kind of layer the model takes a mask for (`config.layer_types`: Gemma 2/3, Qwen2,
    Ministral), its window (None: no window); the single key None: one mask for every layer (Mistral, Phi-3).

    A window `w` lets a query at position p see the keys at positions p - w + 1 .. p, as transformers' own
    `sliding_window_overlay` does.
    """
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    window = getattr(config, "sliding_window", None)
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types is None:
        return {None: window}
    if "sliding_attention" not in layer_types:
        return None
    return {kind: window if kind == "sliding_attention" else None for kind in set(layer_types)}


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
class _Row:
    """One forward row: a segment, or a whole subtree of segments packed one after the other.

    `segments` are in depth-first order (a parent before its children); the first one's parent, if any,
    is the row's past (its key/value cache). Inside the row a token attends to the past, to the segments
    of the row above its own (its ancestors) and to its own segment up to itself: a tree-shaped mask.
    The arrays are built once per `score` call; a forward only stacks them.
    """

    segments: list[int]
    parent: int | None
    past: int  # the first segment's start: the length of the parent's cache
    keeps_cache: bool  # a single shared segment whose children run in later rows
    finishes: int  # requests whose last scored position is in this row
    tokens: np.ndarray  # input ids, [width]
    positions: np.ndarray  # position of every token in its request, [width]
    segment_of: np.ndarray  # which of `segments` each column belongs to, [width]
    ancestors: np.ndarray  # [k, k] bool: segments[j] is segments[i] or above it
    columns: np.ndarray  # scored columns, with their target token, request and rank in the request
    targets: np.ndarray
    owners: np.ndarray
    ranks: np.ndarray

    @property
    def width(self) -> int:
        return len(self.tokens)


def _subtree_tokens(plan: PrefixPlan) -> list[int]:
    """Tokens of each segment and everything below it (children always come after their parent)."""
    sizes = [len(segment.tokens) for segment in plan.segments]
    for index in range(len(plan.segments) - 1, -1, -1):
        parent = plan.segments[index].parent
        if parent is not None:
            sizes[parent] += sizes[index]
    return sizes


def _make_row(requests, plan: PrefixPlan, members: list[int], keeps_cache: bool) -> _Row:
    segments = [plan.segments[index] for index in members]
    local = {index: k for k, index in enumerate(members)}
    ancestors = np.eye(len(members), dtype=bool)
    for k, segment in enumerate(segments):
        if segment.parent in local:
            ancestors[k] |= ancestors[local[segment.parent]]
    columns, targets, owners, ranks = [], [], [], []
    column, finishes = 0, 0
    for segment in segments:
        for request_index in segment.scored_requests:
            request = requests[request_index]
            first = max(segment.start, request.first_scored)
            columns.append(np.arange(column + first - segment.start, column + len(segment.tokens)))
            targets.append(np.asarray(request.tokens[first + 1 : segment.end + 1]))
            owners.append(np.full(segment.end - first, request_index))
            ranks.append(np.arange(first - request.first_scored, segment.end - request.first_scored))
            finishes += request.input_length <= segment.end
        column += len(segment.tokens)

    def joined(parts):
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)

    return _Row(
        segments=members,
        parent=segments[0].parent,
        past=segments[0].start,
        keeps_cache=keeps_cache,
        finishes=finishes,
        tokens=joined([np.asarray(s.tokens) for s in segments]),
        positions=joined([np.arange(s.start, s.end) for s in segments]),
        segment_of=joined([np.full(len(s.tokens), k) for k, s in enumerate(segments)]),
        ancestors=ancestors,
        columns=joined(columns),
        targets=joined(targets),
        owners=joined(owners),
        ranks=joined(ranks),
    )


def _plan_rows(requests, plan: PrefixPlan, row_width_limit: int | None):
    """The rows of a plan; per row that keeps its cache, the rows that continue it (-1: the roots'); per row
    on top of a cache, the row that keeps it.

    A segment whose subtree holds at most `row_width_limit` tokens runs with its subtree in one row (None:
    no packing, one segment per row); a larger one runs alone, keeps its cache, and its children are
    planned the same way on top of it.
    """
    sizes = _subtree_tokens(plan)
    rows: list[_Row] = []
    below: dict[int, list[int]] = {}
    parent_row: dict[int, int] = {}

    def subtree(index: int) -> list[int]:
        order, stack = [], [index]
        while stack:
            current = stack.pop()
            order.append(current)
            stack.extend(reversed(plan.segments[current].children))
        return order

    def add(index: int) -> int:  # recursion depth: the tree's depth in segments (a few per request)
        segment = plan.segments[index]
        packed = row_width_limit is not None and segment.children and sizes[index] <= row_width_limit
        members = subtree(index) if packed else [index]
        keeps = segment.shared and bool(segment.children) and not packed
        rows.append(_make_row(requests, plan, members, keeps))
        row = len(rows) - 1
        if keeps:
            below[row] = [add(child) for child in segment.children]
            for child in below[row]:
                parent_row[child] = row
        return row

    below[-1] = [add(index) for index in plan.roots]
    return rows, below, parent_row


# the ready rows `_next_batch` sorts by width and groups into forwards (bounds its work per forward)
_BATCH_WINDOW = 64
# host work of one forward per layer (Python, kernel launches and, on a CPU other jobs share, threads waiting for
# each other), in multiply-adds of the model's blocks that take as long: ~25 ms a layer at ~20 GMAC/s on a CPU
# (measured on SmolLM2-135M: a 1-token forward costs 30-200 token-forwards, more under load); an accelerator does
# ~100 times the multiply-adds in the same host time
_HOST_MACS_PER_LAYER = {"cpu": 5e8}
_ACCELERATOR_HOST_MACS_PER_LAYER = 1e10


def body_parameters(model) -> int:
    """Parameters a token's forward multiplies by outside the embeddings and the LM head (its cost per token:
    xling runs the head only at scored positions)."""
    total = sum(parameter.numel() for parameter in model.parameters())
    embeddings = {
        id(module.weight): module.weight.numel()
        for module in (model.get_input_embeddings(), model.get_output_embeddings())
        if module is not None and getattr(module, "weight", None) is not None
    }
    return total - sum(embeddings.values())


def forward_costs(model, device) -> tuple[float, float]:
    """What a forward's host work and one attention score (a query against a key, in every layer) cost, each in
    units of one position's forward through the blocks (its multiply-adds: the body's parameters).

    A model whose shape is unknown gets forwards of infinite cost (`_group_by_width` fills every forward) and free
    attention scores.
    """
    config = getattr(model, "config", None)
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    head_dim = getattr(config, "head_dim", None) or (getattr(config, "hidden_size", 0) // heads if heads else None)
    try:
        body = body_parameters(model)
    except (AttributeError, NotImplementedError):
        body = 0
    if not (isinstance(layers, int) and isinstance(heads, int) and isinstance(head_dim, int) and body > 0):
        return float("inf"), 0.0
    host = _HOST_MACS_PER_LAYER.get(torch.device(device).type, _ACCELERATOR_HOST_MACS_PER_LAYER)
    return layers * host / body, 2 * layers * heads * head_dim / body  # scores: q.k and p.v per head dimension


def _group_by_width(
    shapes: list[tuple[int, int]], budget: int, longest: int, costs: tuple[float, float]
) -> list[tuple[int, int]]:
    """Cut rows sorted by width (widest first; `shapes` = (width, past) each) into consecutive forwards of least
    total cost: per forward, its padded positions (rows x widest), its attention scores (rows x widest x
    (widest + longest past)) times `costs[1]`, and `costs[0]` of host work; each forward within `budget`
    positions and `budget x longest` scores, or a single row. Returns the forwards as (start, stop) slices.
    """
    forward_cost, score_cost = min(costs[0], budget), costs[1]  # a forward never costs more than hf's largest
    best, cut = [0.0] + [float("inf")] * len(shapes), [0] * (len(shapes) + 1)
    for stop in range(1, len(shapes) + 1):
        past = 0
        for start in range(stop - 1, -1, -1):
            width, rows = shapes[start][0], stop - start
            past = max(past, shapes[start][1])
            if rows > 1 and (rows * (width + past) > budget or rows * width * (width + past) > budget * longest):
                break  # wider and more rows further up: never within the budget again
            cost = best[start] + rows * width * (1 + score_cost * (width + past)) + forward_cost
            if cost < best[stop]:
                best[stop], cut[stop] = cost, start
    groups, stop = [], len(shapes)
    while stop:
        groups.append((cut[stop], stop))
        stop = cut[stop]
    return groups[::-1]


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
        batch_size: `lm_eval --model hf`'s batch size: a forward holds at most `batch_size` times the longest
            request's length in positions (rows x (past + width)), hf's largest forward.
        autocast_dtype: the dtype of `torch.autocast` around each forward (None: no autocast).
        softmax_dtype: the dtype of `log_softmax` (None: the logits' dtype).
        pack_subtrees: run a small subtree (an item's context and all its choices) in one row with a
            tree-shaped attention mask (needs a model that takes `position_ids` and a 4D mask; the `xling`
            model checks it once and turns it off otherwise).
    """

    def __init__(
        self,
        model,
        batch_size: int,
        autocast_dtype: torch.dtype | None = None,
        softmax_dtype: torch.dtype | None = None,
        pack_subtrees: bool = True,
    ):
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
        config = getattr(inner, "config", None)
        self._attention = getattr(config, "_attn_implementation", None)
        # sliding-window layers: every forward gets explicit 4D masks with the window folded in, and a cache of
        # plain layers (the model's own sliding-window cache keeps only the last window of a prefix)
        self._windows = attention_windows(config) if config is not None else None
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        self._num_layers = getattr(text_config, "num_hidden_layers", None)
        # the LM head runs only at scored positions: a hook gathers its input (None: the model has no head module)
        self._head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
        self.pack_subtrees = pack_subtrees and self._takes_position_ids
        # the one-time check covers a window up to this many tokens (its full forwards cost that length)
        self._longest_check = min(getattr(text_config, "max_position_embeddings", None) or 2048, 2048)
        self.row_width_limit: int | None = None  # None: 1.5x the longest request
        self._costs: tuple[float, float] | None = None  # see _position_costs

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --------------------------------------------------------------------------------------- scoring
    def score(
        self, requests: list[TokenRequest], plan: PrefixPlan, progress: Callable[[int], None] | None = None
    ) -> list[tuple[float, bool] | None]:
        """`(log-likelihood, is_greedy)` per request of the plan; None for `plan.unshared` ones.

        `progress(n)` is called with the number of requests finished by each forward.
        """
        longest = max((len(s.tokens) + s.start for s in plan.segments), default=1)
        width_limit = (self.row_width_limit or (3 * longest) // 2) if self.pack_subtrees else None
        rows, below, parent_row = _plan_rows(requests, plan, width_limit)
        budget = self.batch_size * longest  # positions (and attention scores, times longest) of hf's largest forward
        values, hits = [], []  # per forward, on the device: scored log-probabilities and arg-max hits
        caches: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}  # per row that keeps its cache
        waiting = {row: len(children) for row, children in below.items()}
        ready = deque(below[-1])
        order_owners, order_ranks = [], []
        while ready:
            batch = self._next_batch(ready, rows, budget, longest)
            batch_values, batch_hits = self._run_batch(rows, batch, caches, parent_row)
            values.append(batch_values)
            hits.append(batch_hits)
            order_owners += [rows[index].owners for index in batch]
            order_ranks += [rows[index].ranks for index in batch]
            children = [child for index in batch for child in below.get(index, ())]
            ready.extendleft(reversed(children))  # depth first: finish a subtree, free its caches
            for index in batch:
                above = parent_row.get(index)
                if above is not None:
                    waiting[above] -= 1
                    if waiting[above] == 0:
                        del caches[above]
            if progress is not None:
                progress(sum(rows[index].finishes for index in batch))
        return self._sums(len(requests), plan, values, hits, order_owners, order_ranks)

    @staticmethod
    def _sums(count, plan, values, hits, owners, ranks) -> list[tuple[float, bool] | None]:
        """Each request's scored log-probabilities in position order, summed as HFLM sums them (one row of
        a tensor per request: the same rounding as `lm_eval --model hf`), and whether every position was the arg-max."""
        if not values:
            return [None] * count
        owners, ranks = np.concatenate(owners), np.concatenate(ranks)
        order = np.lexsort((ranks, owners))
        values = torch.cat(values).cpu()[torch.from_numpy(order)]
        misses = np.bincount(owners, weights=~torch.cat(hits).cpu().numpy(), minlength=count)
        counts = np.bincount(owners, minlength=count)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sums = np.zeros(count)
        for length in np.unique(counts[counts > 0]):
            members = np.flatnonzero(counts == length)
            grid = torch.from_numpy(starts[members][:, None] + np.arange(length))
            sums[members] = values[grid].sum(dim=1).double().numpy()
        unshared = set(plan.unshared)
        return [
            None if index in unshared or counts[index] == 0 else (float(sums[index]), bool(misses[index] == 0))
            for index in range(count)
        ]

    def _next_batch(self, ready: deque, rows: list[_Row], budget: int, longest: int) -> list[int]:
        """The next row in depth-first order and the ready rows that run best beside it, while the forward holds at
        most `budget` positions (rows x (past + width)) and `budget x longest` attention scores
        (rows x width x (past + width)), hf's largest forward; always at least one row.

        Rows are right-padded to the forward's widest and every padded position costs a real token's forward, so
        the first `_BATCH_WINDOW` ready rows are sorted by width and cut into forwards of similar widths
        (`_group_by_width`); the forward holding the first row runs, the others keep their place.
        """
        window = [ready.popleft() for _ in range(min(len(ready), _BATCH_WINDOW))]
        by_width = sorted(window, key=lambda index: (-rows[index].width, -rows[index].past))
        groups = _group_by_width(
            [(rows[index].width, rows[index].past) for index in by_width], budget, longest, self._position_costs()
        )
        first = by_width.index(window[0])
        start, stop = next((start, stop) for start, stop in groups if start <= first < stop)
        batch = by_width[start:stop]
        chosen = set(batch)
        ready.extendleft(reversed([index for index in window if index not in chosen]))
        return batch

    def _position_costs(self) -> tuple[float, float]:
        """(cost of a forward, cost of an attention score), in units of one position's forward through the
        blocks: what `_group_by_width` weighs padding against."""
        if self._costs is None:
            self._costs = forward_costs(self.model, self.device)
        return self._costs

    def _run_batch(self, rows: list[_Row], batch: list[int], caches, parent_row) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward over the rows `batch`; stores the caches rows keep; returns the scored log-probabilities
        and whether each is the arg-max, in the order of the rows' `columns`."""
        members = [rows[index] for index in batch]
        count, width = len(members), max(row.width for row in members)
        past = max(row.past for row in members)
        device = self.device
        input_ids = np.full((count, width), _PAD_ID, dtype=np.int64)
        for r, row in enumerate(members):
            input_ids[r, : row.width] = row.tokens
        keeps_cache = any(row.keeps_cache for row in members)
        kwargs = {"input_ids": torch.from_numpy(input_ids).to(device), "use_cache": past > 0 or keeps_cache}
        if past > 0:
            kwargs[self._cache_argument] = self._stack_parent_caches(
                [caches[parent_row[index]] if index in parent_row else None for index in batch],
                [row.past for row in members],
                past,
                width,
            )
        elif keeps_cache and self._windows is not None:
            if self._num_layers is None:
                raise CachedScoringUnsupported("the model's config gives no num_hidden_layers for a plain cache")
            kwargs[self._cache_argument] = Cache(layers=[DynamicLayer() for _ in range(self._num_layers)])
        if self._windows is not None:
            kwargs["attention_mask"] = self._windowed_masks(members, past, width, device)
            kwargs["position_ids"] = self._positions(members, width).to(device)
        elif any(len(row.segments) > 1 for row in members):
            kwargs["attention_mask"] = self._tree_mask(members, past, width).to(device)
            kwargs["position_ids"] = self._positions(members, width).to(device)
        elif any(row.past != past or row.width != width for row in members):
            # right padding alone would need no mask (causal), but transformers warns about padded ids without one
            mask = np.zeros((count, past + width), dtype=np.int64)
            for r, row in enumerate(members):
                mask[r, past - row.past : past + row.width] = 1
            kwargs["attention_mask"] = torch.from_numpy(mask).to(device)
            if self._takes_position_ids and any(row.past != past for row in members):
                kwargs["position_ids"] = self._positions(members, width).to(device)

        row_index = np.concatenate([np.full(len(row.columns), r) for r, row in enumerate(members)])
        columns = np.concatenate([row.columns for row in members])
        targets = np.concatenate([row.targets for row in members])
        keep = width - int(columns.min()) if len(columns) else 1
        if self._takes_logits_to_keep:
            kwargs["logits_to_keep"] = keep
        rows_t = torch.from_numpy(row_index).to(device)
        columns_t = torch.from_numpy(columns).to(device)  # in the row, [0, width)

        # the LM head sees only the scored positions: its input [rows, positions, d] becomes [1, scored, d]
        # (any final soft-capping after the head is elementwise, so it still applies)
        gathered = []

        def scored_hidden_only(module, args):
            hidden = args[0]
            if gathered or hidden.dim() != 3 or hidden.shape[0] != count or hidden.shape[1] not in (keep, width):
                return None  # not the one call on this forward's hidden states: leave it alone
            gathered.append(True)
            return (hidden[rows_t, columns_t - (width - hidden.shape[1])].unsqueeze(0), *args[1:])

        hook = (
            self._head.register_forward_pre_hook(scored_hidden_only)
            if self._head is not None and len(columns)
            else None
        )
        autocast = (
            torch.autocast(device_type=device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        try:
            with torch.no_grad(), autocast:
                output = self.model(**kwargs)
        finally:
            if hook is not None:
                hook.remove()
        self.stats.forwards += 1
        self.stats.tokens += sum(row.width for row in members)
        self.stats.positions += count * width

        if keeps_cache:
            cache = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
            layers = self._continuable_layers(cache)
            for r, (index, row) in enumerate(zip(batch, members, strict=True)):
                if row.keeps_cache:
                    # this row's real keys/values: its parent's (after the left padding) and its own; a view,
                    # not a copy: the batch's buffer lives until the last kept row's subtree is done
                    window = slice(past - row.past, past + row.width)
                    caches[index] = [
                        (layer.keys[r : r + 1, :, window], layer.values[r : r + 1, :, window]) for layer in layers
                    ]
        if not len(columns):
            empty = torch.zeros(0, device=device)
            return empty, empty.bool()
        logits = output.logits
        if gathered:
            logits = logits[0]
        else:  # a model whose head was not hooked: its logits of the last `keep` (or all) positions
            logits = logits[rows_t, columns_t - (width - logits.shape[1])]
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)  # [scored positions, vocabulary]
        targets_t = torch.from_numpy(targets).to(device)
        selected = logprobs.gather(-1, targets_t[:, None])[:, 0]
        hits = logprobs.argmax(dim=-1) == targets_t
        return selected, hits

    @staticmethod
    def _positions(members: list[_Row], width: int) -> torch.Tensor:
        """Each token's position in its request; padding repeats a row's last position (never read, and
        never past the model's window)."""
        positions = np.empty((len(members), width), dtype=np.int64)
        for r, row in enumerate(members):
            positions[r, : row.width] = row.positions
            positions[r, row.width :] = row.positions[-1]
        return torch.from_numpy(positions)

    def _allowed(self, members: list[_Row], past: int, width: int) -> np.ndarray:
        """`[rows, width, past + width]` bool: a token sees its row's real past, its ancestors in the row and its
        own segment up to itself; a padding token sees only itself (a query that sees nothing gives NaN)."""
        allowed = np.zeros((len(members), width, past + width), dtype=bool)
        causal = np.tri(width, dtype=bool)
        for r, row in enumerate(members):
            n = row.width
            allowed[r, :n, past - row.past : past] = True
            inside = row.ancestors[row.segment_of[:, None], row.segment_of[None, :]] & causal[:n, :n]
            allowed[r, :n, past : past + n] = inside
            padding = np.arange(n, width)
            allowed[r, padding, past + padding] = True
        return allowed

    def _mask_tensor(self, allowed: np.ndarray) -> torch.Tensor:
        mask = torch.from_numpy(allowed)[:, None]
        if self._attention == "sdpa":
            return mask  # a boolean mask: True attends
        dtype = self.autocast_dtype or next(self.model.parameters()).dtype  # eager adds the mask to the scores
        return torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, torch.finfo(dtype).min)

    def _tree_mask(self, members: list[_Row], past: int, width: int) -> torch.Tensor:
        """`[rows, 1, width, past + width]`: the tree mask of `_allowed`, as the model's attention takes it."""
        return self._mask_tensor(self._allowed(members, past, width))

    def _windowed_masks(self, members: list[_Row], past: int, width: int, device):
        """The tree mask cut to each kind of layer's window: a token at position p sees, along its own path,
        only the keys at positions above p - window. A dict per layer kind (models with `layer_types`), or one mask.

        Along a path the positions are consecutive (a parent's cache, then the segments below it), so the
        window counts exactly the tokens the request itself would have in its window in a full forward.
        """
        allowed = self._allowed(members, past, width)
        query = np.zeros((len(members), width), dtype=np.int64)
        key = np.zeros((len(members), past + width), dtype=np.int64)
        for r, row in enumerate(members):
            query[r, : row.width] = row.positions
            key[r, past - row.past : past] = np.arange(row.past)
            key[r, past : past + row.width] = row.positions
        distance = query[:, :, None] - key[:, None, :]
        padding = np.zeros((len(members), width), dtype=bool)
        for r, row in enumerate(members):
            padding[r, row.width :] = True
        masks = {}
        for kind, window in self._windows.items():
            if kind is not None and kind not in _KNOWN_LAYER_TYPES:
                raise CachedScoringUnsupported(f"the model has {kind} layers, whose mask xling cannot build")
            cut = allowed if window is None else allowed & ((distance < window) | padding[:, :, None])
            masks[kind] = self._mask_tensor(cut).to(device)
        return masks[None] if None in masks else masks

    def _stack_parent_caches(self, parents, lengths, past, width):
        """A fresh cache holding each row's parent cache, left-padded to `past` positions.

        One buffer per layer holds the batch's past and the `width` positions the forward adds, so the
        parents are copied once and the new keys/values are written in place (no concatenation). A row
        without a parent gets `past` masked positions of padding only.
        """
        some_parent = next(parent for parent in parents if parent is not None)
        same_parent = all(parent is parents[0] for parent in parents)
        layers = []
        for layer in range(len(some_parent)):
            buffers = []
            for kind in (0, 1):  # keys, values
                like = some_parent[layer][kind]
                # the forward writes the last `width` positions; the past is copied, its left padding zeroed
                # (masked scores still multiply the padding, which must be finite)
                buffer = like.new_empty((len(parents), like.shape[1], past + width, like.shape[-1]))
                if same_parent:
                    buffer[:, :, :past] = like
                else:
                    for r, (parent, length) in enumerate(zip(parents, lengths, strict=True)):
                        if parent is None:
                            buffer[r, :, :past].zero_()
                        else:
                            buffer[r, :, : past - length].zero_()
                            buffer[r, :, past - length : past] = parent[layer][kind][0]
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
                "needs a cache of plain DynamicLayer layers"
            )
        return layers

    # ---------------------------------------------------------------------------------- self-check
    def check_against_full_forward(self, sample: tuple[int, ...], packed: bool = False) -> float:
        """Largest difference of a request's log-likelihood, shared path versus plain full forwards.

        Runs a small plan built from the token ids `sample` (repeated to 40 tokens if shorter) that uses a
        shared segment continued by another, and a batch of rows whose parents differ in length (for a
        sliding-window model, also a shared prefix longer than its window, continued by two requests); `is_greedy`
        disagreeing counts as an infinite difference. `packed=False` checks one segment per row;
        `packed=True` checks subtrees packed into rows (a tree mask), on top of a cache and without one.

        Raises:
            CachedScoringUnsupported: the model's cache cannot be continued (or, packed, the model takes
                no `position_ids`).
        """
        if packed and not self._takes_position_ids:
            raise CachedScoringUnsupported("the model takes no position_ids, which packed rows need")
        tokens = tuple((list(sample) * (40 // max(len(sample), 1) + 1))[:40])
        backwards = tokens[::-1]  # starts with another token: a second root of another length
        requests = [
            TokenRequest(tokens[:24], 8),  # shares 16 tokens with the next, 8 with the third
            TokenRequest(tokens[:16] + tokens[17:25], 6),
            TokenRequest(tokens[:8] + tokens[9:21], 5),
            TokenRequest(backwards[:12] + backwards[13:19], 4),
            TokenRequest(backwards[:12] + backwards[14:20], 3),
        ]
        windows = [window for window in (self._windows or {}).values() if window]
        if windows and min(windows) + 24 <= self._longest_check:
            # a shared prefix longer than the window, continued by two requests: the window cuts their past
            window = min(windows)
            long = tuple(random.Random(window).choices(tokens, k=window + 24))  # not periodic: the cut shows
            requests += [
                TokenRequest(long[: window + 16] + long[window + 17 : window + 24], 6),
                TokenRequest(long[: window + 20], 5),
            ]
        plan = plan_prefix_tree(requests, min_shared_tokens=1)
        saved = self.batch_size, self.pack_subtrees, self.row_width_limit
        # packed: the first root (41 tokens below it) runs alone; the subtree of 22 tokens below it is one
        # row on its cache, next to a single leaf; the second root's subtree (23 tokens) is one row
        self.batch_size, self.pack_subtrees, self.row_width_limit = 8, packed, 24
        try:
            shared = self.score(requests, plan)
        finally:
            self.batch_size, self.pack_subtrees, self.row_width_limit = saved
        worst = 0.0
        for request, (value, greedy) in zip(requests, shared, strict=True):
            reference, reference_greedy = self._full_forward(request)
            if greedy != reference_greedy:
                return float("inf")
            worst = max(worst, abs(value - reference))
        return worst

    def _full_forward(self, request: TokenRequest) -> tuple[float, bool]:
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.no_grad(), autocast:
            logits = self.model(input_ids=torch.tensor([request.tokens[:-1]], device=self.device)).logits
        logprobs = F.log_softmax(logits[0, -request.num_scored :], dim=-1, dtype=self.softmax_dtype)
        targets = torch.tensor(request.tokens[-request.num_scored :], device=self.device)
        selected = logprobs.gather(-1, targets[:, None])[:, 0]
        return float(selected.sum()), bool((logprobs.argmax(-1) == targets).all())
