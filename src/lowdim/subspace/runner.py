"""How a d90 sweep executes its independent runs.

A *runner* is any object with ``map_unordered(fn, specs) -> iterator of (spec, record)`` that
yields results in completion order. :class:`SerialRunner` runs them one after the other in this
process; :class:`lowdim.scale.DaskRunner` (``dask`` extra) runs them as Dask futures. The caller
(:func:`lowdim.subspace.find_d90`) is the only writer of the results file either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["SerialRunner"]


class SerialRunner:
    """Run ``fn(spec)`` for each spec, in order, in this process.

    Examples
    --------
    >>> list(SerialRunner().map_unordered(abs, [-1, 2]))
    [(-1, 1), (2, 2)]
    """

    parallel = False

    def map_unordered(self, fn: Callable[[Any], Any], specs: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        for spec in specs:
            yield spec, fn(spec)
