"""Ed25519 key files: the private key that signs checkpoints and the public key that checks them.

``create_key(KEYFILE)`` writes the private key as unencrypted PKCS #8 PEM, readable by its
owner only (mode 0600), and its public key beside it as ``KEYFILE.pub`` (SubjectPublicKeyInfo
PEM, mode 0644), and refuses to overwrite either. A verifier needs only the ``.pub`` file;
:func:`load_public_key` also accepts the private key file and derives the public key.

A key's id (``key_id``), written into every checkpoint it signs, is ``ed25519:`` and the
first 16 bytes, in hex, of the SHA-256 of the raw 32-byte public key: it says which key a
checkpoint claims, so that a checkpoint signed with another key is refused as such; the
signature is always checked with the key the verifier holds, never with one the document
names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crowdledger.adapters.audit.errors import AuditInputError

__all__ = [
    "create_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "public_key_path",
]

_MAX_KEY_FILE = 64 * 1024


def key_id(public_key: Ed25519PublicKey) -> str:
    """``ed25519:`` + the first 16 bytes (hex) of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).digest()[:16].hex()


def public_key_path(path: str | Path) -> Path:
    """Where :func:`create_key` writes the public key of the key file ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".pub")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never replacing a file or following a link) holding ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have narrowed it; make it exactly this
        with os.fdopen(fd, "wb") as out:
            fd = -1
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        if fd != -1:
            os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def create_key(path: str | Path) -> str:
    """Make a new Ed25519 key in ``path`` (mode 0600) and ``path.pub``; return its key id.

    Refuses (:class:`AuditInputError`) if either file exists: a key is never overwritten.
    """
    path = Path(path)
    if not path.name:  # "", ".", "/": a directory, not a file name
        raise AuditInputError("is a directory, not a key file name", path=str(path))
    public_path = public_key_path(path)
    for target in (path, public_path):
        if target.exists() or target.is_symlink():
            raise AuditInputError(
                "already exists; a key file is never overwritten (choose another name, "
                "or remove it if you are sure nothing needs it)",
                path=str(target),
            )
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        _write_new(path, private_pem, 0o600)
    except FileExistsError:
        raise AuditInputError(
            "already exists; a key file is never overwritten", path=str(path)
        ) from None
    try:
        _write_new(public_path, public_pem, 0o644)
    except BaseException:
        path.unlink()
        raise
    return key_id(private_key.public_key())


def read_file(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``path``; an error reading it names the file (a
    read that fails after the open, /proc/self/mem say, raises OSError without a name)."""
    try:
        with path.open("rb") as file:
            return file.read(limit + 1)
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def _read_pem(path: Path) -> bytes:
    data = read_file(path, _MAX_KEY_FILE)
    if len(data) > _MAX_KEY_FILE or b"-----BEGIN " not in data:
        raise AuditInputError("is not a PEM key file", path=str(path))
    return data


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path`` (as :func:`create_key` writes it)."""
    path = Path(path)
    data = _read_pem(path)
    if b"PRIVATE KEY-----" not in data:
        raise AuditInputError("holds no private key (a .pub file only verifies)", path=str(path))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuditInputError(f"is not a readable private key ({exc})", path=str(path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditInputError("is not an Ed25519 key", path=str(path))
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The Ed25519 public key of the PEM file ``path``: a ``.pub`` file or a private key."""
    path = Path(path)
    data = _read_pem(path)
    if b"PRIVATE KEY-----" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise AuditInputError(f"is not a readable public key ({exc})", path=str(path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditInputError("is not an Ed25519 key", path=str(path))
    return key
