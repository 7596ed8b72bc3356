"""Prefix-tree scoring against plain full forwards (one per request, no cache), per architecture."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from xling_align.evaluation.prefix_scoring import CachedScoringUnsupported, PrefixTreeScorer  # noqa: E402
from xling_align.evaluation.prefix_tree import TokenRequest, plan_prefix_tree  # noqa: E402

ARCHITECTURES = ("llama", "xglm", "bloom", "gpt2", "qwen2")


def sensitive_model(arch: str):
    """A tiny random model whose outputs depend strongly on every input and position.

    With the default initialisation (std 0.02) the next-token distribution is nearly uniform, so a wrong
    position or a wrongly masked key moves a log-likelihood by less than the tolerance; weights 10 times
    larger make such mistakes show.
    """
    from xling_align.tiny_models import build_tiny_model

    model, _ = build_tiny_model(f"xling-align/tiny-random-{arch}")
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.mul_(10)
    return model.eval()


def full_forward(model, request: TokenRequest) -> tuple[float, bool]:
    """The request scored as HFLM scores it: one forward over the whole input, no cache."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([request.tokens[:-1]])).logits[0]
    logprobs = torch.log_softmax(logits[-request.num_scored :], dim=-1)
    targets = torch.tensor(request.tokens[-request.num_scored :])
    picked = logprobs.gather(-1, targets[:, None])[:, 0]
    return float(picked[None].sum()), bool((logprobs.argmax(-1) == targets).all())


def greedy_continuation(model, context: tuple[int, ...], length: int) -> tuple[int, ...]:
    tokens = list(context)
    with torch.no_grad():
        for _ in range(length):
            tokens.append(int(model(input_ids=torch.tensor([tokens])).logits[0, -1].argmax()))
    return tuple(tokens[len(context) :])


def make_requests(model, seed: int = 0) -> list[TokenRequest]:
    """Requests shaped like lm-eval's: tasks with demonstrations, items with choices, some greedy."""
    rng = random.Random(seed)

    def words(n):
        return tuple(rng.randrange(3, 300) for _ in range(n))

    requests = []
    for task in range(3):
        fixed_demos = words(rng.randint(20, 40))
        for _item in range(4):
            demos = fixed_demos if task != 1 else words(rng.randint(10, 40))  # task 1: demos per item
            query = words(rng.randint(3, 12))
            common = words(rng.randint(0, 6))  # choices sharing the start of their continuation
            for _ in range(rng.choice([2, 3])):
                choice = common + words(rng.randint(1, 7))
                requests.append(TokenRequest(demos + query + choice, len(choice)))
            greedy = greedy_continuation(model, demos + query, 3)
            requests.append(TokenRequest(demos + query + greedy, 3))
    requests.append(TokenRequest(words(9), 4))  # shares nothing
    requests.append(requests[0])  # the same request twice
    return requests


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=ARCHITECTURES)
def model(request):
    return sensitive_model(request.param)


@pytest.mark.parametrize("pack", [True, False], ids=["packed-rows", "segment-rows"])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_scores_equal_full_forwards(model, batch_size, pack):
    requests = make_requests(model)
    plan = plan_prefix_tree(requests, min_shared_tokens=2)
    assert plan.unshared == [len(requests) - 2]
    scorer = PrefixTreeScorer(model, batch_size=batch_size, pack_subtrees=pack)
    scores = scorer.score(requests, plan)
    expected = [full_forward(model, request) for request in requests]
    assert any(greedy for _, greedy in expected)  # is_greedy is really tested both ways
    for index, (score, reference) in enumerate(zip(scores, expected, strict=True)):
        if index in plan.unshared:
            assert score is None
            continue
        assert score[0] == pytest.approx(reference[0], abs=1e-4), index
        assert score[1] == reference[1], index
    assert scorer.stats.tokens < sum(request.input_length for request in requests) * 0.6


