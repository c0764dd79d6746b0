"""The bad-input corpus (tests/bad_inputs.py, generated) through `kssgan deidentify`: each kind of
file ends with its exact outcome, nothing is lost silently (audio, animation frames, alpha), and no
output equals an input byte for byte."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import FACE_KINDS, media_durations, write_bad_media
from PIL import Image

from kssgan.cli import main as kssgan_main
from kssgan.deidentify.policy import EXIT_WITHHELD

pytestmark = pytest.mark.shared_data

STATUSES = {
    "face": ("deidentified", "withheld"),
    "withheld": ("withheld",),
    "skipped": ("skipped", "skipped_unsupported"),
    "failed": ("failed",),
}


def _matching(e: dict) -> int:
    return sum(bool(f.get("match")) for f in e.get("faces", [])) + e.get("still_matching_detections", 0)


@pytest.fixture(scope="module")
def corpus(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("corpus")
    london = shared_datasets / "london" / "neutral_front" / "001_03.jpg"
    yale = shared_datasets / "yale" / "yalefaces" / "subject02.normal"
    crowd = [shared_datasets / "london" / "neutral_front" / f"{i:03d}_03.jpg" for i in range(2, 8)]
    cases = write_bad_media(root / "in", london, yale, root / "outside", crowd)
    return root, cases


@pytest.fixture(scope="module")
def released(deid_ckpt: Path, corpus) -> tuple[int, Path, dict, str]:
    root, _ = corpus
    out = root / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = kssgan_main(["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(root / "in"),
                          "--output", str(out)])  # fmt: skip
    report = json.loads((out / "deidentify-report.json").read_text())
    return rc, out, report, stdout.getvalue()


def test_every_case_has_its_exact_outcome(corpus, released) -> None:
    """A face is found in every face case; it is released de-identified exactly when the recogniser
    check matches none of its output faces, else withheld (fail closed); the rest is withheld for no
    face, skipped or failed with a one-line reason."""
    _, cases = corpus
    rc, out, report, console = released
    by_path = {e["path"]: e for e in report["files"]}
    for kind, (rel, outcome) in cases.items():
        assert rel in by_path, (kind, rel, sorted(by_path))
        e = by_path[rel]
        assert e["status"] in STATUSES[outcome], (kind, e)
        if outcome == "face":
            assert len(e.get("faces", [])) + e.get("face_detections", 0) > 0, kind
            assert e["status"] == ("withheld" if _matching(e) else "deidentified"), (kind, e)
        if e["status"] == "deidentified":
            assert (out / rel).is_file() and (out / rel).stat().st_size > 0, kind
        else:
            assert not (out / rel).exists(), kind
            assert e["reason"] and "\n" not in e["reason"], (kind, e)
        if e["status"] == "withheld":
            assert e["withheld_for"] == ("still_matching" if outcome == "face" else "no_face"), (kind, e)
    assert len(report["files"]) == len(cases) + 1  # and loop_b.jpg, the other link of the loop
    assert not (out / "folder.jpg").is_file()
    withheld = [by_path[rel] for rel, _ in cases.values() if by_path[rel]["status"] == "withheld"]
    no_face = sum(e["withheld_for"] == "no_face" for e in withheld)
    assert no_face == sum(o == "withheld" for _, o in cases.values())
    assert rc == EXIT_WITHHELD
    assert f"{len(withheld)} withheld ({no_face} no face found, {len(withheld) - no_face} still matching)" in console
    assert report["this_run"]["failed"] == sum(o == "failed" for _, o in cases.values())
    released_faces = sum(by_path[rel]["status"] == "deidentified" for rel, o in cases.values() if o == "face")
    assert released_faces >= len([o for _, o in cases.values() if o == "face"]) - 3  # most faces are released


def test_rgb48_wide_and_group_photos(corpus, released) -> None:
    """The 16-bit RGB PNG is read (one face), the 10,000 px wide picture's one face is found far from
    the centre and its output keeps the size, and each of the six faces of the group photo is found."""
    root, _ = corpus
    _, out, report, _ = released
    by_path = {e["path"]: e for e in report["files"]}
    with open(root / "in" / "rgb48.png", "rb") as fh:
        assert fh.read(26)[24:26] == bytes([16, 2])  # IHDR: 16 bits per sample, RGB
    assert len(by_path["rgb48.png"]["faces"]) == 1
    (wide,) = by_path["wide.png"]["faces"]
    assert 7000 <= wide["box"][0] <= 7320
    if by_path["wide.png"]["status"] == "deidentified":
        with Image.open(out / "wide.png") as im:
            assert im.size == (10000, 600)
    six = by_path["six_faces.jpg"]["faces"]
    assert len(six) == 6
    cells = sorted((int(f["box"][0] + f["box"][2] / 2) // 240, int(f["box"][1] + f["box"][3] / 2) // 300) for f in six)
    assert cells == [(c, r) for c in range(3) for r in range(2)]  # one face in each tile


def test_failures_and_skips_say_why(corpus, released) -> None:
    _, cases = corpus
    _, _, report, _ = released
    reason = {
        kind: next(e.get("reason") for e in report["files"] if e["path"] == rel) for kind, (rel, _) in cases.items()
    }
    assert "empty_file" in reason["zero_byte"] and "truncated" in reason["truncated_jpeg"]
    assert "not_an_image" in reason["text_named_jpg"]
    assert reason["symlink_loop"] == "symlink loop" and reason["link_outside_input"] == "link to a file outside --input"
    assert "not a readable video" in reason["corrupt_video"] and "no frame" in reason["zero_frame_video"]
    assert str(corpus[0]) not in reason["corrupt_video"]  # FFmpeg's message, without the folder
    if cases["avif"][1] == "skipped":
        assert reason["avif"].startswith("AVIF cannot be read here")


def test_no_output_equals_an_input(corpus, released) -> None:
    root, cases = corpus
    _, out, report, _ = released
    inputs = {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file() and out not in p.parents
    }
    outputs = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith("deidentify")]
    assert len(outputs) == report["this_run"]["deidentified"] and outputs
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() not in inputs for p in outputs)
    assert all(k in cases for k in FACE_KINDS)


@pytest.fixture(scope="module")
def kept(deid_ckpt: Path, corpus) -> tuple[Path, Path, dict]:
    """The alpha PNG, the animated GIF and the video with audio, released whatever the recogniser says
    (``--on-still-matching keep``), so that what they hold besides the face can be checked."""
    root, _ = corpus
    src, out = root / "kept_in", root / "kept_out"
    src.mkdir()
    for name in ("alpha.png", "animated.gif", "talk.avi"):
        shutil.copyfile(root / "in" / name, src / name)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = kssgan_main(["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src),
                          "--output", str(out), "--on-still-matching", "keep", "--audio", "keep"])  # fmt: skip
    assert rc == 0
    assert "--audio keep: released videos carry their sound" in err.getvalue()  # kept only when asked, warned
    return src, out, json.loads((out / "deidentify-report.json").read_text())


def test_alpha_frames_and_audio_are_kept(kept) -> None:
    src_root, out, report = kept
    by_path = {e["path"]: e for e in report["files"]}
    assert all(e["status"] == "deidentified" for e in report["files"]) and len(by_path) == 3
    with Image.open(src_root / "alpha.png") as src, Image.open(out / "alpha.png") as dst:
        assert dst.mode == "RGBA" and dst.size == src.size
        assert np.array_equal(np.asarray(dst)[:, :, 3], np.asarray(src)[:, :, 3])
        assert not np.array_equal(np.asarray(dst)[:, :, :3], np.asarray(src)[:, :, :3])
    assert by_path["alpha.png"]["alpha"] is True
    with Image.open(out / "animated.gif") as gif:
        assert gif.n_frames == 3
        durations = []
        for i in range(3):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert durations == [80, 90, 100]
    assert by_path["animated.gif"]["frames"] == 3 and by_path["animated.gif"]["face_detections"] >= 3
    src, dst = media_durations(src_root / "talk.avi"), media_durations(out / "talk.avi")
    frame = 1 / src["fps"]
    assert dst["video"] == pytest.approx(src["video"], abs=frame)
    assert dst["audio"] == pytest.approx(src["audio"], abs=frame) and src["audio"] == pytest.approx(0.6, abs=0.01)
    assert by_path["talk.avi"]["audio"] == [{"codec": "pcm_s16le", "kept": "copied", "seconds": pytest.approx(0.6)}]
    assert by_path["talk.avi"]["face_detections"] == 12  # two faces in each of the six frames


def test_the_sound_of_a_video_is_dropped_unless_asked(deid_ckpt: Path, corpus, tmp_path: Path) -> None:
    """A voice identifies a person: by default the released video has no audio stream, and says so."""
    import av

    root, _ = corpus
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copyfile(root / "in" / "talk.avi", src / "talk.avi")
    said, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(err):
        rc = kssgan_main(["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src),
                          "--output", str(out), "--on-still-matching", "keep"])  # fmt: skip
    assert rc == 0 and "WARNING: --audio keep" not in err.getvalue()
    assert "the sound of 1 video(s) was dropped (--audio keep keeps it)" in said.getvalue()
    entry = json.loads((out / "deidentify-report.json").read_text())["files"][0]
    assert entry["audio"] == [{"codec": "pcm_s16le", "kept": "dropped", "seconds": 0.0}]
    with av.open(str(out / "talk.avi")) as c:
        assert len(c.streams.audio) == 0 and c.streams.video[0].frames in (0, 6)
    assert media_durations(out / "talk.avi")["video"] == pytest.approx(media_durations(src / "talk.avi")["video"])


def test_audio_the_container_cannot_take_as_it_is_is_re_encoded(tmp_path: Path) -> None:
    """AAC in an AVI is not copied (the AVI muxer's codecs) but re-encoded to PCM, with its length."""
    from bad_inputs import sine_video

    from kssgan.deidentify.video import _rewrite_video

    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(8)]
    sine_video(tmp_path / "in.avi", frames, audio="aac")
    _rewrite_video(tmp_path / "in.avi", tmp_path / "out.avi", lambda img: 255 - img, {".avi": "MJPG"})
    src, dst = media_durations(tmp_path / "in.avi"), media_durations(tmp_path / "out.avi")
    assert dst["video"] == pytest.approx(src["video"]) and dst["audio"] == pytest.approx(src["audio"], abs=0.1)
    assert src["audio"] == pytest.approx(0.8, abs=0.1)
    import av

    with av.open(str(tmp_path / "out.avi")) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_s16le"


