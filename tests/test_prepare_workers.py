"""`kssgan prepare` on every core and on a Ray cluster: the same output as one worker, byte for byte;
a killed worker or a killed driver loses nothing and lists nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kssgan.data.prepare import prepare_dataset

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
YALE = {"max_identities": 4}  # subjects 01-04: 43 photos
N_YALE = 43
OUTPUTS = ("manifest.csv", "embeddings.npz", "groups.json")


def _prepare(raw: Path, out: Path, **kw) -> dict:
    return prepare_dataset(raw, out, k=2, reader_options=YALE, progress=False, quiet=True, **kw)


def _same_folder(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    crops_a = sorted(p.relative_to(a) for p in (a / "crops").rglob("*.png"))
    crops_b = sorted(p.relative_to(b) for p in (b / "crops").rglob("*.png"))
    assert crops_a == crops_b and len(crops_a) > 30
    assert all((a / c).read_bytes() == (b / c).read_bytes() for c in crops_a)


@pytest.fixture(scope="module")
def one_worker(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("w1") / "yale"
    summary = _prepare(shared_datasets / "yale", out, workers=1, chunk_size=5)
    assert summary["timing"]["backend"] == "inline" and summary["counts"]["sources"] == N_YALE
    return out


def test_two_worker_processes_write_what_one_worker_writes(one_worker: Path, shared_datasets: Path, tmp_path):
    out = tmp_path / "yale"
    summary = _prepare(shared_datasets / "yale", out, workers=2, chunk_size=3)
    _same_folder(one_worker, out)
    timing = summary["timing"]
    assert timing["backend"] == "processes" and timing["workers"] == 2
    assert len(timing["peak_rss_mb"]["workers"]) == 2  # both processes did work
    assert all(100 < mb < 1500 for mb in timing["peak_rss_mb"]["workers"])


def _cli(out: Path, shared: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "kssgan.data.prepare", "--dataset", "folder", "--data-dir", str(shared / "yale")]
    argv += ["--prepared-dir", str(out), "--k", "2", "--max-identities", "4", "--no-progress", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for_rows(manifest: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        if manifest.is_file() and manifest.read_text().count("\n") > n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} rows in {manifest} (exit {proc.poll()})")


def test_a_killed_worker_loses_no_photo_and_lists_none_twice(one_worker: Path, shared_datasets: Path, tmp_path):
    out = tmp_path / "yale"
    proc = _cli(out, shared_datasets, "--workers", "2", "--chunk-size", "2")
    _wait_for_rows(out / "manifest.csv", 4, proc)
    workers = [p for p in _children(proc.pid) if "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()]
    assert workers, "no worker process found"
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    _same_folder(one_worker, out)  # nothing lost, nothing twice, no photo recorded as crashed


def test_a_killed_driver_resumes_without_redoing_or_doubling(one_worker: Path, shared_datasets: Path, tmp_path):
    out = tmp_path / "yale"
    proc = _cli(out, shared_datasets, "--workers", "2", "--chunk-size", "2")
    _wait_for_rows(out / "manifest.csv", 6, proc)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)  # kill -9 of the driver mid-run
    proc.wait(timeout=30)
    end = time.monotonic() + 10
    while time.monotonic() < end and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "worker processes outlived their driver"
    journal = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    done = len(journal)
    assert 6 <= done < N_YALE and journal["source"].is_unique
    again = _cli(out, shared_datasets, "--workers", "2")  # the same command again
    assert again.wait(timeout=300) == 0, again.stderr.read()
    summary = json.loads((out / "prepare.json").read_text())
    assert summary["counts"]["resumed"] == done and summary["counts"]["processed_this_run"] == N_YALE - done
    _same_folder(one_worker, out)


def test_workers_that_cannot_start_say_why_in_one_line(shared_datasets: Path, tmp_path):
    proc = _cli(
        tmp_path / "out", shared_datasets, "--workers", "2", "--detector", "insightface", "--model-dir", str(tmp_path)
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "could not start" in lines[0] and "insightface" in lines[0].lower(), err


def test_a_two_node_ray_cluster_writes_what_one_worker_writes(one_worker: Path, shared_datasets: Path, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        out = tmp_path / "yale"
        summary = _prepare(shared_datasets / "yale", out, ray_address=cluster.address, chunk_size=2)
        assert summary["timing"]["backend"] == "ray" and summary["timing"]["ray_nodes"] == 2
        _same_folder(one_worker, out)
        assert json.loads((out / "prepare.json").read_text())["counts"]["ok"] == summary["counts"]["ok"]
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_chunk_sizes_and_the_one_line_errors_of_the_options(shared_datasets: Path, tmp_path, capsys):
    from kssgan.data.prepare.cli import main
    from kssgan.data.prepare.workers import chunk_size_for

    assert chunk_size_for(204, 2) == 7 and chunk_size_for(10, 8) == 4 and chunk_size_for(202_599, 64) == 32
    base = ["--dataset", "folder", "--data-dir", str(shared_datasets / "yale"), "--prepared-dir", str(tmp_path)]
    assert main([*base, "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_mdav_at_scale_is_the_textbook_mdav() -> None:
    from kssgan.data.grouping import _l2, _mdav, _mdav_reference

    rng = np.random.default_rng(0)
    for n, k in ((7, 3), (300, 3), (1000, 5), (999, 2)):
        x = _l2(rng.normal(size=(n, 32)))
        assert [sorted(g) for g in _mdav(x, k)] == [sorted(g) for g in _mdav_reference(x, k)]
    dup = _l2(rng.normal(size=(30, 8)))[rng.integers(0, 30, 200)]  # exact ties everywhere
    for k in (2, 3, 4):
        groups = _mdav(dup, k)
        assert [sorted(g) for g in groups] == [sorted(g) for g in _mdav_reference(dup, k)]
        assert sorted(i for g in groups for i in g) == list(range(200))
        assert all(k <= len(g) <= 2 * k - 1 for g in groups)


def _crash_on_poison(spec, rows):  # runs in a spawned worker: module-level, so it pickles by name
    from kssgan.data.prepare.processing import ChunkResult

    if any(r["source"] == "poison" for r in rows):
        os._exit(13)  # what a decoder segfault looks like to the pool
    return ChunkResult([{**r, "status": "ok", "reason": ""} for r in rows], pid=os.getpid())


def _always_crash(spec, rows):
    os._exit(13)


def test_a_photo_that_kills_its_worker_is_recorded_and_the_rest_released() -> None:
    from kssgan.data.prepare.workers import CRASHED, WorkersFailed, WorkerSpec, _run_processes

    spec = WorkerSpec("/nowhere", 32, 0.0, 24.0, "yunet", "sface", 0.6)
    rows = [{"source": f"p{i:02d}", "identity": str(i % 5)} for i in range(23)]
    rows.insert(11, {"source": "poison", "identity": "0"})
    chunks = [rows[i : i + 4] for i in range(0, len(rows), 4)]
    results = list(_run_processes(spec, iter(chunks), 2, work=_crash_on_poison))
    out = [r for res in results for r in res.rows]
    assert sorted(r["source"] for r in out) == sorted(r["source"] for r in rows)  # each once, none lost
    by_source = {r["source"]: r for r in out}
    assert by_source["poison"]["status"] == "skipped" and by_source["poison"]["reason"] == CRASHED
    assert all(r["status"] == "ok" for s, r in by_source.items() if s != "poison")  # innocents redone, released
    with pytest.raises(WorkersFailed, match="died in a row"):
        list(_run_processes(spec, iter(chunks), 2, work=_always_crash))
