"""The data holder's key pair: X25519, written as PEM (PKCS#8, optionally passphrase-protected).

``holder.key`` (private, mode 0600) never leaves the holder; ``holder.pub`` goes to whoever runs
``kssgan deidentify --seal-to``. A passphrase is read from ``$KSSGAN_HOLDER_PASSPHRASE`` or asked
on the terminal.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import sys
from pathlib import Path

from kssgan.seal import SealError

PRIVATE_NAME = "holder.key"
PUBLIC_NAME = "holder.pub"
PASSPHRASE_ENV = "KSSGAN_HOLDER_PASSPHRASE"


def raw_public(public_key) -> bytes:
    """The 32 raw bytes of an X25519 public key."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key) -> bytes:
    """SHA-256 of the raw public key (names the key; reveals nothing about the private half)."""
    return hashlib.sha256(b"kssgan-holder-key\0" + raw_public(public_key)).digest()


def fingerprint_hex(public_key) -> str:
    return fingerprint(public_key).hex()[:16]


def generate_keypair(out_dir: str | Path, passphrase: bytes | None = None) -> tuple[Path, Path]:
    """Write ``holder.key`` (0600, created exclusively: an existing key is never replaced) and ``holder.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    for path in (key_path, pub_path):
        if path.exists():
            raise SealError(f"{path} already exists; a holder key is never overwritten (it would orphan its releases)")
    private = X25519PrivateKey.generate()
    encryption = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(key_path, 0o600)  # whatever the umask
    pub = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pub_path.write_bytes(pub)
    return key_path, pub_path


def load_public(path: str | Path):
    """The X25519 public key in ``path`` (``holder.pub``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    data = _read(path, "holder public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as err:
        raise SealError(f"{path} is not a PEM public key (write one with `kssgan keygen`)") from err
    if not isinstance(key, X25519PublicKey):
        raise SealError(f"{path} is not an X25519 key (write one with `kssgan keygen`)")
    return key


def load_private(path: str | Path, passphrase: bytes | None = None):
    """The X25519 private key in ``path``; asks for the passphrase when the key is protected."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    data = _read(path, "holder private key")
    if passphrase is None and b"ENCRYPTED" in data:
        passphrase = read_passphrase(f"passphrase for {path}: ", confirm=False)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError) as err:
        if b"ENCRYPTED" in data:
            raise SealError(f"cannot open {path}: wrong passphrase") from err
        raise SealError(f"{path} is not a PEM private key (write one with `kssgan keygen`)") from err
    if not isinstance(key, X25519PrivateKey):
        raise SealError(f"{path} is not an X25519 key (write one with `kssgan keygen`)")
    return key


def read_passphrase(prompt: str, confirm: bool) -> bytes:
    """``$KSSGAN_HOLDER_PASSPHRASE``, or typed on the terminal (twice when ``confirm``)."""
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        if not env:
            raise SealError(f"${PASSPHRASE_ENV} is set but empty")
        return env.encode()
    if not sys.stdin.isatty():
        raise SealError(f"a passphrase is needed: set ${PASSPHRASE_ENV} or run on a terminal")
    first = getpass.getpass(prompt)
    if not first:
        raise SealError("an empty passphrase protects nothing")
    if confirm and getpass.getpass("again: ") != first:
        raise SealError("the two passphrases differ")
    return first.encode()


def _read(path: str | Path, what: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise SealError(f"{what} {p} not found")
    return p.read_bytes()
