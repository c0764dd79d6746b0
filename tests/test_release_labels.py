"""Where the release-level attack's kept attributes come from (`kssgan evaluate --release-labels`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kssgan.data.labels import LabelSpec
from kssgan.evaluate.pipeline import EvalSettings, _sweep_options, release_masks
from kssgan.evaluate.release_level import given_attributes, release_photos


def _spec() -> LabelSpec:
    return LabelSpec.from_dict(
        {
            "fields": [
                {"name": "group", "kind": "onehot", "values": ["0", "1"]},
                {"name": "expression", "kind": "onehot", "values": ["neutral", "smiling"]},
                {"name": "glasses", "kind": "binary"},
            ]
        }
    )


def test_given_attributes_are_the_manifest_values_of_the_kept_fields() -> None:
    manifest = pd.DataFrame(
        {"identity": ["a", "a", "b"], "expression": ["neutral", "smiling", ""], "hair": ["x", "y", "z"]}
    )
    # glasses is not in the manifest, hair is not a label field, b's expression is missing
    assert given_attributes(manifest, _spec()) == [{"expression": "neutral"}, {"expression": "smiling"}, {}]
    assert given_attributes(manifest[["identity"]], _spec()) == [{}, {}, {}]


def test_release_photos_hands_each_photo_its_attributes() -> None:
    seen: list[dict] = []

    class Recorder:
        def process(self, frames):
            seen.append(dict(frames[0].attributes))
            return [(frames[0].image, [])]

    photos = [np.zeros((8, 8, 3), np.uint8)] * 2
    release_photos(Recorder(), photos, ["a", "b"], None, [{"expression": "smiling"}, {}])
    assert seen == [{"expression": "smiling"}, {}]
    release_photos(Recorder(), photos, ["a", "b"])  # none given: each face's own estimate
    assert seen[2:] == [{}, {}]


def test_labels_is_a_release_setting_and_a_sweep_entry() -> None:
    (name, default), (_, given) = release_masks(EvalSettings(release_sweep=["labels=given"]))
    assert name == "default" and default["labels"] == "estimated" and given["labels"] == "given"
    assert release_masks(EvalSettings(release_labels="given"))[0][1]["labels"] == "given"
    with pytest.raises(ValueError, match="labels="):
        _sweep_options("labels=oracle", default)