@pytest.mark.parametrize("ext", [".png", ".webp", ".tiff", ".gif"])
def test_the_alpha_channel_survives_the_encoder(tmp_path: Path, ext: str) -> None:
    from kssgan.data.readers.image_io import load_image, sniff_format
    from kssgan.deidentify.cli import encode_image
    from kssgan.deidentify.stills import read_alpha

    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 3] = 200, 90, 255
    rgba[:, :8, 3] = 0
    if ext != ".gif":  # GIF: one transparent colour, no partial alpha
        rgba[:4, :, 3] = 128
    Image.fromarray(rgba).save(tmp_path / f"in{ext}", **({"lossless": True} if ext == ".webp" else {}))
    image, _ = load_image(tmp_path / f"in{ext}")
    fmt = sniff_format((tmp_path / f"in{ext}").read_bytes()[:16])
    alpha = read_alpha(tmp_path / f"in{ext}", fmt, image.shape)
    assert alpha is not None and np.array_equal(alpha, rgba[:, :, 3])
    encode_image(tmp_path / f"out{ext}", 255 - image, fmt, False, ext, alpha)
    with Image.open(tmp_path / f"out{ext}") as out:
        assert np.array_equal(np.asarray(out.convert("RGBA"))[:, :, 3], rgba[:, :, 3])
