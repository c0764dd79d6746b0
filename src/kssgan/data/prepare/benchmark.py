"""``kssgan bench --suite prepare``: how ``kssgan prepare`` scales, measured (JSON in ``bench/``).

Every configuration runs the real command (``python -m kssgan.data.prepare``) in its own process,
on a fresh output folder, and configurations **alternate** within each repetition (the order
rotating from one repetition to the next), so that drift of a shared machine spreads over all
of them. Sections:

* ``london``: ``../shared/datasets/london`` (204 photos, 640 px) with today's ``prepare`` (the
  code of ``baseline_ref``, exported from git into a temporary folder), ``--workers 1`` and
  ``--workers 2``: photos/s over the photo loop (``timing.seconds`` of prepare.json) and end to end
  (the command's wall time, start-up and grouping included), medians and ratios.
* ``fixture``: a CelebA-layout folder (``img_align_celeba/`` at 178×218, ``identity_CelebA.txt``,
  ``list_eval_partition.txt``) of 1,000 and 10,000 photos cut from London's, prepared with
  ``--workers 2``: photos/s and peak RSS of the driver and of each worker, and their growth.
* ``grouping``: exact MDAV of 10,177 identities (CelebA's count; seeded unit vectors, 128-d) in
  this package's form and in the textbook loop, and whether both give the same groups.
* ``ray_cluster``: a two-node Ray cluster on this machine (``ray start --head --num-cpus 1`` and
  ``ray start --address … --num-cpus 1``, each with its own temp dir) prepares London; its
  ``manifest.csv``, ``embeddings.npz`` and ``groups.json`` are compared with ``--workers 1``'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kssgan.data.prepare.recipe import REPO_ROOT, shared_data_root

BASELINE_REF = "41b7580"  # the last commit whose prepare ran in one process
OUTPUTS = ("manifest.csv", "embeddings.npz", "groups.json")


def _export_baseline(ref: str, into: Path) -> Path | None:
    """``src/`` of ``ref`` (git archive), or None when git or the ref is not there."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", ref, "src"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def _run(argv: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One ``prepare`` command in its own process: wall time, its peak RSS, prepare.json's timing."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode not in (0, 1):  # 1: grouping refused (not this benchmark's business)
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    info = json.loads((out / "prepare.json").read_text())
    timing = info["timing"]
    n = info["counts"]["processed_this_run"]
    return {
        "photos": n,
        "ok": info["counts"]["ok"],
        "loop_seconds": timing["seconds"],
        "wall_seconds": round(wall, 3),
        "photos_per_s": round(n / timing["seconds"], 2),
        "photos_per_s_end_to_end": round(n / wall, 2),
        # VmHWM of the driver and of each worker (prepare.json); today's code does not report it
        "driver_peak_rss_mb": timing.get("peak_rss_mb", {}).get("driver"),
        "worker_peak_rss_mb": timing.get("peak_rss_mb", {}).get("workers", []),
        # wait4's ru_maxrss: the largest process of the command, counting what it shared with the
        # benchmark at fork (Linux keeps that across exec): an upper bound, the only one for today's
        "largest_process_peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "stage_seconds": timing.get("stage_seconds", {}),
        "driver_cpu_seconds": timing.get("driver_cpu_seconds"),
        "driver_cpu_ms_per_photo": round(1000 * timing["driver_cpu_seconds"] / n, 3)
        if n and timing.get("driver_cpu_seconds") is not None
        else None,
    }


def _prepare_argv(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "kssgan.data.prepare", "--data-dir", str(data), "--prepared-dir", str(out)]


def _london_argv(out: Path, workers: int | None) -> list[str]:
    argv = _prepare_argv(shared_data_root() / "london", out)
    argv += ["--labels-csv", "labels.csv", "--protocol", "closed_set", "--k", "3", "--no-progress"]
    return argv + (["--workers", str(workers)] if workers else [])


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return round(statistics.median(values), 2) if values else None


