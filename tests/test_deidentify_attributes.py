"""Source attributes of unlabelled faces are read off by the model's auxiliary classifier."""

from __future__ import annotations

import numpy as np
import torch

from kssgan.data.labels import LabelSpec
from kssgan.deidentify.attributes import CriticAttributeEstimator


class FixedCritic(torch.nn.Module):
    """Returns fixed domain logits: group 1, expression 'sad', male = 1."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = torch.tensor([0.0, 5.0, -1.0, 3.0, 2.0])  # groups 0-1 | happy, sad | male
        logits = logits.clone()
        logits[2], logits[3] = -1.0, 3.0
        return x.new_zeros(x.size(0), 1, 4, 4), logits.expand(x.size(0), -1)


def test_critic_head_gives_the_attribute_fields_and_ignores_the_group() -> None:
    spec = LabelSpec.build(2, {"expression": ["happy", "sad"]}, ["male"])
    est = CriticAttributeEstimator(FixedCritic(), spec)
    out = est(np.zeros((3, 32, 32, 3), np.uint8))
    assert out == [{"expression": "sad", "male": 1}] * 3


def test_a_group_only_label_needs_no_estimate() -> None:
    est = CriticAttributeEstimator(FixedCritic(), LabelSpec.build(5))
    assert not est.useful
    assert est(np.zeros((2, 32, 32, 3), np.uint8)) == [{}, {}]


def test_trained_checkpoint_estimates_expression_per_face(deid_ckpt, shared_datasets) -> None:
    """End to end on a real Yale photo: the report names the estimated field and its value is valid."""
    from PIL import Image

    from kssgan.deidentify.options import DeidentifyOptions
    from kssgan.deidentify.pipeline import Deidentifier, Frame

    deid = Deidentifier.from_checkpoint(deid_ckpt, DeidentifyOptions(similarity=False))
    img = np.array(Image.open(shared_datasets / "yale/yalefaces/subject02.happy").convert("RGB"))[:, :, ::-1]
    [(_, faces)] = deid.process([Frame(np.ascontiguousarray(img), key="s02")])
    assert len(faces) == 1
    face = faces[0].to_dict()
    assert face["estimated_attributes"] == ["expression"]
    assert face["label"]["expression"] in deid.spec.field("expression").values
    assert "defaulted_attributes" not in face


def test_label_builder_refuses_an_empty_or_unknown_csv_value_unless_a_default_is_given() -> None:
    import pytest

    from kssgan.deidentify.groups import LabelBuilder
    from kssgan.deidentify.options import DeidentifyError

    spec = LabelSpec.build(2, {"expression": ["happy", "sad"]}, ["male"])
    rows = {"a.jpg": {"expression": "sad", "male": "1"}, "b.jpg": {"expression": "", "male": "0"}}
    with pytest.raises(DeidentifyError, match=r"b\.jpg: expression has no value .*--default-attribute"):
        LabelBuilder(spec).check_rows(rows, "labels.csv")
    LabelBuilder(spec, defaults={"expression": "happy"}).check_rows(rows, "labels.csv")
    with pytest.raises(DeidentifyError, match=r"a\.jpg: expression has 'grumpy', which this checkpoint does not"):
        LabelBuilder(spec, defaults={"expression": "happy"}).check_rows({"a.jpg": {"expression": "grumpy"}}, "x")
    with pytest.raises(DeidentifyError, match=r"--default-attribute mood=.*no field 'mood'"):
        LabelBuilder(spec, defaults={"mood": "calm"})
    rec, defaulted = LabelBuilder(spec, defaults={"expression": "happy"}).record(1, rows["b.jpg"])
    assert rec["expression"] == "happy" and str(rec["male"]) == "0" and defaulted == ["expression"]


def test_deidentify_names_the_file_and_field_the_csv_leaves_empty(deid_ckpt, shared_datasets, tmp_path, capsys):
    import shutil

    from kssgan.cli import main as kssgan_main

    src, out = tmp_path / "in", tmp_path / "out"
    (src / "yalefaces").mkdir(parents=True)
    shutil.copyfile(shared_datasets / "yale/yalefaces/subject02.happy", src / "yalefaces/subject02.happy")
    csv = tmp_path / "attributes.csv"
    csv.write_text("path,subject,expression\nyalefaces/subject02.happy,subject02,\n")
    argv = ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src), "--output", str(out),
            "--attributes", str(csv), "--identity-column", "subject", "--on-still-matching", "keep"]  # fmt: skip
    assert kssgan_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "yalefaces/subject02.happy: expression has no value" in err[0]
    assert not out.exists()  # nothing done
    assert kssgan_main([*argv, "--default-attribute", "expression=neutral"]) == 0
    import json

    face = json.loads((out / "deidentify-report.json").read_text())["files"][0]["faces"][0]
    assert face["label"]["expression"] == "neutral" and face["defaulted_attributes"] == ["expression"]


def test_deidentify_reads_a_persons_photos_against_each_other(surrogate_ckpt, shared_datasets, tmp_path, capsys):
    """`--attribute-reference person` end to end: two photos of one person, an identity column and no
    expression: each is read against the pair's mean, so with no margin they are released with
    different expressions (whatever the critic reads absolutely), and with a margin wider than any
    change both get the person's reference value. Without the person: one line, nothing done."""
    import json
    import shutil

    from kssgan.cli import main as kssgan_main

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("subject02.happy", "subject02.normal"):
        shutil.copyfile(shared_datasets / "yale/yalefaces" / name, src / name)
    argv = ["deidentify", "--no-progress", "--ckpt", str(surrogate_ckpt), "--input", str(src), "--output", str(out),
            "--on-still-matching", "keep", "--attribute-reference", "person"]  # fmt: skip
    assert kssgan_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--attribute-reference person" in err[0] and not out.exists()
    csv = tmp_path / "people.csv"
    csv.write_text("path,identity\nsubject02.happy,subject02\nsubject02.normal,subject02\n")
    for margin, values in (("0", 2), ("1000", 1)):
        run = [*argv, "--attributes", str(csv), "--attribute-margin", margin, "--overwrite"]
        assert kssgan_main(run) == 0
        files = json.loads((out / "deidentify-report.json").read_text())["files"]
        labels = [f["faces"][0]["label"]["expression"] for f in files]
        assert len(set(labels)) == values
        assert all(f["faces"][0]["estimated_attributes"] == ["expression"] for f in files)
        assert all(f["faces"][0]["estimated_against"] == "person" for f in files)


