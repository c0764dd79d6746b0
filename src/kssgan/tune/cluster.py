"""Ray start-up: a private local Ray by default, or an existing cluster through ``RAY_ADDRESS``.

Local Ray keeps its session files under the project's output folder (``outputs/ray``), starts no
dashboard and sends no usage statistics. ``--address`` (or the ``RAY_ADDRESS`` environment
variable, e.g. ``ray://head:10001`` or ``auto``) joins a running cluster instead, so the same
``kssgan sweep`` command spreads trials over all of its machines and GPUs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

# Unix socket paths are limited to 107 bytes; Ray puts its sockets ~60 characters below _temp_dir.
MAX_TEMP_DIR_CHARS = 45


def quiet_ray_environment() -> None:
    """No usage statistics, no metrics exporter noise; set before Ray is imported/started."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_enable_metrics_collection", "0")


def local_temp_dir(output_root: str | Path) -> Path:
    """``<output_root>/ray``, or a short stand-in under /tmp when that path is too long for sockets."""
    wanted = Path(output_root).resolve() / "ray"
    if len(str(wanted)) <= MAX_TEMP_DIR_CHARS:
        return wanted
    digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"kssgan-ray-{digest}"


def init_ray(
    address: str | None = None,
    output_root: str | Path = "outputs",
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Start (or join) Ray unless it is already running in this process; returns its resources.

    Args:
        address: a cluster to join (``ray://…``, ``host:port`` or ``auto``); defaults to
            ``$RAY_ADDRESS``; ``None`` and no variable → a new local Ray.
        output_root: the project's output folder; local Ray's session files go to ``<it>/ray``.
        num_cpus, num_gpus: limits for a local Ray (default: what the machine has).
    """
    quiet_ray_environment()
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    address = address or os.environ.get("RAY_ADDRESS") or None
    common = dict(log_to_driver=True, configure_logging=True, logging_level="warning", **kwargs)
    if address:
        ray.init(address=address, **common)
    else:
        temp_dir = local_temp_dir(output_root)
        temp_dir.mkdir(parents=True, exist_ok=True)
        ray.init(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            _temp_dir=str(temp_dir),
            **common,
        )
    return ray.cluster_resources()


__all__ = ["init_ray", "local_temp_dir", "quiet_ray_environment"]
