"""Which k-Same group a face is translated into, and the domain label built around it.

Order of precedence for the group:

1. ``closed_set`` — the face's identity is known (``--identity`` or an attributes CSV) and is one of
   the identities the grouping was built on: its own group (of at least k identities).
2. ``nearest_centroid`` — the groups were built with a face recogniser (``groups["recogniser"]``,
   e.g. ``sface``) that is available: the group whose centroid is most similar to the face's
   embedding (best effort; no k-anonymity guarantee for people outside the closed set).
3. ``hash`` — the groups were built on something no recogniser can reproduce (the synthetic demo's
   ``dcgan-latent``): ``sha256(key) mod G`` of a stable key (file + face index, or video + track),
   deterministic but unrelated to appearance.

The label keeps the source's attributes: from the attributes CSV when given, otherwise read off the
face by the model's own auxiliary classifier (:mod:`.attributes`); ``--set name=value`` overrides
them. An attributes CSV that names a label field must give each of its rows a valid value for it:
an empty or unknown value is an error naming the file and the field (checked up front, before any
work), unless ``--default-attribute name=value`` says what to use. Only a model without an
attribute reader (benchmarks) falls back to a field's first value, and lists it in the report as
``defaulted_attributes``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from kssgan.data.grouping import GroupAssignment
from kssgan.data.labels import LabelSpec
from kssgan.deidentify.options import DeidentifyError

FACE_RECOGNISERS = ("sface", "dlib", "insightface", "arcface")

GROUP_SOURCE_NOTES = {
    "closed_set": "identity in the training closed set: its own k-Same group of >= k identities",
    "nearest_centroid": "unseen face: nearest group centroid by recogniser embedding (best effort, no guarantee)",
    "hash": "groups were not built with a face recogniser: deterministic hash of file/track into groups "
    "(appearance-independent, no k-anonymity guarantee)",
}


class GroupChooser:
    """Picks a group per face from the checkpoint's ``groups.json`` content."""

    def __init__(self, groups: Mapping[str, Any], recogniser_name: str | None) -> None:
        self.assignment = GroupAssignment.from_dict(groups)
        self.built_with = str(groups.get("recogniser", "unknown"))
        self.open_set = self.built_with.lower() in FACE_RECOGNISERS and recogniser_name == self.built_with
        self.why_not_open_set = ""
        if not self.open_set:
            self.why_not_open_set = (
                f"groups were built with {self.built_with!r}, " + "which is not a face recogniser"
                if self.built_with.lower() not in FACE_RECOGNISERS
                else f"the recogniser in use ({recogniser_name!r}) is not the one the groups were built with"
            )

    @property
    def num_groups(self) -> int:
        return self.assignment.num_groups

    def knows(self, identity: str | None) -> bool:
        return identity is not None and str(identity) in self.assignment.identity_to_group

    def choose(self, key: str, identity: str | None = None, embedding: np.ndarray | None = None) -> tuple[int, str]:
        """``(group, source)`` with source ``closed_set`` | ``nearest_centroid`` | ``hash``."""
        if self.knows(identity):
            return self.assignment.group_of(str(identity)), "closed_set"
        if self.open_set and embedding is not None and embedding.shape[-1] == self.assignment.centroids.shape[1]:
            return self.assignment.nearest_group(embedding), "nearest_centroid"
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.num_groups, "hash"


class LabelBuilder:
    """Domain labels with the checkpoint's :class:`LabelSpec`; validates ``--set`` once, up front."""

    def __init__(
        self, spec: LabelSpec, overrides: Mapping[str, Any] | None = None, defaults: Mapping[str, Any] | None = None
    ) -> None:
        self.spec = spec
        self.overrides = dict(overrides or {})
        self.defaults = dict(defaults or {})
        names = [f.name for f in spec.fields]
        for flag, given in (("--set", self.overrides), ("--default-attribute", self.defaults)):
            for name, value in given.items():
                if name == "group":
                    raise DeidentifyError(
                        "the group cannot be set by hand (it decides the k-anonymity set); use --identity NAME "
                        "for a closed-set identity"
                    )
                if name not in names:
                    raise DeidentifyError(
                        f"{flag} {name}=…: this checkpoint's label has no field {name!r}; its fields are {names[1:]}"
                    )
                self._check(name, value, flag)

    def check_rows(self, rows: Mapping[str, Mapping[str, Any]], csv_path: str) -> None:
        """Every label field the attributes CSV names has a valid value in each of its rows (or a
        ``--default-attribute`` for the empty ones); else one error naming the first file and field."""
        bad: list[str] = []
        for name in [f.name for f in self.spec.fields[1:] if f.name not in self.overrides]:
            for file, row in rows.items():
                if name not in row:
                    continue
                value = "" if row[name] is None else str(row[name]).strip()
                if value == "" and name in self.defaults:
                    continue
                if value == "" or not self._valid(name, value):
                    what = "no value" if value == "" else f"{value!r}, which this checkpoint does not know"
                    f = self.spec.field(name)
                    known = list(f.values) if f.kind == "onehot" else [0, 1]
                    bad.append(f"{file}: {name} has {what} (known: {known})")
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise DeidentifyError(
                f"{csv_path}: {bad[0]}{more}; fix the CSV, or say what to use with --default-attribute NAME=VALUE"
            )

    def _check(self, name: str, value: Any, where: str) -> None:
        f = self.spec.field(name)
        if f.kind == "onehot" and str(value) not in f.values:
            raise DeidentifyError(f"{where} {name}={value!r}: unknown value; this checkpoint knows {list(f.values)}")
        if f.kind == "binary" and str(value).strip().lower() not in ("0", "1", "true", "false", "yes", "no"):
            raise DeidentifyError(f"{where} {name}={value!r}: a binary attribute takes 0 or 1")

    def record(self, group: int, source_attributes: Mapping[str, Any] | None = None) -> tuple[dict, list[str]]:
        """The label record and the names of fields that fell back to a default (``--default-attribute``,
        else — only without an attribute reader — the field's first value)."""
        values: dict[str, Any] = {}
        defaulted = []
        source = source_attributes or {}
        for f in self.spec.fields[1:]:
            if f.name in self.overrides:
                values[f.name] = self.overrides[f.name]
            elif f.name in source and str(source[f.name]).strip() != "" and self._valid(f.name, source[f.name]):
                values[f.name] = str(source[f.name]).strip() if f.kind == "onehot" else source[f.name]
            elif f.name in self.defaults:
                values[f.name] = self.defaults[f.name]
                defaulted.append(f.name)
            else:
                values[f.name] = f.values[0] if f.kind == "onehot" else 0
                defaulted.append(f.name)
        return self.spec.record(group, values), defaulted

    def _valid(self, name: str, value: Any) -> bool:
        try:
            self._check(name, value, "source")
        except DeidentifyError:
            return False
        return True

    def encode(self, group: int, source_attributes: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        rec, _ = self.record(group, source_attributes)
        return self.spec.encode(rec), rec
