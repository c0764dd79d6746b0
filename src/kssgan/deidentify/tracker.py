"""A small IoU + embedding tracker so that one person keeps one group (one surrogate) through a video.

Each frame's detections are matched to live tracks greedily by IoU (highest first, at least
``min_iou``); detections left over are matched by recogniser similarity (at least the recogniser's
match threshold) to tracks that lost them, which bridges fast motion and short occlusions. Whatever
is still unmatched starts a new track. Tracks unseen for more than ``max_age`` frames end; in the frames
in between, :meth:`FaceTracker.missed` names them, so the caller can obscure their last known box (a
face the detector lost for a moment is never shown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kssgan.deidentify.options import TrackerSettings


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: tuple[float, float, float, float]
    last_frame: int
    first_frame: int
    embedding: np.ndarray | None = None
    group: int = -1
    group_source: str = ""
    frames: int = 0
    similarities: list[float] = field(default_factory=list)
    first_box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.first_box is None:
            self.first_box = self.box

    def summary(self) -> dict[str, Any]:
        sims = [s for s in self.similarities if s == s]
        return {
            "track": self.id,
            "group": self.group,
            "group_source": self.group_source,
            "frames": self.frames,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "first_box": [round(float(v), 1) for v in self.first_box or self.box],
            "last_box": [round(float(v), 1) for v in self.box],
            "mean_similarity": round(float(np.mean(sims)), 4) if sims else None,
        }


class FaceTracker:
    def __init__(self, settings: TrackerSettings | None = None, match_threshold: float = 0.363) -> None:
        self.settings = settings or TrackerSettings()
        self.match_threshold = float(match_threshold)
        self.tracks: dict[int, Track] = {}
        self.finished: list[Track] = []
        self.fallbacks: dict[int, list[int]] = {}  # frame -> ids of tracks covered by their last box there
        self.bare_frames: list[int] = []  # frames with no detection and no live track (obscured whole)
        self._next = 0

    def missed(self, frame: int) -> list[Track]:
        """Live tracks not detected in ``frame`` (seen at most ``max_age`` frames before): their last known
        box is to be obscured there. Recorded in :attr:`fallbacks`. Call after :meth:`update` for the frame."""
        out = [t for t in self.tracks.values() if 0 < frame - t.last_frame <= self.settings.max_age]
        if out:
            self.fallbacks[frame] = sorted(t.id for t in out)
        return out

    def update(
        self, frame: int, boxes: list[tuple[float, float, float, float]], embeddings: np.ndarray | None = None
    ) -> list[tuple[Track, bool]]:
        """``(track, is_new)`` for each box of ``frame``, in the order of ``boxes``."""
        for tid in [t for t, tr in self.tracks.items() if frame - tr.last_frame > self.settings.max_age]:
            self.finished.append(self.tracks.pop(tid))
        live = list(self.tracks.values())
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        pairs = sorted(
            ((iou(b, t.box), i, t.id) for i, b in enumerate(boxes) for t in live),
            key=lambda p: -p[0],
        )
        for score, i, tid in pairs:
            if score < self.settings.min_iou:
                break
            if i in assigned or tid in used:
                continue
            assigned[i] = self.tracks[tid]
            used.add(tid)
        if self.settings.use_embedding and embeddings is not None and len(embeddings):
            rest = [t for t in live if t.id not in used and t.embedding is not None]
            cands = sorted(
                (
                    (float(np.dot(embeddings[i], t.embedding)), i, t.id)
                    for i in range(len(boxes))
                    if i not in assigned
                    for t in rest
                ),
                key=lambda p: -p[0],
            )
            for sim, i, tid in cands:
                if sim < self.match_threshold:
                    break
                if i in assigned or tid in used:
                    continue
                assigned[i] = self.tracks[tid]
                used.add(tid)
        out = []
        for i, box in enumerate(boxes):
            emb = None if embeddings is None or not len(embeddings) else np.asarray(embeddings[i], np.float32)
            track, new = assigned.get(i), False
            if track is None:
                track, new = Track(self._next, box, frame, frame), True
                self.tracks[track.id] = track
                self._next += 1
            track.box, track.last_frame, track.frames = box, frame, track.frames + 1
            if emb is not None:  # running mean of unit vectors, renormalised
                track.embedding = emb if track.embedding is None else _unit(track.embedding + emb)
            out.append((track, new))
        return out

    def all_tracks(self) -> list[Track]:
        return sorted([*self.finished, *self.tracks.values()], key=lambda t: t.id)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), 1e-12)
