"""Multilingual contrastive learning (MCL): InfoNCE over translation pairs, as in AFP.

For each source sentence the positive is its translation and the negatives are the other targets of the
(global) batch; similarity is cosine divided by a temperature; the loss is the mean cross-entropy over sources.
The same one-directional loss as sentence-transformers' MultipleNegativesRankingLoss with
`scale = 1 / temperature`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from xling_align.alignment.distributed import (
    all_gather_with_grad,
    gather_row_counts,
    is_distributed,
    world_size_and_rank,
)

CITATION = """@inproceedings{li-etal-2024-improving,
    title = "Improving In-context Learning of Multilingual Generative Language Models with Cross-lingual Alignment",
    author = "Li, Chong and Wang, Shaonan and Zhang, Jiajun and Zong, Chengqing",
    booktitle = "Proceedings of NAACL 2024 (Volume 1: Long Papers)",
    year = "2024",
    pages = "8051--8069",
    doi = "10.18653/v1/2024.naacl-long.445",
}"""


class ContrastiveOutput(NamedTuple):
    """What `contrastive_loss_and_accuracy` returns.

    Attributes:
        loss: scalar loss, or None when the (global) batch holds fewer than 2 pairs: with no negative the
            InfoNCE term is undefined, so the caller skips it (AFPTrainer counts such batches).
        num_correct: local sources whose most similar target in the (global) batch is their translation: a
            0-dim tensor on the vectors' device (`int(output.num_correct)` reads it), so that computing it does
            not make the host wait for the device; 0 when `loss` is None. An override may return an int.
        num_sources: local sources scored (0 when `loss` is None).
        num_pairs: pairs in the (global) batch.
    """

    loss: torch.Tensor | None
    num_correct: torch.Tensor | int
    num_sources: int
    num_pairs: int


def contrastive_loss_and_accuracy(
    source_embeddings: torch.Tensor,
    target_embeddings: torch.Tensor,
    temperature: float = 0.05,
    symmetric: bool = False,
    gather_across_processes: bool = True,
) -> ContrastiveOutput:
    """InfoNCE loss and in-batch top-1 retrieval counts; a batch with fewer than 2 pairs gives `loss=None`.

    Same arguments as `multilingual_contrastive_loss`. Under torch.distributed with
    `gather_across_processes=True` this is a collective: every process must call it, also one with zero pairs
    (pass `(0, hidden)` tensors).
    """
    _check_inputs(source_embeddings, target_embeddings, temperature)
    # cosine similarities in float32: bf16 loses the small differences that a temperature of 0.05 magnifies
    source = F.normalize(source_embeddings.float(), dim=-1)
    target = F.normalize(target_embeddings.float(), dim=-1)
    num_local = source.shape[0]

    gather = gather_across_processes and is_distributed()
    if gather:
        world_size, rank = world_size_and_rank()
        row_counts = gather_row_counts(num_local, source.device)
    else:
        world_size, rank, row_counts = 1, 0, [num_local]
    num_pairs = sum(row_counts)
    if num_pairs < 2:
        return ContrastiveOutput(loss=None, num_correct=0, num_sources=0, num_pairs=num_pairs)

    # row i of this process is row offset + i of the global batch
    offset = sum(row_counts[:rank])
    labels = torch.arange(num_local, device=source.device) + offset
    all_targets = all_gather_with_grad(target, row_counts) if gather else target
    logits = source @ all_targets.T / temperature
    loss_sum = F.cross_entropy(logits, labels, reduction="sum")
    if symmetric:
        all_sources = all_gather_with_grad(source, row_counts) if gather else source
        loss_sum = (loss_sum + F.cross_entropy(target @ all_sources.T / temperature, labels, reduction="sum")) / 2
    # each process returns its share times the world size: DDP averages gradients over processes, so the
    # average is the gradient of the mean over the global batch (also with unequal local batches)
    loss = loss_sum * world_size / num_pairs
    num_correct = (logits.detach().argmax(dim=-1) == labels).sum()
    return ContrastiveOutput(loss=loss, num_correct=num_correct, num_sources=num_local, num_pairs=num_pairs)


def multilingual_contrastive_loss(
    source_embeddings: torch.Tensor,
    target_embeddings: torch.Tensor,
    temperature: float = 0.05,
    symmetric: bool = False,
    gather_across_processes: bool = True,
) -> torch.Tensor:
    """InfoNCE over translation pairs with in-batch negatives (AFP's multilingual contrastive loss).

    `loss = mean_i -log softmax_j(cos(s_i, t_j) / temperature)[i]`: the i-th target is the positive of the
    i-th source and every other target of the batch is a negative. `symmetric=True` averages this with the
    target -> source direction.

    Args:
        source_embeddings: `(batch, hidden)` sentence vectors in the source language.
        target_embeddings: `(batch, hidden)` vectors of their translations, row i translating source row i.
        temperature: divides the cosine similarities; must be > 0 (AFP uses 0.05).
        symmetric: also score each target against all sources and average both directions.
        gather_across_processes: under torch.distributed, take negatives from every process's batch (a
            differentiable all-gather; labels offset by the rows of lower ranks). Each process then returns
            `world_size * (sum of its rows' losses) / global_rows`, so the mean over processes is the loss of
            the global batch and DDP's gradient averaging gives its gradient. Without a process group (or with
            False) the loss is purely local.

    Returns:
        Scalar tensor.

    Raises:
        ValueError: shapes differ or are not 2-D; temperature <= 0; fewer than 2 pairs in the (global) batch
            (no negatives: use `contrastive_loss_and_accuracy`, which returns `loss=None` instead).

    References:
        Li et al., "Improving In-context Learning of Multilingual Generative Language Models with Cross-lingual
        Alignment", NAACL 2024, https://arxiv.org/abs/2311.08089 (see `CITATION`).

    Inputs:
        Two equally long lists of vectors, pairs aligned by row; no labels: the pairing is the label.

    Relations:
        `contrastive_loss_and_accuracy` (same loss, plus in-batch retrieval counts, no error on a single pair);
        `xling_align.analysis.metrics.retrieval_accuracy` (retrieval over a whole held-out set).

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> source = torch.randn(4, 8)
        >>> perfect = multilingual_contrastive_loss(source, source)       # every pair identical
        >>> shuffled = multilingual_contrastive_loss(source, source[[1, 2, 3, 0]])
        >>> bool(perfect < shuffled)
        True
    """
    output = contrastive_loss_and_accuracy(
        source_embeddings, target_embeddings, temperature, symmetric, gather_across_processes
    )
    if output.loss is None:
        raise ValueError(
            f"the batch holds {output.num_pairs} translation pair(s); the contrastive loss needs at least 2 (the "
            "other targets are the negatives). Use a larger batch, or contrastive_loss_and_accuracy(), which "
            "returns loss=None for such a batch."
        )
    return output.loss


def _check_inputs(source: torch.Tensor, target: torch.Tensor, temperature: float) -> None:
    if source.dim() != 2 or source.shape != target.shape:
        raise ValueError(
            f"source_embeddings has shape {tuple(source.shape)} and target_embeddings {tuple(target.shape)}; both "
            "must be (batch, hidden) with the same shape, row i of one translating row i of the other."
        )
    if not temperature > 0 or temperature == float("inf"):
        raise ValueError(f"temperature={temperature!r} must be a positive finite number (AFP uses 0.05).")
