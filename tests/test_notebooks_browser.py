"""One real-browser test: lesson 1 served by `marimo run`, its beta slider moved in Chromium.

The test starts ``marimo run notebooks/01_ranking_metrics.py --headless`` on a free port of
127.0.0.1, opens it in the Debian ``chromium`` driven by Python playwright (browser downloads
are not possible here, so playwright gets the executable path), moves the beta slider with the
keyboard from 0.20 to 0.30, and checks that the OPAUC row of the table changes to the value
``theory.metrics.opauc`` gives for the shown ranking at the slider's new value.  A screenshot
is saved under pytest's tmp_path (and under $HNSLAB_TEST_ARTIFACTS when set) and its path
printed.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "01_ranking_metrics.py"
CHROMIUM = os.environ.get("HNSLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
INSTALL_HINT = ("Debian's chromium is needed at /usr/bin/chromium (or $HNSLAB_CHROMIUM): "
                "`sudo apt-get update && sudo apt-get install -y chromium`; "
                "`pip install -e '.[test]'` installs playwright and marimo")

playwright_api = pytest.importorskip("playwright.sync_api", reason=INSTALL_HINT)
pytest.importorskip("marimo", reason=INSTALL_HINT)
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"no Chromium at {CHROMIUM}. {INSTALL_HINT}", allow_module_level=True)

#: Cold numba caches compile the metric kernels on the first open (about a minute on 2 busy
#: cores); warm, the page shows its numbers within seconds.
FIRST_OPEN_TIMEOUT_MS = 240_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served_lesson(tmp_path_factory):
    # Serve a copy: marimo writes a session cache (__marimo__/) next to the notebook it runs.
    copies = tmp_path_factory.mktemp("notebooks")
    for path in LESSON.parent.glob("*.py"):
        shutil.copy(path, copies / path.name)
    port = _free_port()
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.Popen(
        [sys.executable, "-m", "marimo", "run", str(copies / LESSON.name), "--headless", "--host",
         "127.0.0.1", "--port", str(port), "--no-token"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.poll() is not None else ""
                    pytest.fail(f"marimo run did not start serving {url}:\n{out[-3000:]}")
                time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _shown_opauc(page, beta_text):
    """The number in the table row 'OPAUC(<beta>), raw', once that row is displayed."""
    row = page.get_by_role("row").filter(has_text=f"OPAUC({beta_text}), raw")
    row.first.wait_for(timeout=FIRST_OPEN_TIMEOUT_MS)
    match = re.search(r"\d+\.\d{4}", row.first.inner_text())
    assert match, row.first.inner_text()
    return match.group(0)


def test_beta_slider_updates_opauc(served_lesson, tmp_path):
    from theory.metrics import opauc

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1800})
            page.goto(served_lesson)
            before = _shown_opauc(page, "0.20")
            ranking = page.get_by_role("textbox").first.input_value()
            labels = np.array([c == "+" for c in ranking.strip()])
            scores = -np.arange(labels.size, dtype=float)
            assert before == f"{opauc(labels, scores, 0.2):.4f}"

            beta_slider = page.get_by_role("slider").first
            assert beta_slider.get_attribute("aria-valuenow") == "0.2"  # the beta slider
            beta_slider.focus()
            for _ in range(10):  # ten steps of 0.01
                page.keyboard.press("ArrowRight")
            # Ten steps of 0.01 from 0.2 (the value may read 0.30000000000000004).  The slider
            # lives in a shadow root, which locators pierce and document.querySelector does not,
            # so poll the locator.
            deadline = time.monotonic() + 30
            while abs(float(beta_slider.get_attribute("aria-valuenow")) - 0.3) > 1e-9:
                assert time.monotonic() < deadline, beta_slider.get_attribute("aria-valuenow")
                time.sleep(0.05)
            new_beta = float(beta_slider.get_attribute("aria-valuenow"))
            after = _shown_opauc(page, "0.30")
            expected = f"{opauc(labels, scores, new_beta):.4f}"
            assert after == expected
            assert after != before  # the preset ranking's OPAUC moves between 0.2 and 0.3

            shot = tmp_path / "lesson1_beta_0.30.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            artifacts = os.environ.get("HNSLAB_TEST_ARTIFACTS")
            if artifacts:
                Path(artifacts).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(artifacts) / shot.name)
                print(f"screenshot copied to {Path(artifacts) / shot.name}")
        finally:
            browser.close()
