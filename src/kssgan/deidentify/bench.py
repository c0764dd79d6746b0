"""Speed of de-identification: aligned faces/s through G and frames/s for a 640×480 two-face video.

:func:`bench_deidentify` measures, in one run,

* the machine's fp32 matmul peak (GFLOP/s of a square ``torch.matmul``),
* G's FLOPs per face (``torch.utils.flop_counter.FlopCounterMode``),
* aligned faces/s for torch fp32, torch fp32 channels-last, torch bf16 autocast and onnxruntime,
  with the achieved GFLOP/s and its fraction of the matmul peak,
* frames/s of the whole pipeline (YuNet, alignment, G, paste-back) on synthetic 640×480 frames with
  two real faces (Yale when ``../shared/datasets`` is there, else two demo DCGAN faces),
* photos/s of a folder of one-face photos (Yale, else pasted demo faces) end to end through the
  CLI's file loop (:func:`~kssgan.deidentify.files.deidentify_files`: read, detect, G batched across
  photos, paste, write), torch fp32 and bf16, and fp32 photo by photo (the pre-batching behaviour).

Without a checkpoint the default StarGAN generator (``g_conv_dim=64``, ``g_repeat_num=6``) at
128 px with random weights is timed: speed does not depend on the weights.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kssgan.data.labels import LabelSpec
from kssgan.deidentify.backends import OnnxGenerator, TorchGenerator
from kssgan.models import Generator

BENCH_DEFAULTS = {
    "image_size": 128,
    "g_conv_dim": 64,
    "g_repeat_num": 6,
    "num_groups": 10,
    "expressions": ("happy", "neutral", "sad", "sleepy", "surprised", "wink"),
    "batch_size": 8,
    "min_seconds": 3.0,
    "matmul_n": 2048,
    "matmul_repeats": 3,
    "video_frames": 12,
    "frame_size": (640, 480),
    "folder_photos": 16,
}


def _timed(fn: Callable[[], Any], items: int, min_seconds: float, warmup: int = 1) -> float:
    """Items per second of ``fn`` (which processes ``items`` items) over at least ``min_seconds``."""
    for _ in range(warmup):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n * items / elapsed


def matmul_peak_gflops(n: int = 2048, min_seconds: float = 1.0, repeats: int = 3) -> float:
    """Best achieved fp32 GFLOP/s of an n×n @ n×n matmul over ``repeats`` timings (this machine, now)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    per_s = max(_timed(lambda: torch.matmul(a, b), 1, min_seconds, warmup=2) for _ in range(repeats))
    return 2.0 * n**3 * per_s / 1e9


