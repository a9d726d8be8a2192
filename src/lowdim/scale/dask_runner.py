"""Run independent jobs (d90 training runs, …) as Dask futures; yield them as they finish.

The coordinator — the process iterating :meth:`DaskRunner.map_unordered` — is the only one that
sees the records, so it is the only writer of a results file. Workers never write results.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lowdim.errors import LowdimError, require
from lowdim.validation import check_int

__all__ = ["DaskRunner"]


class DaskRunner:
    """Submit ``fn(spec)`` for every spec to a Dask cluster; yield ``(spec, record)`` in completion order.

    A worker that dies (out of memory, killed, a lost node) loses only the run it was executing.
    The scheduler first reschedules that run on another worker itself (up to
    ``distributed.scheduler.allowed-failures`` deaths); if it gives up (``KilledWorker``) or the
    connection to the worker drops (``CommClosedError``), the runner resubmits the run, up to
    ``max_resubmits`` times. An exception raised by ``fn`` itself is a bug or bad input, not a lost
    worker: it cancels the remaining runs and propagates.

    Parameters
    ----------
    client : distributed.Client
        From :func:`lowdim.scale.connect` or your own.
    max_resubmits : int, default=3
        How many times one spec is resubmitted after its worker died.
    resources : dict, optional
        Dask worker resources each run needs, e.g. ``{"GPU": 1}`` on a cluster whose workers were
        started with ``--resources "GPU=1"`` (see docs/scaling.md for dask-cuda).

    Examples
    --------
    >>> from lowdim.scale import DaskRunner, connect
    >>> with connect(workers=2) as client:                      # doctest: +SKIP
    ...     runs = dict(DaskRunner(client).map_unordered(abs_of_x, [{"x": -1}, {"x": 2}]))
    """

    def __init__(self, client: Any, *, max_resubmits: int = 3, resources: dict | None = None) -> None:
        self.client = client
        self.max_resubmits = max_resubmits
        self.resources = resources
        self.n_resubmitted_ = 0

    def map_unordered(self, fn: Callable[[Any], Any], specs: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Run ``fn(spec)`` for every spec on the cluster; yield ``(spec, record)`` as runs finish.

        ``fn`` must be picklable by reference (a module-level function of an installed package)
        or by value. Closing the iterator early (``break``, Ctrl-C, an exception in the loop
        body) cancels the runs not yet finished.
        """
        distributed = require("distributed", "dask")
        check_int("max_resubmits", self.max_resubmits, low=0)
        if not callable(fn):
            raise LowdimError(f"fn must be callable, got {type(fn).__name__}")
        specs = list(specs)
        name = getattr(fn, "__name__", "run")
        tag = uuid.uuid4().hex[:8]
        pending: dict[Any, tuple[int, int]] = {}  # future -> (spec number, attempt)

        def submit(i: int, attempt: int) -> Any:
            fut = self.client.submit(fn, specs[i], key=f"lowdim-{name}-{tag}-{i}-{attempt}",
                                     pure=False, resources=self.resources)
            pending[fut] = (i, attempt)
            return fut

        ac = distributed.as_completed([submit(i, 0) for i in range(len(specs))], loop=self.client.loop)
        lost = _lost_worker_errors()
        try:
            for fut in ac:
                i, attempt = pending.pop(fut)
                if fut.status == "finished":
                    record = fut.result()
                    fut.release()
                    yield specs[i], record
                    continue
                if fut.status in ("lost", "pending"):
                    # it finished, then its worker died before we read it: the scheduler
                    # recomputes it elsewhere, so wait for it again rather than resubmit
                    pending[fut] = (i, attempt)
                    ac.add(fut)
                    continue
                exc = fut.exception() if fut.status == "error" else None
                if exc is None and fut.status == "cancelled":
                    exc = distributed.client.FutureCancelledError(fut.key, "cancelled")  # worker or scheduler lost it
                if isinstance(exc, lost) and attempt < self.max_resubmits:
                    self.n_resubmitted_ += 1
                    ac.add(submit(i, attempt + 1))
                    continue
                if exc is None:  # pragma: no cover - a status distributed does not document
                    raise LowdimError(f"run {i} ({specs[i]!r}) ended in state {fut.status!r} without a result")
                if isinstance(exc, lost):
                    raise LowdimError(
                        f"run {i} ({specs[i]!r}) lost its worker {attempt + 1} times "
                        f"({type(exc).__name__}); giving up — check the workers' memory and logs"
                    ) from exc
                raise exc
        finally:
            for fut in list(pending):
                fut.cancel()
            pending.clear()


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError

    return (KilledWorker, CommClosedError, FutureCancelledError)
