"""The de-identification pipeline: detect → align → group → label → G → inverse warp → feathered blend.

:class:`Deidentifier` works on lists of frames (photos or video frames) so that the generator runs
on batches of faces across frames. It never writes anything itself; :mod:`.cli` and :mod:`.video`
do the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kssgan.data.labels import LabelSpec
from kssgan.deidentify.appearance import match_colour
from kssgan.deidentify.blend import crop_side_on_frame, frame_transform, jitter_transform, paste_face
from kssgan.deidentify.groups import FACE_RECOGNISERS, GROUP_SOURCE_NOTES, GroupChooser, LabelBuilder
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions, apply_checkpoint_framing
from kssgan.deidentify.policy import obscure, obscure_box, whole_frame_mode
from kssgan.deidentify.tracker import FaceTracker
from kssgan.faces.align import align_faces, inverse_transform, similarity_transform, transform_points

RECOGNISER_CROP = 112
Backend = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Frame:
    """One image to de-identify (BGR uint8) and what is known about the person in it."""

    image: np.ndarray
    key: str  # stable name for hash-based group choice, e.g. the relative path
    identity: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    grey: bool | None = None  # None: detect (all three channels equal)
    # whose photo this is, for ``attribute_reference: person`` (the photos read against each other);
    # None: ``identity``. Unlike ``identity`` it need not be a training identity (a stranger's photos)
    person: str | None = None


@dataclass
class FaceResult:
    box: list[float]
    score: float
    group: int
    group_source: str
    label: dict[str, Any]
    defaulted: list[str]
    track: int | None = None
    estimated: list[str] = field(default_factory=list)  # fields read off the face by the critic
    read_against: str | None = None  # how they were read: population, or person (attribute_reference)
    # with --follow, what the face followed: source (its own geometry) or person (its change from its
    # person's mean, follow_reference); None: nothing followed
    followed: str | None = None
    similarity: float | None = None  # recogniser similarity, original vs de-identified
    match: bool | None = None  # would the recogniser still call them the same person?
    # what of the photo was replaced for this face (MaskShape.region, resolved); "covered": region frame
    # gave the photo to a larger face of it, so this one was replaced with the rest of the photo
    region: str = "head"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 4),
            "group": self.group,
            "group_source": self.group_source,
            "label": self.label,
            "region": self.region,
        }
        if self.defaulted:
            out["defaulted_attributes"] = self.defaulted
        if self.estimated:
            out["estimated_attributes"] = self.estimated
            if self.read_against:
                out["estimated_against"] = self.read_against
        if self.followed:
            out["followed"] = self.followed
        if self.track is not None:
            out["track"] = self.track
        if self.similarity is not None:
            out["similarity"] = round(self.similarity, 4)
            out["match"] = self.match
        return out


@dataclass
class _Job:
    frame: int
    matrix: np.ndarray  # frame -> crop, where the face is pasted (jittered)
    crop_rgb: np.ndarray
    label: np.ndarray
    result: FaceResult
    aligned: np.ndarray  # frame -> crop the source was aligned with (unjittered)
    box: tuple[float, float, float, float]  # the detection box (x0, y0, x1, y1)
    person: Any = None  # whose face (a photo's person, a video's track id), for follow_reference person
    rest: bool = False  # released with the resting label (follow_rest), for follow_reference rest


#: The largest enlargement of G's crop before pasting (``upscale``).
MAX_UPSCALE = 8
#: ``follow`` in video: the share of a track's previous (smoothed) source landmarks kept each frame,
#: in crop coordinates, so that detector noise does not make the followed face tremble.
TRACK_SMOOTHING = 0.5
#: Video: frames in a row an estimated attribute must hold before a track's label changes.
LABEL_HYSTERESIS = 3


class Deidentifier:
    """Turns frames into de-identified frames with a generator ``backend`` and the checkpoint's metadata.

    Args:
        backend: ``backend(images N×3×S×S float32 in [-1, 1], labels N×C) -> N×3×S×S``.
        label_spec, groups, image_size: from the checkpoint (``checkpoint["kssgan"]``).
        options: :class:`DeidentifyOptions`.
        detector, recogniser: injected instances (tests, benchmarks); built from the options otherwise.
        attribute_estimator: reads source attributes off unlabelled faces
            (:class:`~kssgan.deidentify.attributes.CriticAttributeEstimator`); None: field defaults.
        prepare: the checkpoint's face framing (``checkpoint["kssgan"]["prepare"]``); margin and
            detector come from it unless the options set them (a contradiction is an error).
    """

    def __init__(
        self,
        backend: Backend,
        label_spec: dict[str, Any],
        groups: dict[str, Any],
        image_size: int,
        options: DeidentifyOptions | None = None,
        detector: Any = None,
        recogniser: Any = None,
        attribute_estimator: Any = None,
        prepare: dict[str, Any] | None = None,
        record_alpha: bool = False,
        release_region: str | None = None,
        release_attribute_reference: str | None = None,
        release_follow: str | None = None,
        release_follow_reference: str | None = None,
    ) -> None:
        self.options = opts = apply_checkpoint_framing(options or DeidentifyOptions(), prepare)
        if opts.mask.region == "auto":  # the recipe's region (its checkpoint's release_region), else head
            opts.mask = replace(opts.mask, region=release_region or "head")
        #: the attribute reference is the recipe's (``auto``): a photo of no known person is then read
        #: by the critic alone, not refused
        self.reference_from_recipe = opts.attribute_reference == "auto"
        if self.reference_from_recipe:
            opts.attribute_reference = release_attribute_reference or "population"
        if opts.follow == "auto":  # the recipe's (its checkpoint's release_follow); a whole-photo release: none
            opts.follow = "none" if opts.mask.region == "frame" else (release_follow or "none")
        if opts.follow_reference == "auto" and release_follow_reference not in (None, "auto"):
            opts.follow_reference = release_follow_reference  # the recipe's
        if opts.follow_reference == "auto":  # the person's change where attributes are read against the person
            opts.follow_reference = "person" if opts.attribute_reference == "person" else "source"
        opts.check()
        self.prepare = prepare
        self.backend, self.image_size = backend, int(image_size)
        self.spec = LabelSpec.from_dict(label_spec)
        if not groups:
            raise DeidentifyError("the checkpoint carries no k-Same groups (checkpoint['kssgan']['groups'])")
        if self.spec.num_groups != len(groups["centroids"]):
            raise DeidentifyError(
                f"the label spec has {self.spec.num_groups} groups but groups.json {len(groups['centroids'])}"
            )
        self.labels = LabelBuilder(self.spec, opts.attributes, opts.default_attributes)
        self.attribute_estimator = attribute_estimator
        built_with = str(groups.get("recogniser", "unknown"))
        self.recogniser_name = opts.recogniser or (built_with if built_with.lower() in FACE_RECOGNISERS else "sface")
        self.chooser = GroupChooser(groups, self.recogniser_name)
        if opts.identity is not None and not self.chooser.knows(opts.identity):
            raise DeidentifyError(
                f"--identity {opts.identity!r} is not one of the {len(self.chooser.assignment.identity_to_group)} "
                "identities this model was trained on (closed set); leave it out for open-set assignment"
            )
        if detector is None:
            from kssgan.faces.detect import get_detector

            detector = get_detector(
                opts.detector, opts.model_dir, score_threshold=opts.detector_score, device=opts.device
            )
        self.detector = detector
        needs_embedding = opts.similarity or self.chooser.open_set or opts.tracker.use_embedding
        if recogniser is None and needs_embedding:
            from kssgan.faces.recognize import get_recognizer

            recogniser = get_recognizer(self.recogniser_name, opts.model_dir)
        self.recogniser = recogniser
        self._jitter_rng = np.random.default_rng(opts.jitter_seed)
        #: how many paste-jitter draws were made: none means the release had no randomness (``region:
        #: frame``, or ``paste_jitter`` 0), so releasing the same photos again gives the same photos
        self.jitter_draws = 0
        self._track_jitter: dict[int, np.ndarray] = {}
        self._track_points: dict[int, np.ndarray] = {}  # --follow: each video track's smoothed source points
        self._track_labels: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}  # (current, pending) per track
        # attribute_reference person: the critic's summed scores and count per person (observe_people),
        # per video track (as it goes) and over everyone observed
        self._people: dict[str, tuple[np.ndarray, int]] = {}
        self._track_scores: dict[int, tuple[np.ndarray, int]] = {}
        self._track_reference: dict[int, np.ndarray] = {}  # each track's mean over the whole video (observe_tracks)
        self._population: tuple[np.ndarray, int] | None = None
        self.follower = None
        if opts.follow != "none":
            from kssgan.deidentify.follow import GeometryFollower, PersonShapes

            self.follower = GeometryFollower(opts.follow, opts.follow_strength)
            # follow_reference person: each person's (observe_people) and video track's mean points
            self._person_shapes, self._track_shapes = PersonShapes(), PersonShapes()
            # follow_reference rest: each person's and track's resting faces' mean points; a person's
            # photos wait (points, scores, given attributes) until everyone is read (observe_people)
            self._rest_shapes, self._track_rest = PersonShapes(), PersonShapes()
            self._rest_pending: list[tuple[Any, np.ndarray, np.ndarray | None, dict[str, Any], str]] = []
            self._rest_settled = True
            if opts.follow_reference == "rest":
                self._check_rest()
        self._skin = None
        if opts.colour == "match":
            from kssgan.deidentify.appearance import skin_region

            self._skin = skin_region(self.image_size, float(opts.margin))
        #: with ``record_alpha``, the paste mask of each frame of the last :meth:`process` (H×W float32)
        self.record_alpha = record_alpha
        self.alphas: list[np.ndarray | None] = []

    # -- construction from files ---------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls,
        ckpt: str | Path,
        options: DeidentifyOptions | None = None,
        backend: str = "torch",
        onnx_path: str | Path | None = None,
        image_size: int | None = None,
        record_alpha: bool = False,
    ) -> Deidentifier:
        """Load ``ckpt`` (``weights_only=True``) and build the chosen back end; checks ``image_size``."""
        from kssgan.deidentify.backends import OnnxGenerator, TorchGenerator
        from kssgan.safe_checkpoint import CheckpointError, load_model

        options = options or DeidentifyOptions()
        path = Path(ckpt)
        try:
            model = load_model(path)
        except CheckpointError as err:
            raise DeidentifyError(str(err)) from err
        if options.sharpen is not None:
            model.hparams["release_sharpen"] = float(options.sharpen)
        size = int(model.hparams.image_size)
        if image_size is not None and int(image_size) != size:
            raise DeidentifyError(
                f"the checkpoint's generator works at {size} px, not the requested {image_size} px; "
                "pass --image-size {size} (or leave it out) or use a checkpoint trained at that size"
            )
        spec_dict = model.spec.to_dict()
        if backend == "torch":
            gen: Backend = TorchGenerator(
                model.release_generator(), options.device, options.precision, options.channels_last
            )
        elif backend == "onnxruntime":
            if onnx_path is None:
                raise DeidentifyError("--backend onnxruntime needs --onnx PATH (write it with `kssgan export`)")
            gen = OnnxGenerator(onnx_path, options.device)
            gen.check_matches(size, spec_dict)
        else:
            raise DeidentifyError(f"unknown backend {backend!r}; choose torch or onnxruntime")
        from kssgan.deidentify.attributes import CriticAttributeEstimator

        estimator = CriticAttributeEstimator(model.critic, model.spec, options.device)
        return cls(
            gen,
            spec_dict,
            model.groups,
            size,
            options,
            attribute_estimator=estimator,
            prepare=model.prepare_info,
            record_alpha=record_alpha,
            release_region=model.hparams.get("release_region"),
            release_attribute_reference=model.hparams.get("release_attribute_reference"),
            release_follow=model.hparams.get("release_follow"),
            release_follow_reference=model.hparams.get("release_follow_reference"),
        )

    def make_tracker(self) -> FaceTracker:
        """A fresh tracker (one per video) using the recogniser's match threshold as a cosine. Its
        track ids start again at 0, so what was kept per track of the last video (paste jitter,
        followed points, labels) is forgotten: no draw or label carries over to another video. Call
        :meth:`observe_tracks` after it, before the video's first :meth:`process`."""
        for state in (self._track_jitter, self._track_points, self._track_labels, self._track_scores):
            state.clear()
        self._track_reference.clear()  # read afresh for this video by observe_tracks
        if self.follower is not None:  # track ids start again at 0: the last video's means and rests go
            self._track_shapes.clear()
            self._track_rest.clear()
        return FaceTracker(self.options.tracker, cosine_threshold(self.recogniser))

    @property
    def reads_tracks_first(self) -> bool:
        """Whether a video is read once before it is released (:meth:`observe_tracks`): its tracks are
        read against the whole of themselves, or one label is kept per track (``video_labels``)."""
        return self.reads_people or self.options.video_labels == "track"

    @property
    def reads_people(self) -> bool:
        """Whether a photo is released against its person's other photos (``attribute_reference`` or
        ``follow_reference`` person), so that they must be observed first (:meth:`observe_people`,
        :meth:`observe_tracks`)."""
        return self.options.attribute_reference == "person" or self._follows_person

    @property
    def _follows_person(self) -> bool:
        """Whether faces are followed against their person's photos (``follow_reference`` person or rest)."""
        return self.follower is not None and self.options.follow_reference in ("person", "rest")

    @property
    def _follows_rest(self) -> bool:
        return self.follower is not None and self.options.follow_reference == "rest"

    def _check_rest(self) -> None:
        """A one-line error where ``follow_rest`` names a field or value this checkpoint's label lacks."""
        fields = {f.name: f for f in self.spec.fields[1:]}
        if not self.options.follow_rest:
            raise DeidentifyError("--follow-reference rest needs --follow-rest NAME=VALUE (a label value at rest)")
        for name, value in self.options.follow_rest.items():
            f = fields.get(name)
            if f is None:
                raise DeidentifyError(
                    f"--follow-rest {name}={value}: this checkpoint's label has no field {name!r}; its fields are "
                    f"{list(fields)} (--follow-reference rest needs a resting value of one of them)"
                )
            if f.kind == "onehot" and str(value) not in f.values:
                known = list(f.values)
                raise DeidentifyError(f"--follow-rest {name}={value!r}: unknown value; this checkpoint knows {known}")

    def _at_rest(self, values: dict[str, Any]) -> bool:
        """Whether a face's label ``values`` are the resting ones (``follow_rest``)."""
        return all(str(values.get(n)) == str(v) for n, v in self.options.follow_rest.items())

    def observe_people(self, frames: Sequence[Frame]) -> int:
        """Add each frame's largest face to its person's references before the photos are released:
        the mean of the critic's scores over that person's photos (``attribute_reference: person``)
        and of their faces' points (``follow_reference: person``). Frames without a person
        (``person``, ``identity`` or ``--identity``) or a face are passed over. Returns how many
        faces were added."""
        est = self.attribute_estimator if self.options.attribute_reference == "person" else None
        if est is None and self._follows_rest:  # the resting photos are read as the release reads them
            est = self.attribute_estimator
        if est is None and not self._follows_person:
            return 0
        from kssgan.faces.detect import select_face

        added = 0
        for fr in frames:
            key = self._person_of(fr)
            det, _ = select_face(self.detector.detect(fr.image), fr.image.shape) if key is not None else (None, 0)
            if det is None:  # the photo's face as prepare picks it (faces.detect.select_face)
                continue
            lms = np.asarray(det.landmarks, np.float64)
            points = self._aligned_points(fr.image, lms, _corners(det.box)) if self._follows_person else None
            if points is not None:
                self._person_shapes.add(key, points)
            added += 1
            row = None
            if est is not None and (self.options.attribute_reference == "person" or self._missing(fr.attributes)):
                crop = align_faces([fr.image], [lms], self.image_size, self.options.margin)[0]
                row = est.scores([crop[:, :, ::-1]])[0].astype(np.float64)
            if self._follows_rest:
                self._rest_pending.append((key, points, row, dict(fr.attributes), fr.key))
                self._rest_settled = False  # settled again once everyone is read (_rest_reference)
            if est is None or self.options.attribute_reference != "person":
                continue
            total, n = self._people.get(key, (np.zeros_like(row), 0))
            self._people[key] = (total + row, n + 1)
            total, n = self._population or (np.zeros_like(row), 0)
            self._population = (total + row, n + 1)
        return added

    def _aligned_points(self, image: np.ndarray, lms: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        """The follower's 68 points of the face in ``box``, in its aligned crop's coordinates."""
        aligned = similarity_transform(lms, self.image_size, self.options.margin)
        return transform_points(aligned, self.follower.landmarks(image, box))

    def observe_tracks(self, images: Iterable[np.ndarray]) -> int:
        """A video's frames read once before it is released (:attr:`reads_tracks_first`), tracked as
        :meth:`process` will track them (same detector, embeddings and tracker settings, so the same
        track ids). Each track's mean scores over the whole video are kept as its reference
        (``attribute_reference: person``) or its one reading (``video_labels: track``), and its mean
        points as what it is followed against (``follow_reference: person``). Without this pass a
        track is read against its frames so far. Returns the tracks seen."""
        self._track_reference.clear()
        whole = self.options.attribute_reference == "person" or self.options.video_labels == "track"
        est = self.attribute_estimator if whole else None
        track_means = self.follower is not None and self.options.follow_reference == "person"
        if est is None and not track_means:
            return 0
        if track_means:
            self._track_shapes.clear()
        tracker = FaceTracker(self.options.tracker, cosine_threshold(self.recogniser))
        totals: dict[int, tuple[np.ndarray, int]] = {}
        seen: set[int] = set()
        for fi, image in enumerate(images):
            dets, lms, crops, _, tracks = self._read_faces(image, tracker, fi)
            if not dets:
                continue
            seen.update(t.id for t, _ in tracks)
            if track_means:
                for (track, _), det, points in zip(tracks, dets, lms, strict=True):
                    self._track_shapes.add(track.id, self._aligned_points(image, points, _corners(det.box)))
            if est is None:
                continue
            for (track, _), row in zip(tracks, est.scores([c[:, :, ::-1] for c in crops]), strict=True):
                total, n = totals.get(track.id, (np.zeros(len(row)), 0))
                totals[track.id] = (total + row, n + 1)
        self._track_reference.update({tid: total / n for tid, (total, n) in totals.items()})
        if track_means:
            self._track_shapes.fix()
        return len(seen)

    def _read_faces(self, image: np.ndarray, tracker: FaceTracker | None, frame: int) -> tuple[Any, ...]:
        """One image's detections, landmarks, aligned crops, embeddings (None without a recogniser)
        and, with a ``tracker``, ``(track, is_new)`` per face: what :meth:`process` and
        :meth:`observe_tracks` both read, so the two passes over a video track it alike."""
        dets = self.detector.detect(image)
        if not dets:
            return [], [], [], None, None
        lms = [np.asarray(d.landmarks, np.float64) for d in dets]
        crops = align_faces([image] * len(dets), lms, self.image_size, margin=self.options.margin)
        emb = self._embed(image, lms) if self.recogniser is not None else None
        tracks = tracker.update(frame, [d.box for d in dets], emb) if tracker is not None else None
        return dets, lms, crops, emb, tracks

    def forget_people(self) -> None:
        """Drop every person's reference (:meth:`observe_people`)."""
        self._people.clear()
        self._population = None
        if self.follower is not None:
            self._person_shapes.clear()
            self._rest_shapes.clear()
            self._rest_pending.clear()
            self._rest_settled = True

    def _person_of(self, frame: Frame) -> str | None:
        return frame.person or frame.identity or self.options.identity

    def group_note(self) -> dict[str, str]:
        notes = dict(GROUP_SOURCE_NOTES)
        if not self.chooser.open_set:
            notes["open_set_unavailable"] = self.chooser.why_not_open_set
        return notes

    # -- the work -------------------------------------------------------------------------------
    def process(
        self, frames: Sequence[Frame], tracker: FaceTracker | None = None, frame_offset: int = 0
    ) -> list[tuple[np.ndarray, list[FaceResult]]]:
        """De-identified copies of ``frames`` (inputs are not modified) and the faces found in each.

        With a ``tracker`` (video), a live track that is not detected in a frame has its last known
        box obscured there (:meth:`FaceTracker.missed`, recorded in ``tracker.fallbacks``), and a frame
        with no detection and no live track is obscured whole as ``--on-no-face`` says
        (:func:`~kssgan.deidentify.policy.whole_frame_mode`, recorded in ``tracker.bare_frames``)."""
        opts, size = self.options, self.image_size
        outputs = [f.image.copy() for f in frames]
        results: list[list[FaceResult]] = [[] for _ in frames]
        jobs: list[_Job] = []
        landmarks: list[list[np.ndarray]] = [[] for _ in frames]
        landed: list[list[np.ndarray]] = [[] for _ in frames]  # where each face's landmarks are in the output
        covered: list[list[tuple[float, float, float, float]]] = [[] for _ in frames]
        bare: list[int] = []  # frames of a video with no face and no live track
        for fi, fr in enumerate(frames):
            dets, lms, crops, emb, tracks = self._read_faces(fr.image, tracker, frame_offset + fi)
            if not dets:
                if tracker is not None:
                    covered[fi] = [t.box for t in tracker.missed(frame_offset + fi)]
                    if not covered[fi]:
                        bare.append(fi)
                        tracker.bare_frames.append(frame_offset + fi)
                continue
            landmarks[fi] = lms
            if tracker is not None:
                covered[fi] = [t.box for t in tracker.missed(frame_offset + fi)]
            identity = opts.identity or fr.identity
            people: list[Any] = [t.id for t, _ in tracks] if tracks is not None else [self._person_of(fr)] * len(dets)
            estimates = self._estimate(crops, fr.attributes, people, fr.key)
            largest = int(np.argmax([d.box[2] * d.box[3] for d in dets]))
            for j, det in enumerate(dets):
                e = None if emb is None else emb[j]
                if tracks is not None:
                    track, new = tracks[j]
                    if new:
                        track.group, track.group_source = self.chooser.choose(f"{fr.key}#track{track.id}", identity, e)
                    group, source, tid = track.group, track.group_source, track.id
                else:
                    group, source = self.chooser.choose(f"{fr.key}#face{j}", identity, e)
                    tid = None
                guessed = self._steady(tid, estimates[j]) if tid is not None else estimates[j]
                known = {**guessed, **fr.attributes}
                record, defaulted = self.labels.record(group, known)
                res = FaceResult([float(v) for v in det.box], float(det.score), group, source, record, defaulted, tid)
                res.estimated = [n for n in estimates[j] if n not in fr.attributes and n not in opts.attributes]
                if res.estimated:
                    by_person = opts.attribute_reference == "person" and people[j] is not None
                    res.read_against = "person" if by_person else "population"
                results[fi].append(res)
                matrix = aligned = similarity_transform(lms[j], size, opts.margin)
                moved = lms[j]
                whole = opts.mask.region == "frame"
                res.region = opts.mask.region
                if whole and j != largest:  # region frame: the largest face takes the photo, this one goes with it
                    res.region = "covered"
                    landed[fi].append(moved)
                    continue
                if whole:  # the whole photo is the generated face, placed by the photo's size alone
                    h, w = fr.image.shape[:2]
                    aligned_src = matrix
                    matrix = aligned = frame_transform(w, h, size)
                    moved = transform_points(inverse_transform(matrix), transform_points(aligned_src, lms[j]))
                elif opts.paste_jitter > 0:
                    pasted = jitter_transform(matrix, size, self._jitter(tid))
                    moved = transform_points(inverse_transform(pasted), transform_points(matrix, lms[j]))
                    matrix = pasted
                landed[fi].append(moved)
                if self.follower is not None:
                    res.followed = opts.follow_reference
                label = self.spec.encode(record)
                rest = self._follows_rest and self._at_rest(record)
                jobs.append(
                    _Job(fi, matrix, crops[j][:, :, ::-1], label, res, aligned, _corners(det.box), people[j], rest)
                )
        self._generate_and_paste(jobs, frames, outputs)
        if opts.similarity and self.recogniser is not None:
            self._measure(frames, outputs, landmarks, landed, results, tracker)
        for out, boxes in zip(outputs, covered, strict=True):
            for box in boxes:  # a tracked face the detector missed here: its last box is obscured
                obscure_box(out, box)
        mode = whole_frame_mode(opts.on_no_face)
        if mode is not None:  # where a missed face may be is unknown: the whole frame
            for fi in bare:
                outputs[fi] = obscure(outputs[fi], mode)
        return list(zip(outputs, results, strict=True))

    def _steady(self, track: int, guess: dict[str, Any]) -> dict[str, Any]:
        """A video track's estimated attributes with hysteresis: a new value replaces the track's
        current one only after ``LABEL_HYSTERESIS`` frames in a row, so that the released face does
        not flip between expressions when the critic's per-frame estimate wavers."""
        current, pending = self._track_labels.setdefault(track, ({}, {}))
        out = {}
        for name, value in guess.items():
            if name not in current or current[name] == value:
                current[name] = value
                pending.pop(name, None)
            else:
                seen, count = pending.get(name, (value, 0))
                count = count + 1 if seen == value else 1
                pending[name] = (value, count)
                if count >= LABEL_HYSTERESIS:
                    current[name] = value
                    pending.pop(name)
            out[name] = current[name]
        return out

    def _jitter(self, track: int | None) -> np.ndarray:
        """This face's paste jitter draw: a new one per face, one per video track."""
        if track is not None and track in self._track_jitter:
            return self._track_jitter[track]
        draw = self._jitter_rng.normal(0.0, self.options.paste_jitter, 4)
        self.jitter_draws += 1
        if track is not None:
            self._track_jitter[track] = draw
        return draw

    def _estimate(
        self, crops_bgr: Sequence[np.ndarray], known: dict[str, Any], people: Sequence[Any] = (), key: str = ""
    ) -> list[dict[str, Any]]:
        """Attributes read off each face, for the label fields neither the CSV nor --set gives. With
        ``attribute_reference: person`` each face is read against its person's photos: ``people``
        holds each face's person (a str) or video track (an int)."""
        est = self.attribute_estimator
        if est is None or not self._missing(known):
            return [{} for _ in crops_bgr]
        return self._guesses(est.scores([c[:, :, ::-1] for c in crops_bgr]), known, people, key)

    def _missing(self, known: dict[str, Any]) -> list[str]:
        """The label fields neither ``known`` (the CSV) nor --set gives: what the critic reads."""
        given = {**known, **self.options.attributes}
        return [f.name for f in self.spec.fields[1:] if f.name not in given]

    def _guesses(
        self, scores: np.ndarray, known: dict[str, Any], people: Sequence[Any] = (), key: str = ""
    ) -> list[dict[str, Any]]:
        """The critic's ``scores`` of faces decided as :meth:`_estimate` decides them (a video track's
        whole reading, against the person), for the fields :meth:`_missing` from ``known``."""
        est, missing = self.attribute_estimator, self._missing(known)
        if self.options.video_labels == "track":  # a track read first: its whole reading, every frame
            whose = list(people) or [None] * len(scores)
            held = self._track_reference
            scores = np.stack([held.get(w, r) if isinstance(w, int) else r for r, w in zip(scores, whose, strict=True)])
        if self.options.attribute_reference == "person":
            scores = np.stack([self._relative(row, who, key) for row, who in zip(scores, people, strict=True)])
        guesses = est.decide(scores)
        return [{k: v for k, v in g.items() if k in missing} for g in guesses]

    def _relative(self, row: np.ndarray, who: Any, key: str) -> np.ndarray:
        """One face's scores against its person's mean (:func:`~kssgan.deidentify.attributes.relative_scores`):
        a video track's mean over the video (:meth:`observe_tracks`), else so far, this frame
        included; a photo's person as :meth:`observe_people` saw them (not seen: this photo alone)."""
        from kssgan.deidentify.attributes import PHOTO_ATTRIBUTE_MARGIN, VIDEO_ATTRIBUTE_MARGIN, relative_scores

        row = np.asarray(row, np.float64)
        if who is None and self.reference_from_recipe:  # the recipe's person reading, no person known
            return row
        if who is None:
            raise DeidentifyError(
                f"{key}: --attribute-reference person reads a face against its person's other photos, and "
                "this photo's person is unknown: give an identity column in --attributes, or --identity"
            )
        if isinstance(who, int) and who in self._track_reference:  # a video read first: the whole track
            mean = self._track_reference[who]
        elif isinstance(who, int):  # a video track as it goes: its frames so far
            total, n = self._track_scores.get(who, (np.zeros_like(row), 0))
            self._track_scores[who] = (total + row, n + 1)
            mean = (total + row) / (n + 1)
        else:
            total, n = self._people.get(str(who), (row, 1))
            mean = total / n
        population = self._population[0] / self._population[1] if self._population else np.zeros_like(row)
        margin = self.options.attribute_margin
        if margin is None:
            margin = VIDEO_ATTRIBUTE_MARGIN if isinstance(who, int) else PHOTO_ATTRIBUTE_MARGIN
        return relative_scores(row, mean, population, self.spec, margin)

    def _embed(self, image: np.ndarray, lms: list[np.ndarray]) -> np.ndarray:
        crops = align_faces([image] * len(lms), lms, RECOGNISER_CROP, margin=0.0)
        return np.asarray(self.recogniser.embed(crops), np.float32)

    def _generate_and_paste(self, jobs: list[_Job], frames: Sequence[Frame], outputs: list[np.ndarray]) -> None:
        bs = self.options.batch_size
        self.alphas = [np.zeros(o.shape[:2], np.float32) if self.record_alpha else None for o in outputs]
        for start in range(0, len(jobs), bs):
            chunk = jobs[start : start + bs]
            x = np.stack([j.crop_rgb for j in chunk]).astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1.0
            c = np.stack([j.label for j in chunk])
            y = self.backend(x, c)
            fakes = np.clip(np.rint((y.transpose(0, 2, 3, 1) + 1.0) * 127.5), 0, 255).astype(np.uint8)
            for job, fake in zip(chunk, fakes, strict=True):
                bgr = np.ascontiguousarray(fake[:, :, ::-1])
                fr = frames[job.frame]
                grey = fr.grey if fr.grey is not None else _is_grey(fr.image)
                if self._skin is not None:  # the source's skin tone and light (--colour match)
                    source = np.ascontiguousarray(job.crop_rgb[:, :, ::-1])
                    bgr = match_colour(bgr, source, self._skin, self.options.colour_strength)
                if grey:  # keep grey photos grey: G may tint them
                    g = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
                    bgr = cv2.merge([g, g, g])
                bgr, matrix = self._render(bgr, job, fr.image)
                paste_face(
                    outputs[job.frame],
                    bgr,
                    matrix,
                    self.options.margin,
                    self.options.mask,
                    self.options.blend,
                    self.alphas[job.frame],
                )

    def _render(self, crop: np.ndarray, job: _Job, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """G's crop at the face's size in the photo (``upscale``, bicubic) and moved to follow the
        source (``follow``); returns it with its frame → crop matrix."""
        size = crop.shape[0]
        factor = 1
        if self.options.upscale:
            factor = int(np.clip(np.ceil(crop_side_on_frame(job.aligned, size) / size), 1, MAX_UPSCALE))
        if factor > 1:
            crop = cv2.resize(crop, (size * factor, size * factor), interpolation=cv2.INTER_CUBIC)
        if self.follower is not None:
            to_canvas = np.asarray(job.aligned, np.float64) * factor
            x0, y0, x1, y1 = job.box
            points = transform_points(to_canvas, self.follower.landmarks(image, job.box)) / factor
            by_mean = self._follows_person and not self._follows_rest
            reference = self._shape_reference(job.person, points) if by_mean else None
            track = job.result.track
            if track is not None:  # video: the followed points move smoothly along a track
                last = self._track_points.get(track)
                points = points if last is None else TRACK_SMOOTHING * last + (1.0 - TRACK_SMOOTHING) * points
                self._track_points[track] = points
            if self._follows_rest:  # the points as followed (smoothed): a resting face is then untouched
                reference = self._rest_reference(job.person, points, job.rest)
            points = points * factor
            corners = transform_points(to_canvas, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64))
            box = (*corners.min(0), *corners.max(0))
            crop = self.follower(crop, points, box, None if reference is None else reference * factor)
        return crop, np.asarray(job.matrix, np.float64) * factor

    def _shape_reference(self, who: Any, points: np.ndarray) -> np.ndarray:
        """The mean points (aligned crop coordinates) a face's ``points`` are followed against: a video
        track's over the video (:meth:`observe_tracks`) or so far, this frame included; a photo's
        person's as :meth:`observe_people` saw them; a face of no known person, or a person never
        observed: its own points (nothing changes: the frozen face)."""
        if isinstance(who, int):
            if not self._track_shapes.fixed(who):
                self._track_shapes.add(who, points)
            return self._track_shapes.mean(who, points)
        return self._person_shapes.mean(who, points)

    def _rest_reference(self, who: Any, points: np.ndarray, rest: bool) -> np.ndarray:
        """What a face's ``points`` are followed against under ``follow_reference: rest``: a face released
        at rest, its own points (the group's face untouched); else its person's resting photos' mean
        (:meth:`observe_people`), or a video track's resting frames so far; none known: its own
        points (the frozen face)."""
        if isinstance(who, int):
            if rest:
                self._track_rest.add(who, points)
                return points
            return self._track_rest.mean(who, points)
        if rest or who is None:
            return points
        if not self._rest_settled:
            self._settle_rest()
        return self._rest_shapes.mean(who, points)

    def _settle_rest(self) -> None:
        """Each observed photo's label, made as :meth:`process` makes it (the given attributes and --set,
        else the critic's reading, against the person where attributes are read so, else the defaults);
        the resting ones' points into the resting means."""
        self._rest_shapes.clear()
        self._rest_settled = True
        for who, points, row, given, key in self._rest_pending:
            guessed = self._guesses(row[None], given, [who], key)[0] if row is not None else {}
            record, _ = self.labels.record(0, {**guessed, **given})  # as process() labels the photo
            if self._at_rest(record):
                self._rest_shapes.add(who, points)

    def _measure(
        self,
        frames: Sequence[Frame],
        outputs: list[np.ndarray],
        landmarks: list[list[np.ndarray]],
        landed: list[list[np.ndarray]],
        results: list[list[FaceResult]],
        tracker: FaceTracker | None,
    ) -> None:
        tracks = {t.id: t for t in tracker.all_tracks()} if tracker is not None else {}
        for fr, out, lms, moved, res in zip(frames, outputs, landmarks, landed, results, strict=True):
            if not lms:
                continue
            # the output is embedded where the face was pasted (with --paste-jitter, a little off the source)
            before, after = self._embed(fr.image, lms), self._embed(out, moved)
            sims = self.recogniser.similarity(before, after)
            matches = self.recogniser.is_match(before, after)
            for r, s, m in zip(res, np.atleast_1d(sims), np.atleast_1d(matches), strict=True):
                r.similarity, r.match = float(s), bool(m)
                if r.track is not None and r.track in tracks:
                    tracks[r.track].similarities.append(float(s))


def _corners(box: Sequence[float]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a detection's (x, y, w, h) box."""
    x, y, w, h = (float(v) for v in box)
    return x, y, x + w, y + h


def cosine_threshold(recogniser: Any) -> float:
    """The recogniser's match threshold expressed as a cosine similarity of unit embeddings."""
    if recogniser is None:
        return 1.0
    if getattr(recogniser, "metric", "cosine") == "l2":
        # distance() of these recognisers scales the unit-vector distance sqrt(2 - 2cos) by a constant.
        scale = float(recogniser.distance(np.array([1.0, 0.0]), np.array([0.0, 1.0]))) / np.sqrt(2.0)
        d = recogniser.threshold / scale
        return float(1.0 - d * d / 2.0)
    return float(recogniser.threshold)


def _is_grey(image: np.ndarray) -> bool:
    return image.ndim == 2 or bool(
        np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 1], image[:, :, 2])
    )
