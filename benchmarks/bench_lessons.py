"""Lessons in the browser: warm redraw per control change (key press on a slider -> every
dependent number shown) and first open, with a warm or (COLD=1) an empty numba cache.

Run from the repository root with Debian's chromium installed:
    python benchmarks/bench_lessons.py [LESSON ...]        # warm
    COLD=1 python benchmarks/bench_lessons.py [LESSON ...] # cold first open
"""
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# lesson: (ready text, slider index, [texts expected after n presses as function of step i])
J = {
 "01_ranking_metrics": ("ranking B", 0, lambda i: [f"OPAUC({0.20 + 0.01*i:.2f}), raw"] * 2),
 "01_ranking_metrics#K": ("ranking B", 1, lambda i: [f"Recall@{5+i}"]),
 "02_opauc_tracks_topk": ("peak β / \\(K/N−\\)", 2, lambda i: [f"Recall@{20+i}", f"NDCG@{20+i}"]),
 "03_topk_bounds": ("sharp Recall@K range", 3, lambda i: [f"{9+i} of 48 pairs"]),
 "04_dns_is_opauc": ("largest gap exact vs sampled", 2,
                     lambda i: [f"DNS loss, M = {5+i}", f"DNS({5+i}, 50) loss"]),
 "06_train_hard_negatives": ("Ready:", 0, None),
 "05_softmax_is_kl_dro": ("exact λ / Softmax-v τ", 0,
                          lambda i: [f"KL-DRO value at ρ = {[2,3,5,10][i-1]:g}"]),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_server(port: int) -> None:
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except OSError:
            time.sleep(0.1)


def redraw_times(page, key: str, idx: int, expect, n_steps: int) -> list[float]:
    """Seconds from a key press on slider ``idx`` until every expected text is shown."""
    slider = page.get_by_role("slider").nth(idx)
    times = []
    for i in range(1, n_steps + 1):
        texts = expect(i)
        slider.focus()
        start = time.perf_counter()
        page.keyboard.press("ArrowRight")
        while True:
            body = page.inner_text("body")
            if all(body.count(x) >= texts.count(x) for x in set(texts)):
                break
            if time.perf_counter() - start > 60:
                raise RuntimeError(f"{key}: {texts} not shown")
            time.sleep(0.01)
        times.append(time.perf_counter() - start)
        time.sleep(0.5)
    return times


def measure(key: str, cold: bool) -> None:
    name = key.split("#")[0]
    ready, idx, expect = J[key]
    label = "COLD" if cold else "warm"
    port = free_port()
    env = dict(os.environ)
    if cold:
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba_cold_")
    command = [sys.executable, "-m", "marimo", "run", f"notebooks/{name}.py", "--headless",
               "--host", "127.0.0.1", "--port", str(port), "--no-token"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for_server(port)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 2600})
            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text(re.compile(ready)).first.wait_for(timeout=400000)
            t_open = time.perf_counter() - start
            if name.startswith("06"):
                page.get_by_role("button", name=re.compile("Train both")).click()
                start = time.perf_counter()
                page.get_by_text(re.compile("training \\+ evaluation time")).first.wait_for(timeout=400000)
                print(key, label, "Train click -> curves", round(time.perf_counter() - start, 1), flush=True)
            if cold or name.startswith("06"):
                print(key, label, "first open (page load to last output)", round(t_open, 1), flush=True)
            else:
                time.sleep(2)
                times = redraw_times(page, key, idx, expect, 4 if name.startswith("05") else 5)
                print(key, "warm open", round(t_open, 2), "redraws", [round(x, 2) for x in times],
                      "median", round(statistics.median(times), 3), flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    for lesson in sys.argv[1:] or list(J):
        measure(lesson, os.environ.get("COLD") == "1")
