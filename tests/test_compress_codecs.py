"""Codecs: quantizers, reducers, blocked search, byte accounting, save/load, bad input."""

import json
import zipfile

import numpy as np
import pytest

from lowdim.compress import Codec
from lowdim.compress.codec import check_vectors
from lowdim.compress.quantizers import (
    BitAllocation,
    Float,
    Uniform,
    _as_words,
    hamming,
    pack_bits,
    unpack_bits,
)
from lowdim.compress.reducers import PCA, RandomProjection, Truncate
from lowdim.errors import LowdimError


def _low_rank(n=1500, d=8, D=64, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, D)) * np.linspace(2, 0.2, d)[:, None].mean()
    X = X + 0.05 * rng.normal(size=(n, D)) + offset
    return X.astype(np.float32)


def _corpus_queries(n=600, nq=20, **kw):
    A = _low_rank(n=n + nq, **kw)
    return A[:n], A[n:]


def _exact_topk(X, Q, k):
    S = Q.astype(np.float64) @ X.T.astype(np.float64)
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pack_unpack_roundtrip(bits, rng):
    c = rng.integers(0, 1 << bits, size=(7, 13)).astype(np.uint8)
    p = pack_bits(c, bits)
    assert p.shape == (7, -(-13 * bits // 8))
    np.testing.assert_array_equal(unpack_bits(p, bits, 13), c)


def test_hamming_matches_bit_count(rng):
    a = rng.integers(0, 256, size=(5, 16), dtype=np.uint8)
    b = rng.integers(0, 256, size=(6, 16), dtype=np.uint8)
    want = np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(2)
    np.testing.assert_array_equal(hamming(_as_words(a), _as_words(b)), want)


def test_uniform_error_and_size(rng):
    Y = rng.normal(size=(2000, 32)).astype(np.float32) * np.linspace(0.1, 10, 32).astype(np.float32)
    for bits, tol in [(8, 1e-3), (4, 0.02)]:
        q = Uniform(bits).fit(Y)
        codes = q.encode(Y)
        assert codes.shape == (2000, 32 * bits // 8) and codes.dtype == np.uint8
        rel = ((q.decode(codes) - Y) ** 2).mean(0) / Y.var(0)
        assert rel.max() < tol  # per-dimension calibration: small and large dimensions alike


def test_fp8_per_dimension_scale_avoids_saturation(rng):
    Y = rng.normal(size=(500, 4)).astype(np.float32) * np.array([1e-4, 1.0, 1e3, 1e5], np.float32)
    for dt, half_ulp in (("e4m3", 2**-4), ("e5m2", 2**-3)):  # 3 / 2 mantissa bits
        q = Float(dt).fit(Y)
        back = q.decode(q.encode(Y))
        rel = np.abs(back - Y) / np.abs(Y).max(0)
        assert rel.max() <= half_ulp * 1.01, dt  # plain ml_dtypes casts would saturate at 448 / underflow


def test_fp16_bf16_exact_size(rng):
    Y = rng.normal(size=(10, 6)).astype(np.float32)
    assert Float("float16").fit(Y).code_size == 12
    q = Float("bfloat16").fit(Y)
    np.testing.assert_allclose(q.decode(q.encode(Y)), Y, rtol=1e-2)


def test_pca_preserves_inner_products_without_query_centring():
    X, Q = _corpus_queries(n=1500, nq=50, offset=3.0)
    p = PCA(20).fit(X)
    approx = p.transform_queries(Q) @ p.transform(X).T + p.query_offset(Q)[:, None]
    np.testing.assert_allclose(approx, Q @ X.T, rtol=1e-3, atol=0.05 * np.abs(Q @ X.T).mean())
    # the FAISS trap: centring the queries too changes the ranking
    trap = (Q - p.mean_) @ p.matrix_ @ p.transform(X).T
    ours = np.argsort(-approx, 1)[:, :10]
    wrong = np.argsort(-trap, 1)[:, :10]
    truth = _exact_topk(X, Q, 10)
    rec = lambda a: np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, truth)])  # noqa: E731
    assert rec(ours) > 0.95 and rec(wrong) < rec(ours) - 0.2


def test_bit_allocation_follows_the_spectrum():
    X = _low_rank(D=64)
    c = Codec.from_name("pca+alloc16").fit(X)
    q = c.quantizer
    assert isinstance(q, BitAllocation) and c.bytes_per_vector == 16
    bits = q.bits_.astype(int)
    assert bits.sum() <= 128
    assert (bits[:8] == 8).all()  # the 8 signal axes get the widest codes …
    assert bits[8:].max() <= 2  # … and the noise axes what is left over
    c4 = Codec.from_name("pca+alloc4").fit(X)
    assert (c4.quantizer.bits_[8:] == 0).all() and c4.quantizer.bits_[:8].min() >= 2


@pytest.mark.parametrize("name", ["int8", "pca+alloc12", "binary", "binary-hamming", "fp8-e4m3",
                                  "pca32-rot+int4", "rp32+int8", "trunc32+int8"])
