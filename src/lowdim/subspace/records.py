"""The results file of a d90 sweep: JSON lines, appended atomically, resumable.

Line 1 is ``{"type": "config", ...}``; every further line is one finished run
``{"type": "run", "kind": "baseline"|"subspace", "d": ..., "seed": ..., "metric": ..., ...}``.
Each line is written whole with one ``write`` followed by ``flush`` and ``fsync``, so a crash or
Ctrl-C leaves at worst a truncated last line, which :class:`ResultsFile` drops on resume.
Resuming with a configuration whose *runs* would differ (task, its options, projection, SAID,
learning rates, θ₀ seed, …: :data:`RUN_FIELDS`) is refused, naming the first field that differs.
Fields of the search alone (threshold and its rule, the d grid, bisection, the seed list, the
interval level) may change: a relative-rule and an absolute-rule search share one file, and a
rerun with more seeds adds runs for the new seeds only. Line 1 keeps the first search's values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lowdim.errors import LowdimError

__all__ = ["ResultsFile", "run_key"]

FORMAT = "lowdim.d90/1"
#: configuration fields that change what a (kind, d, seed) run computes
RUN_FIELDS = ("type", "format", "task", "task_options", "task_info", "projection", "said", "normalize", "lrs",
              "baseline_lrs", "lr_scaling", "init_seed", "n_params", "max_dense_bytes", "metric")


def run_key(rec: dict) -> tuple:
    """Identity of a run: (kind, d, seed)."""
    return (rec["kind"], rec.get("d"), int(rec["seed"]))


def _normal(obj: Any) -> Any:
    from lowdim.io import _json_default

    return json.loads(json.dumps(obj, default=_json_default))


class ResultsFile:
    """Open (or create) a results file for a configuration.

    Parameters
    ----------
    path : path-like
    config : dict
        JSON-serialisable configuration; stored as the first line and compared on resume.
    resume : bool
        Continue an existing file. Without it an existing file is refused (nothing is overwritten).

    Attributes
    ----------
    runs : list of dict
        Finished runs read from the file and appended since.
    n_dropped_lines : int
        1 when a truncated last line (an interrupted write) was removed on resume, else 0.
    """

    def __init__(self, path: str | os.PathLike, config: dict, *, resume: bool = False) -> None:
        self.path = Path(path)
        self.config = {"type": "config", "format": FORMAT, **_normal(config)}
        self.runs: list[dict] = []
        self.n_dropped_lines = 0
        if self.path.is_dir():
            raise LowdimError(f"results path {str(self.path)!r} is a folder; pass a file name such as runs.jsonl")
        if self.path.exists() and self.path.stat().st_size > 0:
            if not resume:
                raise LowdimError(
                    f"results file {str(self.path)!r} already exists; pass resume=True (CLI: --resume) "
                    "to continue it, or choose another file"
                )
            self._load()
        else:
            from lowdim.io import atomic_path

            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.config) + "\n")

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good = raw.rfind(b"\n") + 1
        if good < len(raw):  # an interrupted append: drop the partial line
            self.n_dropped_lines = 1
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
                fh.flush()
                os.fsync(fh.fileno())
        lines = raw[:good].decode("utf-8").splitlines()
        recs = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:
                raise LowdimError(f"results file {str(self.path)!r} line {i} is not valid JSON; "
                                  "the file was edited or damaged: fix or remove that line") from None
        if not recs or recs[0].get("type") != "config":
            raise LowdimError(f"{str(self.path)!r} is not a lowdim d90 results file (no config on line 1)")
        old = recs[0]
        for key in sorted((set(old) | set(self.config)) & set(RUN_FIELDS)):
            if old.get(key, "<missing>") != self.config.get(key, "<missing>"):
                raise LowdimError(
                    f"results file {str(self.path)!r} was written with a different configuration: field "
                    f"{key!r} is {old.get(key, '<missing>')!r} in the file but {self.config.get(key, '<missing>')!r} "
                    "now; use the same settings to resume, or write to a new file"
                )
        self.runs = [r for r in recs[1:] if r.get("type") == "run"]

    def done(self) -> set[tuple]:
        """Keys of the finished runs."""
        return {run_key(r) for r in self.runs}

    def append(self, record: dict) -> None:
        """Append one finished run as a full line (write + flush + fsync)."""
        rec = {"type": "run", **_normal(record)}
        data = (json.dumps(rec) + "\n").encode("utf-8")
        with open(self.path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self.runs.append(rec)
