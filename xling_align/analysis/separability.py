"""Language separability: how easily the language of a sentence can be read off its vector.

Two complementary measures for the two sides of a language pair:

- `language_probe_accuracy`: held-out accuracy of a linear (logistic-regression) classifier that predicts
  the language. 0.5 means the languages are indistinguishable, 1.0 that a hyperplane separates them.
  Language identity often stays linearly decodable even in well-aligned models, so expect this to stay
  high; it says whether the information is there, not how far apart the clusters are.
- `silhouette_score`: mean silhouette of the two language clusters under cosine distance, in [-1, 1].
  Near 1: two tight, distant clusters (the "separate islands" picture of an unaligned model); near 0 or
  below: the languages are mixed.

Both subsample to a bounded number of sentences (`max_per_language`) so 10,000 pairs stay cheap. The
train/test split of the probe is by pair index, so a sentence and its translation are always on the same
side of the split.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> en, de = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g) + 3.0
    >>> language_probe_accuracy(en, de) > 0.95 and silhouette_score(en, de) > 0.3
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_MAX_PER_LANGUAGE = 2000


def _subsample_pairs(n: int, max_count: int, seed: int) -> torch.Tensor:
    """Indices of at most `max_count` pairs, drawn reproducibly."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    return order[: min(n, max_count)]


def _fit_logistic_regression(
    x: torch.Tensor, y: torch.Tensor, l2: float, steps: int, tolerance: float = 1e-7
) -> torch.Tensor:
    """Weights (last entry = bias) of L2-regularised logistic regression, by accelerated gradient descent.

    The loss is smooth with Lipschitz gradient `L <= 0.25 * lambda_max(X^T X) / m + 2 * l2`, so a step of
    `1 / L` with Nesterov momentum converges without a line search (and without torch.optim, whose first use
    imports torch._dynamo: seconds on a busy CPU).
    """
    m = x.shape[0]
    x = torch.cat([x, torch.ones(m, 1, dtype=x.dtype)], dim=1)
    x_transposed = x.T.contiguous()  # a matvec with a transposed view is many times slower on CPU
    direction = torch.ones(x.shape[1], dtype=x.dtype)
    for _ in range(30):  # power iteration for lambda_max(X^T X)
        direction = x_transposed @ (x @ direction)
        direction = direction / direction.norm()
    largest_eigenvalue = direction @ (x_transposed @ (x @ direction))
    step = 1.0 / (1.05 * 0.25 * largest_eigenvalue / m + 2 * l2)
    penalised = torch.ones(x.shape[1], dtype=x.dtype)
    penalised[-1] = 0.0  # the bias is not regularised
    weights = previous = torch.zeros(x.shape[1], dtype=x.dtype)
    for k in range(1, steps + 1):
        lookahead = weights + (k - 1) / (k + 2) * (weights - previous)
        gradient = x_transposed @ (torch.sigmoid(x @ lookahead) - y) / m + 2 * l2 * penalised * lookahead
        if gradient.abs().max() < tolerance:  # converged (the objective is strictly convex)
            return lookahead
        previous, weights = weights, lookahead - step * gradient
    return weights


def language_probe_accuracy(
    a: torch.Tensor,
    b: torch.Tensor,
    test_fraction: float = 0.3,
    l2: float = 1e-2,
    steps: int = 300,
    max_per_language: int = DEFAULT_MAX_PER_LANGUAGE,
    seed: int = 0,
) -> float:
    """Held-out accuracy of a logistic-regression probe that tells language `a` from language `b`.

    Features are standardised with the training split's statistics; the probe minimises the mean
    cross-entropy plus `l2` times the squared weight norm (full batch, accelerated gradient descent).

    Args:
        a: `(n, hidden)` vectors of language a (row i parallel to row i of `b`).
        b: `(n, hidden)` vectors of language b.
        test_fraction: share of pairs held out for the accuracy (at least one pair).
        l2: ridge penalty on the weights; keeps the probe from memorising when hidden >> n.
        steps: gradient steps.
        max_per_language: pairs used at most (subsampled reproducibly).
        seed: seed of the subsample and of the split.

    Returns:
        Test accuracy in [0, 1] over the held-out sentences of both languages.
    """
    n = a.shape[0]
    if n < 2 or b.shape[0] != n:
        raise ValueError(
            f"the language probe needs the same number (>= 2) of vectors per language, got {n} and {b.shape[0]}."
        )
    pairs = _subsample_pairs(n, max_per_language, seed)
    n_test = max(1, int(round(len(pairs) * test_fraction)))
    test_pairs, train_pairs = pairs[:n_test], pairs[n_test:]
    if len(train_pairs) == 0:
        train_pairs = test_pairs  # two pairs only: nothing to hold out, report the training fit

    def stack(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.cat([a[indices], b[indices]]).detach().double().cpu()
        labels = torch.cat([torch.zeros(len(indices)), torch.ones(len(indices))]).double()
        return features, labels

    train_x, train_y = stack(train_pairs)
    test_x, test_y = stack(test_pairs)
    mean, std = train_x.mean(dim=0), train_x.std(dim=0, unbiased=False).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    weights = _fit_logistic_regression(train_x, train_y, l2, steps)
    predictions = (test_x @ weights[:-1] + weights[-1]) > 0
    return (predictions == test_y.bool()).float().mean().item()


def silhouette_score(
    a: torch.Tensor, b: torch.Tensor, max_per_language: int = DEFAULT_MAX_PER_LANGUAGE, seed: int = 0
) -> float:
    """Mean silhouette coefficient of the clusters {a} and {b} under cosine distance.

    For a point with mean distance `x` to the other points of its own language and `y` to the points of
    the other language, the silhouette is `(y - x) / max(x, y)`; the score is the mean over all points.

    Args:
        a: `(n, hidden)` vectors of language a.
        b: `(m, hidden)` vectors of language b.
        max_per_language: vectors used at most per language (subsampled reproducibly).
        seed: seed of the subsample.

    Returns:
        The score in [-1, 1].
    """
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"the silhouette needs at least 2 vectors per language, got {a.shape[0]} and {b.shape[0]}.")
    a = F.normalize(a[_subsample_pairs(a.shape[0], max_per_language, seed)].detach().float().cpu(), dim=-1)
    b = F.normalize(b[_subsample_pairs(b.shape[0], max_per_language, seed + 1)].detach().float().cpu(), dim=-1)

    def one_side(own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        own_distance = 1.0 - own @ own.T
        own_distance.fill_diagonal_(0.0)
        within = own_distance.sum(dim=1) / (own.shape[0] - 1)  # the point itself does not count
        between = (1.0 - own @ other.T).mean(dim=1)
        return (between - within) / torch.maximum(within, between).clamp_min(1e-12)

    return torch.cat([one_side(a, b), one_side(b, a)]).mean().item()