def test_blocked_search_equals_full_decode(name):
    X, Q = _corpus_queries()
    c = Codec.from_name(name).fit(X)
    codes = c.encode(X)
    v1, i1 = c.search(Q, codes, k=5, block_size=37)
    v2, i2 = c.search(Q, codes, k=5, block_size=10_000)
    np.testing.assert_allclose(v1, v2, rtol=1e-4, atol=1e-4)
    if name not in ("binary-hamming", "rp32+int8"):  # Hamming ties; RP search is in the projected space
        np.testing.assert_array_equal(i1, i2)
        Xh = c.decode(codes)
        S = Q @ Xh.T
        np.testing.assert_allclose(v1, -np.sort(-S, 1)[:, :5], rtol=1e-3, atol=1e-3)


def test_rescoring_recovers_exact_top_k():
    X, Q = _corpus_queries(n=800, nq=30)
    c = Codec.from_name("binary").fit(X)
    codes = c.encode(X)
    _, plain = c.search(Q, codes, k=5)
    _, resc = c.search(Q, codes, k=5, rescore=X, rescore_factor=20)
    truth = _exact_topk(X, Q, 5)
    hit = lambda a: np.mean([len(set(x) & set(y)) for x, y in zip(a, truth)]) / 5  # noqa: E731
    assert hit(resc) > 0.95 and hit(resc) > hit(plain)


def test_reducers_shapes_and_inverse():
    X = _low_rank(D=32, d=4)
    for r in (PCA(32), RandomProjection(16), Truncate(16)):
        r.fit(X)
        assert r.transform(X).shape == (len(X), r.out_dim_)
    p = PCA(32, dtype="float32").fit(X)
    np.testing.assert_allclose(p.inverse_transform(p.transform(X)), X, atol=1e-3)
    h = PCA(32).fit(X)  # float16 axes: rounding of 2^-11 relative, far below any ≤ 8-bit code
    np.testing.assert_allclose(h.inverse_transform(h.transform(X)), X, atol=2e-2)


@pytest.mark.parametrize("name", ["int4", "pca16-rot+int8", "pca+alloc10", "binary", "fp8-e5m2",
                                  "pca32-bal8+faiss:PQ8x4np"])
def test_save_load_roundtrip(tmp_path, name):
    if "faiss" in name:
        pytest.importorskip("faiss")
    X = _low_rank(n=700, D=32)
    c = Codec.from_name(name).fit(X)
    p = c.save(tmp_path / "c.npz")
    c2 = Codec.load(p)
    assert c2.spec() == c.spec() and c2.name == c.name
    np.testing.assert_array_equal(c2.encode(X), c.encode(X))
    assert c.overhead_bytes > 0 or name == "binary"
    assert c.memory_bytes(10) == 10 * c.bytes_per_vector + c.overhead_bytes


def test_load_rejects_corrupted_and_foreign_files(tmp_path):
    X = _low_rank(n=300, D=16)
    good = Codec.from_name("int8").fit(X).save(tmp_path / "c.npz")
    raw = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(LowdimError, match="truncated or corrupted"):
        Codec.load(tmp_path / "trunc.npz")
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    with pytest.raises(LowdimError, match="not a lowdim-codec file"):
        Codec.load(tmp_path / "foreign.npz")
    np.savez(tmp_path / "other.npz", spec=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(LowdimError, match="not a lowdim-codec file"):
        Codec.load(tmp_path / "other.npz")
    # consistent zip, inconsistent contents: a step vector of the wrong length
    with zipfile.ZipFile(good) as z:
        arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist()}
    arrays["quantizer__step"] = arrays["quantizer__step"][:5]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(LowdimError, match="step"):
        Codec.load(tmp_path / "bad.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(LowdimError, match="not a readable lowdim codec"):
        Codec.load(tmp_path / "text.npz")


def test_bad_input():
    X = _low_rank(n=200, D=16)
    c = Codec.from_name("int8").fit(X)
    codes = c.encode(X)
    with pytest.raises(LowdimError, match="has 8 dimensions.*16"):
        c.search(X[:3, :8], codes)
    bad = X.copy()
    bad[4, 2] = np.nan
    with pytest.raises(LowdimError, match="non-finite"):
        Codec.from_name("int8").fit(bad)
    Z = X.copy()
    Z[7] = 0
    with pytest.raises(LowdimError, match="1 zero vectors.*row 7"):
        Codec.from_name("int8", metric="cosine").fit(Z)
    with pytest.warns(UserWarning, match="not unit length"):
        N = check_vectors(X, name="corpus", metric="cosine")
    np.testing.assert_allclose(np.linalg.norm(N, axis=1), 1, atol=1e-5)
    with pytest.raises(LowdimError, match="uint8 codes of shape"):
        c.search(X[:2], codes[:, :3])
    with pytest.raises(LowdimError, match="unknown quantizer"):
        Codec.from_name("int3")
    with pytest.raises(LowdimError, match="not fitted"):
        Codec.from_name("int8").encode(X)


@pytest.mark.slow
def test_float16_bits_match_numpy_cast(rng):
    from lowdim.compress.quantizers import _to_half_bits

    z = np.concatenate([rng.normal(size=5000) * s for s in (1e-6, 1e-3, 1, 1e3, 1e5)]).astype(np.float32)
    z = np.concatenate([z, np.float32([0, -0.0, 65504, 65519, 65520, 6.1e-5, 2**-14, 2**-24])])
    with np.errstate(over="ignore"):
        want = z.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(_to_half_bits(z[None, :])[0], want)
