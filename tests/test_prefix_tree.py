"""The prefix-tree planner: every scored position is computed exactly once, shared prefixes once per tree."""

from __future__ import annotations

import random

import pytest

from xling_align.evaluation.prefix_tree import PrefixPlan, TokenRequest, plan_prefix_tree


def _coverage(requests: list[TokenRequest], plan: PrefixPlan) -> None:
    """Check the plan against the requests, independently of how it was built."""
    for index, request in enumerate(requests):
        reading = [n for n, segment in enumerate(plan.segments) if index in segment.scored_requests]
        if index in plan.unshared:
            assert reading == []
            continue
        for number in reading:
            # the segment and every segment whose cache it continues hold this request's own input tokens
            chain = number
            while chain is not None:
                segment = plan.segments[chain]
                assert segment.tokens == request.tokens[segment.start : segment.end], (index, chain)
                parent = segment.parent
                assert (plan.segments[parent].end if parent is not None else 0) == segment.start
                chain = parent
        # every scored position is read by exactly one segment
        for position in range(request.first_scored, request.input_length):
            owners = [n for n in reading if plan.segments[n].start <= position < plan.segments[n].end]
            assert len(owners) == 1, (index, position, owners)


def _random_requests(rng: random.Random, count: int) -> list[TokenRequest]:
    demos = [tuple(rng.randrange(3, 50) for _ in range(rng.randint(0, 30))) for _ in range(3)]
    requests = []
    for _ in range(count):
        context = rng.choice(demos) + tuple(rng.randrange(3, 6) for _ in range(rng.randint(1, 6)))
        continuation = tuple(rng.randrange(3, 6) for _ in range(rng.randint(1, 8)))
        requests.append(TokenRequest(context + continuation, len(continuation)))
    return requests


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("min_shared_tokens", [1, 4, 16])
def test_every_scored_position_is_read_once(seed, min_shared_tokens):
    requests = _random_requests(random.Random(seed), 40)
    requests += requests[:3]  # identical requests
    requests.append(TokenRequest(requests[0].tokens[:-1] + (7,), 1))  # same input, another target
    plan = plan_prefix_tree(requests, min_shared_tokens)
    _coverage(requests, plan)
    for segment in plan.segments:
        if segment.shared and segment.parent is not None:
            assert len(segment.tokens) >= min_shared_tokens
    # a shared segment comes before the segments that continue it
    for number, segment in enumerate(plan.segments):
        assert segment.parent is None or segment.parent < number


def test_fixed_demonstrations_run_once_per_task():
    # 30 documents of one task, each with 3 choices, after the same 100 demonstration tokens
    rng = random.Random(0)
    demos = tuple(rng.randrange(10, 200) for _ in range(100))
    requests = []
    for _ in range(30):
        query = tuple(rng.randrange(10, 200) for _ in range(12))
        for _ in range(3):
            choice = tuple(rng.randrange(10, 200) for _ in range(5))
            requests.append(TokenRequest(demos + query + choice, len(choice)))
    plan = plan_prefix_tree(requests)
    assert plan.unshared == []
    demo_segments = [s for s in plan.segments if s.start == 0]
    assert len(demo_segments) == 1 and demo_segments[0].tokens[:100] == demos
    # demonstrations once, each query once, each choice's input once
    assert plan.tokens_computed() == 100 + 30 * 12 + 30 * 3 * 4
    full_forwards = sum(request.input_length for request in requests)
    assert full_forwards == 90 * (100 + 12 + 4)


def test_choices_share_the_start_of_their_continuations():
    # 0-shot XNLI: the context is one token and the choices share "premise, right? "
    premise = tuple(range(10, 40))
    requests = [
        TokenRequest((1,) + premise + answer + tuple(range(50, 60)), len(premise) + len(answer) + 10)
        for answer in [(5,), (6,), (7,)]
    ]
    plan = plan_prefix_tree(requests)
    shared = [s for s in plan.segments if s.shared]
    assert len(shared) == 1 and shared[0].tokens == (1,) + premise
    assert sorted(shared[0].scored_requests) == [0, 1, 2]  # its positions are scored for every choice


def test_requests_sharing_too_little_are_left_unshared():
    requests = [TokenRequest((1, 2, 3, 9, 9), 2), TokenRequest((1, 2, 3, 8, 8), 2), TokenRequest((4, 5, 6, 7), 1)]
    plan = plan_prefix_tree(requests, min_shared_tokens=4)
    assert plan.segments == [] and plan.unshared == [0, 1, 2]
    plan = plan_prefix_tree(requests, min_shared_tokens=3)
    assert plan.unshared == [2] and plan.segments[0].tokens == (1, 2, 3)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="at least one context token"):
        TokenRequest((1, 2), 2)
    with pytest.raises(ValueError, match="min_shared_tokens"):
        plan_prefix_tree([], min_shared_tokens=0)


def test_the_docstring_examples_run():
    import doctest

    import xling_align.evaluation.prefix_scoring
    import xling_align.evaluation.prefix_tree

    for module in (xling_align.evaluation.prefix_tree, xling_align.evaluation.prefix_scoring):
        assert doctest.testmod(module).failed == 0
