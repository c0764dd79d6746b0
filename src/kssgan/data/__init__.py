"""Data: prepared datasets, k-Same grouping, domain labels and DataModules."""
