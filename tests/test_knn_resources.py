"""The k-NN engine costs only what the work needs: no torch import for small inputs, bounded
memory whatever k, D and thread count, the caller's thread settings left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import lowdim
from lowdim.knn_exact import usable_cores


def test_small_estimate_does_not_import_torch():
    code = ("import sys, numpy as np, lowdim; lowdim.estimate(np.random.default_rng(0).normal(size=(2000, 5)));"
            "lowdim.kneighbors(np.random.default_rng(1).normal(size=(3000, 64)).astype('float32'), 5);"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, LOWDIM_BF16="1"))
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(("n", "D", "k"), [(2000, 512, 32), (4000, 768, 64)])
def test_peak_memory_beyond_the_data_is_bounded(n, D, k):
    X = np.random.default_rng(0).normal(size=(n, D)).astype(np.float32)
    tracemalloc.start()
    try:
        nb = lowdim.kneighbors(X, k, n_jobs=3, duplicates="keep")  # more threads than cores
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out = nb.distances.nbytes + nb.indices.nbytes
    assert peak - X.nbytes - out <= 256 * 2**20, f"{(peak - X.nbytes) / 2**20:.0f} MiB"


def test_thread_settings_of_the_caller_are_restored():
    from threadpoolctl import threadpool_info

    before = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
    X = np.random.default_rng(0).normal(size=(3000, 40)).astype(np.float32)
    lowdim.kneighbors(X, 5, n_jobs=1)
    lowdim.kneighbors(X, 5, n_jobs=2)
    after = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
    assert before == after


def test_cores_come_from_the_affinity_mask():
    assert usable_cores(None) == len(os.sched_getaffinity(0))
    assert usable_cores(3) == 3
