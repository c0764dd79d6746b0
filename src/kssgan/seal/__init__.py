"""Sealed re-identification: only the data holder's private key can tell who a released face was.

    kssgan keygen --out keys/                                  # holder.key (0600) + holder.pub
    kssgan deidentify ... --seal-to keys/holder.pub [--rename hash]
    kssgan reidentify --key keys/holder.key --sealed released/reidentify.sealed [--file RELEASED_PATH]

:mod:`.keys` holds the X25519 key pair, :mod:`.sealed_log` the append-only encrypted file,
:mod:`.release` what ``kssgan deidentify`` seals per released file, :mod:`.cli` the two commands.
All cryptography comes from the ``cryptography`` package (X25519, HKDF-SHA256, ChaCha20-Poly1305).
"""

from __future__ import annotations


class SealError(ValueError):
    """A bad key, a damaged or truncated sealed file, or a request that cannot be met (one line)."""


SEALED_NAME = "reidentify.sealed"

__all__ = ["SEALED_NAME", "SealError"]
