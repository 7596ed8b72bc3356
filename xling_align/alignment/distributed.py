"""A differentiable all-gather for contrastive losses under torch.distributed.

`accelerate`'s `gather` cuts the graph; torch's functional `all_gather_single` keeps it (its backward sums the
gradients that every process computed for each slice, then hands each process the part of its own rows; the
older `torch.distributed.nn.functional.all_gather` does the same but is deprecated in torch 2.13 and warns).
It needs equal shapes on every process, so rows are padded to the largest local batch first and the padding
is dropped after the gather: processes may hold different numbers of rows, zero included.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

try:
    from torch.distributed._functional_collectives import all_gather_single
except ImportError:  # torch before 2.13 (GPU images often carry one): the older differentiable gather
    from torch.distributed.nn.functional import all_gather as _all_gather_list

    def all_gather_single(tensor: torch.Tensor, gather_dim: int, group) -> torch.Tensor:
        return torch.cat(_all_gather_list(tensor, group=group), dim=gather_dim)


def is_distributed() -> bool:
    """True when a torch.distributed process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size_and_rank() -> tuple[int, int]:
    """`(world_size, rank)`, `(1, 0)` without a process group."""
    if not is_distributed():
        return 1, 0
    return dist.get_world_size(), dist.get_rank()


def gather_row_counts(num_rows: int, device: torch.device) -> list[int]:
    """The number of rows each process holds, in rank order (a collective: every process must call it)."""
    if not is_distributed():
        return [num_rows]
    local = torch.tensor([num_rows], dtype=torch.long, device=device)
    counts = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, local)
    return [int(count.item()) for count in counts]


def all_gather_with_grad(tensor: torch.Tensor, row_counts: list[int] | None = None) -> torch.Tensor:
    """Concatenate every process's `tensor` along dim 0, in rank order, keeping the autograd graph.

    A collective: every process must call it, also one holding zero rows. Without a process group the
    tensor is returned as is.

    Args:
        tensor: `(local_rows, ...)`; the trailing shape, dtype and device must be the same on every process.
        row_counts: the result of `gather_row_counts(tensor.shape[0], ...)` when the caller already has it.

    Returns:
        `(sum(row_counts), ...)` tensor. Its gradient flows back to each process's own rows, summed over the
        losses of all processes.
    """
    if not is_distributed():
        return tensor
    if row_counts is None:
        row_counts = gather_row_counts(tensor.shape[0], tensor.device)
    largest = max(row_counts)
    if tensor.shape[0] < largest:
        padding = tensor.new_zeros((largest - tensor.shape[0], *tensor.shape[1:]))
        tensor = torch.cat([tensor, padding])
    if torch.is_grad_enabled() and not tensor.requires_grad:
        # every process must run the backward of the gather (it is a collective too), also one whose own rows
        # carry no graph, e.g. a process without pairs in this batch
        tensor = tensor.detach().requires_grad_(True)
    gathered = all_gather_single(tensor, 0, dist.group.WORLD).view(len(row_counts), largest, *tensor.shape[1:])
    return torch.cat([part[:count] for part, count in zip(gathered, row_counts, strict=True)])
