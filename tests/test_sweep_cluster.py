"""`kssgan sweep --address` on a simulated two-node Ray cluster: trials are spread over both nodes."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.test_sweep import tiny_experiment, tiny_sweep

pytestmark = pytest.mark.slow


def test_sweep_joins_a_cluster_and_places_trials_on_both_nodes(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from kssgan.tune.sweep import main

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    # One CPU per node and two trials at a time of one CPU each: the second trial must go to node 2.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        sweep = tiny_sweep(tmp_path, "random", trials=2, max_concurrent=2)
        out = tmp_path / "sweep"
        argv = ["--sweep", str(sweep), "--experiment", str(tiny_experiment(tmp_path, demo_dir)), "--output", str(out)]
        assert main([*argv, "--address", cluster.address]) == 0
        node_ids = {n["NodeID"][:12] for n in ray.nodes() if n["Alive"]}
        table = pd.read_csv(out / "trials.csv", dtype={"node_id": str})
        assert (table["status"] == "ok").all(), table.to_string()
        assert len(node_ids) == 2
        assert set(table["node_id"]) == node_ids  # one trial on each node
    finally:
        ray.shutdown()
        cluster.shutdown()
        os.environ.pop("RAY_ADDRESS", None)