def generator_gflop_per_face(generator: torch.nn.Module, label_dim: int, image_size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x, c = torch.zeros(1, 3, image_size, image_size), torch.zeros(1, label_dim)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        generator(x, c)
    return counter.get_total_flops() / 1e9


def _default_model(cfg: dict[str, Any]) -> tuple[torch.nn.Module, dict[str, Any], dict[str, Any], int]:
    spec = LabelSpec.build(cfg["num_groups"], {"expression": cfg["expressions"]})
    gen = Generator(spec.dim, cfg["g_conv_dim"], cfg["g_repeat_num"], cfg["image_size"]).eval()
    rng = np.random.default_rng(0)
    groups = {
        "k": 3,
        "method": "mdav",
        "recogniser": "sface",
        "seed": 0,
        "identity_to_group": {f"id{i}": i % cfg["num_groups"] for i in range(3 * cfg["num_groups"])},
        "centroids": rng.standard_normal((cfg["num_groups"], 128)).tolist(),
    }
    return gen, spec.to_dict(), groups, cfg["image_size"]


def _load(ckpt_or_model: Any, cfg: dict[str, Any]) -> tuple[torch.nn.Module, dict[str, Any], dict[str, Any], int]:
    if ckpt_or_model is None:
        return _default_model(cfg)
    if isinstance(ckpt_or_model, (str, Path)):
        from kssgan.system import load_kssgan

        ckpt_or_model = load_kssgan(str(ckpt_or_model))
    model = ckpt_or_model
    return model.release_generator().eval(), model.spec.to_dict(), model.groups, int(model.hparams.image_size)


def synthetic_video_frames(n: int, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    """``n`` BGR frames of ``size`` with two faces drifting a few pixels per frame."""
    faces = _two_faces()
    w, h = size
    frames = []
    for t in range(n):
        frame = np.full((h, w, 3), 200, np.uint8)
        for j, face in enumerate(faces):
            fh, fw = face.shape[:2]
            x = min(int(w * (0.08 + 0.5 * j)) + 2 * t, w - fw)  # drifting, never past the frame's edge
            y = min((h - fh) // 2 + (t % 3), h - fh)
            frame[y : y + fh, x : x + fw] = face
        frames.append(frame)
    return frames


def _yale_root() -> Path:
    from kssgan.data.prepare.recipe import shared_data_root

    return shared_data_root() / "yale" / "yalefaces"


def write_photo_folder(n: int, folder: Path) -> list[tuple[Path, str]]:
    """``n`` one-face photos in ``folder`` (Yale GIFs when present, else PNGs of a demo face on a wall),
    as ``(path, relative name)`` like :func:`~kssgan.deidentify.inputs.collect_inputs` gives them."""
    import shutil

    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    root = _yale_root()
    expressions = ("normal", "happy", "sad", "surprised", "sleepy", "wink", "noglasses", "centerlight")
    yale = [root / f"subject{s:02d}.{e}" for e in expressions for s in range(1, 16)]
    yale = [p for p in yale if p.is_file()]
    if len(yale) >= n:
        for p in yale[:n]:
            shutil.copyfile(p, folder / p.name)
    else:
        faces = _two_faces(160)
        for i in range(n):
            face = faces[i % 2]
            photo = np.full((240, 320, 3), 190 + (i % 5), np.uint8)
            fh, fw = face.shape[:2]
            x, y = 80 + (i % 7), (240 - fh) // 2
            photo[y : y + fh, x : x + fw] = face
            cv2.imwrite(str(folder / f"photo{i:03d}.png"), photo)
    return sorted((p, p.name) for p in folder.iterdir())


def _two_faces(side: int = 200) -> list[np.ndarray]:
    import cv2

    from kssgan.data.readers.image_io import load_image

    root = _yale_root()
    paths = [root / "subject02.normal", root / "subject07.normal"]
    if all(p.is_file() for p in paths):
        out = []
        for p in paths:
            img, _ = load_image(p)
            scale = side / img.shape[0]
            out.append(cv2.resize(img, (round(img.shape[1] * scale * 0.7), side), interpolation=cv2.INTER_AREA))
        return out
    from kssgan.data.demo import load_dcgan

    with torch.no_grad():
        imgs = load_dcgan()(torch.randn(2, 100, 1, 1, generator=torch.Generator().manual_seed(0)))
    imgs = ((imgs.clamp(-1, 1) + 1) * 127.5).byte().permute(0, 2, 3, 1).numpy()[:, :, :, ::-1]
    return [cv2.resize(np.ascontiguousarray(i), (side, side), interpolation=cv2.INTER_CUBIC) for i in imgs]


def bench_deidentify(ckpt_or_model: Any = None, **overrides: Any) -> dict[str, Any]:
    """Aligned faces/s (torch fp32, channels-last, bf16, onnxruntime), video frames/s, folder photos/s
    and GFLOP/s vs peak."""
    from kssgan.deidentify.export import export_generator
    from kssgan.deidentify.files import deidentify_files
    from kssgan.deidentify.options import DeidentifyOptions
    from kssgan.deidentify.pipeline import Deidentifier, Frame

    cfg = {**BENCH_DEFAULTS, **overrides}
    gen, spec, groups, size = _load(ckpt_or_model, cfg)
    label_dim = LabelSpec.from_dict(spec).dim
    bs, secs = cfg["batch_size"], cfg["min_seconds"]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (bs, 3, size, size)).astype(np.float32)
    c = np.zeros((bs, label_dim), np.float32)
    c[:, 0] = 1
    peak = matmul_peak_gflops(cfg["matmul_n"], repeats=cfg["matmul_repeats"])
    gflop = generator_gflop_per_face(gen, label_dim, size)
    result: dict[str, Any] = {
        "image_size": size,
        "batch_size": bs,
        "torch_threads": torch.get_num_threads(),
        "matmul_peak_gflops": round(peak, 1),
        "generator_gflop_per_face": round(gflop, 3),
        "faces_per_s": {},
        "gflops": {},
        "fraction_of_peak": {},
    }
    backends: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "torch_fp32": TorchGenerator(gen, "cpu", "fp32", channels_last=False),
        "torch_fp32_channels_last": TorchGenerator(gen, "cpu", "fp32", channels_last=True),
        "torch_bf16": TorchGenerator(gen, "cpu", "bf16", channels_last=True),
    }
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_generator(
            gen.float().to(memory_format=torch.contiguous_format), label_dim, size, Path(tmp) / "g.onnx"
        )
        backends["onnxruntime"] = OnnxGenerator(onnx_path, "cpu")
        for name, fn in backends.items():
            per_s = _timed(lambda fn=fn: fn(x, c), bs, secs)
            result["faces_per_s"][name] = round(per_s, 2)
            result["gflops"][name] = round(per_s * gflop, 1)
            result["fraction_of_peak"][name] = round(per_s * gflop / peak, 3)
        best = max(result["faces_per_s"], key=result["faces_per_s"].get)
        result["best_backend"] = best
        gen.to(memory_format=torch.contiguous_format)
        opts = DeidentifyOptions(batch_size=bs, similarity=False)
        opts.tracker.use_embedding = False
        deid = Deidentifier(backends[best], spec, groups, size, opts, recogniser=None)
        frames = synthetic_video_frames(cfg["video_frames"], cfg["frame_size"])
        chunk = max(1, bs // 2)

        def run_video() -> None:
            tracker = deid.make_tracker()
            for start in range(0, len(frames), chunk):
                deid.process([Frame(f, "bench") for f in frames[start : start + chunk]], tracker, start)

        faces_found = sum(len(r) for _, r in deid.process([Frame(f, "bench") for f in frames[:1]]))
        result["video"] = {
            "frame_size": list(cfg["frame_size"]),
            "faces_per_frame": faces_found,
            "backend": best,
            "frames_per_s": round(_timed(run_video, len(frames), secs, warmup=0), 2),
        }
        # a folder of one-face photos through the CLI's file loop (outputs rewritten each pass)
        n = cfg["folder_photos"]
        files = write_photo_folder(n, Path(tmp) / "photos")
        out = Path(tmp) / "released"
        folder: dict[str, Any] = {"photos": n, "batch_size": bs, "photos_per_s": {}}
        for name, backend, chunk in (
            ("torch_fp32", backends["torch_fp32_channels_last"], None),
            ("torch_bf16", backends["torch_bf16"], None),
            ("torch_fp32_photo_by_photo", backends["torch_fp32_channels_last"], 1),
        ):
            deid.backend = backend

            def run_folder(chunk: int | None = chunk) -> None:
                deidentify_files(deid, files, out, overwrite=True, chunk_files=chunk)

            folder["photos_per_s"][name] = round(_timed(run_folder, n, secs), 2)
        entries = deidentify_files(deid, files, out, overwrite=True)
        folder["faces"] = sum(len(e.get("faces", [])) for e in entries)
        folder["speedup_vs_photo_by_photo"] = round(
            folder["photos_per_s"]["torch_fp32"] / folder["photos_per_s"]["torch_fp32_photo_by_photo"], 2
        )
        result["folder"] = folder
    result["target_faces_per_s"] = 10.0
    result["meets_target"] = result["faces_per_s"][best] >= result["target_faces_per_s"]
    return result


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(bench_deidentify(), indent=1))
