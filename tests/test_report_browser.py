"""The demo report in a real browser: headless Chromium opens it from disk, offline."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from phm_audit.cli import main

#: every test here reads the demo's report (200,000 people, about a minute to build)
pytestmark = pytest.mark.slow

SECTIONS = (
    "headline",
    "summary",
    "data",
    "bias",
    "calibration",
    "label-choice",
    "thresholds",
    "net-benefit",
    "judgement",
    "explanations",
    "methods",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["demo", "--n", "20000", "--bootstrap", "30", "--out", str(out), "--deterministic", "--quiet"]) == 0
    return out / "index.html"


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium'); .ci/run installs it"
)
def test_demo_report_opens_in_chromium_with_every_section_and_figure(demo_report, tmp_path):
    profile = tmp_path / "profile"
    url = demo_report.resolve().as_uri()
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for section in SECTIONS:
        assert re.search(rf'<section[^>]*id="{section}"', html), section
    assert html.count("<figure") >= 4
    assert "<svg" in html or "data:image/png;base64" in html
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert not console_errors, console_errors
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1280,2400", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000


def test_demo_report_has_no_network_references(demo_report):
    html = demo_report.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)\s*=\s*["\'](https?:)?//', html)
    assert "@import" not in html


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium'); .ci/run installs it"
)
def test_the_headline_is_on_the_first_screen(demo_report, tmp_path):
    """The page opens on the answer: the heading and the first statement of "What this audit found" lie
    within the first screen of a 1280 x 800 window (a copy of the page with a probe script, run by
    Chromium; the report itself has no script)."""
    probe = (
        "<script>const box = e => e.getBoundingClientRect();"
        "const h = document.querySelector('#headline h2');"
        "const first = document.querySelector('#headline ol.headline li') || document.querySelector('#headline p');"
        "document.body.setAttribute('data-probe', [box(h).top, box(first).top, box(first).bottom,"
        " window.innerHeight].join(','));</script></body>"
    )
    page = tmp_path / "probe.html"
    page.write_text(demo_report.read_text(encoding="utf-8").replace("</body>", probe), encoding="utf-8")
    dom = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,800",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r'data-probe="([-\d.]+),([-\d.]+),([-\d.]+),(\d+)"', dom.stdout)
    assert m, dom.stdout[:500]
    heading, top, bottom, height = (float(x) for x in m.groups())
    assert 0 <= heading < top < height, (heading, top, bottom, height)
    assert bottom <= height * 1.5  # the first statement starts on the first screen and is not a wall of text
