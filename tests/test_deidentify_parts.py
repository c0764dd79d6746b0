"""kssgan deidentify building blocks without real data: blend mask, tracker, group choice, labels, options."""

from __future__ import annotations

import numpy as np
import pytest

from kssgan.data.labels import LabelSpec
from kssgan.deidentify.blend import crop_ellipse, face_mask, paste_face
from kssgan.deidentify.groups import GroupChooser, LabelBuilder
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions, MaskShape, TrackerSettings
from kssgan.deidentify.tracker import FaceTracker, iou
from kssgan.faces.align import similarity_transform, template

GROUPS = {
    "k": 2,
    "method": "mdav",
    "recogniser": "sface",
    "seed": 0,
    "identity_to_group": {"a": 0, "b": 0, "c": 1, "d": 1},
    "centroids": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
}


def _face_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 200×240 frame, landmarks of a face at an angle, and the crop→frame matrix for a 32 px crop."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)
    theta = np.deg2rad(12)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    lms = (template(112) - 56) @ rot.T * 0.9 + [120, 100]
    return frame, lms, similarity_transform(lms, 32)


def test_paste_changes_only_inside_the_ellipse_and_fills_its_core() -> None:
    frame, _, m = _face_frame()
    crop = np.full((32, 32, 3), 7, np.uint8)
    shape = MaskShape(region="inner")
    out = paste_face(frame.copy(), crop, m, 0.0, shape)
    mask = face_mask(m, 32, 0.0, shape, (0, 0, 240, 200))
    changed = np.any(out != frame, axis=2)
    assert changed.sum() > 500
    assert not changed[mask == 0].any()  # exactly untouched outside the ellipse
    assert np.all(out[mask == 1] == 7)  # the core is the generated crop
    # feathered: the mask rises gradually, no pixel-to-pixel jump bigger than a fraction of its range
    assert np.abs(np.diff(mask, axis=1)).max() < 0.35
    assert ((mask > 0.05) & (mask < 0.95)).sum() > 200


def test_head_region_replaces_the_whole_aligned_crop_whatever_the_source() -> None:
    """Two different source frames, one generated crop: re-aligned as an attacker would (same
    landmarks), the head-region releases are the same image (nothing of either source is left in the
    attacker's crop), while the inner ellipse leaves each source's corners in it."""
    from kssgan.faces.align import align_faces

    frame, lms, m = _face_frame()
    other = np.random.default_rng(1).integers(0, 256, frame.shape, dtype=np.uint8)
    yy, xx = np.mgrid[0:32, 0:32]
    crop = np.stack([xx * 7, yy * 7, (xx + yy) * 3], axis=2).astype(np.uint8)  # a smooth gradient
    aligned = {}
    for region in ("head", "inner"):
        shape = MaskShape(region=region, reach=1.2)  # 2 ** 0.25 = 1.19: the square's corners too
        outs = [paste_face(f.copy(), crop, m, 0.0, shape) for f in (frame, other)]
        a, b = (align_faces([o], [lms], 112)[0].astype(int) for o in outs)
        aligned[region] = np.abs(a - b)
    assert aligned["head"].max() <= 1  # rounding only
    assert aligned["inner"].mean() > 20  # the corners are each source's own noise
    # the head region reaches beyond the crop and is 0 past reach·(1+feather)
    shape = MaskShape(region="head", reach=1.1, feather=0.3)
    mask = face_mask(m, 32, 0.0, shape, (0, 0, 240, 200))
    inner = face_mask(m, 32, 0.0, MaskShape(region="inner"), (0, 0, 240, 200))
    assert (mask == 1).sum() > 1.5 * (inner == 1).sum()
    assert (mask > 0).sum() < 240 * 200  # the frame's far corners are untouched
    assert np.abs(np.diff(mask, axis=1)).max() < 0.35  # feathered, no step


