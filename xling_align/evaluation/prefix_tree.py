"""Plan log-likelihood scoring on a token prefix tree, so that every shared prefix is computed once.

A log-likelihood request, as lm-eval's `HFLM` runs it, is one row of token ids: the model input is
`(context + continuation)[-(max_length + 1):][:-1]`, and the log-probabilities at its last
`len(continuation)` positions are read for the continuation's tokens. A causal model's output at position
`p` depends only on the input tokens `0..p`, so two requests whose inputs start with the same `k` tokens
have identical hidden states, key/value states and log-probabilities at positions `0..k-1`.

The planner sorts the requests' inputs; requests sharing a prefix are then contiguous, and it cuts the
sorted list recursively into a prefix tree (a compressed trie). Every cut with at least
`min_shared_tokens` new shared tokens becomes a *shared segment*: those tokens run once, on top of the
key/value cache of the segment above, and the cache they produce feeds the segments below. What is left
of each request is a *leaf* segment. A segment reads the log-probabilities of every request below it
whose scored positions fall inside it, so sharing does not stop where the context ends: the choices of a
multiple-choice item (`premise, right? Yes, ...` / `No, ...`) share their common words too.

The tree covers, with one mechanism, every way lm-eval's multiple-choice tasks share tokens:
- the choices of one item share the item's context (and often the start of the continuation);
- XWinograd's partial scoring has a different context per choice, but both share the demonstrations and
  the sentence up to the option;
- when every document uses the same demonstrations (lm-eval `fewshot_config: {sampler: first_n}`, the
  paper's protocol), the demonstration prefix is one shared segment for the whole task: it runs once per
  task, not once per document; with per-document random demonstrations, documents that happen to start
  with the same demonstrations share those.

Nothing here looks at strings or at a task: only token ids, exactly as `HFLM` encodes and truncates them.
Requests that share fewer than `min_shared_tokens` with every other request are returned apart
(`PrefixPlan.unshared`), for the caller to score as `HFLM` does.

Example:
    >>> from xling_align.evaluation.prefix_tree import TokenRequest, plan_prefix_tree
    >>> demos = tuple(range(10, 30))
    >>> requests = [TokenRequest(demos + (5, 6, 7), num_scored=3), TokenRequest(demos + (5, 8), num_scored=2),
    ...             TokenRequest((1, 2, 3), num_scored=1)]
    >>> plan = plan_prefix_tree(requests, min_shared_tokens=4)
    >>> [(s.start, len(s.tokens), s.shared) for s in plan.segments]
    [(0, 21, True), (21, 1, False)]
    >>> plan.unshared
    [2]
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Fewer new shared tokens than this do not earn a segment of their own (an extra forward row and a
# copy of the cache below it); the requests are then cut further down or scored without sharing.
DEFAULT_MIN_SHARED_TOKENS = 4


@dataclass(frozen=True)
class TokenRequest:
    """One request as the model sees it.

    Attributes:
        tokens: the model input followed by the last continuation token, i.e. `HFLM`'s
            `(context_enc + continuation_enc)[-(max_length + 1):]`.
        num_scored: the number of continuation tokens (the last `num_scored` entries of `tokens`).
    """

    tokens: tuple[int, ...]
    num_scored: int

    def __post_init__(self):
        if not 1 <= self.num_scored < len(self.tokens):
            raise ValueError(
                f"a request needs at least one context token and one scored token: got {len(self.tokens)} "
                f"tokens with num_scored={self.num_scored}"
            )

    @property
    def input_length(self) -> int:
        """Length of the model input (`tokens[:-1]`)."""
        return len(self.tokens) - 1

    @property
    def first_scored(self) -> int:
        """The first input position whose log-probabilities are read (they predict the first continuation token)."""
        return self.input_length - self.num_scored


@dataclass
class Segment:
    """A run of input tokens `[start, start + len(tokens))` computed in one forward row.

    Attributes:
        parent: index of the shared segment holding positions `0..start-1` (its key/value cache is the
            past of this row), or None when `start == 0`.
        start: position of the first token.
        tokens: the input tokens of the run.
        shared: True for a shared prefix (its cache feeds `children`), False for the end of one request.
        scored_requests: requests (indices into the planned list) with scored positions inside this run.
        children: indices of the segments that continue this one (shared segments only).
    """

    parent: int | None
    start: int
    tokens: tuple[int, ...]
    shared: bool
    scored_requests: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + len(self.tokens)


@dataclass
class PrefixPlan:
    """The segments to run (parents before children) and the requests left to score without sharing."""

    segments: list[Segment]
    unshared: list[int]

    @property
    def roots(self) -> list[int]:
        return [index for index, segment in enumerate(self.segments) if segment.parent is None]

    def tokens_computed(self) -> int:
        """Input tokens the segments run through the model (without padding)."""
        return sum(len(segment.tokens) for segment in self.segments)


def _common_prefix_length(first: tuple[int, ...], second: tuple[int, ...]) -> int:
    limit = min(len(first), len(second))
    length = 0
    while length < limit and first[length] == second[length]:
        length += 1
    return length


def plan_prefix_tree(requests: list[TokenRequest], min_shared_tokens: int = DEFAULT_MIN_SHARED_TOKENS) -> PrefixPlan:
    """Cut `requests` into shared and leaf segments (see the module docstring).

    Args:
        requests: the requests, in any order.
        min_shared_tokens: the fewest new shared tokens worth a shared segment (at least 1).

    Returns:
        A `PrefixPlan`: every input position of every request in `requests` lies in exactly one segment
        on its path (shared segments from position 0, then its leaf), except for the requests listed in
        `unshared`, which appear in no segment.
    """
    if min_shared_tokens < 1:
        raise ValueError(f"min_shared_tokens must be at least 1, got {min_shared_tokens}")
    inputs = [request.tokens[:-1] for request in requests]
    order = sorted(range(len(requests)), key=inputs.__getitem__)
    segments: list[Segment] = []
    unshared: list[int] = []

    def add_segment(parent: int | None, start: int, tokens: tuple[int, ...], shared: bool) -> int:
        segments.append(Segment(parent=parent, start=start, tokens=tokens, shared=shared))
        index = len(segments) - 1
        if parent is not None:
            segments[parent].children.append(index)
        return index

    def add_leaf(request: int, anchor: int | None, anchor_end: int) -> None:
        if anchor is None:
            unshared.append(request)  # nothing of it is shared
        elif inputs[request][anchor_end:]:  # empty: the shared segments above already hold all of it
            leaf = add_segment(anchor, anchor_end, inputs[request][anchor_end:], shared=False)
            segments[leaf].scored_requests.append(request)

    # a group is the sorted slice order[low:high]; all of it shares the prefix held by `anchor` (a shared
    # segment ending at `anchor_end`, or None and 0). Explicit stack: trees can be deep.
    stack: list[tuple[int, int, int | None, int]] = [(0, len(order), None, 0)]
    while stack:
        low, high, anchor, anchor_end = stack.pop()
        if high - low == 1:
            add_leaf(order[low], anchor, anchor_end)
            continue
        # sorted: the prefix common to the whole group is the one common to its first and last member
        shared_end = _common_prefix_length(inputs[order[low]], inputs[order[high - 1]])
        if shared_end - anchor_end >= min_shared_tokens:
            anchor = add_segment(anchor, anchor_end, inputs[order[low]][anchor_end:shared_end], shared=True)
            segments[anchor].scored_requests = [
                request for request in order[low:high] if requests[request].first_scored < shared_end
            ]
            anchor_end = shared_end
        # members that end at shared_end sort first; the rest form runs by their next token
        position = low
        while position < high and len(inputs[order[position]]) == shared_end:
            add_leaf(order[position], anchor, anchor_end)
            position += 1
        runs = []
        while position < high:
            run_end = position + 1
            token = inputs[order[position]][shared_end]
            while run_end < high and inputs[order[run_end]][shared_end] == token:
                run_end += 1
            runs.append((position, run_end, anchor, anchor_end))
            position = run_end
        stack.extend(reversed(runs))  # pop in sorted order
    return PrefixPlan(segments=segments, unshared=sorted(unshared))
