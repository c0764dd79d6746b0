"""The release-level attack (`kssgan.evaluate.release_level`) gives known answers on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kssgan.data.readers.image_io import load_image
from kssgan.evaluate.release_level import release_level_privacy
from kssgan.faces.detect import YuNetDetector
from kssgan.faces.recognize import SFaceRecognizer

pytestmark = pytest.mark.shared_data
PEOPLE = ["001", "002", "003", "004", "005", "006"]


@pytest.fixture(scope="module")
def london(shared_datasets: Path) -> tuple[list[np.ndarray], list[str]]:
    """Each person's neutral photo, then their smiling one (the parrot split: gallery, then probe)."""
    root = shared_datasets / "london"
    photos, ids = [], []
    for person in PEOPLE:
        for folder, suffix in (("neutral_front", "03"), ("smiling_front", "08")):
            photos.append(load_image(root / folder / f"{person}_{suffix}.jpg")[0])
            ids.append(person)
    return photos, ids


@pytest.fixture(scope="module")
def models() -> tuple[SFaceRecognizer, YuNetDetector]:
    return SFaceRecognizer(), YuNetDetector()


def test_a_release_that_copies_its_input_is_re_identified(london, models) -> None:
    photos, ids = london
    rec, det = models
    out = release_level_privacy(photos, list(photos), ids, ids, rec, det)
    assert out["parrot"]["rank1"]["value"] == pytest.approx(1.0)
    assert out["identification"]["rank1"]["value"] == pytest.approx(1.0)
    assert out["verification"]["protection_rate"] == pytest.approx(0.0)
    assert out["attacker_found_face"]["value"] == 1.0 and out["withheld"] == 0


def _grey_periphery(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, int(h * 0.45)), (int(w * 0.22), int(h * 0.3)), 0, 0, 360, 255, -1)
    grey = np.full_like(image, 128)
    return np.where(mask[:, :, None] > 0, image, grey)


def test_one_released_photo_per_group_gives_exactly_one_over_the_group_size(london, models, shared_datasets) -> None:
    photos, ids = london
    rec, det = models
    groups = {"001": 0, "002": 0, "003": 0, "004": 1, "005": 1, "006": 1}  # two groups of three
    outsiders = [load_image(shared_datasets / "london" / "neutral_front" / f"{p}_03.jpg")[0] for p in ("045", "061")]
    released = [_grey_periphery(outsiders[groups[i]]) for i in ids]  # the same photo for a whole group
    out = release_level_privacy(photos, released, ids, [groups[i] for i in ids], rec, det)
    assert out["parrot"]["rank1"]["value"] == pytest.approx(1 / 3)
    assert out["parrot"]["rank1_clustered"]["ci_high"] == pytest.approx(1 / 3)  # fixed by construction
    assert out["verification"]["protection_rate"] == pytest.approx(1.0)
    withheld = [None if i == 0 else r for i, r in enumerate(released)]
    assert release_level_privacy(photos, withheld, ids, ids, rec, det)["withheld"] == 1


def test_the_donor_check_flags_a_surrogate_made_from_one_real_face(london, models, shared_datasets) -> None:
    """Each group released as one real person of the other group (the donor): the donor is every
    released face's first-ranked other identity and verifies as it; faces of people outside the
    gallery are nobody's."""
    from kssgan.evaluate.release_level import attacker_faces, donor_check, embed_faces

    photos, ids = london
    rec, det = models
    donor_of = {"001": "004", "002": "004", "003": "004", "004": "001", "005": "001", "006": "001"}
    donors = [[donor_of[i]] for i in ids]  # per photo: the people its released face was made from
    originals = embed_faces(attacker_faces(photos, det), rec)
    by_person = {i: photos[ids.index(i)] for i in PEOPLE}
    from_donor = embed_faces(attacker_faces([by_person[donor_of[i]] for i in ids], det), rec)
    out = donor_check(originals, from_donor, ids, donors, rec)
    assert out["chance"] == pytest.approx(1 / 5)
    assert out["first_ranked_is_donor"]["value"] == pytest.approx(1.0)
    assert out["ratio_to_chance"] == pytest.approx(5.0)
    assert out["verifies_as_donor"]["value"] == pytest.approx(1.0)
    assert out["verifies_as_other"]["released"]["value"] == pytest.approx(1.0)
    assert out["verifies_as_other"]["originals"]["value"] < 0.2  # the recogniser's own false matches
    outsiders = [load_image(shared_datasets / "london" / "neutral_front" / f"{p}_03.jpg")[0] for p in ("045", "061")]
    nobody = embed_faces(attacker_faces([outsiders[PEOPLE.index(i) // 3] for i in ids], det), rec)
    clean = donor_check(originals, nobody, ids, donors, rec)
    assert clean["verifies_as_donor"]["value"] == 0.0
    assert clean["verifies_as_other"]["released"]["value"] == 0.0


def test_the_strangers_bound_counts_people_not_photos() -> None:
    from kssgan.evaluate.release_level import strangers_bound, strangers_per_group

    groups = np.array([0, 0, 1, 1, -1])
    ids = ["a", "a", "b", "c", "d"]
    assert strangers_per_group(groups, ids) == {0: 1, 1: 2}
    # a is alone in group 0 (bound 1 for both photos), b and c share group 1 (1/2 each); d has no group
    assert strangers_bound(groups, ids, np.ones(5, bool)) == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)
    assert strangers_bound(groups, ids, np.array([False, False, True, False, True])) == pytest.approx(0.5)
