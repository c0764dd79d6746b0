"""Networks injected from config: ``class_path`` + ``init_args``, as LightningCLI writes them.

``KSSGAN(generator=..., critic=..., siamese=...)`` takes each network as a spec such as::

    model:
      generator:
        class_path: my_package.UNetGenerator
        init_args: {conv_dim: 48}

and builds it here with what only the data knows (``label_dim``, ``image_size``, ``num_groups``,
``group_embed_dim``), passed to the class when its signature accepts them. ``None`` (the default)
builds kssgan's own network from the model's scalar settings (``g_conv_dim`` …). The spec is a
plain mapping, so it is saved in the checkpoint's hyper-parameters and ``load_kssgan`` rebuilds the
same network. Contracts: a generator is ``G(image, label) -> image`` of the same shape; a critic
is ``D(image) -> (patch scores, label logits)``; an identity net is ``f(image) -> unit vectors``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn


def import_class(path: str) -> Callable[..., Any]:
    """``package.module.Name`` → the object."""
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"class_path must be a dotted path such as my_package.MyNet, got {path!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import class_path {path!r}: {err}") from err


def build_module(
    spec: Mapping[str, Any] | None,
    default: Callable[..., nn.Module],
    context: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> nn.Module:
    """The network a spec names, or ``default(**context, **defaults)`` when the spec is None.

    ``context`` (from the data) is passed to the injected class for each name its signature
    accepts and ``init_args`` does not set; ``defaults`` (the model's scalars) go to the default
    network only."""
    if spec is None:
        return default(**context, **defaults)
    if "class_path" not in spec:
        raise ValueError(f"an injected network needs class_path (and optional init_args), got keys {sorted(spec)}")
    cls = import_class(str(spec["class_path"]))
    kwargs = dict(spec.get("init_args") or {})
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin without a signature: it gets its init_args only
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs.update({k: v for k, v in context.items() if k not in kwargs and (takes_any or k in params)})
    module = cls(**kwargs)
    if not isinstance(module, nn.Module):
        raise ValueError(f"{spec['class_path']} built a {type(module).__name__}, not a torch.nn.Module")
    return module
