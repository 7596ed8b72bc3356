"""Alignment metrics and separability against independent brute-force computations on random vectors."""

import numpy as np
import pytest
import torch

from xling_align.analysis.metrics import alignment_metrics, retrieval_accuracy
from xling_align.analysis.separability import language_probe_accuracy, silhouette_score


def _brute_force(a: np.ndarray, b: np.ndarray) -> dict:
    """Every metric from the full similarity matrix with explicit loops (no chunking, no shortcuts)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    n = len(a)
    sim = a @ b.T
    row = [all(sim[i, i] > sim[i, j] for j in range(n) if j != i) for i in range(n)]
    col = [all(sim[i, i] > sim[j, i] for j in range(n) if j != i) for i in range(n)]
    off = [sim[i, j] for i in range(n) for j in range(n) if i != j]
    return {
        "a_to_b": np.mean(row),
        "b_to_a": np.mean(col),
        "mexa": np.mean([r and c for r, c in zip(row, col)]),
        "true": np.mean(np.diag(sim)),
        "random": np.mean(off),
    }


@pytest.mark.parametrize("chunk_size", [1, 7, 1024])
def test_metrics_match_brute_force_on_noisy_translations(chunk_size):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 16))
    b = a + rng.normal(scale=1.2, size=a.shape)  # partly aligned: accuracies strictly between 0 and 1
    expected = _brute_force(a, b)
    got = alignment_metrics(torch.tensor(a), torch.tensor(b), chunk_size=chunk_size)
    assert 0.0 < expected["a_to_b"] < 1.0 and expected["a_to_b"] != expected["mexa"]
    assert got.retrieval_accuracy_a_to_b == pytest.approx(expected["a_to_b"])
    assert got.retrieval_accuracy_b_to_a == pytest.approx(expected["b_to_a"])
    assert got.mexa_alignment == pytest.approx(expected["mexa"])
    assert got.cosine_true_pairs == pytest.approx(expected["true"], abs=1e-6)
    assert got.cosine_random_pairs == pytest.approx(expected["random"], abs=1e-6)
    assert got.cosine_margin == pytest.approx(expected["true"] - expected["random"], abs=1e-6)
    assert got.mexa_alignment <= min(got.retrieval_accuracy_a_to_b, got.retrieval_accuracy_b_to_a)
    assert retrieval_accuracy(torch.tensor(b), torch.tensor(a), chunk_size=chunk_size) == pytest.approx(
        expected["b_to_a"]
    )


def test_identical_vectors_are_perfectly_aligned():
    a = torch.randn(300, 32)
    got = alignment_metrics(a, a.clone(), chunk_size=64)
    assert got.retrieval_accuracy_a_to_b == got.retrieval_accuracy_b_to_a == got.mexa_alignment == 1.0
    assert got.cosine_true_pairs == pytest.approx(1.0, abs=1e-5)
    # scaling does not matter for cosine
    assert alignment_metrics(a, 3.0 * a).retrieval_accuracy == 1.0


def test_independent_random_vectors_score_about_one_over_n():
    n, trials = 50, 40
    generator = torch.Generator().manual_seed(1)
    scores = [
        alignment_metrics(torch.randn(n, 32, generator=generator), torch.randn(n, 32, generator=generator))
        for _ in range(trials)
    ]
    mean_accuracy = np.mean([s.retrieval_accuracy for s in scores])
    assert mean_accuracy == pytest.approx(1 / n, abs=0.012)
    assert scores[0].chance_retrieval_accuracy == 1 / n
    assert abs(np.mean([s.cosine_margin for s in scores])) < 0.02


def test_collapsed_vectors_count_ties_as_misses():
    same = torch.ones(10, 4)
    got = alignment_metrics(same, same)
    assert got.retrieval_accuracy == 0.0 and got.mexa_alignment == 0.0


def test_metrics_reject_bad_shapes_and_single_pair():
    with pytest.raises(ValueError, match="at least 2 pairs"):
        alignment_metrics(torch.randn(1, 4), torch.randn(1, 4))
    with pytest.raises(ValueError, match="equal shape"):
        alignment_metrics(torch.randn(3, 4), torch.randn(4, 4))


def test_to_dict_names_directions_with_language_codes():
    values = alignment_metrics(torch.eye(3), torch.eye(3)).to_dict("en", "de")
    assert values["retrieval_accuracy_en_to_de"] == values["retrieval_accuracy_de_to_en"] == 1.0
    assert values["retrieval_accuracy"] == 1.0 and values["n_pairs"] == 3


def _silhouette_reference(a: np.ndarray, b: np.ndarray) -> float:
    points = np.concatenate([a, b])
    points = points / np.linalg.norm(points, axis=1, keepdims=True)
    labels = [0] * len(a) + [1] * len(b)
    scores = []
    for i, p in enumerate(points):
        own = [1 - p @ q for j, q in enumerate(points) if labels[j] == labels[i] and j != i]
        other = [1 - p @ q for j, q in enumerate(points) if labels[j] != labels[i]]
        x, y = np.mean(own), np.mean(other)
        scores.append((y - x) / max(x, y))
    return float(np.mean(scores))


def test_silhouette_matches_reference():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(30, 8)) + 1.0
    b = rng.normal(size=(25, 8)) - 0.5
    got = silhouette_score(torch.tensor(a), torch.tensor(b))
    assert got == pytest.approx(_silhouette_reference(a, b), abs=1e-5)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    labels = [0] * len(a) + [1] * len(b)
    assert got == pytest.approx(
        sklearn_metrics.silhouette_score(np.concatenate([a, b]), labels, metric="cosine"), abs=1e-5
    )


def test_language_probe_separates_shifted_clusters_and_not_identical_ones():
    generator = torch.Generator().manual_seed(3)
    en = torch.randn(200, 8, generator=generator)
    shifted = torch.randn(200, 8, generator=generator) + 3.0
    mixed = torch.randn(200, 8, generator=generator)
    assert language_probe_accuracy(en, shifted) > 0.95
    assert 0.3 < language_probe_accuracy(en, mixed) < 0.7
    assert silhouette_score(en, shifted) > 0.3 and abs(silhouette_score(en, mixed)) < 0.05


def test_probe_fit_reaches_the_optimum_of_its_objective():
    from xling_align.analysis.separability import _fit_logistic_regression

    generator = torch.Generator().manual_seed(4)
    x = torch.randn(300, 20, generator=generator, dtype=torch.float64)
    y = (torch.sigmoid(x @ torch.randn(20, generator=generator, dtype=torch.float64)) > 0.5).double()
    weights = _fit_logistic_regression(x, y, l2=0.01, steps=300).requires_grad_(True)
    logits = x @ weights[:-1] + weights[-1]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + 0.01 * weights[:-1].square().sum()
    (gradient,) = torch.autograd.grad(loss, weights)
    assert gradient.abs().max() < 1e-5  # convex objective: zero gradient = the minimum