def bench_london(reps: int, baseline_ref: str, tmp: Path) -> dict[str, Any]:
    baseline_src = _export_baseline(baseline_ref, tmp / "baseline")
    configs: dict[str, tuple[list[str] | None, dict[str, str] | None]] = {}
    if baseline_src is not None:
        env = {**os.environ, "PYTHONPATH": str(baseline_src)}
        configs[f"today ({baseline_ref})"] = (None, env)  # the old code: no --workers flag
    configs["workers=1"] = (["1"], None)
    configs["workers=2"] = (["2"], None)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    names = list(configs)
    # one unrecorded warm-up of each (page cache, converted-model cache)
    for rep in range(-1, reps):
        order = names[rep % len(names) :] + names[: rep % len(names)] if rep >= 0 else names
        for name in order:
            workers, env = configs[name]
            out = tmp / f"london-{abs(hash(name)) % 10_000}-{rep}"
            result = _run(_london_argv(out, int(workers[0]) if workers else None), out, env)
            shutil.rmtree(out, ignore_errors=True)
            if rep >= 0:
                runs[name].append(result)
    summary = {
        name: {
            "photos_per_s": _median(r, "photos_per_s"),
            "photos_per_s_end_to_end": _median(r, "photos_per_s_end_to_end"),
            "driver_peak_rss_mb": _median([x for x in r if x.get("driver_peak_rss_mb")], "driver_peak_rss_mb"),
            "largest_process_peak_rss_mb": _median(r, "largest_process_peak_rss_mb"),
            "worker_peak_rss_mb": max(
                (max(x["worker_peak_rss_mb"], default=0) for x in r if "worker_peak_rss_mb" in x), default=None
            ),
            "runs": r,
        }
        for name, r in runs.items()
    }
    ratios: dict[str, Any] = {}
    for key in ("photos_per_s", "photos_per_s_end_to_end"):
        w1, w2 = summary["workers=1"][key], summary["workers=2"][key]
        ratios[f"workers2_over_workers1[{key}]"] = round(w2 / w1, 3) if w1 and w2 else None
        if baseline_src is not None:
            today = summary[f"today ({baseline_ref})"][key]
            ratios[f"workers1_over_today[{key}]"] = round(w1 / today, 3) if w1 and today else None
            ratios[f"workers2_over_today[{key}]"] = round(w2 / today, 3) if w2 and today else None
    return {
        "dataset": str(shared_data_root() / "london"),
        "repetitions": reps,
        "configurations": summary,
        "ratios": ratios,
    }


def make_celeba_fixture(root: Path, photos: int, seed: int = 0) -> Path:
    """A CelebA-layout folder of ``photos`` 178×218 JPEGs (two per identity, identity-disjoint
    partition) cut from London's photos with a small random shift and gain, so every file differs."""
    import cv2
    import numpy as np

    sources = sorted((shared_data_root() / "london").glob("*_front/*.jpg"))
    if not sources:
        raise FileNotFoundError(f"no London photos under {shared_data_root() / 'london'}")
    faces = []
    for path in sources:
        img = cv2.imread(str(path))
        h, w = img.shape[:2]  # London is 640x640 with the face in the middle: CelebA-like framing
        y0, x0 = int(h * 0.12), int(w * 0.18)
        faces.append(img[y0 : y0 + int(h * 0.78), x0 : x0 + int(w * 0.64)])
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ident_lines, part_lines = [], []
    for i in range(photos):
        name = f"{i + 1:06d}.jpg"
        ident = i // 2 + 1
        face = faces[(ident * 7 + i % 2) % len(faces)]
        shift = np.float32([[1, 0, rng.uniform(-4, 4)], [0, 1, rng.uniform(-4, 4)]])
        moved = cv2.warpAffine(face, shift, (face.shape[1], face.shape[0]), borderMode=cv2.BORDER_REFLECT)
        small = cv2.resize(moved, (178, 218), interpolation=cv2.INTER_AREA)
        small = np.clip(small.astype(np.float32) * rng.uniform(0.9, 1.1), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "img_align_celeba" / name), small, [cv2.IMWRITE_JPEG_QUALITY, 90])
        ident_lines.append(f"{name} {ident}")
        part_lines.append(f"{name} {1 if ident % 10 == 8 else 2 if ident % 10 == 9 else 0}")
    (root / "identity_CelebA.txt").write_text("\n".join(ident_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part_lines) + "\n")
    return root


