"""DSE / DSMI, label sharpness, effective rank, participation ratio, LayerReport."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lowdim.errors import LowdimError
from lowdim.representations.dse import (
    diffusion_spectral_entropy,
    diffusion_spectral_mutual_information,
    shannon_entropy,
)
from lowdim.representations.layers import (
    LayerReport,
    effective_rank,
    layer_report,
    participation_ratio,
)
from lowdim.representations.sharpness import label_sharpness


def _cube(d: int, n: int = 600, D: int = 40, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(D, d)))[0].T
    return rng.uniform(size=(n, d)) @ Q + noise * rng.normal(size=(n, D))


def test_dse_matches_the_papers_formula_computed_directly():
    X = _cube(3, n=300)
    sigma, t = 0.4, 2
    D2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    G = np.exp(-D2 / (2 * sigma**2))
    P = G / G.sum(1, keepdims=True)  # the diffusion matrix itself, non-symmetric
    ev = np.sort(np.abs(np.linalg.eigvals(P).real))[::-1][1:] ** t
    p = ev / ev.sum() + np.finfo(float).eps
    expected = -np.sum(p * np.log2(p))
    assert diffusion_spectral_entropy(X, sigma=sigma, t=t) == pytest.approx(expected, rel=1e-6)


def test_dse_grows_with_intrinsic_dimension_and_resists_noise():
    vals = [diffusion_spectral_entropy(_cube(d, noise=0.03)) for d in (1, 2, 4, 8)]
    assert np.all(np.diff(vals) > 0), vals
    clean = diffusion_spectral_entropy(_cube(2))
    assert abs(diffusion_spectral_entropy(_cube(2, noise=0.03)) - clean) < 1.0
    # the binned Shannon entropy saturates at log2(n) for every d
    assert shannon_entropy(_cube(2, noise=0.03)) > np.log2(600) - 0.2
    assert shannon_entropy(_cube(8, noise=0.03)) > np.log2(600) - 0.2


def test_dse_knn_kernel_reuses_a_neighbour_graph():
    import lowdim

    X = _cube(2, n=300)
    nb = lowdim.kneighbors(X, n_neighbors=15)
    assert diffusion_spectral_entropy(nb, n_neighbors=15) == pytest.approx(
        diffusion_spectral_entropy(X, n_neighbors=15), rel=1e-9)


def test_dsmi_separated_classes_versus_shuffled_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 800)
    X = rng.normal(size=(800, 10)) + 6 * np.eye(10)[y]
    mi = diffusion_spectral_mutual_information(X, y, sigma=2.0, t=1)
    mi0 = diffusion_spectral_mutual_information(X, rng.permutation(y), sigma=2.0, t=1)
    assert mi > 0.2 and abs(mi0) < 0.1
    with pytest.raises(LowdimError, match="labels have 799 entries but X has 800 samples"):
        diffusion_spectral_mutual_information(X, y[:-1])


def test_label_sharpness_is_the_inverse_closest_cross_label_distance():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    y = rng.integers(0, 3, 200)
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    brute = (1.0 / D[y[:, None] != y[None, :]]).max()
    assert label_sharpness(X, y, max_samples=None) == pytest.approx(brute, rel=1e-9)
    assert label_sharpness(X, np.zeros(200)) == 0.0
    assert label_sharpness(np.array([[0.0], [0.0], [1.0]]), [0, 1, 1]) == np.inf
    with pytest.raises(LowdimError, match="labels have 2 entries but X has 3 samples"):
        label_sharpness(np.eye(3), [0, 1])


def test_effective_rank_and_participation_ratio_known_answers():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 3)) @ np.eye(3, 12)
    assert effective_rank(X) == pytest.approx(3.0, abs=0.05)
    assert participation_ratio(X) == pytest.approx(3.0, abs=0.05)
    Y = rng.normal(size=(20000, 2)) * [1.0, 0.5]  # variances 1 and 0.25: PR = 1.25² / 1.0625
    assert participation_ratio(Y) == pytest.approx(1.25**2 / 1.0625, rel=0.03)


def test_layer_report_known_ids_and_json_round_trip():
    rng = np.random.default_rng(0)
    acts = {"line": _cube(1, n=1000), "plane": _cube(2, n=1000), "five": _cube(5, n=1000)}
    y = rng.integers(0, 2, 1000)
    reps = layer_report(acts, labels=y, random_state=0)
    assert [r.name for r in reps] == ["line", "plane", "five"]
    for r, d in zip(reps, (1, 2, 5)):
        assert abs(r.dimension - d) < 0.2 * d + 0.15, (r.name, r.dimension)
        assert abs(r.local_mean - d) < 0.25 * d + 0.2, (r.name, r.local_mean)
        assert r.ci[0] <= r.dimension <= r.ci[1]
        assert r.dsmi is not None and r.label_sharpness is not None and r.dse is not None
    assert reps[0].dse < reps[1].dse < reps[2].dse
    d = json.loads(reps[1].to_json())
    for key in ("name", "dimension", "ci", "local_mean", "participation_ratio", "dse"):
        assert key in d
    assert LayerReport.from_dict(d) == reps[1]
    inf_rep = LayerReport.from_dict({**d, "label_sharpness": float("inf")})
    assert inf_rep.to_dict()["label_sharpness"] is None  # JSON has no inf


def test_mle_local_and_global_methods_share_the_graph():
    from lowdim.representations.layers import measure_layer

    r = measure_layer(_cube(3, n=1500), method="mle", local_method="mle", dse=False)
    assert r.method == "mle" and r.local_method == "mle"
    assert abs(r.dimension - 3) < 0.4 and abs(r.local_mean - 3) < 0.5
    with pytest.raises(LowdimError, match="unknown local_method|choose one of"):
        measure_layer(_cube(3, n=200), local_method="pca", dse=False)
