"""Byte accounting at the corpus size: every codec's code/fixed/memory bytes against what it saves."""

import zipfile

import numpy as np
import pytest

from lowdim.compress import Codec, frontier, recommend
from lowdim.compress.quantizers import QUANTIZERS
from lowdim.compress.reducers import REDUCERS
from lowdim.errors import LowdimError

NAMES = ["fp32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2", "int8", "int4", "int2", "int1", "binary",
         "binary-hamming", "alloc16", "pca+alloc12", "pca+alloc12@700", "pca-f32+alloc12", "pca16-rot+int4",
         "pca16-f32+int8", "rot+binary", "rp16+int8", "trunc16+int4", "faiss:PQ8x4np", "faiss:RaBitQ",
         "pca32-bal8+faiss:PQ8x4np", "faiss:OPQ4_32,PQ4x4np"]
#: bytes the .npz container adds per member (zip local + central headers, zip64 extra, .npy header)
NPZ_MEMBER_OVERHEAD = 320


def _data(n=700, D=32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) @ rng.normal(size=(6, D)) + 0.05 * rng.normal(size=(n, D))
    return X.astype(np.float32)


def test_every_registered_kind_is_accounted():
    fitted = {Codec.from_name(n).reducer.kind for n in NAMES} | {Codec.from_name(n).quantizer.kind for n in NAMES}
    assert set(REDUCERS) | set(QUANTIZERS) | {"faiss"} <= fitted


@pytest.mark.parametrize("name", NAMES)
def test_fixed_bytes_match_what_save_writes(tmp_path, name):
    if "faiss" in name:
        pytest.importorskip("faiss")
    X = _data()
    c = Codec.from_name(name).fit(X)
    p = c.save(tmp_path / "c.npz")
    with zipfile.ZipFile(p) as z:
        members = len(z.namelist())
    with np.load(p) as z:
        stored = sum(z[k].nbytes for k in z.files)  # every array in the dtype it was written in
    assert stored == c.fixed_bytes
    extra = p.stat().st_size - c.fixed_bytes
    assert 0 <= extra <= NPZ_MEMBER_OVERHEAD * members, (extra, members)
    assert c.encode(X).nbytes == len(X) * c.code_bytes
    n = 12345
    assert c.memory_bytes(n) == n * c.code_bytes + c.fixed_bytes
    assert c.compression_ratio(n) == pytest.approx(4 * 32 * n / c.memory_bytes(n))
    assert c.compression_ratio() == pytest.approx(4 * 32 / c.code_bytes)
    assert c.compression_ratio() > c.compression_ratio(n)
    c2 = Codec.load(p)
    assert c2.fixed_bytes == c.fixed_bytes and c2.code_bytes == c.code_bytes


def test_pca_alloc_stores_only_axes_with_bits_in_float16():
    X = _data(D=48)
    c = Codec.from_name("pca+alloc6").fit(X)
    kept = c.reducer.matrix_.shape[1]
    assert kept == c.quantizer.dim_ == int((c.quantizer.bits_ > 0).sum()) < 48
    assert c._arrays()["reducer__matrix"].dtype == np.float16
    assert c.name == f"pca{kept}+alloc6"
    f32 = Codec.from_name("pca-f32+alloc6").fit(X)
    assert f32._arrays()["reducer__matrix"].dtype == np.float32 and f32.fixed_bytes > c.fixed_bytes
    # dropping 0-bit axes does not change the ranking: same top-10 as the decoded vectors
    Q = _data(n=30, D=48, seed=1)
    _, ids = c.search(Q, c.encode(X), 10)
    want = np.argsort(-(Q @ c.decode(c.encode(X)).T), axis=1, kind="stable")[:, :10]
    assert (ids == want).mean() > 0.97


@pytest.mark.parametrize("B", [4, 12, 32])
def test_allocation_for_n_fits_real_memory_and_keeps_more_axes_when_n_grows(B):
    X = _data(D=64)
    kept = []
    for n in (700, 20_000, 10_000_000):
        c = Codec.from_name(f"pca+alloc{B}@{n}").fit(X)
        assert c.memory_bytes(n) <= B * n, (n, c.memory_bytes(n) / n)
        kept.append(c.quantizer.dim_)
    assert kept[0] <= kept[1] <= kept[2] and kept[0] < kept[2]


def test_frontier_and_recommend_rank_on_real_memory():
    X = _data(n=900, D=64)
    fr = frontier(X, budgets=[16], faiss=False, n_holdout=100)
    assert fr.n_vectors == 900 and all(r.n_vectors == 900 for r in fr.reports)
    for r in fr.reports:
        assert r.memory_bytes == 900 * r.bytes_per_vector + r.fixed_bytes
    b = fr.best(16)
    assert b.memory_per_vector <= 16
    assert all(r.memory_per_vector > 16 or r.recall <= b.recall for r in fr.reports)
    mem = [r.memory_bytes for r in fr.front]
    assert mem == sorted(mem)
    big = recommend(X, budget_bytes=16, faiss=False, n_vectors=10_000_000, n_holdout=100)
    small = recommend(X, budget_bytes=16, faiss=False, n_holdout=100)
    assert big.report.n_vectors == 10_000_000 and big.report.memory_per_vector <= 16
    assert big.codec.quantizer.dim_ >= small.codec.quantizer.dim_
    assert big.to_dict()["n_vectors"] == 10_000_000


def test_recommend_never_refuses_and_says_what_to_expect():
    X = _data(n=900, D=64)
    r = recommend(X, budget_bytes=1, faiss=False, n_holdout=100)
    assert "recall" in r.reason and r.report.recall < 0.9
    assert r.report.memory_per_vector <= 1 or "no codec fits" in r.reason
    tiny = recommend(X[:60], budget_bytes=1, faiss=False, n_holdout=10)  # fixed state alone > budget
    assert "no codec fits" in tiny.reason and tiny.report.memory_per_vector > 1
    with pytest.raises(LowdimError, match="n_vectors=0 must be a positive whole number"):
        recommend(X, budget_bytes=8, n_vectors=0, faiss=False)


def test_hamming_scores_by_gemm_equal_popcount():
    from lowdim.compress.quantizers import _as_words, hamming

    X, Q = _data(n=500, D=72), _data(n=20, D=72, seed=3)
    q = Codec.from_name("binary-hamming").fit(X).quantizer
    codes = q.encode(X)
    want = -hamming(_as_words(q.encode(Q)), _as_words(codes)).astype(np.float32)
    np.testing.assert_array_equal(q.score(q.prepare_queries(Q), codes), want)