def test_head_canvas_keeps_the_crop_and_fills_the_ring_from_it() -> None:
    from kssgan.deidentify.blend import head_canvas

    crop = np.zeros((32, 32, 3), np.uint8)
    crop[:, 16:] = 200
    canvas = head_canvas(crop, 8)
    assert canvas.shape == (48, 48, 3)
    assert np.array_equal(canvas[8 + 8 : 40 - 8, 8 + 8 : 40 - 8], crop[8:24, 8:24])  # the core is the crop
    assert canvas[24, 0, 0] < 100 and canvas[24, 47, 0] > 100  # each side continues the crop's border
    assert np.array_equal(head_canvas(crop, 0), crop)
    square = head_canvas(crop, 8, fade="square")  # the frame region's: a thin band, a larger exact core
    assert np.array_equal(square[8 + 4 : 40 - 4, 8 + 4 : 40 - 4], crop[4:28, 4:28])


def test_head_canvas_shows_no_edge_where_the_crop_ends() -> None:
    """Round fade: the crop's outermost pixels are already its blurred ring, so the step across the
    crop's edge is a fraction of the square band's and of the noise inside the crop."""
    from kssgan.deidentify.blend import head_canvas

    crop = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    steps = {}
    for fade in ("round", "square"):
        canvas = head_canvas(crop, 8, fade=fade).astype(float)
        steps[fade] = np.abs(canvas[8] - canvas[7]).mean()  # the crop's top row against the ring above it
    inside = np.abs(np.diff(crop[8:24, 8:24].astype(float), axis=0)).mean()
    assert steps["round"] < 0.5 * steps["square"] and steps["round"] < 0.06 * inside
    with pytest.raises(ValueError, match="fade"):
        head_canvas(crop, 8, fade="oval")


def test_mask_region_is_checked() -> None:
    with pytest.raises(DeidentifyError, match="mask region"):
        MaskShape(region="box")


def test_mask_ellipse_zooms_with_the_crop_margin() -> None:
    _, _, rx0, _ = crop_ellipse(64, 0.0, MaskShape())
    _, _, rx1, _ = crop_ellipse(64, 0.5, MaskShape())
    assert rx1 == pytest.approx(rx0 / 1.5)


def test_tracker_keeps_ids_for_moving_faces_and_bridges_a_jump_by_embedding() -> None:
    tr = FaceTracker(TrackerSettings(min_iou=0.3, max_age=3), match_threshold=0.5)
    e = np.eye(4, dtype=np.float32)
    ids = []
    for t in range(5):
        res = tr.update(t, [(10 + 3 * t, 10, 50, 60), (200 - 3 * t, 20, 50, 60)], e[:2])
        ids.append([track.id for track, _ in res])
    assert all(row == [0, 1] for row in ids)
    # person 0 jumps far (no overlap) but is recognised; a new face gets a new track
    res = tr.update(5, [(150, 150, 50, 60), (400, 400, 40, 40)], np.stack([e[0], e[2]]))
    assert [track.id for track, _ in res] == [0, 2]
    assert [new for _, new in res] == [False, True]
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(1 / 3)


def test_group_choice_closed_set_nearest_centroid_and_hash() -> None:
    chooser = GroupChooser(GROUPS, "sface")
    assert chooser.choose("x", identity="c") == (1, "closed_set")
    assert chooser.choose("x", embedding=np.array([0.1, 0.9, 0.0])) == (1, "nearest_centroid")
    latent = GroupChooser({**GROUPS, "recogniser": "dcgan-latent"}, "sface")
    assert not latent.open_set and "not a face recogniser" in latent.why_not_open_set
    picks = [latent.choose(f"file{i}.png#face0", embedding=np.ones(3)) for i in range(40)]
    assert {s for _, s in picks} == {"hash"}
    assert {g for g, _ in picks} == {0, 1}  # spread over the groups
    assert picks == [latent.choose(f"file{i}.png#face0") for i in range(40)]  # deterministic


