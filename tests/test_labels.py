"""Domain labels: group one-hot ⊕ expression one-hot ⊕ binary attributes, round trips."""

from __future__ import annotations

import numpy as np
import pytest

from kssgan.data.labels import LabelSpec

EXPR = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")


def test_encode_layout_and_round_trip():
    spec = LabelSpec.build(5, {"expression": EXPR}, ["Male", "Blond_Hair"])
    assert spec.dim == 5 + 8 + 2
    assert list(spec.slices()) == ["group", "expression", "Male", "Blond_Hair"]
    rec = {"group": 3, "expression": "happy", "Male": 1, "Blond_Hair": "0"}
    vec = spec.encode(rec)
    assert vec.dtype == np.float32 and vec.sum() == 3
    assert vec[3] == 1 and vec[5 + EXPR.index("happy")] == 1 and vec[13] == 1 and vec[14] == 0
    assert spec.decode(vec) == {"group": 3, "expression": "happy", "Male": 1, "Blond_Hair": 0}
    again = LabelSpec.from_dict(spec.to_dict())
    assert again == spec
    np.testing.assert_array_equal(again.encode(rec), vec)


def test_every_combination_round_trips():
    spec = LabelSpec.build(4, {"expression": EXPR[:3]}, ["male"])
    records = [{"group": g, "expression": e, "male": m} for g in range(4) for e in EXPR[:3] for m in (0, 1)]
    mat = spec.encode_many(records)
    assert mat.shape == (24, 4 + 3 + 1)
    assert len({tuple(r) for r in mat}) == 24
    assert [spec.decode(v) for v in mat] == records
    target = spec.with_field(mat[0], "group", 2)
    assert spec.decode(target) == {"group": 2, "expression": EXPR[0], "male": 0}


def test_errors():
    spec = LabelSpec.build(2, {"expression": ("happy", "sad")})
    with pytest.raises(ValueError, match="unknown value"):
        spec.encode({"group": 0, "expression": "angry"})
    with pytest.raises(ValueError, match="unknown value"):
        spec.encode({"group": 2, "expression": "sad"})
    with pytest.raises(KeyError, match="lacks label field"):
        spec.encode({"group": 0})
    with pytest.raises(ValueError, match="shape"):
        spec.decode(np.zeros(3))
