"""Following the source after G (`deidentify.follow`, `.appearance`, `.blend.seamless`): known answers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kssgan.deidentify.appearance import match_colour, skin_region
from kssgan.deidentify.blend import seamless
from kssgan.deidentify.follow import _axes, expression_target, piecewise_affine
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions


def _face68(mouth_gap: float = 0.0, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A plausible 68-point layout (a frontal face of height ~100 px) with an inner-lip gap."""
    pts = np.zeros((68, 2))
    t = np.linspace(-1, 1, 17)
    pts[0:17] = np.c_[100 + 60 * t, 100 + 70 * (1 - t**2) ** 0.5 * 0.9 + 10 * np.abs(t)]  # jaw
    pts[17:22] = np.c_[np.linspace(55, 90, 5), np.full(5, 60.0)]
    pts[22:27] = np.c_[np.linspace(110, 145, 5), np.full(5, 60.0)]
    pts[27:31] = np.c_[np.full(4, 100.0), np.linspace(75, 115, 4)]
    pts[31:36] = np.c_[np.linspace(88, 112, 5), np.full(5, 120.0)]
    pts[36:42] = [[60, 80], [67, 76], [75, 76], [82, 80], [75, 84], [67, 84]]
    pts[42:48] = [[118, 80], [125, 76], [133, 76], [140, 80], [133, 84], [125, 84]]
    pts[48:60] = np.c_[
        [78, 85, 92, 100, 108, 115, 122, 115, 108, 100, 92, 85],
        [140, 136, 134, 135, 134, 136, 140, 146, 149, 150, 149, 146],
    ]
    pts[60:68] = np.c_[[82, 92, 100, 108, 118, 108, 100, 92], [140, 139, 139, 139, 140, 141, 141, 141]]
    pts[[61, 62, 63]] -= [0, mouth_gap / 2]
    pts[[65, 66, 67]] += [0, mouth_gap / 2]
    return pts * scale + np.asarray(shift)


def test_piecewise_affine_with_no_motion_is_the_identity_and_moves_a_mark_where_told() -> None:
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 255, (20, 20, 3)).astype(np.uint8), (200, 200))
    pts = _face68()
    assert np.abs(piecewise_affine(image, pts, pts).astype(int) - image).max() <= 1
    marked = np.zeros((200, 200), np.uint8)
    cv2.circle(marked, (100, 115), 3, 255, -1)  # on the nose tip (point 30)
    moved = pts.copy()
    moved[27:36] += [8, 0]
    out = piecewise_affine(marked, pts, moved)
    ys, xs = np.nonzero(out > 127)
    assert xs.mean() == pytest.approx(108, abs=1.0) and ys.mean() == pytest.approx(115, abs=1.0)


def _gap_ratio(p: np.ndarray) -> float:
    _, down, height, _ = _axes(p)
    return float(np.mean([np.dot(p[a] - p[b], down) for a, b in ((66, 62), (67, 61), (65, 63))])) / height


def test_expression_target_takes_the_sources_ratios_and_keeps_its_own_shape() -> None:
    own = _face68()
    assert np.allclose(expression_target(own, own), own)
    # a source twice the size, elsewhere, mouth open: the target opens its mouth by the same ratio
    source = _face68(mouth_gap=12.0, scale=2.0, shift=(40.0, -10.0))
    target = expression_target(own, source)
    assert _gap_ratio(target) == pytest.approx(_gap_ratio(source), rel=0.02)
    assert np.allclose(target[0:17], own[0:17])  # the jaw line (face shape) stays the group's
    assert np.abs(target - own).max() < 15  # nothing of the source's size or place is copied


