"""The contrastive loss against an independent plain-torch InfoNCE, alone and across 2 gloo processes."""

import math

import pytest
import torch
import torch.multiprocessing as mp

from xling_align.alignment.contrastive_loss import (
    contrastive_loss_and_accuracy,
    multilingual_contrastive_loss,
)


def reference_info_nce(source, target, temperature, symmetric=False):
    """InfoNCE written out with loops: -log(exp(cos(s_i, t_i)/T) / sum_j exp(cos(s_i, t_j)/T)), averaged."""

    def one_direction(queries, keys):
        total = 0.0
        for i in range(len(queries)):
            scores = [torch.cosine_similarity(queries[i], keys[j], dim=0) / temperature for j in range(len(keys))]
            total = total - (scores[i] - torch.logsumexp(torch.stack(scores), dim=0))
        return total / len(queries)

    loss = one_direction(source, target)
    return (loss + one_direction(target, source)) / 2 if symmetric else loss


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_loss_and_gradients_match_reference(symmetric, temperature):
    torch.manual_seed(0)
    source = torch.randn(6, 16, dtype=torch.float64)
    target = torch.randn(6, 16, dtype=torch.float64)
    ours_s, ours_t = source.clone().requires_grad_(), target.clone().requires_grad_()
    ref_s, ref_t = source.clone().requires_grad_(), target.clone().requires_grad_()
    ours = multilingual_contrastive_loss(ours_s, ours_t, temperature=temperature, symmetric=symmetric)
    reference = reference_info_nce(ref_s, ref_t, temperature, symmetric)
    ours.backward()
    reference.backward()
    torch.testing.assert_close(ours.double(), reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_s.grad, ref_s.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours_t.grad, ref_t.grad, rtol=1e-4, atol=1e-6)


def test_loss_of_uniform_similarities_is_log_batch():
    vectors = torch.ones(5, 4)
    assert multilingual_contrastive_loss(vectors, vectors).item() == pytest.approx(math.log(5), rel=1e-5)


def test_accuracy_counts_in_batch_retrieval():
    source = torch.eye(4)
    target = source[[0, 1, 3, 2]]  # rows 2 and 3 retrieve each other's translation
    output = contrastive_loss_and_accuracy(source, target)
    assert (output.num_correct, output.num_sources, output.num_pairs) == (2, 4, 4)


def test_single_pair_is_flagged_or_refused():
    vector = torch.randn(1, 8)
    output = contrastive_loss_and_accuracy(vector, vector)
    assert output.loss is None and output.num_pairs == 1
    with pytest.raises(ValueError, match="holds 1 translation pair"):
        multilingual_contrastive_loss(vector, vector)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="temperature=0"):
        multilingual_contrastive_loss(torch.randn(2, 4), torch.randn(2, 4), temperature=0)
    with pytest.raises(ValueError, match=r"shape \(2, 4\) and target_embeddings \(3, 4\)"):
        multilingual_contrastive_loss(torch.randn(2, 4), torch.randn(3, 4))


def test_bf16_inputs_give_float32_loss():
    torch.manual_seed(0)
    source, target = torch.randn(4, 8), torch.randn(4, 8)
    loss = multilingual_contrastive_loss(source.bfloat16(), target.bfloat16())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


# ---- two processes with gloo ----------------------------------------------------------------------------

GLOBAL_ROWS = 7


def _global_batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(GLOBAL_ROWS, 8, generator=generator), torch.randn(GLOBAL_ROWS, 8, generator=generator)


def _worker(rank, world_size, init_file, splits, results):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        source, target = _global_batch()
        out = {}
        for name, split in splits.items():
            start, stop = split[rank], split[rank + 1]
            for symmetric in (False, True):
                s = source[start:stop].clone().requires_grad_()
                t = target[start:stop].clone().requires_grad_()
                result = contrastive_loss_and_accuracy(s, t, temperature=0.1, symmetric=symmetric)
                result.loss.backward()
                out[name, symmetric] = (result.loss.item(), s.grad, t.grad, result.num_correct, result.num_pairs)
        results[rank] = out
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one_process_with_the_whole_batch(tmp_path):
    splits = {"uneven": [0, 4, 7], "empty_rank": [0, 7, 7]}
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, str(tmp_path / "init"), splits, results), nprocs=2, join=True)
        results = dict(results)

    source, target = _global_batch()
    for name, split in splits.items():
        for symmetric in (False, True):
            s, t = source.clone().requires_grad_(), target.clone().requires_grad_()
            full = multilingual_contrastive_loss(s, t, temperature=0.1, symmetric=symmetric)
            full.backward()
            per_rank = [results[rank][name, symmetric] for rank in (0, 1)]
            # the mean over processes is the global loss; gradients are world_size times the global ones
            assert (per_rank[0][0] + per_rank[1][0]) / 2 == pytest.approx(full.item(), rel=1e-5)
            for rank in (0, 1):
                start, stop = split[rank], split[rank + 1]
                torch.testing.assert_close(per_rank[rank][1] / 2, s.grad[start:stop], rtol=1e-4, atol=1e-6)
                torch.testing.assert_close(per_rank[rank][2] / 2, t.grad[start:stop], rtol=1e-4, atol=1e-6)
                assert per_rank[rank][4] == GLOBAL_ROWS
            full_output = contrastive_loss_and_accuracy(source, target, temperature=0.1)
            assert per_rank[0][3] + per_rank[1][3] == full_output.num_correct
