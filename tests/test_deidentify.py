"""`kssgan deidentify` on real Yale photos (head and shoulders) with a briefly trained model, and on a video."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from kssgan.cli import main as kssgan_main
from kssgan.data.readers.image_io import load_image
from kssgan.deidentify.blend import face_mask
from kssgan.deidentify.options import DeidentifyOptions, MaskShape
from kssgan.faces.align import similarity_transform

pytestmark = pytest.mark.shared_data

# The default blend mask (DeidentifyOptions().mask) written out, so a change to a hard edge fails here.
REFERENCE_MASK = MaskShape(region="head", reach=1.15, feather=0.3)
PHOTOS = ["subject01.happy", "subject02.sad", "subject14.normal"]  # 14 is outside the model's closed set


@pytest.fixture(scope="module")
def photo_dir(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Yale photos under their original relative paths, a face-less picture and an unreadable file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "yalefaces").mkdir()
    for name in PHOTOS:
        shutil.copyfile(shared_datasets / "yale" / "yalefaces" / name, root / "yalefaces" / name)
    (root / "misc").mkdir()
    wall = np.tile(np.linspace(40, 220, 300, dtype=np.uint8)[None, :, None], (200, 1, 3))
    cv2.imwrite(str(root / "misc" / "wall.png"), wall)
    (root / "misc" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def _run(*args: str) -> int:
    return kssgan_main(["deidentify", "--no-progress", *args])


@pytest.fixture(scope="module")
def first_run(deid_ckpt: Path, photo_dir: Path, shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("released")
    rc = _run(
        "--ckpt", str(deid_ckpt), "--input", str(photo_dir), "--output", str(out),
        "--attributes", str(shared_datasets / "yale" / "labels.csv"), "--identity-column", "subject",
        "--paste-jitter", "0",  # on the source exactly, so that the mask is checked pixel by pixel below
    )  # fmt: skip
    report = json.loads((out / "deidentify-report.json").read_text())
    return rc, out, report


def _entry(report: dict, rel: str) -> dict:
    return next(e for e in report["files"] if e["path"] == rel)


def test_batch_reports_every_file_and_keeps_going_after_a_failure(first_run, photo_dir: Path) -> None:
    rc, out, report = first_run
    assert rc == 3  # the face-less picture was withheld (3 wins over 1: one file failed)
    s = report["summary"]
    assert (s["deidentified"], s["withheld"], s["withheld_no_face"], s["failed"], s["faces"]) == (3, 1, 1, 1, 3)
    assert report["this_run"]["withheld"] == 1 and s["still_matching_released"] == 0
    assert _entry(report, "misc/broken.jpg")["status"] == "failed"
    assert "broken.jpg" in (out / "deidentify.log").read_text()
    # relative paths and basenames kept; the face-less picture is withheld: not in the output
    for name in PHOTOS:
        assert (out / "yalefaces" / name).is_file()
    wall = _entry(report, "misc/wall.png")
    assert (wall["status"], wall["withheld_for"], wall["reason"]) == ("withheld", "no_face", "no face detected")
    assert not (out / "misc" / "wall.png").exists()
    assert not (out / "misc" / "broken.jpg").exists()
    assert not any((out / "misc").iterdir())


@pytest.mark.parametrize(
    ("choice", "status", "same_bytes"),
    [("copy", "no_face", True), ("pixelate", "obscured", False), ("blur", "obscured", False)],
)
def test_on_no_face_opt_outs_are_explicit_and_warned(
    deid_ckpt: Path, photo_dir: Path, tmp_path: Path, capsys, choice: str, status: str, same_bytes: bool
) -> None:
    out = tmp_path / "o"
    rc = _run(
        "--ckpt", str(deid_ckpt), "--input", str(photo_dir / "misc"), "--output", str(out), "--on-no-face", choice
    )
    captured = capsys.readouterr()
    assert rc == 1  # broken.jpg failed; nothing withheld
    assert ("released UNCHANGED" in captured.err) is (choice == "copy")
    entry = _entry(json.loads((out / "deidentify-report.json").read_text()), "wall.png")
    assert entry["status"] == status
    src, dst = (photo_dir / "misc" / "wall.png").read_bytes(), (out / "wall.png").read_bytes()
    assert (src == dst) is same_bytes
    if not same_bytes:  # obscured: the gradient is gone into a few flat blocks or a wide blur
        a, b = load_image(photo_dir / "misc" / "wall.png")[0], load_image(out / "wall.png")[0]
        assert a.shape == b.shape and 0 < np.abs(a.astype(int) - b.astype(int)).mean() < 10


def test_report_has_box_score_group_and_similarity_per_face(first_run, deid_ckpt: Path) -> None:
    import torch

    groups = torch.load(deid_ckpt, weights_only=True)["kssgan"]["groups"]
    _, _, report = first_run
    own = _entry(report, "yalefaces/subject02.sad")["faces"][0]
    assert own["group_source"] == "closed_set" and own["group"] == groups["identity_to_group"]["subject02"]
    assert own["label"]["expression"] == "sad"  # the source expression is kept
    stranger = _entry(report, "yalefaces/subject14.normal")["faces"][0]
    assert stranger["group_source"] == "nearest_centroid"
    for face in (own, stranger):
        _, _, w, h = face["box"]
        assert 40 < w < 200 and 40 < h < 220 and face["score"] > 0.6
        assert -1.0 <= face["similarity"] < 0.9
    assert report["summary"]["mean_similarity"] is not None


@pytest.mark.parametrize("name", PHOTOS[:2])
def test_face_is_replaced_the_rest_is_identical_and_the_blend_has_no_seam(first_run, photo_dir: Path, name: str):
    from kssgan.faces.detect import get_detector

    _, out, _ = first_run
    src, _ = load_image(photo_dir / "yalefaces" / name)
    dst, _ = load_image(out / "yalefaces" / name)
    assert src.shape == dst.shape
    det = get_detector("yunet").detect(src)[0]
    h, w = src.shape[:2]
    mask = face_mask(similarity_transform(det.landmarks, 32), 32, 0.0, REFERENCE_MASK, (0, 0, w, h))
    diff = np.abs(src.astype(np.int16) - dst.astype(np.int16)).max(axis=2)
    x, y, bw, bh = (int(v) for v in det.box)
    assert diff[y + bh // 4 : y + 3 * bh // 4, x + bw // 4 : x + 3 * bw // 4].mean() > 8  # the face changed
    assert (mask == 0).sum() > 10000 and diff[mask == 0].max() == 0  # outside the head region: identical pixels
    ring, core = (mask > 0) & (mask < 0.1), mask > 0.9
    assert diff[ring].mean() < 4 < 20 < diff[core].mean()  # soft border, changed centre
    # no seam: the change grows smoothly across the border (a hard-edged paste gives ~15 here, feather 0.1 ~5)
    step = np.abs(np.diff(dst[:, :, 0].astype(np.float32) - src[:, :, 0], axis=1))
    assert step[ring[:, 1:]].mean() < 2.5


def test_existing_outputs_are_skipped_unless_overwrite(first_run, deid_ckpt: Path, photo_dir: Path) -> None:
    _, out, _ = first_run
    target = out / "yalefaces" / PHOTOS[0]
    before = target.stat().st_mtime_ns
    report = out / "again.json"
    _run("--ckpt", str(deid_ckpt), "--input", str(photo_dir / "yalefaces"), "--output", str(out / "yalefaces"),
         "--report", str(report), "--no-similarity")  # fmt: skip
    assert json.loads(report.read_text())["summary"]["skipped_existing"] == 3
    assert target.stat().st_mtime_ns == before
    # the folder's own report keeps the entries the files were released with
    again = out / "again-root.json"
    rc = _run("--ckpt", str(deid_ckpt), "--input", str(photo_dir), "--output", str(out), "--report", str(again))
    merged = json.loads(again.read_text())
    assert rc == 3 and merged["this_run"]["skipped_existing"] == 3 and merged["summary"]["files"] == 5
    assert merged["summary"]["deidentified"] == 3 and merged["summary"]["faces"] == 3
    assert _entry(merged, f"yalefaces/{PHOTOS[1]}")["faces"][0]["similarity"] is not None
    _run("--ckpt", str(deid_ckpt), "--input", str(photo_dir / "yalefaces"), "--output", str(out / "yalefaces"),
         "--report", str(report), "--no-similarity", "--overwrite")  # fmt: skip
    assert json.loads(report.read_text())["summary"]["deidentified"] == 3
    assert target.stat().st_mtime_ns > before


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image-size", "64"], "works at 32 px"),
        (["--set", "expression=angry"], "this checkpoint knows ['happy'"),
        (["--set", "hair=blond"], "no field 'hair'"),
        (["--identity", "nobody"], "not one of the"),
    ],
)
def test_requests_the_checkpoint_cannot_meet_fail_with_a_clear_message(
    deid_ckpt: Path, photo_dir: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    rc = _run("--ckpt", str(deid_ckpt), "--input", str(photo_dir), "--output", str(tmp_path / "o"), *extra)
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "yalefaces").exists()


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()


def test_video_one_person_keeps_one_group_and_a_missed_face_is_covered(deid_ckpt: Path, tmp_path: Path) -> None:
    from kssgan.deidentify.bench import synthetic_video_frames
    from kssgan.deidentify.pipeline import Deidentifier, Frame

    frames = synthetic_video_frames(6, (640, 480))
    blank = np.random.default_rng(0).integers(0, 256, frames[0].shape, dtype=np.uint8)  # noise: no face
    frames = [*frames[:3], blank, *frames[3:]]
    # in memory: no codec in the way
    deid = Deidentifier.from_checkpoint(deid_ckpt, DeidentifyOptions(batch_size=4))
    tracker = deid.make_tracker()
    results = deid.process([Frame(f, "clip") for f in frames], tracker)
    # frame 3 has no detection: both tracks' last boxes are obscured there, the rest of it is untouched
    assert results[3][1] == [] and tracker.fallbacks == {3: [0, 1]}
    changed = np.abs(results[3][0].astype(int) - blank).max(axis=2) > 0
    lost = [r.box for r in results[2][1]]
    inside = np.zeros_like(changed)
    for x, y, w, h in lost:
        inside[max(0, int(y - 0.4 * h)) : int(y + 1.4 * h), max(0, int(x - 0.4 * w)) : int(x + 1.4 * w)] = True
    assert changed[inside].mean() > 0.5 and not changed[~inside].any()
    per_frame = [[(r.track, r.group) for r in faces] for _, faces in results if faces]
    assert len(per_frame) == 6 and all(len(p) == 2 for p in per_frame)
    assert all(sorted(p) == sorted(per_frame[0]) for p in per_frame)  # same two (track, group) pairs throughout
    assert len(tracker.all_tracks()) == 2
    # through the command line and OpenCV video I/O
    (tmp_path / "in").mkdir()
    _write_video(tmp_path / "in" / "clip.avi", frames)
    rc = _run("--ckpt", str(deid_ckpt), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert rc == 0
    entry = json.loads((tmp_path / "out" / "deidentify-report.json").read_text())["files"][0]
    assert (entry["frames"], entry["frames_with_faces"], entry["face_detections"]) == (7, 6, 12)
    assert entry["status"] == "deidentified" and entry["fallback_frames"] == [3]
    assert [t["frames"] for t in entry["tracks"]] == [6, 6]
    cap = cv2.VideoCapture(str(tmp_path / "out" / "clip.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 7 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640
    cap.release()


def _sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_video_frames_before_the_first_face_are_obscured_unless_copy(deid_ckpt: Path, tmp_path: Path) -> None:
    """Issue 11: a frame with no detection and no live track (here: a face too dark for the detector,
    then noise, before the first face is found) is obscured whole, never written as it was;
    ``--on-no-face copy`` keeps it unchanged."""
    from kssgan.deidentify.bench import synthetic_video_frames
    from kssgan.deidentify.pipeline import Deidentifier, Frame
    from kssgan.deidentify.policy import obscure

    faces = synthetic_video_frames(3, (640, 480))
    dark = (faces[0].astype(np.float32) * 0.02).astype(np.uint8)  # a face YuNet does not find
    noise = np.random.default_rng(1).integers(0, 256, faces[0].shape, dtype=np.uint8)
    frames = [dark, noise, *faces]
    deid = Deidentifier.from_checkpoint(deid_ckpt, DeidentifyOptions(batch_size=4))
    tracker = deid.make_tracker()
    results = deid.process([Frame(f, "clip") for f in frames], tracker)
    assert [len(faces) for _, faces in results] == [0, 0, 2, 2, 2] and tracker.bare_frames == [0, 1]
    assert np.array_equal(results[0][0], obscure(dark, "pixelate"))  # withhold (default): pixelated whole
    assert np.abs(results[1][0].astype(int) - noise).mean() > 40
    assert _sharpness(results[1][0]) < 0.01 * _sharpness(noise)
    deid.options.on_no_face = "blur"
    results = deid.process([Frame(f, "clip") for f in frames[:2]], deid.make_tracker())
    assert np.array_equal(results[0][0], obscure(dark, "blur")) and _sharpness(results[1][0]) < 0.01 * _sharpness(noise)
    deid.options.on_no_face = "copy"  # the explicit opt-out: unchanged
    tracker = deid.make_tracker()
    results = deid.process([Frame(f, "clip") for f in frames[:2]], tracker)
    assert np.array_equal(results[0][0], dark) and np.array_equal(results[1][0], noise)
    assert tracker.bare_frames == [0, 1]
    # through the command line and the video encoder: counted in the report
    (tmp_path / "in").mkdir()
    _write_video(tmp_path / "in" / "clip.avi", frames)
    rc = _run("--ckpt", str(deid_ckpt), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
              "--on-still-matching", "keep")  # fmt: skip
    assert rc == 0
    entry = json.loads((tmp_path / "out" / "deidentify-report.json").read_text())["files"][0]
    assert entry["status"] == "deidentified" and entry["frames_with_faces"] == 3
    assert entry["obscured_frames"] == 2 and entry["obscured_frame_ranges"] == [[0, 1]]
    cap_in, cap_out = (
        cv2.VideoCapture(str(tmp_path / "in" / "clip.avi")),
        cv2.VideoCapture(str(tmp_path / "out" / "clip.avi")),
    )
    pairs = [(cap_in.read()[1], cap_out.read()[1]) for _ in range(2)]
    cap_in.release(), cap_out.release()
    assert _sharpness(pairs[1][1]) < 0.05 * _sharpness(pairs[1][0])
    assert np.abs(pairs[1][1].astype(int) - pairs[1][0]).mean() > 40


def test_bench_reports_every_backend_and_the_two_face_video() -> None:
    from kssgan.deidentify.bench import bench_deidentify

    tiny = dict(image_size=32, g_conv_dim=8, g_repeat_num=1, batch_size=2, min_seconds=0.05, matmul_n=128)
    r = bench_deidentify(**tiny, matmul_repeats=1, video_frames=2, folder_photos=3)
    assert set(r["faces_per_s"]) == {"torch_fp32", "torch_fp32_channels_last", "torch_bf16", "onnxruntime"}
    assert all(v > 0 for v in r["faces_per_s"].values())
    # 7×7 conv (3+16 → 8 channels) alone is 2·49·19·8·32² FLOPs; the whole tiny G is a few times that
    assert 2 * 49 * 19 * 8 * 32**2 / 1e9 < r["generator_gflop_per_face"] < 0.2
    best = r["best_backend"]
    assert r["gflops"][best] == pytest.approx(r["faces_per_s"][best] * r["generator_gflop_per_face"], rel=0.05)
    assert r["video"]["faces_per_frame"] == 2 and r["video"]["frames_per_s"] > 0
    folder = r["folder"]
    assert set(folder["photos_per_s"]) == {"torch_fp32", "torch_bf16", "torch_fp32_photo_by_photo"}
    assert folder["faces"] == folder["photos"] == 3 and all(v > 0 for v in folder["photos_per_s"].values())
