"""Search algorithms and the early-stopping scheduler, built from a sweep's ``searcher:`` and
``scheduler:`` sections.

* ``pso``: particle swarm optimisation (nevergrad's ``ConfiguredPSO``) through ``NevergradSearch``
  — the tuner the paper used;
* ``hyperopt``: tree-structured Parzen estimators (``HyperOptSearch``);
* ``random``: ``BasicVariantGenerator`` (random sampling of the space).

Model-based searchers are wrapped in a ``ConcurrencyLimiter`` (they learn from finished trials, so
running all trials at once would make them random search); ASHA stops poor trials early.
"""

from __future__ import annotations

from typing import Any

SEARCHERS = ("pso", "hyperopt", "random")


def build_searcher(
    settings: dict[str, Any],
    num_samples: int,
    max_concurrent: int,
    seed: int = 0,
) -> Any:
    (
        """``searcher:`` section → a Ray Tune ``Searcher`` (wrapped in a ``ConcurrencyLimiter``).

    The metric and mode are not given here: the ``Tuner``'s ``TuneConfig`` passes them on."""
        ""
    )
    kind = settings.get("kind")
    if kind not in SEARCHERS:
        raise ValueError(f"searcher.kind must be one of {SEARCHERS}, got {kind!r}")
    options = {k: v for k, v in settings.items() if k != "kind"}
    if kind == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator(max_concurrent=max_concurrent, random_state=seed, **options)
    from ray.tune.search import ConcurrencyLimiter

    if kind == "pso":
        import nevergrad as ng
        import numpy as np
        from ray.tune.search.nevergrad import NevergradSearch

        # nevergrad draws its parameter random state from NumPy's global generator.
        np.random.seed(seed)
        popsize = int(options.pop("popsize", max(2, max_concurrent)))
        optimizer = ng.optimizers.ConfiguredPSO(popsize=popsize, **options)
        searcher = NevergradSearch(
            optimizer=optimizer,
            optimizer_kwargs={"budget": num_samples, "num_workers": max_concurrent},
        )
    else:
        from ray.tune.search.hyperopt import HyperOptSearch

        options.setdefault("n_initial_points", max(1, min(num_samples // 2, 10)))
        searcher = HyperOptSearch(random_state_seed=seed, **options)
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)


def build_scheduler(settings: dict[str, Any] | None, max_reports: int) -> Any:
    """``scheduler:`` section → ASHA (``kind: asha``) or FIFO (``kind: fifo`` / absent).

    ASHA's time unit is one report, i.e. one validation of the trial; ``max_t`` defaults to the
    number of validations a trial makes within its budget.
    """
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    settings = dict(settings or {})
    kind = settings.pop("kind", "fifo")
    if kind == "fifo":
        return FIFOScheduler()
    if kind != "asha":
        raise ValueError(f"scheduler.kind must be 'asha' or 'fifo', got {kind!r}")
    settings.setdefault("max_t", max(1, max_reports))
    settings["grace_period"] = min(int(settings.get("grace_period", 1)), settings["max_t"])
    return ASHAScheduler(time_attr="training_iteration", **settings)


__all__ = ["SEARCHERS", "build_scheduler", "build_searcher"]
