"""Connect to a Dask cluster: a local one (N single-threaded worker processes) or a scheduler."""

from __future__ import annotations

import os
from typing import Any

from lowdim.errors import LowdimError, require
from lowdim.validation import check_int

__all__ = ["connect"]


def connect(scheduler: str | None = None, workers: int | None = None, timeout: float = 10) -> Any:
    """Return a ``dask.distributed.Client``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``"tcp://10.0.0.5:8786"``, or a scheduler file path
        ending in ``.json``). When omitted a ``LocalCluster`` is started on this machine.
    workers : int, optional
        Worker processes of the local cluster (one thread each: the k-NN and the training runs
        use their own BLAS/torch threads). Default: the number of CPU cores. Not allowed
        together with ``scheduler`` (a remote cluster has the workers it has).
    timeout : float, default=10
        Seconds to wait for the scheduler before giving up.

    Returns
    -------
    distributed.Client
        Closing it (``client.close()`` or ``with connect(...) as client:``) also stops a local
        cluster it started.

    Raises
    ------
    LowdimError
        When the scheduler cannot be reached within ``timeout`` (the message names the address
        and the timeout), or for a bad ``workers`` / ``timeout``.

    Examples
    --------
    >>> from lowdim.scale import connect
    >>> with connect(workers=2) as client:          # doctest: +SKIP
    ...     print(len(client.scheduler_info()["workers"]))
    2
    """
    distributed = require("distributed", "dask")
    try:
        t = float(timeout)
    except (TypeError, ValueError):
        raise LowdimError(f"timeout must be a number of seconds, got {timeout!r}") from None
    if not t > 0:
        raise LowdimError(f"timeout={timeout!r} must be > 0 seconds")
    if scheduler is not None:
        if workers is not None:
            raise LowdimError(
                f"pass either scheduler={scheduler!r} (a running cluster) or workers={workers} "
                "(start a local cluster), not both"
            )
        address = str(scheduler)
        kw: dict[str, Any] = {"scheduler_file": address} if address.endswith(".json") else {"address": address}
        try:
            return distributed.Client(**kw, timeout=t, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise LowdimError(
                f"could not reach the Dask scheduler at {address!r} within timeout={t:g} s "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "check the address and that `dask scheduler` is running, or pass --workers N / "
                "workers=N for a local cluster"
            ) from None
    n = check_int("workers", workers, low=1) if workers is not None else (os.cpu_count() or 1)
    try:
        return distributed.Client(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
            timeout=t, set_as_default=False,
        )
    except (OSError, TimeoutError) as exc:
        raise LowdimError(
            f"could not start a local Dask cluster with {n} workers within timeout={t:g} s "
            f"({type(exc).__name__}: {exc}); raise the timeout or lower workers"
        ) from None
