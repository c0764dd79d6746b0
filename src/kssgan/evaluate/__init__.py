"""Evaluation: privacy (re-identification by independent recognisers), utility and quality of
de-identified faces, against the k-Same baselines (``kssgan evaluate``)."""