def test_match_colour_moves_the_skin_mean_to_the_sources() -> None:
    size = 64
    region = skin_region(size, 0.0)
    rng = np.random.default_rng(1)
    fake = np.clip(rng.normal((200, 190, 180), 10, (size, size, 3)), 0, 255).astype(np.uint8)
    source = np.clip(rng.normal((60, 80, 120), 15, (size, size, 3)), 0, 255).astype(np.uint8)
    out = match_colour(fake, source, region)

    def lab(x: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(x.astype(np.float32) / 255, cv2.COLOR_BGR2LAB)[region].mean(0)

    assert np.linalg.norm(lab(out) - lab(source)) < 1.0 < np.linalg.norm(lab(fake) - lab(source))


def test_seamless_clone_of_the_photo_itself_changes_nothing() -> None:
    rng = np.random.default_rng(2)
    region = cv2.resize(rng.integers(0, 255, (10, 10, 3)).astype(np.uint8), (80, 60))
    mask = np.zeros((60, 80), np.float32)
    cv2.ellipse(mask, (40, 30), (25, 20), 0, 0, 360, 1.0, -1)
    assert np.abs(seamless(region.copy(), region, mask).astype(int) - region).max() <= 2


@pytest.mark.parametrize("name,value", [("follow", "mirror"), ("colour", "sepia"), ("blend", "paint")])
def test_a_bad_release_option_is_one_clear_error(name: str, value: str) -> None:
    with pytest.raises(DeidentifyError, match=f"--{name}"):
        DeidentifyOptions(**{name: value}).check()


@pytest.mark.shared_data
def test_expression_following_moves_a_closed_mouth_to_a_smile(shared_datasets: Path) -> None:
    """dlib's points on a London neutral face, followed to the same person's smile: the target's
    smile ratio is the smile's, measured by dlib on the warped image."""
    from kssgan.data.readers.image_io import load_image
    from kssgan.deidentify.follow import GeometryFollower
    from kssgan.faces.detect import YuNetDetector, select_face

    root = shared_datasets / "london"
    follower, det = GeometryFollower("expression"), YuNetDetector()
    pts, photos = [], []
    for folder, suffix in (("neutral_front", "03"), ("smiling_front", "08")):
        photo = load_image(root / folder / f"002_{suffix}.jpg")[0]
        face = select_face(det.detect(photo), photo.shape)[0]
        x, y, w, h = face.box
        pts.append(follower.landmarks(photo, (x, y, x + w, y + h)))
        photos.append((photo, (x, y, x + w, y + h)))
    neutral, smiling = pts
    span = lambda p: np.linalg.norm(p[54] - p[48]) / np.linalg.norm(p[45] - p[36])  # noqa: E731
    assert span(smiling) > span(neutral) * 1.05
    warped = follower(photos[0][0], smiling, photos[0][1])
    after = follower.landmarks(warped, photos[0][1])
    assert abs(span(after) - span(smiling)) < abs(span(neutral) - span(smiling)) / 2


def other_persons_face(london: Path, detector: object) -> tuple[object, dict, dict]:
    """A stand-in G that always draws one other London person's neutral face (045), with the label
    spec and groups of two one-person groups ``a`` and ``b``: ``(backend, spec, groups)``."""
    from kssgan.data.readers.image_io import load_image
    from kssgan.faces.align import align_faces
    from kssgan.faces.detect import select_face

    other = load_image(london / "neutral_front/045_03.jpg")[0]
    lms = np.asarray(select_face(detector.detect(other), other.shape)[0].landmarks, np.float64)
    drawn = align_faces([other], [lms], 64, margin=0.0)[0][:, :, ::-1].astype(np.float32) / 127.5 - 1.0

    def backend(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.repeat(drawn.transpose(2, 0, 1)[None], len(images), axis=0)

    spec = {"fields": [{"name": "group", "kind": "onehot", "values": ["0", "1"]}]}
    groups = {"k": 2, "method": "mdav", "recogniser": "sface", "seed": 0, "identity_to_group": {"a": 0, "b": 1}}
    groups["centroids"] = [[1.0, 0.0], [0.0, 1.0]]
    return backend, spec, groups


def test_harmonise_meets_the_photo_at_the_boundary_and_leaves_the_face_alone() -> None:
    from kssgan.deidentify.blend import harmonise

    size = 200
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(xx - 100, yy - 100) / 80.0
    mask = np.clip((1.0 - r) / 0.25, 0, 1).astype(np.float32)  # 1 inside r 0.75, 0 beyond r 1
    photo = np.zeros((size, size, 3), np.uint8)
    photo[:] = (40, 90, 160)
    face = np.full((size, size, 3), 200, np.uint8)
    out = harmonise(face, photo, mask, crop_side=160.0)
    assert np.abs(harmonise(photo, photo, mask, 160.0).astype(int) - photo).max() == 0
    edge = (mask > 0.05) & (mask < 0.5)
    assert np.abs(out[edge].astype(int) - photo[edge]).mean() < 8  # the photo's colour at the feather
    assert np.array_equal(out[100, 100], face[100, 100])  # the face's own colour at its centre


def test_a_tracks_label_changes_only_after_the_new_estimate_holds() -> None:
    from kssgan.deidentify.pipeline import LABEL_HYSTERESIS, Deidentifier

    deid = Deidentifier.__new__(Deidentifier)  # only the per-track state is used
    deid._track_labels = {}
    seq = ["neutral", "smiling", "neutral", "smiling", "smiling", "smiling", "smiling"]
    got = [deid._steady(1, {"expression": v})["expression"] for v in seq]
    flip = 3 + LABEL_HYSTERESIS - 1  # the third smile in a row, from index 3
    assert got[:flip] == ["neutral"] * flip and got[flip:] == ["smiling"] * (len(seq) - flip)


@pytest.mark.shared_data
def test_a_followed_clip_keeps_one_identity_and_moves_its_mouth(shared_datasets: Path) -> None:
    """A clip alternating a London person's neutral and smiling photo (moving a little each frame),
    released with --follow pose by a G that always draws one other person's neutral face: one track,
    one identity frame to frame (SFace cosine of consecutive released faces >= 0.9), and the
    released mouth opens and closes with the source's (read by the mesh, not by dlib)."""
    from kssgan.data.readers.image_io import load_image
    from kssgan.deidentify.pipeline import Deidentifier, Frame
    from kssgan.evaluate.fidelity import measure_face, pearson
    from kssgan.evaluate.release_level import attacker_faces, embed_faces
    from kssgan.faces.detect import YuNetDetector
    from kssgan.faces.mesh import FaceMesh
    from kssgan.faces.recognize import SFaceRecognizer

    root, det = shared_datasets / "london", YuNetDetector()
    backend, spec, groups = other_persons_face(root, det)
    options = DeidentifyOptions(follow="pose", jitter_seed=0, identity="a", margin=0.0, detector="yunet")
    deid = Deidentifier(backend, spec, groups, 64, options, detector=det)
    faces = [load_image(root / f)[0] for f in ("neutral_front/002_03.jpg", "smiling_front/002_08.jpg")]
    frames = []
    for i in range(8):
        shift = np.float32([[1, 0, 3 * i], [0, 1, 2 * i]])
        frames.append(cv2.warpAffine(faces[(i // 2) % 2], shift, (640, 640), borderMode=cv2.BORDER_REPLICATE))
    out = deid.process([Frame(f, key="clip") for f in frames], tracker=deid.make_tracker())
    assert len({r.track for _, res in out for r in res}) == 1
    released = [o for o, _ in out]
    emb, found = embed_faces(attacker_faces(released, det), SFaceRecognizer())
    assert found.all() and np.sum(emb[1:] * emb[:-1], axis=1).min() >= 0.9
    mesh = FaceMesh()
    src = [measure_face(f, det, mesh).geometry["mouth"] for f in frames]
    rel = [measure_face(o, det, mesh).geometry["mouth"] for o in released]
    assert pearson(src, rel) >= 0.7


@pytest.mark.shared_data
def test_the_registered_mean_of_warped_copies_of_one_face_is_that_face(shared_datasets: Path) -> None:
    """k copies of a London face, each warped by a different smooth deformation of its 68 points:
    their registered mean is the face again, their pixel mean is ghosted."""
    from kssgan.data.readers.image_io import load_image
    from kssgan.deidentify.follow import registered_mean
    from kssgan.faces.detect import YuNetDetector, select_face
    from kssgan.faces.landmarks68 import Landmarks68

    photo = load_image(shared_datasets / "london" / "neutral_front" / "002_03.jpg")[0]
    x, y, w, h = select_face(YuNetDetector().detect(photo), photo.shape)[0].box
    pts = Landmarks68()(photo, (x, y, x + w, y + h))
    rng = np.random.default_rng(3)
    copies, moved = [], []
    offsets = rng.normal(0, 0.04 * w, (4, 2))
    offsets -= offsets.mean(0)  # the copies' mean shape is the face's own
    for d in offsets:
        q = pts + d * np.clip((pts[:, 1:] - y) / h, 0, 1)  # a shear growing towards the chin
        copies.append(piecewise_affine(photo, pts, q))
        moved.append(q)
    mean, shape = registered_mean(copies, moved)
    assert np.abs(shape - pts).max() < 1e-6
    face = (slice(int(y), int(y + h)), slice(int(x), int(x + w)))
    err = np.abs(mean[face].astype(float) - photo[face]).mean()
    ghost = np.abs(np.mean(copies, axis=0)[face] - photo[face]).mean()
    assert err < 4.0 and err < ghost / 2
