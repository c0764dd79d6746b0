"""``kssgan deidentify``: de-identify an image, a folder (recursive) or a video with a trained model.

    kssgan deidentify --ckpt model.ckpt --input photos/ --output released/ --report report.json
    kssgan deidentify --ckpt model.ckpt --input clip.mp4 --output released/ --set expression=neutral
    kssgan deidentify --ckpt model.ckpt --backend onnxruntime --onnx model.onnx --input ... --output ...
    kssgan deidentify --config deid.yaml --input ... --output ...   # any option below from YAML
    kssgan deidentify --ckpt model.ckpt --input ... --output ... --print_config > deid.yaml

Outputs keep the input's relative paths and basenames (and image format). Existing outputs are
skipped unless ``--overwrite``. Fail closed: pictures without a face and outputs the recogniser still
matches to their source are withheld (not written) unless ``--on-no-face`` / ``--on-still-matching``
say otherwise (:mod:`.policy`); files that cannot be read are logged (``<output>/deidentify.log``) and
reported, and the batch goes on. Every finished file is recorded in ``<output>/deidentify-journal.jsonl``
before its output appears (:mod:`.journal`); the JSON report (default ``<output>/deidentify-report.json``)
is rebuilt from it and lists per face: box, detector score, group, how the group was chosen and the
recogniser similarity between the original and the output. The exit status is 0 when every file was
released, 1 when some failed, 2 for a bad request, 3 when something was withheld.

``--seal-to holder.pub`` seals the mapping released file -> source (identity, groups, boxes) to the
data holder's key in ``<output>/reidentify.sealed`` and strips source names from the report and the
journal; ``--rename hash`` names outputs by a keyed hash (:mod:`kssgan.seal`). Each file is sealed,
then journaled, then published (:class:`~kssgan.deidentify.recorder.Recorder`).

Photos are read in chunks (up to ``--batch-size`` files and
:data:`~kssgan.deidentify.files.CHUNK_MAX_PIXELS` pixels) and
each chunk is de-identified at once, so the generator batches faces across photos; a chunk that
fails is redone photo by photo, so one bad photo never costs the others.

The k-Same grouping covers only identities of the training closed set (``--identity`` or an
``--attributes`` CSV with an identity column); other faces get the nearest group (best effort).
How well the output images resist re-identification is measured by ``kssgan evaluate``.

Options come from flags and from ``--config`` YAML files (keys are the option names with ``_``:
``batch_size: 8``, ``on_no_face: blur``, ``set: [expression=neutral]``, ``mask: {feather: 0.4}``);
flags after a ``--config`` override it, and a key that is no option is an error (exit 2). This
module is the parser; :mod:`.run` runs the job, :mod:`.files` is the file loop, :mod:`.report` the report.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from typing import Any

from jsonargparse import ArgumentParser, Namespace

from kssgan.deidentify.encode import ENCODE_EXTENSION, IMAGE_EXTENSIONS, encode_image
from kssgan.deidentify.files import CHUNK_MAX_PIXELS, deidentify_files
from kssgan.deidentify.follow import FOLLOW_CHOICES, FOLLOW_REFERENCES
from kssgan.deidentify.inputs import check_paths, collect_inputs, read_attributes, scan_inputs
from kssgan.deidentify.options import (
    ATTRIBUTE_REFERENCES,
    BLEND_MODES,
    COLOUR_MODES,
    VIDEO_LABELS,
    DeidentifyError,
    DeidentifyOptions,
    MaskShape,
    TrackerSettings,
)
from kssgan.deidentify.policy import NO_FACE_CHOICES, STILL_MATCHING_CHOICES
from kssgan.deidentify.report import REPORT_NAME, build_report, count_entries, exit_status, summary_line
from kssgan.deidentify.run import LOG_NAME, run
from kssgan.job_config import job_parser
from kssgan.seal import SealError

__all__ = [  # the names this module has always offered (tests, bench and release code import them)
    "CHUNK_MAX_PIXELS",
    "ENCODE_EXTENSION",
    "IMAGE_EXTENSIONS",
    "LOG_NAME",
    "REPORT_NAME",
    "build_parser",
    "build_report",
    "check_paths",
    "collect_inputs",
    "count_entries",
    "deidentify_files",
    "encode_image",
    "exit_status",
    "main",
    "options_from_args",
    "read_attributes",
    "run",
    "scan_inputs",
    "summary_line",
]

PROG = "kssgan deidentify"


def build_parser() -> ArgumentParser:
    """The ``kssgan deidentify`` parser (:func:`kssgan.job_config.job_parser`: ``--config``, ``--print_config``)."""
    d = DeidentifyOptions()
    p = job_parser(PROG, __doc__.split("\n\n")[0], epilog="exit status: 0 released, 1 failures, 2 bad request, "
                   "3 something withheld")  # fmt: skip
    p.add_argument("--ckpt", type=str, required=True, help="trained kssgan checkpoint (.ckpt)")
    p.add_argument("--input", type=str, required=True, help="an image, a video or a folder (searched recursively)")
    p.add_argument("--output", type=str, required=True, help="output folder (relative paths and names are kept)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("--report", type=str, help=f"JSON report path (default <output>/{REPORT_NAME})")
    p.add_argument("--log", type=str, help=f"failure log (default <output>/{LOG_NAME})")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    p.add_argument("--onnx", type=str, help="ONNX generator from `kssgan export` (for --backend onnxruntime)")
    p.add_argument("--device", type=str, default=d.device, help="cpu | cuda")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=d.precision, help="torch back end only")
    p.add_argument("--channels-last", type=bool, default=d.channels_last, help="torch back end memory format")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="faces per generator call")
    p.add_argument("--image-size", type=int, default=None, help="fail unless the checkpoint works at this size")
    p.add_argument("--margin", type=float, default=None, help="crop margin (default: the checkpoint's, as prepared)")
    p.add_argument("--detector", type=str, default=None, help="yunet | insightface (default: the checkpoint's)")
    p.add_argument("--detector-score", type=float, default=d.detector_score, help="minimum face detector score")
    p.add_argument(
        "--recogniser", type=str, default=None, help="for open-set groups and the report (default: the groups')"
    )
    p.add_argument("--model-dir", type=str, default=None, help="folder with detector/recogniser model files")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fix a label attribute, e.g. expression=happy",
    )
    p.add_argument(
        "--default-attribute",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="the value of a label attribute the --attributes CSV leaves empty (else an error)",
    )
    p.add_argument(
        "--attribute-reference",
        choices=ATTRIBUTE_REFERENCES,
        default=d.attribute_reference,
        help="an attribute read off a face: auto (the checkpoint's recipe's, default) | population (the critic's "
        "reading) | person (against the person's own photos: needs --identity or an identity column in "
        "--attributes; a video: its track)",
    )
    p.add_argument(
        "--attribute-margin",
        type=float | None,
        default=d.attribute_margin,
        help="with --attribute-reference person: how far (critic logits; default 0 for photos, 2 for video) a "
        "face must read another value than the person's reference one to keep it",
    )
    p.add_argument(
        "--video-labels",
        choices=VIDEO_LABELS,
        default=d.video_labels,
        help="a video track's estimated attributes: frame (each frame's, default) | track (one reading of the whole "
        "track: one face throughout; --follow expression carries the mouth)",
    )
    p.add_argument("--identity", type=str, help="closed-set identity of every face in the input (its own k-Same group)")
    p.add_argument(
        "--attributes", type=str, help="CSV with a `path` column (relative to --input) and identity/attribute columns"
    )
    p.add_argument(
        "--identity-column", type=str, default="identity", help="identity column of --attributes (e.g. subject)"
    )
    p.add_argument(
        "--no-similarity",
        action="store_true",
        help="skip the recogniser check of outputs (nothing withheld for a match)",
    )
    p.add_argument(
        "--on-no-face",
        choices=NO_FACE_CHOICES,
        default=d.on_no_face,
        help="a picture without a detected face: withhold (default), pixelate/blur it all, or copy it UNCHANGED",
    )
    p.add_argument(
        "--on-still-matching",
        choices=STILL_MATCHING_CHOICES,
        default=d.on_still_matching,
        help="an output the recogniser still matches to its source: withhold (default) or keep",
    )
    p.add_argument(
        "--audio",
        choices=("drop", "keep"),
        default=d.audio,
        help="a video's sound: drop (default: a voice identifies a person) or keep (warned)",
    )
    p.add_argument(
        "--mask",
        type=MaskShape,
        default=d.mask,
        help="what is replaced: region auto (the checkpoint's release_region, default) | head (crop + ring, "
        "reach) | frame (the whole photo, for face crops: no jitter, nothing of the source) | inner (ellipse); feather",
    )
    p.add_argument(
        "--paste-jitter",
        type=float,
        default=d.paste_jitter,
        help="std of where the face lands (radians, relative scale, crop sides); 0: exactly on the source",
    )
    p.add_argument("--jitter-seed", type=int | None, default=d.jitter_seed, help="seed of the jitter (default: fresh)")
    p.add_argument(
        "--follow",
        choices=FOLLOW_CHOICES,
        default=d.follow,
        help="what the face follows of the source: auto (the checkpoint's recipe's release_follow, default) | none "
        "(frozen) | expression (mouth, smile) | pose (+ yaw, pitch) | all (+ eyes, brows) | shape (the 68 points)",
    )
    p.add_argument("--follow-strength", type=float, default=d.follow_strength, help="0-1: how far to follow")
    p.add_argument(
        "--follow-reference",
        choices=FOLLOW_REFERENCES,
        default=d.follow_reference,
        help="what --follow follows: source (its own geometry) | person (its change from the person's own "
        "photos, a video's track: the person's resting face is not followed) | rest (its change from the "
        "person's resting photos, --follow-rest; a resting photo gets the group's face untouched) | auto "
        "(person where --attribute-reference reads the person, default)",
    )
    p.add_argument(
        "--follow-rest",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a label value of a face at rest, for --follow-reference rest (default: expression=neutral)",
    )
    p.add_argument("--colour-strength", type=float, default=d.colour_strength, help="0-1: how far to match colour")
    p.add_argument(
        "--colour", "--color", choices=COLOUR_MODES, default=d.colour, help="none | match (source skin tone, light)"
    )
    p.add_argument(
        "--blend",
        choices=BLEND_MODES,
        default=d.blend,
        help="alpha (feathered) | harmonise (boundary colour) | poisson (seamless clone)",
    )
    p.add_argument("--upscale", type=bool, default=d.upscale, help="enlarge G's crop to the face's size (bicubic)")
    p.add_argument(
        "--sharpen",
        type=float | None,
        default=d.sharpen,
        help="unsharp amount on released faces (default 0: off; null: the checkpoint's release_sharpen)",
    )
    p.add_argument("--tracker", type=TrackerSettings, default=d.tracker, help="video face tracking")
    p.add_argument(
        "--video-codec", type=dict[str, str], default=d.video_codec, help="output extension -> video encoder"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--seal-to", type=str, metavar="HOLDER_PUB", help="seal the released->source mapping to this holder.pub"
    )
    p.add_argument(
        "--rename", choices=("keep", "hash"), default="keep", help="output names: the input's, or a keyed hash"
    )
    return p


def options_from_args(args: Namespace) -> DeidentifyOptions:
    """The :class:`DeidentifyOptions` of parsed ``kssgan deidentify`` arguments (flags and ``--config``):
    every option whose flag has its name is taken as parsed; the rest are converted here."""
    special = {
        "attributes": _pairs(args.set, "--set"),
        "follow_rest": _pairs(args.follow_rest, "--follow-rest") or DeidentifyOptions().follow_rest,
        "default_attributes": _pairs(args.default_attribute, "--default-attribute"),
        "similarity": not args.no_similarity,
        "mask": MaskShape(**_fields(args.mask)),
        "tracker": TrackerSettings(**_fields(args.tracker)),
        "video_codec": dict(args.video_codec),
    }
    plain = {f.name: getattr(args, f.name) for f in fields(DeidentifyOptions) if f.name not in special}
    return DeidentifyOptions(**plain, **special)


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    """``NAME=VALUE`` items as a dict (one-line error for anything else)."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise DeidentifyError(f"{flag} expects NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _fields(value: Any) -> dict[str, Any]:
    """A dataclass option as parsed (a jsonargparse Namespace, or the default instance) as a dict."""
    if isinstance(value, Namespace):
        return value.as_dict()
    return dict(vars(value))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args, options_from_args(args))
    except (DeidentifyError, SealError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