def test_deidentify_follows_a_persons_change_with_the_default_recipes_checkpoint(
    surrogate_ckpt, shared_datasets, tmp_path
):
    """`--follow expression` end to end with the default recipe's checkpoint: read against the person
    (auto, with `--attribute-reference person`), both photos of the person are read first and the
    report says each face was followed against its person; `--follow-reference source` says source.
    `--video-labels track` reaches the options."""
    import json
    import shutil

    from kssgan.cli import main as kssgan_main
    from kssgan.deidentify.cli import build_parser, options_from_args

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("subject02.happy", "subject02.normal"):
        shutil.copyfile(shared_datasets / "yale/yalefaces" / name, src / name)
    csv = tmp_path / "people.csv"
    csv.write_text("path,identity\nsubject02.happy,subject02\nsubject02.normal,subject02\n")
    argv = ["deidentify", "--no-progress", "--ckpt", str(surrogate_ckpt), "--input", str(src), "--output", str(out),
            "--on-still-matching", "keep", "--attribute-reference", "person", "--attributes", str(csv),
            "--follow", "expression"]  # fmt: skip
    for reference, want in (("auto", "person"), ("source", "source")):
        assert kssgan_main([*argv, "--follow-reference", reference, "--overwrite"]) == 0
        files = json.loads((out / "deidentify-report.json").read_text())["files"]
        assert len(files) == 2 and all(f["faces"][0]["followed"] == want for f in files)
    args = build_parser().parse_args(["--ckpt", "x", "--input", "y", "--output", "z", "--video-labels", "track"])
    assert options_from_args(args).video_labels == "track"
