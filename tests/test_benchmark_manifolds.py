import numpy as np
import pytest

from lowdim.datasets.benchmark import BENCHMARK_MANIFOLDS, benchmark_suite, make_benchmark
from lowdim.errors import LowdimError

# (true ID, ambient D) of the standard suite (Hein & Audibert 2005; Campadelli et al. 2015),
# as listed by skdim.datasets.BenchmarkManifolds.
TRUTH = {
    "M1_Sphere": (10, 11), "M2_Affine_3to5": (3, 5), "M3_Nonlinear_4to6": (4, 6),
    "M4_Nonlinear": (4, 8), "M5a_Helix1d": (1, 3), "M5b_Helix2d": (2, 3), "M6_Nonlinear": (6, 36),
    "M7_Roll": (2, 3), "M8_Nonlinear": (12, 72), "M9_Affine": (20, 20), "M10a_Cubic": (10, 11),
    "M10b_Cubic": (17, 18), "M10c_Cubic": (24, 25), "M10d_Cubic": (70, 71), "M11_Moebius": (2, 3),
    "M12_Norm": (20, 20), "M13a_Scurve": (2, 3), "M13b_Spiral": (1, 13), "Mbeta": (10, 40),
    "Mn1_Nonlinear": (18, 72), "Mn2_Nonlinear": (24, 96), "Mp1_Paraboloid": (3, 12),
    "Mp2_Paraboloid": (6, 21), "Mp3_Paraboloid": (9, 30),
}


def test_names_true_ids_and_ambient_dims():
    assert {k: v[:2] for k, v in BENCHMARK_MANIFOLDS.items()} == TRUTH


@pytest.mark.parametrize("name", list(TRUTH))
def test_shape_finite_and_seeded(name):
    X, d = make_benchmark(name, 300, random_state=3)
    assert d == TRUTH[name][0]
    assert X.shape == (300, TRUTH[name][1]) and X.dtype == np.float64
    assert np.isfinite(X).all()
    assert np.array_equal(X, make_benchmark(name, 300, random_state=3)[0])
    assert not np.array_equal(X, make_benchmark(name, 300, random_state=4)[0])


def test_geometry_of_a_few_manifolds():
    X, _ = make_benchmark("M1_Sphere", 500)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    X, _ = make_benchmark("M10d_Cubic", 500)  # on the boundary of the unit 71-cube
    assert ((X == 0) | (X == 1)).any(axis=1).all() and X.min() >= 0 and X.max() <= 1
    X, _ = make_benchmark("M9_Affine", 500)
    assert X.min() >= -2.5 and X.max() <= 2.5
    X, _ = make_benchmark("M2_Affine_3to5", 500)  # an affine 3-space
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    assert s[2] > 1e-3 * s[0] and s[3] < 1e-9 * s[0]
    X, _ = make_benchmark("M13b_Spiral", 200)
    np.testing.assert_allclose(np.hypot(X[:, 0], X[:, 1]), 100.0)
    assert np.all(X[:, 3:] == 0)
    X, _ = make_benchmark("Mp2_Paraboloid", 200)  # [x, sin x, x^2] with x_7 = |x_1..6|^2
    np.testing.assert_allclose(X[:, 6], (X[:, :6] ** 2).sum(1))
    np.testing.assert_allclose(X[:, 7:14], np.sin(X[:, :7]))
    X, _ = make_benchmark("Mn1_Nonlinear", 200)  # the two halves repeat
    np.testing.assert_array_equal(X[:, :36], X[:, 36:])


def test_suite_uses_one_seed_per_manifold():
    suite = benchmark_suite(100, random_state=5)
    assert list(suite) == list(TRUTH)
    names = list(TRUTH)
    for i in (0, 13, 23):
        np.testing.assert_array_equal(suite[names[i]][0], make_benchmark(names[i], 100, random_state=5 + i)[0])


def test_bad_arguments():
    with pytest.raises(LowdimError, match="M1_Sphere"):
        make_benchmark("M99_Nothing")
    with pytest.raises(LowdimError, match="n_samples"):
        make_benchmark("M1_Sphere", 0)


def test_matches_skdim_generator():
    skdim = pytest.importorskip("skdim")
    bm = skdim.datasets.BenchmarkManifolds(random_state=0)
    for name, (d, D) in TRUTH.items():
        assert (bm.truth.loc[name, "Intrinsic Dimension"], bm.truth.loc[name, "Number of variables"]) == (d, D)
    theirs = bm.generate(n=400)
    for name in ("M1_Sphere", "M10b_Cubic", "Mn1_Nonlinear", "Mp3_Paraboloid", "Mbeta"):
        ours = make_benchmark(name, 400)[0]
        assert theirs[name].shape == ours.shape
        # same law: coordinate ranges agree closely
        np.testing.assert_allclose(np.quantile(ours, [0.05, 0.95]), np.quantile(theirs[name], [0.05, 0.95]),
                                   atol=0.15 * np.ptp(ours))