def test_labels_keep_known_attributes_default_the_rest_and_reject_bad_requests() -> None:
    spec = LabelSpec.build(2, {"expression": ["happy", "neutral"]}, ["glasses"])
    lb = LabelBuilder(spec, {"glasses": "1"})
    rec, defaulted = lb.record(1, {"expression": "neutral"})
    assert rec == {"group": 1, "expression": "neutral", "glasses": "1"} and defaulted == []
    rec, defaulted = lb.record(0, {"expression": "angry"})  # unknown source value → default
    assert rec["expression"] == "happy" and defaulted == ["expression"]
    with pytest.raises(DeidentifyError, match="no field 'hair'"):
        LabelBuilder(spec, {"hair": "blond"})
    with pytest.raises(DeidentifyError, match=r"knows \['happy', 'neutral'\]"):
        LabelBuilder(spec, {"expression": "angry"})
    with pytest.raises(DeidentifyError, match="--identity"):
        LabelBuilder(spec, {"group": 1})


def test_options_from_dict_rejects_unknown_keys() -> None:
    opts = DeidentifyOptions.from_dict({"margin": 0.2, "mask": {"feather": 0.5}})
    assert opts.margin == 0.2 and opts.mask.feather == 0.5
    with pytest.raises(DeidentifyError, match="unknown deidentify option"):
        DeidentifyOptions.from_dict({"marginn": 0.2})


def test_paste_jitter_moves_the_face_a_little_about_the_crop_centre() -> None:
    from kssgan.deidentify.blend import jitter_transform
    from kssgan.faces.align import transform_points

    _, _, m = _face_frame()
    assert np.allclose(jitter_transform(m, 32, np.zeros(4)), m)
    centre = transform_points(cv2_invert(m), np.array([[16.0, 16.0]]))
    moved = jitter_transform(m, 32, np.array([0.0, 0.0, 0.05, 0.0]))  # shift by 5 % of the crop side
    # the frame point that lands on the crop centre moves by 0.05 * 32 crop px = 1.6 crop px
    shift = transform_points(moved, centre) - np.array([[16.0, 16.0]])
    assert np.allclose(shift, [[1.6, 0.0]], atol=1e-6)
    turned = jitter_transform(m, 32, np.array([0.1, 0.1, 0.0, 0.0]))
    assert np.allclose(transform_points(turned, centre), [[16.0, 16.0]], atol=1e-6)  # about the centre
    assert np.linalg.det(turned[:, :2]) == pytest.approx(np.linalg.det(m[:, :2]) * 1.1**2)


def cv2_invert(m: np.ndarray) -> np.ndarray:
    from kssgan.faces.align import inverse_transform

    return inverse_transform(m)


def test_jitter_is_drawn_once_per_video_track_and_afresh_for_every_still_face() -> None:
    """A tracked face keeps its draw in every frame (it does not shake); still faces each get their own."""
    from kssgan.deidentify.pipeline import Deidentifier

    deid = Deidentifier.__new__(Deidentifier)  # only the jitter state is exercised
    deid.options = DeidentifyOptions(paste_jitter=0.06, jitter_seed=0)
    deid._jitter_rng, deid._track_jitter, deid.jitter_draws = np.random.default_rng(0), {}, 0
    first = deid._jitter(7)
    assert np.array_equal(deid._jitter(7), first) and not np.array_equal(deid._jitter(8), first)
    a, b = deid._jitter(None), deid._jitter(None)
    assert not np.array_equal(a, b) and 0.0 < np.abs(np.r_[a, b]).mean() < 0.2


def test_frame_transform_centres_the_crop_on_the_photo_with_its_shorter_side() -> None:
    from kssgan.deidentify.blend import frame_transform
    from kssgan.faces.align import inverse_transform, transform_points

    m = frame_transform(92, 112, 64)
    assert np.allclose(transform_points(m, np.array([[46.0, 56.0]])), [[32.0, 32.0]])  # centre on centre
    corners = transform_points(inverse_transform(m), np.array([[0.0, 0.0], [64.0, 64.0]]))
    assert np.allclose(corners, [[0.0, 10.0], [92.0, 102.0]])  # the crop spans the width, centred in height


