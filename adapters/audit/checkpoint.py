"""Signed checkpoints: the Merkle root of the first ``position`` events, signed with Ed25519.

A checkpoint is kept outside the database (a file, a ticket, an e-mail); later, a log that
no longer yields its root at its position has been rewritten or truncated, even if every
hash stored in the database was recomputed. The document (JSON)::

    {"version": 1, "ledger": "...", "position": N, "root": "<64 hex>",
     "time": "2026-11-22T10:00:00+00:00", "key_id": "ed25519:<32 hex>",
     "signature": "<base64 of 64 bytes>"}

The signature is Ed25519 over these exact UTF-8 bytes, one field per line, in this order,
each line ending with a newline (no JSON canonicalisation to get wrong)::

    crowdledger checkpoint v1
    ledger <ledger>
    position <N in decimal, no leading zeros>
    root <root, 64 lowercase hex digits>
    time <time, exactly as in the document>
    key_id <key_id>

``ledger`` names the ledger independently of where its database lives (1 to 200 printable
characters, no line breaks); ``time`` is an ISO 8601 time with a UTC offset; an unknown
field is refused rather than ignored, since it would not be signed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crowdledger.adapters.audit.errors import AuditInputError, TamperingDetected
from crowdledger.adapters.audit.keys import key_id as key_id_of
from crowdledger.adapters.audit.keys import read_file

__all__ = [
    "CHECKPOINT_VERSION",
    "Checkpoint",
    "load_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
    "signed_message",
    "verify_checkpoint",
]

CHECKPOINT_VERSION = 1
_FIELDS = ("version", "ledger", "position", "root", "time", "key_id", "signature")
_MAX_DOCUMENT = 64 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"ed25519:[0-9a-f]{32}")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f\u0085\u2028\u2029]{1,200}")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint; :func:`verify_checkpoint` says whether to believe it."""

    ledger: str
    position: int
    root: bytes
    time: str
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return signed_message(self.ledger, self.position, self.root, self.time, self.key_id)

    def to_document(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "ledger": self.ledger,
            "position": self.position,
            "root": self.root.hex(),
            "time": self.time,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    def to_json(self) -> bytes:
        """The document as pretty JSON with a final newline, as ``checkpoint`` writes it."""
        return orjson.dumps(self.to_document(), option=orjson.OPT_INDENT_2) + b"\n"


def signed_message(ledger: str, position: int, root: bytes, time: str, key_id: str) -> bytes:
    """The exact bytes a checkpoint's signature covers (see the module's documentation)."""
    _check_ledger(ledger)
    return (
        f"crowdledger checkpoint v{CHECKPOINT_VERSION}\n"
        f"ledger {ledger}\n"
        f"position {position:d}\n"
        f"root {root.hex()}\n"
        f"time {time}\n"
        f"key_id {key_id}\n"
    ).encode()


def _check_ledger(ledger: str, path: str | None = None) -> None:
    if not isinstance(ledger, str) or not _PRINTABLE.fullmatch(ledger):
        raise AuditInputError(
            "must be 1 to 200 printable characters without line breaks",
            path=path,
            field="ledger",
        )


def _check_time(time: object, path: str | None) -> str:
    if not isinstance(time, str) or not _PRINTABLE.fullmatch(time) or " " in time:
        raise AuditInputError("must be an ISO 8601 time", path=path, field="time")
    try:
        parsed = datetime.fromisoformat(time)
    except ValueError:
        raise AuditInputError(
            f"{time!r} is not an ISO 8601 time", path=path, field="time"
        ) from None
    if parsed.tzinfo is None:
        raise AuditInputError("must carry a UTC offset", path=path, field="time")
    return time


def sign_checkpoint(
    ledger: str,
    position: int,
    root: bytes,
    private_key: Ed25519PrivateKey,
    *,
    time: datetime | None = None,
) -> Checkpoint:
    """Sign ``root``, the Merkle root of the first ``position`` events of ``ledger``."""
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise ValueError(f"a position is a non-negative integer, not {position!r}")
    if len(root) != 32:
        raise ValueError("a root has 32 bytes")
    when = (time or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    kid = key_id_of(private_key.public_key())
    signature = private_key.sign(signed_message(ledger, position, root, when, kid))
    return Checkpoint(ledger, position, root, when, kid, signature)


def parse_checkpoint(document: Mapping[str, Any] | bytes, *, path: str | None = None) -> Checkpoint:
    """Check a checkpoint document's form (not its signature: :func:`verify_checkpoint`)."""
    if isinstance(document, bytes):
        try:
            document = orjson.loads(document)
        except orjson.JSONDecodeError as exc:
            raise AuditInputError(f"is not JSON ({exc})", path=path) from None
    if not isinstance(document, Mapping):
        raise AuditInputError("is not a checkpoint (a JSON object)", path=path)
    version = document.get("version")
    if version != CHECKPOINT_VERSION or isinstance(version, bool):
        raise AuditInputError(
            f"unknown checkpoint version {version!r} (this crowdledger reads version "
            f"{CHECKPOINT_VERSION})",
            path=path,
            field="version",
        )
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise AuditInputError(
            f"unknown field(s) {', '.join(map(repr, unknown))}: a checkpoint signs every "
            "field it has",
            path=path,
        )
    missing = [name for name in _FIELDS if name not in document]
    if missing:
        raise AuditInputError(f"missing field(s) {', '.join(missing)}", path=path)
    ledger = document["ledger"]
    _check_ledger(ledger, path)
    position = document["position"]
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < 2**63:
        raise AuditInputError("must be a non-negative integer", path=path, field="position")
    root = document["root"]
    if not isinstance(root, str) or not _HEX64.fullmatch(root):
        raise AuditInputError("must be 64 lowercase hex digits", path=path, field="root")
    time = _check_time(document["time"], path)
    kid = document["key_id"]
    if not isinstance(kid, str) or not _KEY_ID.fullmatch(kid):
        raise AuditInputError("must be ed25519: and 32 hex digits", path=path, field="key_id")
    signature_text = document["signature"]
    try:
        if not isinstance(signature_text, str):
            raise ValueError
        signature = base64.b64decode(signature_text, validate=True)
    except (ValueError, binascii.Error):
        raise AuditInputError("must be base64", path=path, field="signature") from None
    if len(signature) != 64:
        raise AuditInputError("must be 64 bytes (Ed25519)", path=path, field="signature")
    return Checkpoint(ledger, position, bytes.fromhex(root), time, kid, signature)


def verify_checkpoint(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> None:
    """Refuse a checkpoint not signed by ``public_key`` or changed since it was signed."""
    expected = key_id_of(public_key)
    if checkpoint.key_id != expected:
        raise TamperingDetected(
            "key",
            f"the checkpoint names key {checkpoint.key_id}, not the key given ({expected})",
        )
    try:
        public_key.verify(checkpoint.signature, checkpoint.message())
    except InvalidSignature:
        raise TamperingDetected(
            "signature",
            "the checkpoint's signature does not verify: it was changed after signing, or forged",
        ) from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and parse the checkpoint file ``path`` (form only; then :func:`verify_checkpoint`)."""
    path = Path(path)
    data = read_file(path, _MAX_DOCUMENT)
    if len(data) > _MAX_DOCUMENT:
        raise AuditInputError("is too large to be a checkpoint", path=str(path))
    return parse_checkpoint(data, path=str(path))
