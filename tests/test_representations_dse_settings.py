"""DSE/DSMI carry their σ and t; paper=True is σ = 10, t = 1; K_F at M = 1,000 with M recorded (issue 11)."""

import json

import numpy as np
import pytest

from lowdim.errors import LowdimError
from lowdim.representations.dse import (
    _half_median,
    diffusion_spectral_entropy,
    diffusion_spectral_mutual_information,
    dse_settings,
)
from lowdim.representations.layers import LayerReport, measure_layer
from lowdim.representations.sharpness import label_sharpness


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) @ rng.normal(size=(4, 12)) + 2.0 * np.eye(12)[y]
    return X, y


def test_paper_setting_is_sigma_10_t_1_and_conflicts_are_refused():
    assert dse_settings(paper=True) == (10.0, 1.0, "paper (10)")
    assert dse_settings(sigma=2.0, t=2) == (2.0, 2.0, "given")
    with pytest.raises(LowdimError, match="paper=True means sigma=10, t=1"):
        dse_settings(paper=True, t=3)
    with pytest.raises(LowdimError, match="t=0"):
        dse_settings(t=0)
    X, y = _data(400)
    assert diffusion_spectral_entropy(X, paper=True) == diffusion_spectral_entropy(X, sigma=10, t=1)
    assert diffusion_spectral_mutual_information(X, y, paper=True) == \
        diffusion_spectral_mutual_information(X, y, sigma=10, t=1)


def test_layer_report_carries_sigma_t():
    X, y = _data(400)
    r = measure_layer(X, labels=y, n_neighbors=10)
    assert r.dse_t == 3.0 and r.dse_sigma_rule == "half median distance" and r.n_samples == 400
    # the recorded σ is the bandwidth actually used: half the median distance of the measured points
    from lowdim.representations.dse import _sq_dists

    assert r.dse_sigma == pytest.approx(_half_median(X, _sq_dists(X)), rel=1e-12)
    assert r.dse == pytest.approx(diffusion_spectral_entropy(X, sigma=r.dse_sigma, t=3), rel=1e-9)
    assert r.dsmi == pytest.approx(diffusion_spectral_mutual_information(X, y, sigma=r.dse_sigma, t=3), rel=1e-9)
    paper = measure_layer(X, labels=y, n_neighbors=10, dse_paper=True)
    assert (paper.dse_sigma, paper.dse_t, paper.dse_sigma_rule) == (10.0, 1.0, "paper (10)")
    assert paper.dse == pytest.approx(diffusion_spectral_entropy(X, sigma=10, t=1), rel=1e-9)
    assert paper.dse_label == "DSE (σ=10, t=1)" and "DSE (σ=10, t=1)" in str(paper)
    d = json.loads(paper.to_json())
    assert (d["dse_sigma"], d["dse_t"], d["dse_sigma_rule"]) == (10.0, 1.0, "paper (10)")
    assert LayerReport.from_dict(d) == paper
    old = {k: v for k, v in d.items() if k not in ("dse_sigma", "dse_t", "dse_sigma_rule", "label_sharpness_m")}
    assert LayerReport.from_dict(old).dse_sigma is None  # reports written before still load


def test_label_sharpness_at_the_papers_m_1000_recorded():
    X, y = _data(1500)
    r = measure_layer(X, labels=y, n_neighbors=10, dse=False)
    assert r.n_samples == 1500 and r.label_sharpness_m == 1000 and "M=1000" in str(r)
    assert r.label_sharpness == pytest.approx(label_sharpness(X, y, max_samples=1000, random_state=0))
    assert r.dse is None and r.dse_sigma is None and r.dse_t is None
    full = measure_layer(X, labels=y, n_neighbors=10, sharpness_samples=None, dse=False)
    assert full.label_sharpness_m == 1500 and full.label_sharpness >= r.label_sharpness  # a max grows with M
    assert json.loads(full.to_json())["label_sharpness_m"] == 1500