def bench_fixture(sizes: list[int], tmp: Path, reps: int = 2) -> dict[str, Any]:
    """The smallest size with ``--workers 1`` and ``--workers 2`` alternating (``reps`` each), every
    size with ``--workers 2`` (the first of those runs is the growth baseline)."""
    out: dict[str, Any] = {"layout": "CelebA (img_align_celeba 178x218, identity_CelebA.txt, list_eval_partition.txt)"}
    rows = []
    for i, n in enumerate(sizes):
        root = make_celeba_fixture(tmp / f"celeba-{n}", n)
        plan = [w for _ in range(reps) for w in (1, 2)] if i == 0 else [2]
        for j, workers in enumerate(plan):
            dest = tmp / f"celeba-{n}-prepared-{j}"
            argv = [*_prepare_argv(root, dest), "--reader", "celeba", "--k", "3", "--no-progress"]
            result = _run([*argv, "--workers", str(workers)], dest)
            result["fixture_photos"], result["workers"] = n, workers
            rows.append(result)
            shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    out["runs"] = rows
    first = [r for r in rows if r.get("fixture_photos") == sizes[0]]
    for key in ("photos_per_s", "photos_per_s_end_to_end"):
        w1 = _median([r for r in first if r["workers"] == 1], key)
        w2 = _median([r for r in first if r["workers"] == 2], key)
        out[f"workers2_over_workers1[{key}]"] = round(w2 / w1, 3) if w1 and w2 else None
    two = [r for r in rows if r.get("workers") == 2 and r.get("driver_peak_rss_mb")]
    if len({r["fixture_photos"] for r in two}) >= 2:
        small, big = two[0], two[-1]
        out["growth"] = {
            "from_to_photos": [small["fixture_photos"], big["fixture_photos"]],
            "driver_peak_rss": round(big["driver_peak_rss_mb"] / small["driver_peak_rss_mb"], 3),
            "worker_peak_rss": round(max(big["worker_peak_rss_mb"]) / max(small["worker_peak_rss_mb"]), 3),
        }
    out["projection"] = project_celeba(out)
    return out


CELEBA_PHOTOS = 202_599


def project_celeba(fixture: dict[str, Any], cores: tuple[int, ...] = (2, 16, 64)) -> dict[str, Any]:
    """CelebA's time on more cores, from the fixture's largest ``--workers 2`` run: photos/s per core
    with every core busy, capped by what the one writer can take (1000 / its CPU ms per photo).
    A projection: linear in cores up to that cap, with this machine's per-core speed."""
    runs = [r for r in fixture.get("runs", []) if r.get("workers") == 2 and r.get("photos_per_s")]
    if not runs:
        return {}
    big = max(runs, key=lambda r: r["fixture_photos"])
    per_core = big["photos_per_s"] / 2
    writer_ms = big.get("driver_cpu_ms_per_photo")
    cap = 1000.0 / writer_ms if writer_ms else None
    out: dict[str, Any] = {
        "basis": f"{big['fixture_photos']} CelebA-layout photos, --workers 2",
        "photos_per_s_per_core": round(per_core, 2),
        "writer_cpu_ms_per_photo": writer_ms,
        "writer_cap_photos_per_s": round(cap, 1) if cap else None,
    }
    for n in cores:
        rate = per_core * n if cap is None else min(per_core * n, cap)
        out[f"celeba_{CELEBA_PHOTOS}_photos_minutes_on_{n}_cores"] = round(CELEBA_PHOTOS / rate / 60, 1)
    return out


