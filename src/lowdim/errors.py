"""The one exception users catch, and helpers that raise it with a useful message."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["LowdimError", "require"]


class LowdimError(ValueError):
    """Bad input or an impossible request.

    The message names the input, its shape or value, and the fix. It subclasses
    :class:`ValueError` so code that already catches ``ValueError`` keeps working.
    """


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
        raise LowdimError(
            f"this feature needs the optional dependency {module!r}, which is not installed; "
            f'install it with: pip install "lowdim[{extra}]"'
        ) from exc
