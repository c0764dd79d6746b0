"""Settings of ``kssgan deidentify`` as data: a dataclass with documented defaults, loadable from YAML."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


class DeidentifyError(ValueError):
    """A request the checkpoint or the input cannot satisfy (shown to the user as one clear line)."""


@dataclass
class MaskShape:
    """The feathered blend mask, an ellipse in *crop* coordinates (fractions of the crop side).

    The defaults cover forehead to chin of an ArcFace-framed crop (``margin = 0``); for crops with a
    margin the ellipse shrinks with the face. ``feather`` is the fraction of the radius over which the
    mask falls smoothly from 1 to 0; outside the ellipse it is exactly 0, so pixels there are untouched.
    """

    center_x: float = 0.5
    center_y: float = 0.52
    radius_x: float = 0.45
    radius_y: float = 0.47
    feather: float = 0.3


@dataclass
class TrackerSettings:
    """Video tracking: a detection joins a track when IoU ≥ ``min_iou`` or, failing that, when the
    recogniser calls it the same person (similarity ≥ the recogniser's threshold). Tracks unseen for
    ``max_age`` frames end."""

    min_iou: float = 0.3
    max_age: int = 15
    use_embedding: bool = True


@dataclass
class DeidentifyOptions:
    """Everything but the checkpoint and the paths.

    ``margin`` must be the ``margin`` that ``kssgan prepare`` used for the training crops (its
    default, 0, is ArcFace framing). ``recogniser`` embeds faces for the open-set group choice and for
    the report's privacy check; None means the recogniser the groups were built with (``sface`` when
    that is not a face recogniser, e.g. the demo's ``dcgan-latent``).
    """

    detector: str = "yunet"
    detector_score: float = 0.6
    recogniser: str | None = None
    model_dir: str | None = None
    margin: float = 0.0
    batch_size: int = 16
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (torch autocast)
    channels_last: bool = True
    attributes: dict[str, str] = field(default_factory=dict)  # --set name=value
    identity: str | None = None  # --identity NAME: closed-set group for every face
    similarity: bool = True  # recogniser similarity original vs output in the report
    on_no_face: str = "withhold"  # withhold | pixelate | blur | copy (see deidentify.policy)
    on_still_matching: str = "withhold"  # withhold | keep
    mask: MaskShape = field(default_factory=MaskShape)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    video_codec: dict[str, str] = field(
        default_factory=lambda: {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeidentifyOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DeidentifyError(f"unknown deidentify option(s) {unknown}; known: {sorted(known)}")
        data = dict(data)
        if "mask" in data and isinstance(data["mask"], dict):
            data["mask"] = MaskShape(**data["mask"])
        if "tracker" in data and isinstance(data["tracker"], dict):
            data["tracker"] = TrackerSettings(**data["tracker"])
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> DeidentifyOptions:
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise DeidentifyError(f"{path}: expected a mapping of deidentify options")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
