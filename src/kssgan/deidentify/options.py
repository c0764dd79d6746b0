"""Settings of ``kssgan deidentify`` as data: a dataclass with documented defaults (the defaults of its
flags; ``kssgan deidentify --config`` sets them from YAML, :mod:`kssgan.deidentify.cli`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


class DeidentifyError(ValueError):
    """A request the checkpoint or the input cannot satisfy (shown to the user as one clear line)."""


#: The regions a release can regenerate (:class:`MaskShape`.region); ``auto``: the checkpoint's
#: ``release_region`` (its recipe's; ``head`` where the checkpoint has none).
MASK_REGIONS = ("auto", "head", "inner", "frame")
#: How the generated face meets the photo (:func:`kssgan.deidentify.blend.paste_face`).
BLEND_MODES = ("alpha", "harmonise", "poisson")
#: Whether the generated face takes the source's skin tone and light (:mod:`.appearance`).
COLOUR_MODES = ("none", "match")


@dataclass
class MaskShape:
    """What of the source photo is replaced, in *crop* coordinates.

    ``region: head`` (the default) regenerates the whole aligned crop and a ring around it: the mask
    is 1 inside a rounded square (a superellipse of power 4) of half-side ``reach`` crop half-sides
    about the crop centre and falls smoothly to 0 over a further ``feather`` of it. Beyond the crop
    the ring is filled from G's own output (its border, blurred outwards), so everything the mask
    covers comes from the group and nothing from the source: hair line, ears, jaw line and the
    background near the face are replaced. ``reach`` is the measured knob of privacy against how
    much of the photo is kept (``docs/evaluation.md``, "Regenerate what identifies"): at 1.0 the
    attacker's ArcFace-framed crop is all generated; larger reaches also cover wider crops.

    ``region: frame`` is for photos that are face crops (ORL, the demo, passport-style crops: the
    face's aligned crop spans about the whole photo). The whole photo is replaced by G's crop and
    its ring, the crop centred on the photo with its side the photo's shorter side
    (:func:`~kssgan.deidentify.blend.frame_transform`). Nothing of the source is kept, not even where
    its face was in the frame. A face crop leaves so little outside the head that whatever does
    remain, and how the photo was framed, is what links one person's photos (``docs/evaluation.md``,
    "Face-crop photos"). The released photo then depends only on the group, the kept attributes and
    the photo's size, so ``paste_jitter`` is not applied. In a photo with several faces the largest
    takes the frame and the others are replaced with the rest of the photo (``covered`` in the
    report): in a face-crop photo a second detection is a stray, and replacing it fails closed.

    ``region: inner`` is the earlier paste: only an ellipse from forehead to chin
    (``center_*``/``radius_*`` of an ArcFace-framed crop, ``margin = 0``; it shrinks with a margin),
    falling from 1 to 0 over ``feather`` of its radius; the kept periphery (hair line, ears, outline)
    identifies people at release level (the parrot attack recognises them).
    """

    region: str = "auto"
    reach: float = 1.15
    feather: float = 0.3
    center_x: float = 0.5
    center_y: float = 0.52
    radius_x: float = 0.45
    radius_y: float = 0.47

    def __post_init__(self) -> None:
        if self.region not in MASK_REGIONS:
            raise DeidentifyError(f"mask region {self.region!r} is not one of {MASK_REGIONS}")
        if self.reach <= 0 or self.feather < 0:
            raise DeidentifyError(f"mask reach must be > 0 and feather >= 0, got {self.reach} and {self.feather}")


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

    ``margin`` and ``detector`` frame faces as ``kssgan prepare`` framed the training crops; None
    (the default) takes them from the checkpoint (``checkpoint["kssgan"]["prepare"]``), and a value
    that contradicts the checkpoint is an error (:func:`apply_checkpoint_framing`). Checkpoints from
    before that record fall back to ArcFace framing (margin 0) and YuNet. ``recogniser`` embeds faces
    for the open-set group choice and for the report's privacy check; None means the recogniser the
    groups were built with (``sface`` when that is not a face recogniser, e.g. ``dcgan-latent``).
    """

    detector: str | None = None
    detector_score: float = 0.6
    recogniser: str | None = None
    model_dir: str | None = None
    margin: float | None = None
    batch_size: int = 16
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 (torch autocast)
    channels_last: bool = True
    attributes: dict[str, str] = field(default_factory=dict)  # --set name=value
    default_attributes: dict[str, str] = field(default_factory=dict)  # --default-attribute name=value
    # how an attribute read off a face (no CSV value) is decided: population (the critic's own reading
    # of the face) or person (against the mean of the person's own photos: a photo's identity from the
    # CSV or --identity, a video's track; see deidentify.attributes); auto: the checkpoint's
    # release_attribute_reference, person falling back to population for a photo of no known person
    attribute_reference: str = "auto"
    # attribute_reference person: how far (in the critic's scores, logits) a face must read another
    # value than the person's reference one, against the person's mean, for that value to be kept.
    # None: 0 for photos (a margin makes "changes little" a trait of the person) and 2 for a video's
    # tracks (its near-identical frames would flicker); deidentify.attributes, docs/evaluation.md
    attribute_margin: float | None = None
    # a video track's estimated attributes: frame (each frame's reading, a change held LABEL_HYSTERESIS
    # frames first) or track (one reading of the whole track, read before the video is released, for
    # all its frames: G's face is then one person throughout, and --follow carries the expression)
    video_labels: str = "frame"
    identity: str | None = None  # --identity NAME: closed-set group for every face
    similarity: bool = True  # recogniser similarity original vs output in the report
    on_no_face: str = "withhold"  # withhold | pixelate | blur | copy (see deidentify.policy)
    on_still_matching: str = "withhold"  # withhold | keep
    audio: str = "drop"  # a video's sound: drop (a voice identifies a person) | keep (warned)
    mask: MaskShape = field(default_factory=MaskShape)
    # where the generated face lands varies by this much (std of rotation in radians, of relative
    # scale and of shift in crop sides), drawn once per face of a photo and once per video track:
    # it keeps the source's framing from shaping what a recogniser sees (blend.jitter_transform)
    paste_jitter: float = 0.06
    jitter_seed: int | None = None  # None: fresh randomness each run (an attacker cannot replay it)
    # what of the source the generated face follows (deidentify.follow): none (the group's frozen
    # face), expression (the source's pose and expression as ratios on the group's face shape) or
    # shape (the source's own 68 landmarks, face shape included)
    # auto: the checkpoint's release_follow (none without one, and with region frame)
    follow: str = "auto"
    follow_strength: float = 1.0  # how far (0–1) the followed ratios (or, for shape, points) move to the source's
    # what --follow follows (deidentify.follow): source (the source's own ratios or points) or person (the
    # source's change from its person's mean, on the group's face: a person's level is not followed);
    # or rest (the source's change from its person's resting photos, those released with follow_rest:
    # a resting photo gets the group's face untouched); auto: person where attribute_reference is
    # person, else source
    follow_reference: str = "auto"
    # the label values that are a face at rest, for follow_reference rest (field -> value)
    follow_rest: dict[str, str] = field(default_factory=lambda: {"expression": "neutral"})
    colour: str = "none"  # none | match: the source's inner-face CIELAB mean and spread (deidentify.appearance)
    colour_strength: float = 1.0  # how far (0–1) the colour moves to the source's
    # alpha (feathered mask) | harmonise (the photo's colour at the boundary, fading inwards) | poisson
    # (cv2.seamlessClone inside the mask); the last two then feather as alpha does
    blend: str = "alpha"
    upscale: bool = True  # enlarge G's crop to the face's size in the photo (bicubic) before pasting
    # the unsharp mask on released faces: off by default (figures are judged without it); None: the
    # checkpoint's release_sharpen
    sharpen: float | None = 0.0
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    # output extension -> video encoder: an OpenCV fourcc (mp4v, MJPG, avc1, …) or an FFmpeg encoder name
    # (mpeg4, mjpeg, libx264, libvpx-vp9); other extensions get mpeg4 (.webm: libvpx-vp9). See videoio.py
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """A :class:`DeidentifyError` for a value outside its range or choices."""
        from kssgan.deidentify.follow import FOLLOW_CHOICES, FOLLOW_REFERENCES

        if self.batch_size < 1:
            raise DeidentifyError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.paste_jitter < 0:
            raise DeidentifyError(f"--paste-jitter must be >= 0, got {self.paste_jitter}")
        for name, choices in (
            ("follow", FOLLOW_CHOICES),
            ("follow_reference", FOLLOW_REFERENCES),
            ("colour", COLOUR_MODES),
            ("blend", BLEND_MODES),
        ):
            if getattr(self, name) not in choices:
                flag = name.replace("_", "-")
                raise DeidentifyError(f"--{flag} {getattr(self, name)!r} is not one of {choices}")
        if self.mask.region == "frame" and self.follow not in ("none", "auto"):
            raise DeidentifyError(
                f"--follow {self.follow} moves the face to the source's; region frame keeps nothing of the "
                "source, not even where its face was: use --mask.region head with --follow"
            )
        if self.attribute_reference not in ATTRIBUTE_REFERENCES:
            raise DeidentifyError(
                f"--attribute-reference {self.attribute_reference!r} is not one of {ATTRIBUTE_REFERENCES}"
            )
        if self.video_labels not in VIDEO_LABELS:
            raise DeidentifyError(f"--video-labels {self.video_labels!r} is not one of {VIDEO_LABELS}")
        if self.attribute_margin is not None and self.attribute_margin < 0:
            raise DeidentifyError(f"--attribute-margin must be >= 0, got {self.attribute_margin}")
        for name in ("follow_strength", "colour_strength"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise DeidentifyError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")
        if self.sharpen is not None and self.sharpen < 0:
            raise DeidentifyError(f"--sharpen must be >= 0, got {self.sharpen}")


#: ``DeidentifyOptions.attribute_reference``: what an estimated attribute is read against.
ATTRIBUTE_REFERENCES = ("auto", "population", "person")
#: ``DeidentifyOptions.video_labels``: a video track's estimated attributes per frame, or one per track.
VIDEO_LABELS = ("frame", "track")

FRAMING_DEFAULTS = {"margin": 0.0, "detector": "yunet"}


def apply_checkpoint_framing(opts: DeidentifyOptions, prepare: dict[str, Any] | None) -> DeidentifyOptions:
    """Fill ``margin``/``detector`` left unset from the checkpoint's ``prepare`` record; a value the
    user set that differs from it is a :class:`DeidentifyError` naming both (never a silent misframing)."""
    prepare, opts = prepare or {}, replace(opts)
    for name, default in FRAMING_DEFAULTS.items():
        trained = prepare.get(name)
        asked = getattr(opts, name)
        if asked is None:
            setattr(opts, name, trained if trained is not None else default)
        elif trained is not None and not _same(asked, trained):
            raise DeidentifyError(
                f"--{name} {asked} conflicts with the checkpoint: its training faces were prepared with "
                f"{name} {trained} (dataset {prepare.get('dataset', '?')}); leave --{name} out to use {trained}"
            )
    return opts


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-9
    return str(a) == str(b)
