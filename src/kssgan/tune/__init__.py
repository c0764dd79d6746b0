"""Hyper-parameter search with Ray Tune (``kssgan sweep``): search spaces from ``sweeps/*.yaml``,
particle swarm / HyperOpt / random searchers, ASHA, one Lightning run per trial, local Ray or a
cluster. Ray is imported only when a sweep runs."""
