"""Domain labels: the auto-labelling scheme of kSS-GAN.

A domain label is ``one-hot(group) ⊕ one-hot(expression) ⊕ binary attributes``. The
:class:`LabelSpec` fixes names, order and sizes; it is saved inside every checkpoint so that
inference builds exactly the vectors the generator was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

FieldKind = Literal["onehot", "binary"]


@dataclass(frozen=True)
class LabelField:
    """One block of the domain label."""

    name: str
    kind: FieldKind
    values: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.values) if self.kind == "onehot" else 1

    def __post_init__(self) -> None:
        if self.kind not in ("onehot", "binary"):
            raise ValueError(f"label field {self.name!r}: kind must be 'onehot' or 'binary', got {self.kind!r}")
        if self.kind == "onehot" and len(self.values) < 1:
            raise ValueError(f"label field {self.name!r}: a one-hot field needs at least one value")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"label field {self.name!r}: duplicate values {self.values}")


@dataclass(frozen=True)
class LabelSpec:
    """Ordered label fields; the first is always the k-Same group."""

    fields: tuple[LabelField, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.fields or self.fields[0].name != "group" or self.fields[0].kind != "onehot":
            raise ValueError("a LabelSpec must start with the one-hot 'group' field")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate label field names: {names}")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        num_groups: int,
        onehot: Mapping[str, Sequence[str]] | None = None,
        binary: Sequence[str] = (),
    ) -> LabelSpec:
        """Group one-hot, then the one-hot attributes in the given order, then binary ones."""
        if num_groups < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        fields = [LabelField("group", "onehot", tuple(str(g) for g in range(num_groups)))]
        for name, values in (onehot or {}).items():
            fields.append(LabelField(name, "onehot", tuple(str(v) for v in values)))
        fields.extend(LabelField(name, "binary") for name in binary)
        return cls(tuple(fields))

    # -- geometry -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return sum(f.size for f in self.fields)

    @property
    def num_groups(self) -> int:
        return self.fields[0].size

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for f in self.fields:
            out[f.name] = slice(start, start + f.size)
            start += f.size
        return out

    def field(self, name: str) -> LabelField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"no label field {name!r}; fields: {[f.name for f in self.fields]}")

    @property
    def attribute_names(self) -> list[str]:
        """The fields after the group, in label order."""
        return [f.name for f in self.fields[1:]]

    def record(self, group: int, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """The label record of one face: its group and, for every attribute field, its value in
        ``attributes`` (the one place a record is assembled; :meth:`encode` turns it into a vector)."""
        rec: dict[str, Any] = {"group": group}
        rec.update((name, attributes[name]) for name in self.attribute_names)
        return rec

    # -- encode / decode ----------------------------------------------------------------------
    def encode(self, record: Mapping[str, Any]) -> np.ndarray:
        """Vector for one record, e.g. ``{"group": 3, "expression": "happy", "male": 1}``."""
        vec = np.zeros(self.dim, dtype=np.float32)
        for f, sl in zip(self.fields, self.slices().values(), strict=True):
            if f.name not in record:
                raise KeyError(f"record lacks label field {f.name!r}: {dict(record)}")
            value = record[f.name]
            if f.kind == "onehot":
                key = str(int(value)) if f.name == "group" else str(value)
                if key not in f.values:
                    raise ValueError(f"label field {f.name!r}: unknown value {value!r}; known: {list(f.values)}")
                vec[sl.start + f.values.index(key)] = 1.0
            else:
                flag = _as_flag(value)
                vec[sl.start] = float(flag)
        return vec

    def encode_many(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.stack([self.encode(r) for r in records]) if records else np.zeros((0, self.dim), np.float32)

    def decode(self, vec: Sequence[float] | np.ndarray) -> dict[str, Any]:
        arr = np.asarray(vec, dtype=np.float32)
        if arr.shape != (self.dim,):
            raise ValueError(f"label vector has shape {arr.shape}, this spec needs ({self.dim},)")
        out: dict[str, Any] = {}
        for f, sl in zip(self.fields, self.slices().values(), strict=True):
            part = arr[sl]
            if f.kind == "onehot":
                value = f.values[int(part.argmax())]
                out[f.name] = int(value) if f.name == "group" else value
            else:
                out[f.name] = int(part[0] > 0.5)
        return out

    def with_field(self, vec: np.ndarray, name: str, value: Any) -> np.ndarray:
        """Copy of ``vec`` with one field set to ``value`` (e.g. a target group)."""
        record = self.decode(vec)
        record[name] = value
        return self.encode(record)

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"fields": [{"name": f.name, "kind": f.kind, "values": list(f.values)} for f in self.fields]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSpec:
        return cls(tuple(LabelField(d["name"], d["kind"], tuple(d.get("values", ()))) for d in data["fields"]))


def manifest_records(
    spec: LabelSpec, manifest: pd.DataFrame, group_of: Callable[[str], int], where: str = "the manifest"
) -> list[dict[str, Any]]:
    """The release label of every manifest row: its identity's group (``group_of``) and the row's
    own attribute values. Training (:meth:`PreparedDataset.records`) and ``kssgan evaluate``
    (translating the release set) both label faces with this."""
    names = spec.attribute_names
    missing = [n for n in names if n not in manifest.columns]
    if missing:
        raise KeyError(f"the labels need manifest columns {missing}, absent from {where}")
    return [
        spec.record(group_of(str(ident)), dict(zip(names, values, strict=True)))
        for ident, *values in manifest[["identity", *names]].itertuples(index=False)
    ]


def _as_flag(value: Any) -> int:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "y"):
            return 1
        if low in ("0", "-1", "false", "no", "n", ""):
            return 0
        raise ValueError(f"cannot read {value!r} as a binary attribute")
    return 1 if float(value) > 0 else 0
