"""YuNet's retry works on a bounded image: tiles for large photos, never the whole photo upscaled."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from kssgan.data.readers.image_io import load_image
from kssgan.faces.detect import YuNetDetector, _starts


def test_tile_origins_cover_the_whole_side() -> None:
    assert _starts(1000, 1280, 960) == [0]
    starts = _starts(6000, 1280, 960)
    assert starts[0] == 0 and starts[-1] == 6000 - 1280 and all(b - a <= 960 for a, b in itertools.pairwise(starts))


def _spy(det: YuNetDetector, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Longest side of every working image YuNet is given."""
    sides: list[float] = []
    original = YuNetDetector._run

    def run(self, image, scale, pad_frac):
        sides.append(max(image.shape[:2]) * scale * (1 + 2 * pad_frac))
        return original(self, image, scale, pad_frac)

    monkeypatch.setattr(YuNetDetector, "_run", run)
    return sides


@pytest.mark.slow
def test_a_faceless_huge_image_is_searched_in_bounded_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    det = YuNetDetector()
    sides = _spy(det, monkeypatch)
    wall = np.full((6000, 9000, 3), 150, np.uint8)
    assert det.detect(wall) == []
    assert len(sides) > 1 + 4  # the downscaled pass, then the tiles
    assert max(sides) <= det.retry_max_side + 1 and len(sides) - 1 <= det.max_tiles


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_small_face_in_a_large_photo_is_found_by_the_tiles(shared_datasets: Path, monkeypatch) -> None:
    face, _ = load_image(shared_datasets / "yale" / "yalefaces" / "subject02.normal")
    face = cv2.resize(face, (106, 80), interpolation=cv2.INTER_AREA)  # a face about 40 px wide
    photo = np.full((4000, 6000, 3), 170, np.uint8)
    photo[2500:2580, 4100:4206] = face
    det = YuNetDetector()
    sides = _spy(det, monkeypatch)
    found = det.detect(photo)
    assert len(found) == 1
    x, y, w, h = found[0].box
    assert 4100 <= x + w / 2 <= 4206 and 2500 <= y + h / 2 <= 2580
    assert max(sides) <= det.retry_max_side + 1


def test_a_detections_region_grows_its_x_y_w_h_box_and_clips_it_to_the_image() -> None:
    from kssgan.faces.detect import Detection

    face = Detection((100.0, 50.0, 40.0, 60.0), np.zeros((5, 2)), 0.9)  # x, y, w, h: not corners
    assert face.region(0.0, (480, 640, 3)) == (100, 50, 140, 110)
    assert face.region(0.5, (480, 640, 3)) == (80, 20, 160, 140)  # doubled about its centre
    assert face.region(1.0, (100, 150)) == (60, 0, 150, 100)  # clipped to the image
