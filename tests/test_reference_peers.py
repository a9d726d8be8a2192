"""Cross-implementation reference tests: our TwoNN, MLE and GRIDE against scikit-dimension and
DADApy on the same data. CI runs them in the peers' own venv (they pin ``numpy<2``; see
``.ci/run``, where ``LOWDIM_REQUIRE_PEERS=1`` turns a missing peer into a failure); elsewhere they
are skipped when the ``bench`` extra is absent.

Configuration needed to compare like with like:
- TwoNN: ``algorithm="linear", discard_fraction=0.1`` is Facco et al.'s fit through the origin of
  ``−log(1 − F)`` on the smallest 90 % of ``log mu`` — skdim ``TwoNN(discard_fraction=0.1)`` and
  DADApy ``compute_id_2NN(algorithm="base", mu_fraction=0.9)``.
- MLE: skdim ``MLE()`` defaults (``n_neighbors=20``, ``unbiased=False``, ``comb="mle"``, i.e.
  MacKay–Ghahramani pooling with the ``k − 1`` normalisation) equal our defaults.
- GRIDE: DADApy ``return_id_scaling_gride(range_max=64)`` estimates at ``n1 = 1, 2, …, 32``;
  our ``scale_curve_`` covers the same ranks and ``dimension_`` is its ``n1 = 1`` point. DADApy
  also drops ratios above ``20·(q95 − q50) + q50`` (overlapping points); we drop duplicates
  before the search instead, which on these clean manifolds removes nothing.
"""

import os
import warnings

import numpy as np
import pytest

import lowdim
from lowdim.datasets import make_manifold
from lowdim.estimators import GRIDE, MLE, TwoNN

if os.environ.get("LOWDIM_REQUIRE_PEERS"):  # CI's peers venv: a missing peer is a failure, not a skip
    import dadapy
    import skdim
else:
    skdim = pytest.importorskip("skdim")
    dadapy = pytest.importorskip("dadapy")

CASES = [("sphere", 3, 10), ("gaussian_plane", 6, 20), ("swiss_roll", 2, 3), ("cube", 5, 5)]
TOL = 0.01  # the target: agreement within 1 %


def _data(name, d, D):
    X, _ = make_manifold(name, 2000, dimension=d, ambient=D, random_state=3)
    return X


@pytest.mark.parametrize(("name", "d", "D"), CASES)
def test_twonn_matches_skdim_and_dadapy(name, d, D):
    X = _data(name, d, D)
    ours = TwoNN(algorithm="linear", discard_fraction=0.1).fit(X).dimension_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = skdim.id.TwoNN(discard_fraction=0.1).fit(X).dimension_
        da = dadapy.Data(coordinates=X.copy(), maxk=8, verbose=False).compute_id_2NN(
            algorithm="base", mu_fraction=0.9)[0]
    assert ours == pytest.approx(sk, rel=TOL)
    assert ours == pytest.approx(da, rel=TOL)


@pytest.mark.parametrize(("name", "d", "D"), CASES)
def test_mle_matches_skdim(name, d, D):
    X = _data(name, d, D)
    ours = MLE().fit(X).dimension_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = skdim.id.MLE().fit(X).dimension_
        sk_unb = skdim.id.MLE(unbiased=True).fit(X).dimension_
    assert ours == pytest.approx(sk, rel=TOL)
    assert MLE(unbiased=True).fit(X).dimension_ == pytest.approx(sk_unb, rel=TOL)


@pytest.mark.parametrize(("name", "d", "D"), CASES)
def test_gride_matches_dadapy(name, d, D):
    X = _data(name, d, D)
    nb = lowdim.kneighbors(X, 64)
    est = GRIDE(range_max=64).fit(nb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids, errs, rs = dadapy.Data(coordinates=X.copy(), maxk=64, verbose=False).return_id_scaling_gride(
            range_max=64)
    c = est.scale_curve_
    assert est.dimension_ == pytest.approx(ids[0], rel=TOL)
    np.testing.assert_allclose(c.dimension, ids, rtol=TOL)
    np.testing.assert_allclose((c.ci_high - c.dimension) / 1.959964, errs, rtol=0.02)  # Fisher errors
    np.testing.assert_allclose(c.scale, rs, rtol=TOL)
    for i, n1 in enumerate(est.scale_ranks_):  # a single-scale fit reproduces each curve point
        if n1 in (1, 8):
            assert GRIDE(n1=int(n1), range_max=None).fit(nb).dimension_ == pytest.approx(ids[i], rel=TOL)


def test_gride_dadapy_mu_filter_explains_the_helix_gap():
    """On a 1-D helix the mu = r2/r1 ratios have a genuine Pareto(1) tail (values in the
    thousands); DADApy's filter (drop mu > 20·(q95 − q50) + q50) removes six of them and moves
    its estimate up ~2 %. Our default keeps them (the exact likelihood). Applying the same filter
    to our likelihood reproduces DADApy."""
    from lowdim.estimators.gride import gride_from_log_mu

    X, _ = make_manifold("helix", 2000, random_state=3)
    nb = lowdim.kneighbors(X, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids, _, _ = dadapy.Data(coordinates=X.copy(), maxk=64, verbose=False).return_id_scaling_gride(range_max=64)
    ours = GRIDE().fit(nb)
    assert ours.dimension_ == pytest.approx(1.0, abs=0.05)
    for i, n1 in enumerate(ours.scale_ranks_):
        mu = nb.distances[:, 2 * n1 - 1] / nb.distances[:, n1 - 1]
        q95, q50 = np.percentile(mu, [95, 50])
        kept = mu[mu < 20 * (q95 - q50) + q50]
        assert gride_from_log_mu(np.log(kept), int(n1), int(2 * n1))[0] == pytest.approx(ids[i], rel=1e-6)
