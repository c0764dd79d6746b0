"""``reidentify.sealed``: an append-only file of records, each encrypted to the holder's public key.

Layout (all integers big-endian)::

    header   MAGIC (16 bytes) | SHA-256 fingerprint of the holder public key (32)
    record*  type (1) | body length (4) | body
      H  a run starts:  ephemeral X25519 public key (32) | nonce (12) | wrapped run key (48) | info (JSON)
      R  one mapping:   nonce (12) | ChaCha20-Poly1305 ciphertext of the padded JSON entry
      E  the run ended: nonce (12) | ciphertext of {"records": n}

Each run of ``kssgan deidentify`` draws a fresh 32-byte run key and wraps it to the holder key
(X25519 with a fresh ephemeral key, HKDF-SHA256, ChaCha20-Poly1305), so the operator, who holds only
the public key, can append but never read. Every ciphertext is authenticated together with the
SHA-256 of all bytes before it (header, earlier records, its own type and length), so flipping,
dropping or reordering any byte breaks authentication at the latest in the run's ``E`` record; a
file whose last run has no ``E`` is truncated or was interrupted. Plaintexts are padded to
:data:`PAD` bytes so that record sizes say little about file names.

A re-run after a kill appends a new run after the last complete record (a half-written record is
cut off); :func:`merge_entries` keeps one entry per released file, the latest.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

from kssgan.seal import SealError
from kssgan.seal.keys import fingerprint, raw_public

MAGIC = b"KSSGAN SEALED v1"
HEADER_SIZE = len(MAGIC) + 32
PREFIX = struct.Struct(">cI")
RUN, RECORD, END = b"H", b"R", b"E"
NONCE = 12
PAD = 512
MAX_BODY = 64 << 20
_HKDF_INFO = b"kssgan-seal v1 run key"


def _wrap_key(shared: bytes, ephemeral: bytes, holder: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=ephemeral + holder, info=_HKDF_INFO).derive(shared)


def _aead(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    return ChaCha20Poly1305(key)


def _pad(obj: Any) -> bytes:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return data + b" " * (-len(data) % PAD)


def scan(data: bytes, name: str | Path = "sealed file") -> tuple[list[tuple[bytes, int, int]], int]:
    """``([(type, body start, body end)], end of the last complete record)``; framing only, no key needed."""
    records, pos = [], HEADER_SIZE
    while pos + PREFIX.size <= len(data):
        kind, length = PREFIX.unpack_from(data, pos)
        if kind not in (RUN, RECORD, END) or length > MAX_BODY:
            raise SealError(f"{name} is damaged or was altered (unknown record at byte {pos})")
        start = pos + PREFIX.size
        if start + length > len(data):
            break
        records.append((kind, start, start + length))
        pos = start + length
    return records, pos


class SealedWriter:
    """Appends one run of records to ``path`` (created if missing) sealed to ``public_key``.

    ``info`` is stored in plain text in the run header (only what may be public, e.g. the rename
    mode); a run whose ``info[k]`` differs from an earlier run's for ``k`` in ``must_match`` is
    refused (:func:`check_continuable`).
    """

    def __init__(
        self, path: str | Path, public_key, info: dict[str, Any] | None = None, must_match: tuple[str, ...] = ()
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+b")  # held open (and locked) for the run
        try:
            _lock(self.fh, self.path)
            self.fh.seek(0)
            data = self.fh.read()
            self.created = len(data) < HEADER_SIZE
            self.hash = hashlib.sha256()
            holder_fp = fingerprint(public_key)
            if self.created:  # new, or killed while writing the header
                self.fh.truncate(0)
                self._write(MAGIC + holder_fp)
            else:
                end = check_continuable(data, self.path, public_key, info, must_match)
                self.fh.truncate(end)  # a record half-written by a killed run is dropped
                self.hash.update(data[:end])
            ephemeral = X25519PrivateKey.generate()
            eph_pub = raw_public(ephemeral.public_key())
            holder = raw_public(public_key)
            self.key = os.urandom(32)
            wrap = _wrap_key(ephemeral.exchange(public_key), eph_pub, holder)
            info_bytes = json.dumps(info or {}, sort_keys=True).encode()
            prefix = PREFIX.pack(RUN, 32 + NONCE + 48 + len(info_bytes))
            nonce = os.urandom(NONCE)
            aad = self._digest(prefix) + eph_pub + info_bytes
            wrapped = _aead(wrap).encrypt(nonce, self.key, aad)
            self._write(prefix + eph_pub + nonce + wrapped + info_bytes)
            self.count = 0
        except BaseException:
            self.fh.close()
            raise

    def _digest(self, prefix: bytes) -> bytes:
        h = self.hash.copy()
        h.update(prefix)
        return h.digest()

    def _write(self, data: bytes) -> None:
        self.fh.write(data)
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.hash.update(data)

    def _seal(self, kind: bytes, obj: Any) -> None:
        plain = _pad(obj)
        prefix = PREFIX.pack(kind, NONCE + len(plain) + 16)
        nonce = os.urandom(NONCE)
        self._write(prefix + nonce + _aead(self.key).encrypt(nonce, plain, self._digest(prefix)))

    def append(self, entry: dict[str, Any]) -> None:
        """Seal one entry, durably (flushed and fsynced) before returning."""
        self._seal(RECORD, entry)
        self.count += 1

    def close(self) -> None:
        """End the run (its ``E`` record); the file is complete again."""
        if self.fh.closed:
            return
        try:
            self._seal(END, {"records": self.count})
        finally:
            self.fh.close()


def check_continuable(
    data: bytes, path: str | Path, public_key, info: dict[str, Any] | None = None, must_match: tuple[str, ...] = ()
) -> int:
    """Raise :class:`SealError` unless a run sealed to ``public_key`` with ``info`` may be appended to
    the sealed file ``data``; returns where to append (after its last complete record)."""
    if data[: len(MAGIC)] != MAGIC:
        raise SealError(f"{path} is not a kssgan sealed file; move it away or choose another --output")
    if data[len(MAGIC) : HEADER_SIZE] != fingerprint(public_key):
        raise SealError(
            f"{path} is sealed to another holder key (fingerprint {data[len(MAGIC) : len(MAGIC) + 8].hex()}); "
            "continue it with that key's holder.pub"
        )
    records, end = scan(data, path)
    for kind, a, b in records:
        if kind != RUN:
            continue
        try:
            previous = json.loads(data[a + 32 + NONCE + 48 : b] or b"{}")
        except ValueError as err:
            raise SealError(f"{path} is damaged: unreadable run header") from err
        for k in must_match:
            if k in previous and previous[k] != (info or {}).get(k):
                raise SealError(f"{path} was started with {k}={previous[k]!r}; continue it with the same setting")
    return end


def read_sealed(path: str | Path, private_key, allow_partial: bool = False) -> list[dict[str, Any]]:
    """Every entry in ``path``, in file order; :class:`SealError` (one line) for a wrong key or a
    damaged, altered or truncated file. ``allow_partial`` accepts a last run without its end."""
    p = Path(path)
    if not p.is_file():
        raise SealError(f"sealed file {p} not found")
    return decode_sealed(p.read_bytes(), private_key, allow_partial, p)


def decode_sealed(
    data: bytes, private_key, allow_partial: bool = False, p: str | Path = "sealed file"
) -> list[dict[str, Any]]:
    """:func:`read_sealed` on the bytes of a sealed file (``p`` names it in errors)."""
    from cryptography.exceptions import InvalidTag

    if len(data) < HEADER_SIZE or data[: len(MAGIC)] != MAGIC:
        raise SealError(f"{p} is not a kssgan sealed file (or is truncated before its header)")
    if data[len(MAGIC) : HEADER_SIZE] != fingerprint(private_key.public_key()):
        raise SealError(f"{p} was not sealed to this holder key (or its header was altered)")
    records, end = scan(data, p)
    holder = raw_public(private_key.public_key())
    entries: list[dict[str, Any]] = []
    key, count, ended = None, 0, False
    running, hashed = hashlib.sha256(), 0
    try:
        for kind, a, b in records:
            prefix_at = a - PREFIX.size
            running.update(data[hashed:a])
            hashed = a
            digest = running.copy().digest()
            body = data[a:b]
            if kind == RUN:
                eph_pub, nonce = body[:32], body[32 : 32 + NONCE]
                wrapped, info = body[32 + NONCE : 32 + NONCE + 48], body[32 + NONCE + 48 :]
                from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

                shared = private_key.exchange(X25519PublicKey.from_public_bytes(eph_pub))
                key = _aead(_wrap_key(shared, eph_pub, holder)).decrypt(nonce, wrapped, digest + eph_pub + info)
                count, ended = 0, False
                continue
            if key is None:
                raise SealError(f"{p} is damaged or was altered (record at byte {prefix_at} outside a run)")
            obj = json.loads(_aead(key).decrypt(body[:NONCE], body[NONCE:], digest))
            if kind == RECORD:
                entries.append(obj)
                count += 1
            else:
                if obj.get("records") != count:
                    raise SealError(f"{p} is damaged or was altered (run ending at byte {prefix_at} lost records)")
                key, ended = None, True
    except (InvalidTag, ValueError) as err:
        if isinstance(err, SealError):
            raise
        raise SealError(f"{p} is damaged or was altered (authentication failed at byte {prefix_at})") from err
    if end != len(data) or not ended:
        if not allow_partial:
            raise SealError(
                f"{p} is truncated, or its last deidentify run was interrupted (re-run it to complete the mapping)"
            )
    return entries


def merge_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per released file (the latest sealed wins: a re-run redoes a file it re-seals), sorted."""
    latest: dict[str, dict[str, Any]] = {}
    for e in entries:
        latest[str(e.get("released"))] = e
    return [latest[k] for k in sorted(latest)]


def _lock(fh, path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory lock
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        raise SealError(f"{path} is being written by another run") from err
