"""`deidentify --follow-reference person`: the source's change from its person's mean is followed, and
the person's own level (what is the same in all of their photos) is not. Known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kssgan.deidentify.follow import PersonShapes, _ratios, expression_target
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions
from kssgan.deidentify.pipeline import Deidentifier, Frame
from tests.test_attribute_reference import LANDMARKS, SPEC, OneFace, _photo
from tests.test_deidentify_parts import GROUPS
from tests.test_follow import _face68, other_persons_face


def _wider(p: np.ndarray, px: float) -> np.ndarray:
    """``p`` with both mouth corners pushed ``px`` outwards: a wider mouth in every photo of a person."""
    q = p.copy()
    q[[48, 60]] -= [px, 0]
    q[[54, 64]] += [px, 0]
    return q


def test_a_change_from_the_persons_mean_is_followed_and_the_persons_level_is_not() -> None:
    own = _face68()  # the group's face
    neutral, smiling = _face68(), _wider(_face68(), 6.0)
    mean = (neutral + smiling) / 2
    # at the person's mean: the group's face, untouched
    assert np.allclose(expression_target(own, mean, reference=mean), own)
    # the smile: the group's face changes by the source's change from the person's mean
    target = expression_target(own, smiling, reference=mean)
    change = _ratios(target)["smile"] - _ratios(own)["smile"]
    assert change == pytest.approx(_ratios(smiling)["smile"] - _ratios(mean)["smile"], rel=1e-6) and change > 0.05
    # another person whose mouth is 5 px wider in every photo gets the very same release ...
    other = [_wider(p, 5.0) for p in (neutral, smiling, mean)]
    assert np.allclose(expression_target(own, other[1], reference=other[2]), target)
    # ... which following the source's own ratios tells apart
    assert not np.allclose(expression_target(own, other[1]), expression_target(own, smiling), atol=1.0)


def test_a_change_never_closes_a_mouth_past_shut() -> None:
    own = _face68(mouth_gap=2.0)  # the group's face, mouth nearly closed
    open_mean, closed = _face68(mouth_gap=20.0), _face68(mouth_gap=0.0)  # this photo: far more closed than usual
    target = expression_target(own, closed, reference=open_mean)
    assert _ratios(target)["mouth"] == pytest.approx(0.0, abs=1e-9)


def test_person_shapes_are_means_and_a_face_never_seen_is_its_own() -> None:
    shapes = PersonShapes()
    a, b = _face68(), _face68(mouth_gap=10.0)
    shapes.add("x", a)
    shapes.add("x", b)
    assert np.allclose(shapes.mean("x", a), (a + b) / 2)
    assert np.allclose(shapes.mean("y", b), b)  # never seen: no change to follow
    shapes.fix()
    shapes.add("x", b)  # fixed: later faces do not move it
    assert shapes.fixed("x") and np.allclose(shapes.mean("x", a), (a + b) / 2)
    shapes.clear()
    assert not shapes.fixed("x") and np.allclose(shapes.mean("x", a), a)


class RecordingFollower:
    """Stands in for GeometryFollower: 68 points whose mouth opens with the photo's brightness, and a
    record of what each face was followed against (the canvas passes through unchanged)."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray | None]] = []

    def landmarks(self, image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        return _face68(mouth_gap=float(image.mean()) / 10.0, scale=0.4, shift=(16.0, 10.0))

    def __call__(
        self, canvas: np.ndarray, points: np.ndarray, box: tuple[float, ...], reference: np.ndarray | None = None
    ) -> np.ndarray:
        self.calls.append((points, reference))
        return canvas


def _follower_deid(
    reference: str = "auto", attributes: str = "population", spec: dict | None = None, **extra: object
) -> tuple[Deidentifier, RecordingFollower]:
    def backend(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.zeros_like(images)

    options = DeidentifyOptions(
        follow="expression", follow_reference=reference, attribute_reference=attributes, margin=0.0,
        detector="yunet", similarity=False, paste_jitter=0.0, upscale=False, **extra,
    )  # fmt: skip
    options.tracker.use_embedding = False
    deid = Deidentifier(backend, spec or {"fields": SPEC["fields"][:1]}, GROUPS, 32, options, detector=OneFace())
    deid.follower = follower = RecordingFollower()
    return deid, follower


def test_follow_reference_auto_is_person_where_attributes_are_read_against_the_person() -> None:
    assert DeidentifyOptions().follow_reference == "auto"
    assert _follower_deid()[0].options.follow_reference == "source"
    person, _ = _follower_deid(attributes="person")
    assert person.options.follow_reference == "person" and person.reads_people
    assert _follower_deid("person")[0].reads_people  # without any attribute read against the person
    assert not _follower_deid("source", attributes="population")[0].reads_people
    with pytest.raises(DeidentifyError, match="--follow-reference 'mean' is not one of"):
        DeidentifyOptions(follow="expression", follow_reference="mean").check()


def test_photos_are_followed_against_their_persons_mean_and_a_lone_photo_is_not_moved() -> None:
    deid, follower = _follower_deid("person")
    frames = [
        Frame(_photo(v), key=f"p{i}", identity=who) for i, (v, who) in enumerate(((40, "a"), (120, "a"), (90, "b")))
    ]
    assert deid.observe_people(frames) == 3
    results = [deid.process([f])[0][1][0] for f in frames]
    (a0, ref_a0), (a1, ref_a1), (b, ref_b) = follower.calls
    assert np.allclose(ref_a0, (a0 + a1) / 2) and np.allclose(ref_a1, ref_a0)  # a's mean, both photos
    assert np.allclose(ref_b, b)  # b's one photo is b's mean: nothing to follow, the frozen face
    [(_, [stranger])] = deid.process([Frame(_photo(200), key="p9")])  # no person known: its own points
    assert np.allclose(follower.calls[-1][1], follower.calls[-1][0])
    assert [r.to_dict()["followed"] for r in [*results, stranger]] == ["person"] * 4
    deid.forget_people()
    deid.process([frames[0]])
    assert np.allclose(follower.calls[-1][1], follower.calls[-1][0])  # forgotten: a's photo alone
    source, follower = _follower_deid("source")
    source.observe_people(frames)
    source.process([frames[0]])
    assert follower.calls[-1][1] is None  # the source's own geometry


def test_a_video_track_is_followed_against_the_whole_of_itself_and_forgotten_with_it() -> None:
    deid, follower = _follower_deid("person")
    levels = [40, 40, 40, 160]
    tracker = deid.make_tracker()
    assert deid.observe_tracks(_photo(v) for v in levels) == 1
    out = deid.process([Frame(_photo(v), key="clip") for v in levels], tracker=tracker)
    box = (10.0, 10.0, 90.0, 90.0)  # OneFace's
    want = np.mean([deid._aligned_points(_photo(v), LANDMARKS, box) for v in levels], axis=0)
    refs = [r for _, r in follower.calls]
    assert len(refs) == 4 and all(np.allclose(r, want) for r in refs)  # all four frames, from the first
    assert {faces[0].track for _, faces in out} == {0}
    deid.make_tracker()  # a new video: the last one's track means are gone
    assert not deid._track_shapes.fixed(0)


@pytest.mark.shared_data
def test_a_persons_smile_shows_on_the_group_face_and_their_resting_face_does_not(shared_datasets: Path) -> None:
    """A London person's neutral and smiling photos, released with --follow expression by a G that
    always draws another person's face: against the person's mean the smiling release smiles more
    than the neutral one (read by the mesh, not by dlib), the two straddle the frozen face, and a
    person with one photo gets exactly the frozen face."""
    from kssgan.data.readers.image_io import load_image
    from kssgan.evaluate.fidelity import measure_face
    from kssgan.faces.detect import YuNetDetector
    from kssgan.faces.mesh import FaceMesh

    root, det = shared_datasets / "london", YuNetDetector()
    backend, spec, groups = other_persons_face(root, det)
    photos = [load_image(root / f)[0] for f in ("neutral_front/002_03.jpg", "smiling_front/002_08.jpg")]
    frames = [Frame(p, key=f"p{i}", identity="a") for i, p in enumerate(photos)]

    def release(follow: str, observed: list[Frame]) -> list[np.ndarray]:
        options = DeidentifyOptions(
            follow=follow, follow_reference="person", jitter_seed=0, margin=0.0, detector="yunet", similarity=False
        )
        deid = Deidentifier(backend, spec, groups, 64, options, detector=det)
        deid.observe_people(observed)
        return [deid.process([f])[0][0] for f in frames]

    mesh = FaceMesh()
    smile = lambda img: measure_face(img, det, mesh).geometry["smile"]  # noqa: E731
    frozen = release("none", frames)
    followed = release("expression", frames)
    lone = release("expression", frames[:1])  # only the neutral photo observed: its one photo
    assert smile(photos[1]) > smile(photos[0]) + 0.02
    assert smile(followed[1]) > smile(followed[0]) + 0.02  # the smile shows
    assert smile(followed[0]) < smile(frozen[0]) < smile(followed[1])  # around the group's own face
    assert np.abs(lone[0].astype(int) - frozen[0]).max() <= 1  # a lone photo: the frozen face


def test_follow_auto_is_the_recipes_release_follow_and_nothing_for_a_whole_photo() -> None:
    def backend(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.zeros_like(images)

    def deid(recipe: str | None, region: str | None = None, reference: str | None = None, **options: object):
        opts = DeidentifyOptions(margin=0.0, detector="yunet", similarity=False, **options)
        return Deidentifier(
            backend, SPEC, GROUPS, 32, opts, detector=OneFace(), release_follow=recipe, release_region=region,
            release_follow_reference=reference,
        )  # fmt: skip

    assert DeidentifyOptions().follow == "auto"
    london = deid("expression", attribute_reference="person")
    assert london.options.follow == "expression" and london.follower is not None
    assert london.options.follow_reference == "person"  # read against the person, as the attributes are
    rest = deid("expression", reference="rest", attribute_reference="person")
    assert rest.options.follow_reference == "rest"  # the recipe's reference
    told = deid("expression", reference="rest", follow_reference="source")
    assert told.options.follow_reference == "source"  # the user's choice wins
    assert deid(None).options.follow == "none" and deid(None).follower is None  # no recipe: the frozen face
    assert deid("expression", region="frame").follower is None  # a whole-photo release follows nothing
    assert deid("expression", follow="none").follower is None  # the user's choice wins
    with pytest.raises(DeidentifyError, match="region frame keeps nothing"):
        DeidentifyOptions(follow="pose", mask=DeidentifyOptions().mask.__class__(region="frame")).check()


def _rest_deid(**options: object) -> tuple[Deidentifier, RecordingFollower]:
    return _follower_deid("rest", spec=SPEC, **options)


def test_a_resting_photo_gets_the_group_face_and_a_smile_is_followed_from_the_persons_rest() -> None:
    deid, follower = _rest_deid()
    shots = [(40, "a", "neutral"), (80, "a", "neutral"), (160, "a", "smiling"), (120, "b", "smiling")]
    frames = [
        Frame(_photo(v), key=f"p{i}", identity=who, attributes={"expression": e}) for i, (v, who, e) in enumerate(shots)
    ]
    assert deid.reads_people and deid.observe_people(frames) == 4
    results = [deid.process([f])[0][1][0] for f in frames]
    (n0, r0), (n1, r1), (s, rs), (b, rb) = follower.calls
    assert np.allclose(r0, n0) and np.allclose(r1, n1)  # each resting photo: its own points, the group's face
    assert np.allclose(rs, (n0 + n1) / 2)  # the smile: against a's resting photos only, not a's mean
    assert not np.allclose(rs, (n0 + n1 + s) / 3, atol=0.2)
    assert np.allclose(rb, b)  # b has no resting photo: nothing to follow, the frozen face
    assert [r.to_dict()["followed"] for r in results] == ["rest"] * 4
    deid.forget_people()
    deid.process([frames[2]])
    assert np.allclose(follower.calls[-1][1], follower.calls[-1][0])  # forgotten: the frozen face


def test_a_video_track_is_followed_from_its_resting_frames_so_far() -> None:
    deid, follower = _rest_deid()
    tracker = deid.make_tracker()
    clip = [(160, "smiling"), (40, "neutral"), (60, "neutral"), (160, "smiling")]
    deid.process([Frame(_photo(v), key="clip", attributes={"expression": e}) for v, e in clip], tracker=tracker)
    (s0, r0), (n0, rn0), (n1, rn1), (s1, r1) = follower.calls
    assert np.allclose(r0, s0)  # no resting frame yet: the frozen face
    assert np.allclose(rn0, n0) and np.allclose(rn1, n1)  # resting frames (as followed, smoothed): untouched
    assert np.allclose(r1, (n0 + n1) / 2) and not np.allclose(r1, s1, atol=0.2)  # the smile: from the rest frames
    tracker = deid.make_tracker()  # a new video: its track 0 is someone else, the last one's rest is gone
    deid.process([Frame(_photo(160), key="next", attributes={"expression": "smiling"})], tracker=tracker)
    assert np.allclose(follower.calls[-1][1], follower.calls[-1][0])


def test_follow_rest_must_name_a_label_value_the_checkpoint_knows() -> None:
    with pytest.raises(DeidentifyError, match="has no field 'mood'"):
        _rest_deid(follow_rest={"mood": "calm"})
    with pytest.raises(DeidentifyError, match="unknown value; this checkpoint knows"):
        _rest_deid(follow_rest={"expression": "calm"})
    assert DeidentifyOptions().follow_rest == {"expression": "neutral"}
