"""Search spaces as data: the ``space:`` section of a ``sweeps/*.yaml`` → Ray Tune distributions.

Keys are dotted paths into the experiment config (``model.g_lr``, ``data.init_args.batch_size``);
each value names one distribution::

    model.g_lr:      {type: loguniform, low: 1.0e-5, high: 1.0e-3}
    model.beta1:     {type: uniform, low: 0.0, high: 0.9}
    model.lambda_gp: {type: quniform, low: 1, high: 20, q: 1}
    model.n_critic:  {type: randint, low: 1, high: 6}          # high inclusive here (1..6)
    data.init_args.batch_size: {type: choice, values: [4, 8, 16]}
    model.rec_target: {type: grid, values: [cycle, translation]}  # each value once (random searcher only)

The result is a nested dict (``{"model": {"g_lr": Domain, …}}``) whose shape is the experiment
config's, so a sampled trial config merges straight into it (:func:`merge_overrides`).
"""

from __future__ import annotations

import copy
from typing import Any

# name → (required keys, builder). randint/qrandint take an inclusive ``high`` (what people expect
# from a YAML range); Ray's randint is exclusive, hence the +1.
_DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], Any]] = {
    "uniform": (("low", "high"), lambda tune, s: tune.uniform(s["low"], s["high"])),
    "loguniform": (("low", "high"), lambda tune, s: tune.loguniform(s["low"], s["high"])),
    "quniform": (("low", "high", "q"), lambda tune, s: tune.quniform(s["low"], s["high"], s["q"])),
    "qloguniform": (("low", "high", "q"), lambda tune, s: tune.qloguniform(s["low"], s["high"], s["q"])),
    "randint": (("low", "high"), lambda tune, s: tune.randint(int(s["low"]), int(s["high"]) + 1)),
    "qrandint": (("low", "high", "q"), lambda tune, s: tune.qrandint(int(s["low"]), int(s["high"]), int(s["q"]))),
    "lograndint": (("low", "high"), lambda tune, s: tune.lograndint(int(s["low"]), int(s["high"]) + 1)),
    "choice": (("values",), lambda tune, s: tune.choice(list(s["values"]))),
    # every value once per sample (random searcher only): for ablation grids and tests
    "grid": (("values",), lambda tune, s: tune.grid_search(list(s["values"]))),
}


class SearchSpaceError(ValueError):
    """A ``space:`` entry that does not describe a distribution."""


def distribution(path: str, spec: Any) -> Any:
    """One YAML entry → a Ray Tune ``Domain`` (a plain value stays a constant)."""
    if not isinstance(spec, dict):
        return spec
    kind = spec.get("type")
    if kind not in _DISTRIBUTIONS:
        raise SearchSpaceError(f"space entry {path!r}: type must be one of {sorted(_DISTRIBUTIONS)}, got {kind!r}")
    required, build = _DISTRIBUTIONS[kind]
    missing = [k for k in required if k not in spec]
    if missing:
        raise SearchSpaceError(f"space entry {path!r} ({kind}) needs {missing}")
    if "low" in spec and "high" in spec and float(spec["low"]) >= float(spec["high"]):
        raise SearchSpaceError(f"space entry {path!r}: low ({spec['low']}) must be below high ({spec['high']})")
    if kind.startswith("log") and float(spec["low"]) <= 0:
        raise SearchSpaceError(f"space entry {path!r}: {kind} needs low > 0")
    if kind in ("choice", "grid") and not spec["values"]:
        raise SearchSpaceError(f"space entry {path!r}: {kind} needs at least one value")
    from ray import tune  # imported here: reading a sweep file does not start Ray's import chain

    return build(tune, {k: _number(v) for k, v in spec.items()})


def _number(v: Any) -> Any:
    """YAML reads ``1e-4`` (no dot) as a string; accept it as the number it means."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def build_search_space(space: dict[str, Any]) -> dict[str, Any]:
    """The ``space:`` mapping (dotted keys or nested) → a nested dict of Ray Tune domains."""
    if not space:
        raise SearchSpaceError("the sweep declares an empty search space")
    nested: dict[str, Any] = {}
    for path, spec in _flatten(space).items():
        set_path(nested, path, distribution(path, spec))
    return nested


def _flatten(space: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in space.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "type" not in value:
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """``tree["a"]["b"]["c"] = value`` for ``path = "a.b.c"``, creating levels as needed."""
    *parents, leaf = path.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise SearchSpaceError(f"{path!r}: {p!r} is not a mapping in the experiment config")
    node[leaf] = value


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """Nested sampled values → ``{"model.g_lr": 1e-4, …}`` (for tables)."""
    return {k: v for k, v in _flatten(config).items()}


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with the (nested) ``overrides`` written over it."""
    out = copy.deepcopy(base)
    for path, value in flatten_config(overrides).items():
        set_path(out, path, value)
    return out


__all__ = ["SearchSpaceError", "build_search_space", "distribution", "flatten_config", "merge_overrides", "set_path"]