def test_packed_rows_run_fewer_forwards_than_one_request_per_row(model):
    # hf runs ceil(requests / batch_size) forwards; packing an item's context and choices into one row runs fewer
    requests = make_requests(model)
    plan = plan_prefix_tree(requests, min_shared_tokens=2)
    packed, unpacked = PrefixTreeScorer(model, batch_size=4), PrefixTreeScorer(model, batch_size=4, pack_subtrees=False)
    assert packed.score(requests, plan) is not None and unpacked.score(requests, plan) is not None
    if packed.pack_subtrees:  # BLOOM takes no position_ids: one segment per row
        hf_forwards = -(-(len(requests) - len(plan.unshared)) // 4)
        assert packed.stats.forwards < hf_forwards <= unpacked.stats.forwards
    assert packed.stats.tokens == unpacked.stats.tokens == plan.tokens_computed()


def test_the_packed_check_catches_a_mask_that_lets_siblings_see_each_other():
    for arch in ("llama", "xglm", "gpt2", "qwen2"):
        scorer = PrefixTreeScorer(sensitive_model(arch), batch_size=4)
        assert scorer.check_against_full_forward(tuple(range(5, 90, 3)), packed=True) < 1e-4
        tree_mask = scorer._tree_mask

        def causal_only(members, past, width, tree_mask=tree_mask):  # a row without the tree: plain causal
            mask = tree_mask(members, past, width)
            causal = torch.ones(width, width, dtype=torch.bool).tril()
            if mask.dtype == torch.bool:
                mask[..., past:] = causal
            else:
                mask[..., past:] = torch.zeros(width, width).masked_fill_(~causal, torch.finfo(mask.dtype).min)
            return mask

        scorer._tree_mask = causal_only
        assert scorer.check_against_full_forward(tuple(range(5, 90, 3)), packed=True) > 1e-2, arch


def test_rows_with_parents_of_different_lengths_share_a_batch(model):
    # left-padded past, a mask and per-row positions: the path the tests above must have gone through
    seen = []

    def record(module, args, kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        mask = kwargs.get("attention_mask")
        if cache is not None and mask is not None:
            past = cache.get_seq_length()
            seen.append(bool((mask[:, :past] == 0).any()))

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        requests = make_requests(model)
        PrefixTreeScorer(model, batch_size=16, pack_subtrees=False).score(requests, plan_prefix_tree(requests, 2))
    finally:
        handle.remove()
    assert any(seen)


def test_a_stored_prefix_serves_every_batch_unchanged(model):
    # transformers appends to a cache in place: a prefix reused by several batches must not grow
    requests = make_requests(model, seed=1)
    plan = plan_prefix_tree(requests, min_shared_tokens=2)
    scorer = PrefixTreeScorer(model, batch_size=2)
    assert scorer.score(requests, plan) == scorer.score(requests, plan)


def test_the_check_catches_a_model_whose_positions_go_wrong():
    for arch in ("llama", "xglm", "gpt2", "qwen2"):
        scorer = PrefixTreeScorer(sensitive_model(arch), batch_size=4)
        assert scorer.check_against_full_forward(tuple(range(5, 90, 3))) < 1e-4
        scorer._takes_position_ids = False  # as if the model ignored position_ids
        assert scorer.check_against_full_forward(tuple(range(5, 90, 3))) > 1e-2, arch


def sliding_window_model(family: str, window: int | None = None):
    """A tiny random sliding-window model (weights x10, as `sensitive_model`) whose window (5 or 6 tokens) is far
    shorter than `make_requests`' contexts (20 to 60 tokens), so the window decides what a token sees."""
    import transformers as tf

    common = dict(
        vocab_size=384,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=0,
        max_position_embeddings=1024,
    )
    if family == "gemma3":  # sliding layers around a full-attention one, as Gemma 3 mixes them
        config = tf.Gemma3TextConfig(
            **common,
            num_hidden_layers=3,
            head_dim=8,
            query_pre_attn_scalar=8,
            sliding_window=6,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        )
        model = tf.Gemma3ForCausalLM(config)
    elif family == "mistral":  # one window for every layer, no layer_types
        model = tf.MistralForCausalLM(tf.MistralConfig(**common, num_hidden_layers=2, sliding_window=window or 5))
    else:  # qwen2 with use_sliding_window: sliding layers from max_window_layers on
        model = tf.Qwen2ForCausalLM(
            tf.Qwen2Config(
                **common, num_hidden_layers=2, use_sliding_window=True, sliding_window=5, max_window_layers=1
            )
        )
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.mul_(10)
    return model.eval()


@pytest.mark.parametrize("family", ["gemma3", "mistral", "qwen2"])
def test_sliding_window_models_score_equal_full_forwards(family):
    model = sliding_window_model(family)
    requests = make_requests(model)
    plan = plan_prefix_tree(requests, min_shared_tokens=2)
    expected = [full_forward(model, request) for request in requests]
    for pack in (True, False):
        scorer = PrefixTreeScorer(model, batch_size=3, pack_subtrees=pack)
        assert scorer.check_against_full_forward(tuple(range(5, 90, 3)), packed=pack) < 1e-4
        scores = scorer.score(requests, plan)
        for index, (score, reference) in enumerate(zip(scores, expected, strict=True)):
            if index not in plan.unshared:
                assert score[0] == pytest.approx(reference[0], abs=1e-4), (pack, index)
                assert score[1] == reference[1], (pack, index)
        assert scorer.stats.tokens < sum(request.input_length for request in requests) * 0.6  # shared, not hf's path


@pytest.mark.parametrize(("family", "window"), [("gemma3", None), ("mistral", None), ("mistral", 64)])
def test_the_check_catches_a_window_left_out_of_the_mask(family, window):
    # the window bites in the check, also one longer than its 40-token sample: masks without it (every past key
    # visible) give other scores
    scorer = PrefixTreeScorer(sliding_window_model(family, window), batch_size=4)
    assert scorer.check_against_full_forward(tuple(range(5, 90, 3)), packed=True) < 1e-4
    windowed = scorer._windowed_masks

    def without_the_window(*args):
        windows, scorer._windows = scorer._windows, {kind: None for kind in scorer._windows}
        try:
            return windowed(*args)
        finally:
            scorer._windows = windows

    scorer._windowed_masks = without_the_window
    assert scorer.check_against_full_forward(tuple(range(5, 90, 3)), packed=True) > 1e-2
    assert scorer.check_against_full_forward(tuple(range(5, 90, 3)), packed=False) > 1e-2


def test_an_attention_kind_without_a_known_mask_is_refused():
    scorer = PrefixTreeScorer(sliding_window_model("gemma3"), batch_size=4)
    scorer._windows = {**scorer._windows, "chunked_attention": None}
    with pytest.raises(CachedScoringUnsupported, match="chunked_attention"):
        scorer.check_against_full_forward(tuple(range(5, 60)))


def test_a_lora_adapter_is_scored_through_the_cache():
    from peft import LoraConfig, get_peft_model

    base = sensitive_model("llama")
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.eval()
    requests = make_requests(peft_model, seed=2)
    scores = PrefixTreeScorer(peft_model, batch_size=4).score(requests, plan_prefix_tree(requests, 2))
    for score, request in zip(scores, requests, strict=True):
        if score is not None:
            reference = full_forward(peft_model, request)
            assert score[0] == pytest.approx(reference[0], abs=1e-4)
            assert score[1] == reference[1]


def _forward_cost(shapes, groups, costs):
    """What `_group_by_width` minimises, recomputed from its definition: padded positions, attention scores and
    host work of each forward."""
    total = 0.0
    for start, stop in groups:
        width, past, rows = max(w for w, _ in shapes[start:stop]), max(p for _, p in shapes[start:stop]), stop - start
        total += rows * width + costs[1] * rows * width * (width + past) + costs[0]
    return total


def _within_budget(shapes, budget, longest) -> bool:
    """A forward of these rows (sorted widest first) holds at most `budget` positions and `budget x longest` scores."""
    width, past, rows = shapes[0][0], max(p for _, p in shapes), len(shapes)
    return rows == 1 or (rows * (width + past) <= budget and rows * width * (width + past) <= budget * longest)


def test_rows_are_cut_into_the_cheapest_forwards_within_the_budget():
    import itertools

    from xling_align.evaluation.prefix_scoring import _group_by_width

    rng = random.Random(0)
    for trial in range(60):
        shapes = [(rng.randint(1, 120), rng.choice([0, 0, rng.randint(1, 200)])) for _ in range(rng.randint(1, 8))]
        shapes.sort(key=lambda shape: (-shape[0], -shape[1]))
        budget, longest = rng.choice([(400, 120), (2000, 320)])
        costs = (rng.choice([0.0, 10.0, 80.0, float("inf")]), rng.choice([0.0, 0.01]))
        groups = _group_by_width(shapes, budget, longest, costs)
        assert [start for start, _ in groups] == [0] + [stop for _, stop in groups[:-1]]  # every row once, in order
        assert groups[-1][1] == len(shapes)

        fits = [
            (start, stop)
            for start in range(len(shapes))
            for stop in range(start + 1, len(shapes) + 1)
            if _within_budget(shapes[start:stop], budget, longest)
        ]
        assert set(groups) <= set(fits)
        capped = (min(costs[0], budget), costs[1])
        cheapest = min(
            _forward_cost(shapes, cut, capped)
            for cuts in itertools.product([False, True], repeat=len(shapes) - 1)
            for bounds in [[0] + [i + 1 for i, c in enumerate(cuts) if c] + [len(shapes)]]
            for cut in [list(zip(bounds[:-1], bounds[1:], strict=True))]
            if set(cut) <= set(fits)
        )
        assert _forward_cost(shapes, groups, capped) == pytest.approx(cheapest), trial


@pytest.mark.parametrize("pack", [True, False], ids=["packed-rows", "segment-rows"])
def test_forwards_group_rows_by_width_and_keep_the_scores(pack):
    # free forwards: every row runs alone, not one padded position; a forward worth 4 positions: rows grouped only
    # where it pays, so padding costs at most 4 positions per forward saved; forwards as costly as hf's largest:
    # every forward filled. The scores never move
    model = sensitive_model("llama")
    requests = make_requests(model)
    plan = plan_prefix_tree(requests, min_shared_tokens=2)
    expected = [full_forward(model, request) for request in requests]
    free, some, filled = (PrefixTreeScorer(model, batch_size=8, pack_subtrees=pack) for _ in range(3))
    free._costs, some._costs, filled._costs = (0.0, 0.0), (4.0, 0.0), (float("inf"), 0.0)
    for scorer in (free, some, filled):
        scores = scorer.score(requests, plan)
        for index, (score, reference) in enumerate(zip(scores, expected, strict=True)):
            if index not in plan.unshared:
                assert score[0] == pytest.approx(reference[0], abs=1e-4), index
                assert score[1] == reference[1], index
    rows = free.stats.forwards
    assert free.stats.positions == free.stats.tokens == plan.tokens_computed()
    assert filled.stats.forwards < some.stats.forwards < rows
    assert some.stats.positions - some.stats.tokens <= 4 * (rows - some.stats.forwards)


def test_forward_costs_follow_the_model_shape():
    from xling_align.evaluation.prefix_scoring import forward_costs

    for model in (sensitive_model("llama"), sensitive_model("qwen2")):
        host, score = forward_costs(model, "cpu")
        assert host > 1 and 0 < score < 1  # a forward costs more than a token; an attention score far less
        assert forward_costs(model, "cuda")[0] > host  # an accelerator's multiply-adds are cheaper, its host work not

    class Shapeless(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)

    assert forward_costs(Shapeless(), "cpu") == (float("inf"), 0.0)