class _Faces:
    """A stand-in detector: the given faces (landmarks) in every image."""

    def __init__(self, *landmarks: np.ndarray) -> None:
        self.landmarks = landmarks

    def detect(self, image: np.ndarray) -> list:
        from kssgan.faces.detect import Detection

        out = []
        for lms in self.landmarks:
            (x0, y0), (x1, y1) = lms.min(0) - 10, lms.max(0) + 10
            out.append(Detection((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), lms, 0.99))
        return out


def _frame_deidentifier(detector: _Faces, region: str, release_region: str | None = None):
    from kssgan.deidentify.pipeline import Deidentifier

    yy, xx = np.mgrid[0:32, 0:32]
    face = np.stack([xx / 31.0, yy / 31.0, (xx + yy) / 62.0]).astype(np.float32) * 2 - 1  # one drawn face

    def backend(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.repeat(face[None], len(images), axis=0)

    spec = {"fields": [{"name": "group", "kind": "onehot", "values": ["0", "1"]}]}
    options = DeidentifyOptions(
        mask=MaskShape(region=region), identity="a", margin=0.0, detector="yunet", similarity=False, jitter_seed=0
    )
    options.tracker.use_embedding = False
    return Deidentifier(backend, spec, GROUPS, 32, options, detector=detector, release_region=release_region)


def test_region_frame_releases_the_same_photo_whatever_the_source_and_its_framing() -> None:
    """A face-crop photo released with region frame depends on nothing of the source: two different
    photos of one size, their faces framed differently, give the same released photo, every pixel
    replaced. With two faces in a photo, the largest takes the frame and the other is replaced with it."""
    from kssgan.deidentify.pipeline import Frame

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (112, 92, 3), dtype=np.uint8) for _ in range(2))
    here = template(112) * 0.7 + [8, 20]
    there = (template(112) - 56) * 0.6 + [50, 60]
    frame = _frame_deidentifier(_Faces(here), "frame")
    out_a = frame.process([Frame(a, key="a")])[0]
    assert frame.jitter_draws == 0  # nothing random: evaluate's further release draws reuse the first
    out_b = _frame_deidentifier(_Faces(there), "frame").process([Frame(b, key="b")])[0]
    assert [f.region for f in out_a[1]] == ["frame"]
    assert np.array_equal(out_a[0], out_b[0])  # no paste jitter, no source pixel, no source framing
    assert np.mean(out_a[0] == a) < 0.05
    heads = _frame_deidentifier(_Faces(here), "head")
    head = heads.process([Frame(a, key="a")])[0]
    assert not np.array_equal(head[0], out_a[0]) and heads.jitter_draws == 1
    wide = rng.integers(0, 256, (200, 400, 3), dtype=np.uint8)
    two = _Faces(template(112) * 0.5 + [20, 40], template(112) * 0.4 + [300, 40])
    image, faces = _frame_deidentifier(two, "frame").process([Frame(wide, key="two")])[0]
    assert [f.region for f in faces] == ["frame", "covered"] and np.mean(image == wide) < 0.05


def test_region_frame_refuses_follow() -> None:
    with pytest.raises(DeidentifyError, match="region frame"):
        DeidentifyOptions(mask=MaskShape(region="frame"), follow="pose").check()


def test_region_auto_is_the_checkpoints_release_region_else_head() -> None:
    assert MaskShape().region == "auto"
    assert _frame_deidentifier(_Faces(), "auto", "frame").options.mask.region == "frame"
    assert _frame_deidentifier(_Faces(), "auto").options.mask.region == "head"
    assert _frame_deidentifier(_Faces(), "inner", "frame").options.mask.region == "inner"  # the user's choice wins
