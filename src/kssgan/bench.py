"""``kssgan bench``: speed and memory benchmarks, written as JSON (never timed tests).

Sections (``--only`` picks some):

* ``train``: seconds per training iteration and peak memory of the real :class:`KSSGAN` training
  step (one critic update + one generator update, i.e. ``n_critic = 1``, batch ``--batch``) for
  ``32-true`` and ``bf16-mixed`` (and ``16-mixed`` on a GPU) at 64 and 128 px, with StarGAN's
  default widths; each next to a *plain fp32 eager baseline* of the same networks and losses,
  written the way StarGAN's reference code is (fakes made with a graph in the critic step), and
  measured in the same run. Speed variants report what each gives: channels-last memory format
  and ``torch.compile`` of the generator. Every configuration runs in its own process so that peak
  memory (max RSS on CPU, ``max_memory_allocated`` on CUDA) is its own.
* ``groups``: the same training iteration at 128 px, batch 8, default widths, for 8, 340 and 3,400
  k-Same groups (CelebA at k = 3 has ~3,400), with ``ratio_to_8_groups`` for time and memory: the
  default group embedding should stay flat; ``--conditioning onehot`` measures the paper's
  one-hot form for comparison (it grows with the groups).
* ``prepare``: how ``kssgan prepare`` scales (:mod:`kssgan.data.prepare.benchmark`): London with
  today's code, 1 and 2 workers, alternating; peak RSS from 1,000 to 10,000 CelebA-layout photos;
  MDAV at 10,177 identities; a two-node Ray cluster against one worker.
* ``deidentify``: aligned faces/s (torch fp32, bf16, onnxruntime), video frames/s, GFLOP/s against
  the machine's measured matmul peak.
* ``memory``: peak RSS of ``deidentify`` on a 24 MP photo (bound 2 GB) and a 10,000 × 10,000 image
  (bound 3 GB), each in its own process (:mod:`kssgan.deidentify.membench`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kssgan.job_config import job_parser

DEFAULT_OUT = Path("bench")
SECTIONS = ("train", "prepare", "deidentify", "memory")  # the default of --only


# -- one configuration, in this process ----------------------------------------------------------
def _peak_memory_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _batch(size: int, batch: int, label_dim: int, device: str) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    labels = torch.eye(label_dim)[torch.randint(label_dim, (batch,), generator=g)]
    return {
        "image": (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device),
        "image_pos": (torch.rand(batch, 3, size, size, generator=g) * 2 - 1).to(device),
        "label": labels.to(device),
        "identity": torch.arange(batch).to(device),
    }


def run_kssgan(
    size: int,
    precision: str,
    batch: int,
    steps: int,
    channels_last: bool,
    device: str,
    num_groups: int = 8,
    conditioning: str = "embedding",
) -> dict:
    """The real training step through Lightning (precision plugin, manual optimization)."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, Dataset

    from kssgan.data.labels import LabelSpec
    from kssgan.system import KSSGAN

    spec = LabelSpec.build(num_groups)
    data = _batch(size, batch, spec.dim, "cpu")

    class Repeat(Dataset):
        def __len__(self) -> int:
            return steps + 2

        def __getitem__(self, i: int) -> dict:
            return {k: v[i % batch] for k, v in data.items()}

    model = KSSGAN(
        label_spec=spec.to_dict(),
        image_size=size,
        n_critic=1,
        siamese_mode="frozen",
        channels_last=channels_last,
        group_conditioning=conditioning,
    )
    times: list[float] = []
    cpu_times: list[float] = []  # this process's CPU seconds: steadier than wall time on a shared machine

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if device == "cuda":
                torch.cuda.synchronize()
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t0)
            cpu_times.append(time.process_time() - self.c0)

    trainer = L.Trainer(
        accelerator=device,
        devices=1,
        precision=precision,
        max_steps=2 * (steps + 2),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[Timer()],
    )
    trainer.fit(model, DataLoader(Repeat(), batch_size=batch))
    measured, cpu = times[2:], cpu_times[2:]  # the first iterations warm up allocators and kernels
    return {
        "seconds_per_iteration": sum(measured) / len(measured),
        "cpu_seconds_per_iteration": sum(cpu) / len(cpu),
        "iterations": len(measured),
    }


