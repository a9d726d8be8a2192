"""Diffusion spectral entropy (DSE) and diffusion spectral mutual information (DSMI).

Liao, Liu, Christensen, Tong, Huguet, Wolf, Nickel, Adelstein & Krishnaswamy, "Assessing Neural
Network Representations During Training Using Noise-Resilient Diffusion Spectral Entropy"
(ICML 2023 workshop; CISS 2024; arXiv:2312.04823). Their definitions, which we follow:

- Gaussian affinity ``G_ij = exp(−‖x_i − x_j‖² / (2σ²))``; diffusion matrix ``P = D⁻¹G`` with
  ``D = diag(Σ_j G_ij)``. Its eigenvalues are those of the symmetric ``K = D^{-1/2} G D^{-1/2}``.
- ``DSE(X, t) = −Σ_i α_i log₂ α_i`` with ``α_i = |λ_i|^t / Σ_j |λ_j|^t`` over the eigenvalues of
  ``P`` except the trivial ``λ = 1`` (their code drops it); powering by ``t`` (the diffusion time)
  suppresses the many small eigenvalues that ambient noise creates.
- ``DSMI(X; Y) = DSE(X) − Σ_y p(y) DSE(X | Y = y)``, where, as in the authors' reference code,
  ``DSE(X)`` is estimated on random subsets of the size of each class (averaged over
  ``n_repetitions``) so both terms see the same number of points.

**Dense kernel by default, kNN-graph kernel on request.** We tried building the affinity from
the shared :func:`lowdim.kneighbors` graph (k nearest neighbours, symmetrised by the maximum,
self-affinity 1), which saves the n×n distance matrix. It loses the property DSE exists for:
noise resilience needs a bandwidth of the order of the data's extent (the paper's σ = 10 on
their representations), and a kernel that wide is not local, so truncating it at k neighbours
changes the spectrum. Measured on uniform d-cubes rotated into 100-D (n = 1,000, t = 3,
``examples/repro_dse_noisy_manifolds.py``): the dense DSE reads 1.10, 1.80, 2.63, 3.34, 4.14 bits
for d = 1, 2, 4, 8, 16 and, with noise of std 0.05 per coordinate, 0.33, 1.30, 2.30, 3.22, 4.14
(order kept); the 50-NN kernel reads 4.51 … 6.72 clean but 6.51 for the noisy line, above the
clean 8-cube (5.83). The binned Shannon entropy is 9.97 = log₂ n for nearly all of them. So the default
(``n_neighbors=None``) is the paper's dense kernel on a seeded subsample of at most
``max_samples`` points (the paper subsamples too; the eigensolve is O(n³) anyway, the n×n
kernel is 32 MB at n = 2,000); it reads the points of the layer's shared graph when given one.
``n_neighbors=k`` gives the kNN-graph kernel. The bandwidth defaults to half the median pairwise
distance (scale-free, so layers of different norms compare; ``sigma=10`` is the authors' fixed
value) and the diffusion time to ``t = 3`` (the authors' code defaults to 1 and recommends
raising ``t`` until about 1 % of the powered eigenvalues exceed 0.01). ``paper=True`` gives the
paper's setting, σ = 10 and t = 1 (:data:`PAPER_SIGMA`, :data:`PAPER_T`); comparable with the
paper's numbers only on representations of a similar scale, since σ = 10 is not scale-free.
:func:`dse_settings` resolves (σ, t, how σ was chosen) so that every result can carry them; a
DSE or DSMI value without its σ and t is not comparable with another.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lowdim.errors import LowdimError
from lowdim.neighbors import Neighbors, kneighbors
from lowdim.validation import as_points, check_int

__all__ = ["PAPER_SIGMA", "PAPER_T", "diffusion_eigenvalues", "diffusion_spectral_entropy",
           "diffusion_spectral_mutual_information", "dse_settings", "shannon_entropy"]

#: the paper's fixed Gaussian bandwidth and diffusion time (Liao et al., σ = 10, t = 1)
PAPER_SIGMA, PAPER_T = 10.0, 1.0
#: lowdim's default diffusion time (the bandwidth default is half the median pairwise distance)
DEFAULT_T = 3.0


def dse_settings(*, paper: bool = False, sigma: float | None = None, t: float | None = None) -> tuple:
    """Resolve ``(sigma or None, t, sigma_rule)`` for DSE / DSMI.

    ``sigma_rule`` is ``"paper (10)"``, ``"given"`` or ``"half median distance"`` (σ then
    depends on the data and is known after the kernel is built). ``paper=True`` with a
    conflicting ``sigma`` or ``t`` is refused.

    Examples
    --------
    >>> dse_settings(paper=True)
    (10.0, 1.0, 'paper (10)')
    >>> dse_settings()
    (None, 3.0, 'half median distance')
    """
    if paper:
        if (sigma is not None and float(sigma) != PAPER_SIGMA) or (t is not None and float(t) != PAPER_T):
            raise LowdimError(f"paper=True means sigma={PAPER_SIGMA:g}, t={PAPER_T:g} (Liao et al.); got "
                              f"sigma={sigma!r}, t={t!r}: drop paper=True or those arguments")
        return PAPER_SIGMA, PAPER_T, "paper (10)"
    t_val = DEFAULT_T if t is None else float(t)
    if not t_val > 0:
        raise LowdimError(f"t={t} must be positive (the diffusion time; the paper uses 1, 2, …)")
    if sigma is not None and not float(sigma) > 0:
        raise LowdimError(f"sigma={sigma} must be positive (the Gaussian bandwidth)")
    return (None if sigma is None else float(sigma)), t_val, ("half median distance" if sigma is None else "given")


def _subsample(A: np.ndarray, m: int, seed: int | None, y: np.ndarray | None = None) -> Any:
    if len(A) <= m:
        return (A, y) if y is not None else A
    idx = np.sort(np.random.default_rng(seed).choice(len(A), size=m, replace=False))
    return (A[idx], y[idx]) if y is not None else A[idx]


def _half_median(A: np.ndarray, D2: np.ndarray | None = None) -> float:
    """Half the median pairwise distance (on at most 2,000 points)."""
    if D2 is None:
        D2 = _sq_dists(_subsample(A, 2000, 0))
    iu = np.triu_indices(len(D2), 1)
    s = 0.5 * float(np.median(np.sqrt(D2[iu])))
    return s if s > 0 else 1.0


def _sq_dists(A: np.ndarray) -> np.ndarray:
    A = A.astype(np.float64) - A.mean(0)
    sq = np.einsum("ij,ij->i", A, A)
    D2 = sq[:, None] + sq[None, :] - 2 * (A @ A.T)
    np.fill_diagonal(D2, 0.0)
    return np.maximum(D2, 0.0)


def diffusion_eigenvalues(X: Any, *, sigma: float | None = None, n_neighbors: int | None = None,
                          max_samples: int = 2000, random_state: int | None = 0) -> tuple[np.ndarray, float]:
    """Eigenvalues of the diffusion matrix ``P = D⁻¹G`` (descending) and the bandwidth used.

    Parameters
    ----------
    X : array-like of shape (n, D) or Neighbors
        Points, or the shared neighbour graph of at most ``max_samples`` points.
    sigma : float, optional
        Gaussian bandwidth; default half the median pairwise distance.
    n_neighbors : int or None, default=None
        None: the paper's dense kernel. k: kNN-graph affinity with this many neighbours.
    max_samples : int, default=2000
        Seeded subsample above this many points.
    """
    max_samples = check_int("max_samples", max_samples, low=3)
    nb = None
    if isinstance(X, Neighbors) and n_neighbors is None:
        A = _subsample(X.points, max_samples, random_state)
    elif isinstance(X, Neighbors):
        if not X.is_full:
            raise LowdimError("DSE needs neighbours of every point; build Neighbors without queries=")
        if X.n_points > max_samples:
            raise LowdimError(f"the Neighbors graph holds {X.n_points} points, more than max_samples={max_samples} "
                              "for the dense eigensolve; build it on a subsample or pass the points")
        nb, A = X.require(n_neighbors, "DSE"), X.points
    else:
        A = _subsample(as_points(X, min_samples=3), max_samples, random_state)
        if n_neighbors is not None:
            k = min(check_int("n_neighbors", n_neighbors, low=1), len(A) - 1)
            nb = kneighbors(A, k, duplicates="keep", random_state=random_state)
    n = len(A)
    if nb is not None:
        s = float(sigma) if sigma is not None else _half_median(A)
        w = np.exp(-(nb.distances ** 2) / (2 * s * s))
        G = np.zeros((n, n))
        rows = np.repeat(np.arange(n), nb.k)
        G[rows, nb.indices.ravel()] = w.ravel()
        G = np.maximum(G, G.T)
        np.fill_diagonal(G, 1.0)
    else:
        D2 = _sq_dists(A)
        s = float(sigma) if sigma is not None else _half_median(A, D2)
        G = np.exp(-D2 / (2 * s * s))
    if not s > 0:
        raise LowdimError(f"sigma={s} must be positive")
    d = G.sum(1)
    dis = 1.0 / np.sqrt(d)
    K = G * dis[:, None] * dis[None, :]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # measured faster than 2 threads at n ≤ 2,000
        ev = np.linalg.eigvalsh(K)[::-1]
    return ev, s


def _entropy_from_eigs(ev: np.ndarray, t: float) -> float:
    lam = np.abs(np.sort(ev)[::-1][1:]) ** t  # drop the trivial eigenvalue 1
    tot = lam.sum()
    if tot <= 0:
        return 0.0
    p = lam / tot + np.finfo(float).eps
    return float(-np.sum(p * np.log2(p)))


def diffusion_spectral_entropy(X: Any, *, t: float | None = None, sigma: float | None = None,
                               n_neighbors: int | None = None, max_samples: int = 2000,
                               random_state: int | None = 0, paper: bool = False) -> float:
    """Diffusion spectral entropy of a point cloud, in bits (Liao et al. 2023).

    Parameters
    ----------
    X : array-like of shape (n, D) or Neighbors
    t : float, optional
        Diffusion time: eigenvalues are raised to this power; default 3 (1 with ``paper=True``).
    sigma, n_neighbors, max_samples, random_state
        See :func:`diffusion_eigenvalues`.
    paper : bool, default=False
        The paper's σ = 10, t = 1.

    Returns
    -------
    float
        At most ``log2(n − 1)``; larger for data spread over more (intrinsic) dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> line = rng.uniform(size=(500, 1)) @ rng.normal(size=(1, 20))
    >>> cube = rng.uniform(size=(500, 5)) @ rng.normal(size=(5, 20))
    >>> diffusion_spectral_entropy(line) < diffusion_spectral_entropy(cube)
    True
    """
    sigma, t, _ = dse_settings(paper=paper, sigma=sigma, t=t)
    ev, _ = diffusion_eigenvalues(X, sigma=sigma, n_neighbors=n_neighbors, max_samples=max_samples,
                                  random_state=random_state)
    return _entropy_from_eigs(ev, t)


def diffusion_spectral_mutual_information(X: Any, y: Any, *, t: float | None = None, sigma: float | None = None,
                                          n_neighbors: int | None = None, max_samples: int = 2000,
                                          n_repetitions: int = 5, random_state: int | None = 0,
                                          paper: bool = False) -> float:
    """DSMI between representations ``X`` and discrete labels ``y``, in bits (Liao et al. 2023).

    ``DSMI = Σ_c p(c) [DSE(X*_c) − DSE(X | y = c)]`` where ``X*_c`` is a random subset of ``X``
    of the size of class ``c`` (mean over ``n_repetitions``), as in the authors' code. One
    bandwidth (from the whole set) serves every term. Classes with fewer than 3 points add 0.
    DSMI depends on the bandwidth more than DSE does: a bandwidth much wider than the classes
    makes the class-conditional spectra flatter than the mixture's and DSMI negative, so compare
    DSMI values at one fixed ``sigma`` (as the paper does: ``paper=True`` is σ = 10, t = 1).
    ``t`` defaults to 3, ``sigma`` to half the median pairwise distance.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 4, 800)
    >>> X = rng.normal(size=(800, 10)) + 6 * np.eye(10)[y]      # classes well separated
    >>> mi = diffusion_spectral_mutual_information(X, y, sigma=2.0, t=1)
    >>> mi_shuffled = diffusion_spectral_mutual_information(X, rng.permutation(y), sigma=2.0, t=1)
    >>> bool(mi > 0.2 > abs(mi_shuffled))
    True
    """
    sigma, t, _ = dse_settings(paper=paper, sigma=sigma, t=t)
    A = as_points(X.points if isinstance(X, Neighbors) else X, min_samples=3)
    labels = np.asarray(y).reshape(-1)
    if isinstance(X, Neighbors) and len(labels) == len(X.representative) and len(labels) != len(A):
        labels = labels[X.kept]
    if len(labels) != len(A):
        raise LowdimError(f"labels have {len(labels)} entries but X has {len(A)} samples (shape {A.shape}); "
                          "give one label per sample")
    n_repetitions = check_int("n_repetitions", n_repetitions, low=1)
    A, labels = _subsample(A, max_samples, random_state, labels)
    k_full = None if n_neighbors is None else min(n_neighbors, len(A) - 1)
    _, s = diffusion_eigenvalues(A, sigma=sigma, n_neighbors=k_full, max_samples=max_samples,
                                 random_state=random_state)
    rng = np.random.default_rng(random_state)
    classes, counts = np.unique(labels, return_counts=True)
    total = 0.0
    for c, m in zip(classes, counts):
        if m < 3:
            continue
        k = None if n_neighbors is None else min(n_neighbors, m - 1)
        cond = _entropy_from_eigs(diffusion_eigenvalues(A[labels == c], sigma=s, n_neighbors=k,
                                                        max_samples=max_samples)[0], t)
        ref = []
        for _ in range(n_repetitions):
            sub = A[rng.choice(len(A), size=m, replace=False)]
            ref.append(_entropy_from_eigs(diffusion_eigenvalues(sub, sigma=s, n_neighbors=k,
                                                                max_samples=max_samples)[0], t))
        total += m / len(A) * (float(np.mean(ref)) - cond)
    return float(total)


def shannon_entropy(X: Any, *, bins_per_dim: int = 2) -> float:
    """Classic Shannon entropy (bits) of ``X`` binned per coordinate, the paper's baseline.

    Every coordinate is min–max scaled and cut into ``bins_per_dim`` bins; the entropy of the
    occupied-cell histogram is returned. In high ambient dimension nearly every point gets its own
    cell, so the value saturates at ``log2(n)``: the failure DSE is built to avoid.
    """
    A = as_points(X, min_samples=2, allow_constant=True).astype(np.float64)
    bins_per_dim = check_int("bins_per_dim", bins_per_dim, low=1)
    span = np.ptp(A, axis=0)
    Z = (A - A.min(0)) / np.where(span > 0, span, 1.0)
    cells = np.minimum((Z * bins_per_dim).astype(np.int64), bins_per_dim - 1)
    _, counts = np.unique(cells, axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-np.sum(p * np.log2(p)))