def bench_grouping(identities: int = 10_177, k: int = 3, reference: bool = True) -> dict[str, Any]:
    import numpy as np

    from kssgan.data.grouping import _l2, _mdav, _mdav_reference

    x = _l2(np.random.default_rng(0).normal(size=(identities, 128)))
    t0 = time.perf_counter()
    groups = _mdav(x, k)
    fast = time.perf_counter() - t0
    out: dict[str, Any] = {"identities": identities, "k": k, "groups": len(groups), "seconds": round(fast, 3)}
    if reference:
        t0 = time.perf_counter()
        ref = _mdav_reference(x, k)
        out["reference_seconds"] = round(time.perf_counter() - t0, 3)
        out["same_groups_as_reference"] = [sorted(g) for g in groups] == [sorted(g) for g in ref]
    small = _l2(np.random.default_rng(1).normal(size=(identities // 4, 128)))
    t0 = time.perf_counter()
    _mdav(small, k)
    quarter = time.perf_counter() - t0
    out["seconds_at_quarter_size"] = round(quarter, 3)
    out["scaling_exponent"] = round(float(np.log(fast / quarter) / np.log(4)), 2) if quarter > 0 else None
    return out


def _ray(*args: str) -> subprocess.CompletedProcess:
    ray = Path(sys.executable).with_name("ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([str(ray), *args], capture_output=True, text=True, env=env, timeout=300)


def _digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16] for name in OUTPUTS}


def bench_ray_cluster(tmp: Path, port: int = 6391) -> dict[str, Any]:
    """London on a two-node Ray cluster started with the ``ray`` command, against ``--workers 1``."""
    head, second = Path(tempfile.mkdtemp(prefix="krh-")), Path(tempfile.mkdtemp(prefix="krw-"))
    started = _ray(
        "start", "--head", f"--port={port}", "--num-cpus=1", f"--temp-dir={head}", "--include-dashboard=false"
    )
    if started.returncode != 0:
        return {"error": f"ray start --head: {started.stderr.strip()[-300:]}"}
    try:
        joined = _ray("start", f"--address=127.0.0.1:{port}", "--num-cpus=1", f"--temp-dir={second}")
        if joined.returncode != 0:
            return {"error": f"ray start --address: {joined.stderr.strip()[-300:]}"}
        time.sleep(3)
        one = tmp / "london-one-worker"
        single = _run(_london_argv(one, 1), one)
        on_ray = tmp / "london-ray"
        env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"}
        cluster = _run(_london_argv(on_ray, None), on_ray, env)
        info = json.loads((on_ray / "prepare.json").read_text())
        return {
            "nodes": info["timing"].get("ray_nodes"),
            "commands": [
                f"ray start --head --port={port} --num-cpus=1 --temp-dir=<dir1>",
                f"ray start --address=127.0.0.1:{port} --num-cpus=1 --temp-dir=<dir2>",
                f"RAY_ADDRESS=127.0.0.1:{port} kssgan prepare --config data_modules/london.yaml",
            ],
            "workers_1": {k: single.get(k) for k in ("photos_per_s", "wall_seconds")},
            "ray": {k: cluster.get(k) for k in ("photos_per_s", "wall_seconds")},
            "sha256_workers_1": _digest(one),
            "sha256_ray": _digest(on_ray),
            "identical": _digest(one) == _digest(on_ray),
        }
    finally:
        _ray("stop", "--force")
        shutil.rmtree(head, ignore_errors=True)
        shutil.rmtree(second, ignore_errors=True)


def bench_prepare_suite(
    reps: int = 3,
    fixture_sizes: tuple[int, ...] = (1000, 10_000),
    baseline_ref: str = BASELINE_REF,
    sections: tuple[str, ...] = ("london", "fixture", "grouping", "ray_cluster"),
) -> dict[str, Any]:
    """Every section above (each one's failure is recorded, not raised); a missing London → skipped."""
    if not (shared_data_root() / "london").is_dir():
        return {"skipped": f"no data at {shared_data_root() / 'london'} (set KSSGAN_SHARED_DATA)"}
    out: dict[str, Any] = {"cores": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory(prefix="kssgan-bench-prepare-") as tmp_name:
        tmp = Path(tmp_name)
        steps = {
            "london": lambda: bench_london(reps, baseline_ref, tmp),
            "fixture": lambda: bench_fixture(list(fixture_sizes), tmp),
            "grouping": bench_grouping,
            "ray_cluster": lambda: bench_ray_cluster(tmp),
        }
        for name in sections:
            t0 = time.perf_counter()
            try:
                out[name] = steps[name]()
            except Exception as err:  # one section failing must not lose the others
                out[name] = {"error": f"{type(err).__name__}: {err}"}
            out[name]["section_seconds"] = round(time.perf_counter() - t0, 1)
            print(f"kssgan bench prepare: {name} done in {out[name]['section_seconds']} s", file=sys.stderr)
    return out


__all__ = ["bench_prepare_suite", "make_celeba_fixture"]
