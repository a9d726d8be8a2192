"""The HTML report as a browser shows it: headless Chromium loads it and every image must decode.

Skips cleanly where Chromium is not installed (Debian package ``chromium``). The report's content
(version, seed, command, section times, glossary, skipped parts) is checked without a browser.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lowdim.demo import Section
from lowdim.report.html import write_report


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def report(tmp_path):
    import lowdim
    from lowdim.report.plots import plot_id_result

    X = np.random.default_rng(0).normal(size=(400, 3)) @ np.random.default_rng(1).normal(size=(3, 8))
    res = lowdim.estimate(X, method="twonn", local=True)
    plot_id_result(res, tmp_path / "id.png", title="plane")
    plot_id_result(res, tmp_path / "id.svg", title="plane")
    sec = Section(title="ID", columns=["layer", "ID", "PR", "DSE"], rows=[["a", 3.0, 2.9, 1.2]],
                  images=["id.png", "id.svg"], text="t", seconds=1.25, skipped=["part (b): no data"])
    meta = {"lowdim": lowdim.__version__, "seed": 3, "command": "lowdim demo --seed 3", "seconds": 1.3}
    return write_report(tmp_path / "index.html", [sec], title="t", meta=meta)


def test_report_states_version_seed_command_times_glossary(report):
    import lowdim

    html = report.read_text()
    assert f"lowdim: <code>{lowdim.__version__}</code>" in html and "seed: <code>3</code>" in html
    assert "lowdim demo --seed 3" in html and "section time: 1.2 s" in html
    assert "<b>PR</b>: participation ratio" in html and "<b>DSE</b>" in html
    assert "skipped: part (b): no data" in html
    assert "<th></th>" not in html


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian package chromium)")
def test_every_image_loads_in_headless_chromium(report):
    probe = report.with_name("probe.html")
    script = ("<script>window.addEventListener('load', () => {const im = [...document.images];"
              "document.title = JSON.stringify({n: im.length, broken: im.filter(i => !i.complete || "
              "i.naturalWidth === 0).map(i => i.getAttribute('src'))});});</script>")
    probe.write_text(report.read_text().replace("</body>", script + "</body>"))
    r = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                        "--virtual-time-budget=10000", "--dump-dom", Path(probe).as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r"<title>(.*?)</title>", r.stdout, flags=re.S)
    assert m, r.stdout[:2000]
    state = json.loads(m.group(1).replace("&quot;", '"'))
    assert state == {"n": 2, "broken": []}
