import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The tests read SciFact/MNIST from the shared data folder next to the checkout, through lowdim's one
# data-folder rule ($LOWDIM_DATA); library code itself never guesses this path.
_SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if _SHARED_DATA.is_dir():
    os.environ.setdefault("LOWDIM_DATA", str(_SHARED_DATA))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
