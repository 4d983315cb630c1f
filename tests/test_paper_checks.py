"""The main job end to end: verdict table, report, manifest, figures, and its CLI errors."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args, timeout=900):
    return subprocess.run([sys.executable, str(REPO / "paper_checks.py"), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_default_run_passes_and_writes_report_and_every_figure(tmp_path):
    out = tmp_path / "out"
    proc = run("--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((out / "results.json").read_text())
    from checks import all_checks
    from figures.catalog import FIGURES

    assert [c["id"] for c in manifest["checks"]] == [c.id for c in all_checks()]
    # Every check passes, except a data check that may report SKIP when its data are absent.
    assert all(c["passed"] or (c["passed"] is None and c["id"].startswith("D"))
               for c in manifest["checks"])
    assert set(manifest["figures"]) == {f.name for f in FIGURES}
    for paths in manifest["figures"].values():
        for p in paths:
            assert (out / p).stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "| id | paper | claim | independent reference | measured | verdict |" in report
    # Every check names the independent reference it compares with, in its row.
    for c in all_checks():
        row = next(line for line in report.splitlines() if line.startswith(f"| {c.id} |"))
        assert c.oracle and f"| {c.oracle.replace('|', chr(92) + '|')} |" in row
    assert ", 0 failed" in report
    assert manifest["versions"]["numpy"] != "missing" and manifest["git_revision"]
    # Every file is written through a temporary file and a rename: none is left behind.
    assert not list(out.rglob(".*"))
    # A second run into the same folder is allowed (it is our own output).
    assert run("--out", str(out), "--only", "M1", "--no-figures").returncode == 0


def test_unknown_check_id_is_a_cli_error(tmp_path):
    proc = run("--only", "M1", "NOPE", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "unknown check id(s) NOPE" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_refuses_an_out_folder_holding_other_files(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    proc = run("--only", "M1", "--no-figures", "--out", str(tmp_path))
    assert proc.returncode != 0 and "holds other files" in proc.stderr
    assert run("--only", "M1", "--no-figures", "--out", str(tmp_path), "--force").returncode == 0
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_a_failing_check_gives_exit_status_1(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO))
    import checks
    import paper_checks

    def fails(seed, full):
        return "measured nothing", False

    # A registry of one failing check (checks.Check is public; the real registry is untouched).
    failing = checks.Check("ZZ-fail", "test", "a claim that fails", fails, oracle="none")
    monkeypatch.setattr(checks, "all_checks", lambda: [failing])
    monkeypatch.setattr(sys, "argv", ["paper_checks.py"])
    code = paper_checks.main(["--only", "ZZ-fail", "--no-figures", "--out", str(tmp_path)])
    assert code == 1
    assert "FAIL" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("args, words", [(["--seed", "-1"], "--seed")])
def test_bad_arguments(tmp_path, args, words):
    proc = run(*args, "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and words in proc.stderr


def test_data_check_skips_without_data_and_rejects_a_bad_folder(tmp_path):
    import os
    env = dict(os.environ, HNSLAB_DATA=str(tmp_path / "nowhere"))
    proc = subprocess.run([sys.executable, str(REPO / "paper_checks.py"), "--only", "D1", "--no-figures",
                           "--out", str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "SKIP" in proc.stdout and "0 passed, 0 failed, 1 skipped" in proc.stdout
    proc = run("--data", str(tmp_path / "missing"), "--only", "D1", "--out", str(tmp_path / "p"))
    assert proc.returncode == 2 and "--data" in proc.stderr


def test_gowalla_table1_check(gowalla_path, tmp_path):
    proc = run("--data", str(gowalla_path.parent), "--only", "D1", "--no-figures",
               "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  D1" in proc.stdout and "822,358 train / 205,106 test" in proc.stdout


def test_dask_scheduler_gives_the_local_table(tmp_path):
    distributed = pytest.importorskip("distributed")
    ids = ["M1", "T1", "L1"]
    local = run("--only", *ids, "--no-figures", "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = run("--only", *ids, "--no-figures", "--out", str(tmp_path / "dask"),
                     "--scheduler", cluster.scheduler_address)
    assert remote.returncode == 0, remote.stderr
    a = json.loads((tmp_path / "local" / "results.json").read_text())
    b = json.loads((tmp_path / "dask" / "results.json").read_text())

    def strip(m):
        return [{k: c[k] for k in ("id", "measured", "passed")} for c in m["checks"]]

    assert strip(a) == strip(b)


def test_unreachable_scheduler_is_a_clear_error_within_seconds(tmp_path):
    pytest.importorskip("distributed")
    start = time.monotonic()
    proc = run("--only", "M1", "--no-figures", "--out", str(tmp_path / "o"),
               "--scheduler", "tcp://127.0.0.1:9")
    assert proc.returncode != 0 and "--scheduler" in proc.stderr
    assert time.monotonic() - start < 40  # 10 s connect timeout plus interpreter start-up
