"""Notes for estimates of the same data that disagree by more than their intervals."""

from __future__ import annotations

from collections.abc import Sequence

from lowdim.result import IDResult

__all__ = ["disagreements"]

_SCALE = {"twonn": "the 1st/2nd-neighbour ratio", "ctwonn": "the 1st/2nd-neighbour ratio, calibrated",
          "mle": "neighbours 1..k", "gride": "the n1/n2-neighbour ratio", "corrint": "pair counts over radii",
          "pca": "the linear span"}


def _reason(a: IDResult, b: IDResult) -> str:
    names = {a.method, b.method}
    if "pca" in names:
        return ("pca measures the linear span, the other the manifold: a curved manifold spans more linear "
                "dimensions than its intrinsic dimension (and noise adds variance in every direction)")
    g = next((r for r in (a, b) if r.method == "gride" and r.scale and r.scale.get("n1", 1) > 1), None)
    if g is not None:
        return (f"the GRIDE curve falls from n1=1 to the selected n1={g.scale['n1']} (distance "
                f"{g.scale['distance']:.3g}): the dimension changes with scale — noise at the smallest scales "
                "raises small-scale estimates; without noise, finite-sample or density effects lower large-scale ones")
    if names == {"twonn", "ctwonn"}:
        return ("ctwonn adds the finite-sample correction of uniform balls/spheres; data that are not "
                "ball-like at the neighbour scale (noise, curvature, non-uniform density) make it over-correct")
    sa, sb = _SCALE.get(a.method, a.method), _SCALE.get(b.method, b.method)
    return (f"they read different scales ({a.method}: {sa}; {b.method}: {sb}): the dimension changes with scale "
            "(noise at small scales, curvature or density variation at larger ones); see the scale curves")


def disagreements(results: Sequence[IDResult]) -> list[str]:
    """One note per pair of estimates whose confidence intervals do not overlap.

    Parameters
    ----------
    results : sequence of IDResult
        Estimates of the same points (ideally from one shared :class:`~lowdim.Neighbors`).

    Returns
    -------
    list of str
        ``"twonn 16.2 [15.8, 16.6] and mle 13.5 [13.2, 13.8] disagree beyond their intervals: …"``,
        with the likely reason (noise scale, linear span against manifold, calibration, scale).

    Examples
    --------
    >>> import numpy as np, lowdim
    >>> from lowdim.estimators.compare import disagreements
    >>> t = np.random.default_rng(0).uniform(0, 6.28, 2000)
    >>> X = np.column_stack([np.cos(t), np.sin(t)])          # a circle: ID 1, linear span 2
    >>> nb = lowdim.kneighbors(X, 20)
    >>> notes = disagreements([lowdim.estimate(nb, method="twonn"), lowdim.estimate(X, method="pca")])
    >>> len(notes), "linear span" in notes[0]
    (1, True)
    """
    out = []
    for i, a in enumerate(results):
        for b in results[i + 1:]:
            if a.ci[1] < b.ci[0] or b.ci[1] < a.ci[0]:
                out.append(f"{a.method} {a.dimension:.2f} [{a.ci[0]:.2f}, {a.ci[1]:.2f}] and {b.method} "
                           f"{b.dimension:.2f} [{b.ci[0]:.2f}, {b.ci[1]:.2f}] disagree beyond their intervals; "
                           f"likely reason: {_reason(a, b)}")
    return out
