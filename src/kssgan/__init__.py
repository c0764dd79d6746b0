"""kssgan: k-anonymous face de-identification with k-Same-Siamese-GAN (Pan et al.)."""

__version__ = "0.1.0"