def run_baseline(size: int, batch: int, steps: int, device: str, compile_generator: bool = False) -> dict:
    """Plain fp32 eager loop of the same networks and losses, StarGAN reference style."""
    import torch

    from kssgan.data.labels import LabelSpec
    from kssgan.losses import domain_classification_loss, gradient_penalty, siamese_similarity
    from kssgan.models import Critic, Generator, SiameseNet

    spec = LabelSpec.build(8)
    G, D, S = (
        Generator(spec.dim, 64, 6, size).to(device),
        Critic(spec.dim, size, 64).to(device),
        SiameseNet().to(device),
    )
    S.requires_grad_(False)
    g_fn = torch.compile(G) if compile_generator else G
    opt_g = torch.optim.Adam(G.parameters(), 1e-4, (0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 1e-4, (0.5, 0.999))
    data = _batch(size, batch, spec.dim, device)
    x, c = data["image"], data["label"]
    times = []
    for i in range(steps + 2):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        c_trg = c[torch.randperm(batch)]
        x_fake = g_fn(x, c_trg)  # with a graph, as the reference code does
        src_r, cls_r = D(x)
        src_f, _ = D(x_fake.detach())
        d_loss = (src_f.mean() - src_r.mean() + domain_classification_loss(cls_r, c, spec)) + 10 * gradient_penalty(
            D.score, x, x_fake
        )
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        x_fake = g_fn(x, c_trg)
        src_f, cls_f = D(x_fake)
        x_rec = g_fn(x_fake, c)
        g_loss = (
            -src_f.mean()
            + domain_classification_loss(cls_f, c_trg, spec)
            + 10 * siamese_similarity(S(x), S(x_rec)).mean()
        )
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return {"seconds_per_iteration": sum(times) / len(times), "iterations": len(times)}


def run_one(cfg: dict) -> dict:
    import torch

    torch.manual_seed(0)
    device = cfg["device"]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if cfg["kind"] == "baseline":
        out = run_baseline(cfg["size"], cfg["batch"], cfg["steps"], device, cfg.get("compile", False))
    else:
        out = run_kssgan(
            cfg["size"],
            cfg["precision"],
            cfg["batch"],
            cfg["steps"],
            cfg["channels_last"],
            device,
            cfg.get("groups", 8),
            cfg.get("conditioning", "embedding"),
        )
    out["peak_memory_mb"] = round(_peak_memory_mb(device), 1)
    out["load_average_1m"] = round(os.getloadavg()[0], 2)  # wall times mean little on a busy machine
    out["peak_memory_kind"] = "cuda max_memory_allocated" if device == "cuda" else "process max RSS"
    return out


# -- the suite ----------------------------------------------------------------------------------
def _subprocess(cfg: dict, timeout: int) -> dict:
    cmd = [sys.executable, "-m", "kssgan.bench", "--one", json.dumps(cfg)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_train(sizes: list[int], batch: int, steps: int, device: str, timeout: int) -> list[dict]:
    from tqdm.auto import tqdm

    precisions = ["32-true", "bf16-mixed"] + (["16-mixed"] if device == "cuda" else [])
    plan: list[dict] = []
    for size in sizes:
        common = {"size": size, "batch": batch, "steps": steps, "device": device}
        plan.append({**common, "kind": "baseline", "name": "baseline fp32 eager (reference style)"})
        for p in precisions:
            plan.append({**common, "kind": "kssgan", "precision": p, "channels_last": False, "name": f"kssgan {p}"})
            plan.append(
                {**common, "kind": "kssgan", "precision": p, "channels_last": True, "name": f"kssgan {p} channels-last"}
            )
        plan.append({**common, "kind": "baseline", "compile": True, "name": "baseline fp32 + torch.compile(G)"})
    results = []
    for cfg in tqdm(plan, desc="bench train"):
        res = {**cfg, **_subprocess(cfg, timeout)}
        results.append(res)
    for res in results:
        base = next(r for r in results if r["size"] == res["size"] and r["name"].startswith("baseline fp32 eager"))
        if "seconds_per_iteration" in res and "seconds_per_iteration" in base:
            res["ratio_to_baseline"] = round(res["seconds_per_iteration"] / base["seconds_per_iteration"], 3)
    return results


GROUP_COUNTS = (8, 340, 3400)


def bench_groups(
    counts: list[int], conditionings: list[str], batch: int, steps: int, device: str, timeout: int, size: int = 128
) -> list[dict]:
    """Training iteration time and peak memory against the number of groups (see the module doc)."""
    from tqdm.auto import tqdm

    results = []
    for conditioning in conditionings:
        for n in tqdm(counts, desc=f"bench groups ({conditioning})"):
            cfg = {
                "kind": "groups",
                "groups": n,
                "conditioning": conditioning,
                "size": size,
                "batch": batch,
                "steps": steps,
                "device": device,
                "precision": "32-true",
                "channels_last": False,
            }
            results.append({**cfg, **_subprocess(cfg, timeout)})
    for res in results:
        base = next((r for r in results if r["conditioning"] == res["conditioning"] and r["groups"] == 8), None)
        if base is None or "seconds_per_iteration" not in res or "seconds_per_iteration" not in base:
            continue
        res["ratio_to_8_groups"] = {
            "time": round(res["seconds_per_iteration"] / base["seconds_per_iteration"], 3),
            "cpu_time": round(res["cpu_seconds_per_iteration"] / base["cpu_seconds_per_iteration"], 3),
            "memory": round(res["peak_memory_mb"] / base["peak_memory_mb"], 3),
        }
    return results


def _optional(section: str, fn_path: str, **kwargs: Any) -> dict:
    import importlib

    module, fn = fn_path.rsplit(":", 1)
    try:
        return getattr(importlib.import_module(module), fn)(**kwargs)
    except Exception as err:  # one section failing must not lose the others
        return {"error": f"{type(err).__name__}: {err}"}


def main(argv: list[str] | None = None) -> int:
    p = job_parser("kssgan bench", __doc__.split("\n\n")[0])
    p.add_argument(
        "--only", "--suite", dest="only", type=str, default=",".join(SECTIONS), help="sections, comma-separated"
    )
    p.add_argument("--sizes", type=str, default="64,128", help="image sizes for the train section")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=4, help="measured iterations per configuration")
    p.add_argument("--device", type=str, default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per configuration")
    p.add_argument("--groups", type=str, default=",".join(map(str, GROUP_COUNTS)), help="group counts (groups section)")
    p.add_argument("--conditioning", type=str, default="embedding", help="groups section: embedding,onehot")
    p.add_argument("--prepare-reps", type=int, default=3, help="prepare section: repetitions per configuration")
    p.add_argument("--prepare-fixture", type=str, default="1000,10000", help="prepare section: CelebA-layout sizes")
    p.add_argument(
        "--prepare-parts",
        type=str,
        default="london,fixture,grouping,ray_cluster",
        help="prepare section: which of its parts run",
    )
    p.add_argument("--out", "--output", dest="out", type=str, default=str(DEFAULT_OUT / "results.json"))
    p.add_argument("--one", type=str, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        },
        "definitions": {
            "iteration": "one critic update + one generator update (n_critic=1), StarGAN default widths",
            "ratio_to_baseline": "seconds_per_iteration / plain fp32 eager baseline at the same size",
            "fraction_of_peak": "deidentify GFLOP/s / fp32 torch.matmul GFLOP/s measured in the same run; above 1 "
            "when the convolution library (oneDNN) outruns the BLAS behind torch.matmul on this CPU",
        },
    }
    if "train" in sections:
        sizes = [int(s) for s in args.sizes.split(",")]
        report["train"] = bench_train(sizes, args.batch, args.steps, device, args.timeout)
    if "groups" in sections:
        report["definitions"]["ratio_to_8_groups"] = (
            "seconds_per_iteration (wall; time), cpu_seconds_per_iteration (this process's CPU time; cpu_time) "
            "and peak_memory_mb / the same conditioning with 8 groups (128 px, batch 8, fp32)"
        )
        counts = [int(n) for n in args.groups.split(",")]
        conds = [c.strip() for c in args.conditioning.split(",") if c.strip()]
        report["groups"] = bench_groups(counts, conds, args.batch, args.steps, device, args.timeout)
    if "prepare" in sections:
        report["prepare"] = _optional(
            "prepare",
            "kssgan.data.prepare.benchmark:bench_prepare_suite",
            reps=args.prepare_reps,
            fixture_sizes=tuple(int(n) for n in args.prepare_fixture.split(",") if n.strip()),
            sections=tuple(s.strip() for s in args.prepare_parts.split(",") if s.strip()),
        )
    if "deidentify" in sections:
        report["deidentify"] = _optional("deidentify", "kssgan.deidentify.bench:bench_deidentify")
    if "memory" in sections:
        report["memory"] = _optional("memory", "kssgan.deidentify.membench:bench_memory")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    _print_summary(report)
    print(f"kssgan bench: wrote {out}")
    return 0


def _print_summary(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    if "groups" in report:
        for r in report["groups"]:
            ratio = r.get("ratio_to_8_groups", {})
            print(
                f"groups={r['groups']} {r['conditioning']}: "
                + (
                    f"{r['seconds_per_iteration']:.3f} s/iter, {r['peak_memory_mb']} MB"
                    if "peak_memory_mb" in r
                    else r.get("error", "?")
                )
                + (f"; × 8 groups: time {ratio['time']}, memory {ratio['memory']}" if ratio else "")
            )
    if "train" not in report:
        return
    table = Table(title="training iteration (critic + generator update)")
    for col in ("size", "configuration", "s/iter", "× baseline", "peak MB"):
        table.add_column(col)
    for r in report["train"]:
        table.add_row(
            str(r["size"]),
            r["name"],
            f"{r['seconds_per_iteration']:.3f}" if "seconds_per_iteration" in r else r.get("error", "?")[:60],
            str(r.get("ratio_to_baseline", "")),
            str(r.get("peak_memory_mb", "")),
        )
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
