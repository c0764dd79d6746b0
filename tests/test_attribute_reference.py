"""`deidentify --attribute-reference person`: attributes read against the person's own photos.

A stand-in critic scores "smiling" by the crop's brightness, so the known answers follow from the
photos' grey levels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from kssgan.deidentify.attributes import CriticAttributeEstimator, relative_scores
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions
from kssgan.deidentify.pipeline import Deidentifier, Frame
from kssgan.evaluate.pipeline import EvalSettings, _deidentify_fields, release_masks
from kssgan.evaluate.release_level import release_photos
from kssgan.faces.align import template
from kssgan.faces.detect import Detection
from tests.test_deidentify_parts import GROUPS

SPEC = {
    "fields": [
        {"name": "group", "kind": "onehot", "values": ["0", "1"]},
        {"name": "expression", "kind": "onehot", "values": ["neutral", "smiling"]},
    ]
}
LANDMARKS = template(112) * 0.5 + [28, 28]  # a face well inside a 112 px photo


class BrightCritic(torch.nn.Module):
    """Scores [group 0, group 1, neutral, smiling] = [0, 0, 0, 40 × the crop's mean in [-1, 1]]."""

    def forward(self, x: torch.Tensor) -> tuple[None, torch.Tensor]:
        smile = 40.0 * x.mean(dim=(1, 2, 3))
        zeros = torch.zeros_like(smile)
        return None, torch.stack([zeros, zeros, zeros, smile], dim=1)


class OneFace:
    def detect(self, image: np.ndarray) -> list[Detection]:
        return [Detection((10.0, 10.0, 90.0, 90.0), LANDMARKS, 0.99)]


def _deidentifier(reference: str, recipe: str | None = None) -> Deidentifier:
    from kssgan.data.labels import LabelSpec

    def backend(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.zeros_like(images)

    options = DeidentifyOptions(attribute_reference=reference, margin=0.0, detector="yunet", similarity=False)
    options.tracker.use_embedding = False
    estimator = CriticAttributeEstimator(BrightCritic(), LabelSpec.from_dict(SPEC))
    return Deidentifier(
        backend, SPEC, GROUPS, 32, options, detector=OneFace(), attribute_estimator=estimator,
        release_attribute_reference=recipe,
    )  # fmt: skip


def _photo(level: int) -> np.ndarray:
    return np.full((112, 112, 3), level, np.uint8)


# person a: two photos the critic reads smiling (scores ≈ +3.9 and +10.2: ±3.15 about a's mean, more
# than a margin); person b: one photo read neutral (≈ −8.6). The release's mean is smiling.
PHOTOS = [(_photo(140), "a"), (_photo(160), "a"), (_photo(100), "b")]


def _labels(deid: Deidentifier) -> list[str]:
    frames = [Frame(img, key=f"p{i}", identity=who) for i, (img, who) in enumerate(PHOTOS)]
    deid.observe_people(frames)
    return [deid.process([f])[0][1][0].label["expression"] for f in frames]


def test_population_reference_is_the_critics_own_reading() -> None:
    assert _labels(_deidentifier("population")) == ["smiling", "smiling", "neutral"]


def test_person_reference_reads_each_photo_against_the_persons_photos() -> None:
    """a's photos both look smiling, but only the one smiling more than a's mean is released smiling;
    b's single photo has nothing to be read against and gets the release's most read value."""
    deid = _deidentifier("person")
    assert _labels(deid) == ["neutral", "smiling", "smiling"]
    assert deid.observe_people([]) == 0 and set(deid._people) == {"a", "b"}


def test_relative_scores_keep_a_change_beyond_the_margin_else_the_reference_value() -> None:
    from kssgan.data.labels import LabelSpec

    spec = LabelSpec.from_dict({"fields": [*SPEC["fields"], {"name": "glasses", "kind": "binary"}]})
    est = CriticAttributeEstimator(BrightCritic(), spec)
    rows = np.array([[0.0, 0, 0, 6, 5], [0.0, 0, 0, 0, 5]])  # smiling by 6 in one photo; glasses in both
    mean, population = rows.mean(0), np.array([0.0, 0, 0, 1, -1])  # the release: smiling, no glasses
    read = [est.decide(relative_scores(r, mean, population, spec, 2.0)[None])[0] for r in rows]
    assert read == [{"expression": "smiling", "glasses": 0}, {"expression": "neutral", "glasses": 0}]
    wide = [est.decide(relative_scores(r, mean, population, spec, 4.0)[None])[0]["expression"] for r in rows]
    assert wide == ["smiling", "smiling"]  # 3 about the mean is within a margin of 4: the reference value
    lone = relative_scores(rows[1], rows[1], np.zeros(5), spec, 2.0)
    assert est.decide(lone[None])[0] == {"expression": "neutral", "glasses": 0}  # no release mean: first value


def test_auto_is_the_recipes_reference_and_reads_a_photo_of_no_known_person_by_the_critic() -> None:
    """``auto`` (the default) takes the checkpoint's release_attribute_reference; with the recipe's
    ``person``, a photo whose person is unknown is read as the critic reads it (not refused), and the
    report says how each face was read."""
    assert DeidentifyOptions().attribute_reference == "auto"
    assert _deidentifier("auto").options.attribute_reference == "population"
    deid = _deidentifier("auto", recipe="person")
    assert deid.options.attribute_reference == "person" and deid.reference_from_recipe
    assert _labels(deid) == ["neutral", "smiling", "smiling"]  # as the explicit person reading
    [(_, [face])] = deid.process([Frame(_photo(140), key="p9")])  # no person: the critic's reading
    assert face.label["expression"] == "smiling" and face.to_dict()["estimated_against"] == "population"
    [(_, [face])] = deid.process([Frame(_photo(140), key="p0", identity="a")])
    assert face.label["expression"] == "neutral" and face.to_dict()["estimated_against"] == "person"
    assert not _deidentifier("person", recipe="population").reference_from_recipe  # the user's choice wins


def test_person_reference_needs_each_photos_person() -> None:
    deid = _deidentifier("person")
    with pytest.raises(DeidentifyError, match="p9: --attribute-reference person"):
        deid.process([Frame(_photo(140), key="p9")])
    with pytest.raises(DeidentifyError, match="attribute-reference"):
        DeidentifyOptions(attribute_reference="group").check()
    with pytest.raises(DeidentifyError, match="attribute-margin"):
        DeidentifyOptions(attribute_margin=-1.0).check()


def test_a_video_track_is_read_against_its_own_frames_so_far() -> None:
    deid = _deidentifier("person")
    tracker = deid.make_tracker()
    levels = [100, 100, 100, 100, 160, 160, 160, 160]
    got = []
    for t, level in enumerate(levels):
        [(_, [face])] = deid.process([Frame(_photo(level), key=f"f{t}")], tracker, t)
        got.append(face.label["expression"])
    # a frame level with the track's mean so far reads as the field's first value (a video has no
    # release mean); the smile reads as one against the neutral frames before it (by 12-15, beyond
    # the margin), and the label changes once it has held for 3 frames (LABEL_HYSTERESIS)
    assert got == ["neutral"] * 6 + ["smiling"] * 2
    assert deid._track_scores and deid.make_tracker() is not None and not deid._track_scores


def test_a_video_read_first_reads_each_track_against_the_whole_of_itself() -> None:
    """Smiling for 8 frames, then neutral for 4: read as it goes, the first frames have nothing to be
    read against (neutral) and the smile is the track's level (still neutral); read first
    (deidentify's video pass), the smile is above the track's mean from the first frame."""
    levels = [160] * 8 + [100] * 4
    got = {}
    for first in (False, True):
        deid = _deidentifier("person")
        tracker = deid.make_tracker()
        if first:
            assert deid.observe_tracks([_photo(v) for v in levels]) == 1
        labels = []
        for t, level in enumerate(levels):
            [(_, [face])] = deid.process([Frame(_photo(level), key=f"f{t}")], tracker, t)
            labels.append(face.label["expression"])
        got[first] = labels
    assert got[False] == ["neutral"] * 12
    assert got[True] == ["smiling"] * 10 + ["neutral"] * 2  # the change holds after 3 frames


def test_one_label_per_track_is_the_whole_tracks_reading_for_every_frame() -> None:
    """``video_labels: track``: smiling for 8 frames, then neutral for 4, read once first. The critic's
    own reading of the track's mean (level 140: smiling) holds for all 12 frames; read against the
    person, a track at its own mean is its reference value (a video has no release mean: the first,
    neutral). Either way the label never changes, so G draws one face throughout."""
    levels = [160] * 8 + [100] * 4
    got = {}
    for reference in ("population", "person"):
        deid = _deidentifier(reference)
        deid.options.video_labels = "track"
        assert deid.reads_tracks_first
        tracker = deid.make_tracker()
        assert deid.observe_tracks([_photo(v) for v in levels]) == 1
        out = deid.process([Frame(_photo(v), key=f"f{t}") for t, v in enumerate(levels)], tracker)
        got[reference] = [faces[0].label["expression"] for _, faces in out]
    assert got == {"population": ["smiling"] * 12, "person": ["neutral"] * 12}
    assert not _deidentifier("population").reads_tracks_first  # frame labels read a video as it goes
    with pytest.raises(DeidentifyError, match="--video-labels 'scene' is not one of"):
        DeidentifyOptions(video_labels="scene").check()


def test_a_new_video_forgets_the_last_videos_tracks() -> None:
    deid = _deidentifier("population")
    deid._track_jitter[0] = np.ones(4)
    deid._track_labels[0] = ({"expression": "smiling"}, {})
    deid._track_reference[0] = np.zeros(4)
    deid.make_tracker()
    assert not deid._track_jitter and not deid._track_labels and not deid._track_reference


def test_evaluate_labels_person_is_deidentifys_person_reference() -> None:
    (_, default), (_, person), (_, own) = release_masks(
        EvalSettings(release_sweep=["labels=person", "labels=population"])
    )
    assert "attribute_reference" not in _deidentify_fields(default)  # estimated: the recipe's (auto)
    assert _deidentify_fields(person)["attribute_reference"] == "person"
    assert _deidentify_fields(own)["attribute_reference"] == "population"
    deid = _deidentifier("person")
    photos = [img for img, _ in PHOTOS]
    released, groups = release_photos(deid, photos, [None, None, None], persons=["a", "a", "b"])
    assert all(r is not None for r in released) and None not in groups and set(deid._people) == {"a", "b"}


def test_deidentify_reads_every_photo_first(tmp_path: Path) -> None:
    from kssgan.deidentify.files import observe_people

    files = []
    for i, (img, _) in enumerate(PHOTOS):
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        files.append((tmp_path / f"{i}.png", f"{i}.png"))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    files.append((tmp_path / "bad.png", "bad.png"))
    deid = _deidentifier("person")
    meta = {"0.png": {"identity": "a"}, "1.png": {"identity": "a"}, "2.png": {"identity": "b"}, "bad.png": {}}
    assert observe_people(deid, files, meta) == 3
    assert deid._people["a"][1] == 2 and deid._people["b"][1] == 1


def test_deidentify_reads_a_video_file_once_before_releasing_it(tmp_path: Path) -> None:
    """The video path of `deidentify` (a real file through PyAV): with the person reading, the file
    is decoded once first, and the labels are those of the track read against the whole of itself."""
    from bad_inputs import sine_video

    from kssgan.deidentify.video import _deidentify_frames

    levels = [160] * 8 + [100] * 4
    sine_video(tmp_path / "in.avi", [_photo(v) for v in levels])
    deid = _deidentifier("person")
    labels: list[str] = []
    release = deid.process

    def recording(frames, *args, **kwargs):
        out = release(frames, *args, **kwargs)
        labels.extend(faces[0].label["expression"] for _, faces in out)
        return out

    deid.process = recording  # type: ignore[method-assign]
    info = _deidentify_frames(deid, tmp_path / "in.avi", tmp_path / "out.avi", "in.avi", False, None)
    assert info["frames"] == 12 and len(info["tracks"]) == 1
    assert labels == ["smiling"] * 10 + ["neutral"] * 2
