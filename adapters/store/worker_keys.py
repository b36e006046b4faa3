"""Per-worker data keys, and sealing each event's personal fields under its worker's key.

Crypto-shredding: a worker's id, answers and the free text about them (reasons,
feedback, evidence, provider errors) are stored encrypted with AES-GCM under a data key
of that worker's own. Destroying the key (``crowdledger erase``) makes all of it
unreadable at once, while the stored bytes, and so the hash chain over them, stay as
they were.

Keys live apart from the events, in ``cl_worker_keys``: each row holds a random key id,
the data key wrapped (AES-GCM) with the key-encryption key (KEK), and the lookup
``HMAC(KEK, worker id)`` by which a command finds it. The KEK is never stored: it comes
from ``CROWDLEDGER_KEY`` (64 hex digits, or 32 bytes in base64) or the file named by
``CROWDLEDGER_KEY_FILE``, so the database alone reveals nothing.

A sealed state is still a JSON object (so ``json_extract(state, '$.event_id')`` keeps
working): the public fields in clear, then ``"~k":"<key id>","~s":"<base64 of nonce
and ciphertext>"`` at its very end; the ciphertext is the JSON object of the personal
fields (the row as a whole is protected by the hash chain over the stored bytes).
Opening is byte splicing, with no parse, so a rebuild pays one AES-GCM decryption per
event and little else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from binascii import a2b_base64
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson

from crowdledger.adapters.store.codec import field_specs
from crowdledger.domain.erasure import is_pseudonym, pseudonym_of
from crowdledger.domain.errors import StoreError
from crowdledger.domain.events import event_types, topic_of

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from crowdledger.adapters.store.database import Cursor

__all__ = [
    "ENCRYPTION",
    "ERASED_TOPIC",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "PERSONAL_FIELDS",
    "RETAINED_TYPES",
    "WorkerCipher",
    "cipher_for",
    "enable_encryption",
    "keys_ddl",
    "load_kek",
    "lookup_of",
]

KEY_ENV = "CROWDLEDGER_KEY"
KEY_FILE_ENV = "CROWDLEDGER_KEY_FILE"
ENCRYPTION = "aes-gcm-v1"  # cl_meta "encryption"

# What is about the worker: their id, what they wrote, what was written about them.
PERSONAL_FIELDS: tuple[str, ...] = (
    "worker",
    "subject",
    "answer",
    "feedback",
    "reason",
    "evidence",
    "error",
    "fact_value",
)
# Erased events of these types keep their public fields under the pseudonym (totals and
# review metrics count them); every other erased event reads as RecordErased.
RETAINED_TYPES = frozenset(
    {
        "SubmissionRecorded",
        "SubmissionApproved",
        "SubmissionRejected",
        "SubmissionSoftRejected",
        "SubmissionFlagged",
        "SubmissionUnflagged",
        "BonusAwarded",
    }
)
ERASED_TOPIC = topic_of("RecordErased")

_KEY_MARK = b',"~k":"'
_SEAL_MARK = b'","~s":"'
_KID = 32  # hex digits of a key id
_CHECK_LABEL = b"crowdledger/kek-check/v1"
_LOOKUP_LABEL = b"crowdledger/worker-lookup/v1"


def keys_ddl(dialect: str) -> list[str]:
    blob = "BLOB" if dialect == "sqlite" else "BYTEA"
    return [
        "CREATE TABLE IF NOT EXISTS cl_worker_keys (lookup TEXT PRIMARY KEY, "
        f"key_id TEXT NOT NULL UNIQUE, wrapped {blob} NOT NULL)"
    ]


def _parse_kek(text: str, where: str) -> bytes:
    text = text.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise StoreError(
            f"{where}: the key-encryption key must be 32 bytes as 64 hex digits or base64 "
            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return raw


def load_kek() -> bytes | None:
    """The KEK from ``CROWDLEDGER_KEY`` or ``CROWDLEDGER_KEY_FILE``; None if neither is set."""
    text = os.environ.get(KEY_ENV)
    if text:
        return _parse_kek(text, KEY_ENV)
    path = os.environ.get(KEY_FILE_ENV)
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                content = handle.read()
        except OSError as exc:
            raise StoreError(
                f"{KEY_FILE_ENV}={path}: cannot read the key: {exc.strerror}"
            ) from None
        return _parse_kek(content, f"{KEY_FILE_ENV}={path}")
    return None


def _derive(kek: bytes, label: bytes) -> bytes:
    return hmac.new(kek, label, hashlib.sha256).digest()


def lookup_of(lookup_key: bytes, worker: str) -> str:
    """How ``cl_worker_keys`` finds a worker's key: a keyed hash, never the id."""
    return hmac.new(lookup_key, worker.encode(), hashlib.sha256).hexdigest()


def enable_encryption(cur: Cursor, dialect: str, kek: bytes) -> None:
    """Make an empty ledger an encrypted one (``init --encrypt``)."""
    for statement in keys_ddl(dialect):
        cur.execute(statement)
    for key, value in (("encryption", ENCRYPTION), ("kek_check", _derive(kek, _CHECK_LABEL).hex())):
        cur.execute("DELETE FROM cl_meta WHERE key = ?", (key,))
        cur.execute("INSERT INTO cl_meta (key, value) VALUES (?, ?)", (key, value))


def cipher_for(cur: Cursor, label: str) -> WorkerCipher | None:
    """The cipher of an encrypted ledger (None for a plaintext one), its KEK checked."""
    rows = cur.execute(
        "SELECT key, value FROM cl_meta WHERE key IN ('encryption', 'kek_check')"
    ).fetchall()
    meta = {str(k): str(v) for k, v in rows}
    scheme = meta.get("encryption")
    if scheme is None:
        return None
    if scheme != ENCRYPTION:
        raise StoreError(f"{label}: encrypted with {scheme!r}, which this crowdledger cannot read")
    kek = load_kek()
    if kek is None:
        raise StoreError(
            f"{label}: this ledger is encrypted; set {KEY_ENV} (or {KEY_FILE_ENV}) to its "
            "key-encryption key"
        )
    if not hmac.compare_digest(_derive(kek, _CHECK_LABEL).hex(), meta.get("kek_check", "")):
        raise StoreError(f"{label}: {KEY_ENV} is not this ledger's key-encryption key")
    return WorkerCipher(kek)


def _aesgcm(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


class WorkerCipher:
    """Seals rows on their way into ``stored_events`` and opens them on the way out."""

    def __init__(self, kek: bytes) -> None:
        self._wrap = _aesgcm(kek)
        self._lookup_key = _derive(kek, _LOOKUP_LABEL)
        # key id (hex bytes) -> its AES-GCM, or None once destroyed. Key material never
        # changes for an id, so this cache is always right (until an erase, which drops it).
        self._open: dict[bytes, AESGCM | None] = {}
        self._placeholders: dict[str, dict[str, Any]] = {}

    # -- keys --------------------------------------------------------------------------
    def lookup(self, worker: str) -> str:
        return lookup_of(self._lookup_key, worker)

    def _unwrap(self, key_id: str, wrapped: bytes) -> AESGCM:
        from cryptography.exceptions import InvalidTag

        try:
            key = self._wrap.decrypt(wrapped[:12], wrapped[12:], key_id.encode())
        except InvalidTag:
            raise StoreError(
                f"cl_worker_keys: key {key_id} does not unwrap with this key-encryption key"
            ) from None
        return _aesgcm(key)

    def _keys_for(self, cur: Cursor, workers: set[str]) -> dict[str, tuple[bytes, AESGCM]]:
        """Each worker's (key id, cipher), creating the keys of workers without one."""
        lookups = {self.lookup(w): w for w in workers}
        found: dict[str, tuple[bytes, AESGCM]] = {}
        names = list(lookups)
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for lookup, key_id, wrapped in cur.execute(
                f"SELECT lookup, key_id, wrapped FROM cl_worker_keys WHERE lookup IN ({marks})",
                chunk,
            ).fetchall():
                kid = str(key_id).encode()
                aes = self._open.get(kid)
                if aes is None:
                    aes = self._open[kid] = self._unwrap(str(key_id), bytes(wrapped))
                found[lookups[str(lookup)]] = (kid, aes)
        new = []
        for lookup, worker in lookups.items():
            if worker in found:
                continue
            key_id = secrets.token_hex(_KID // 2)
            key = secrets.token_bytes(32)
            nonce = secrets.token_bytes(12)
            wrapped = nonce + self._wrap.encrypt(nonce, key, key_id.encode())
            new.append((lookup, key_id, wrapped))
            # Not cached for opening until read back from the table (a rollback would
            # leave a cached key that no row holds).
            found[worker] = (key_id.encode(), _aesgcm(key))
        if new:
            cur.executemany(
                "INSERT INTO cl_worker_keys (lookup, key_id, wrapped) VALUES (?, ?, ?)", new
            )
        return found

    def destroy(self, cur: Cursor, worker: str) -> str | None:
        """Delete ``worker``'s key; returns its key id (None: the worker has no key)."""
        lookup = self.lookup(worker)
        key_id = cur.scalar("SELECT key_id FROM cl_worker_keys WHERE lookup = ?", (lookup,))
        if key_id is None:
            return None
        cur.execute("DELETE FROM cl_worker_keys WHERE lookup = ?", (lookup,))
        return str(key_id)

    def forget(self) -> None:
        """Drop every key read so far: another process may have destroyed some since."""
        self._open.clear()

    def destroyed(self, key_id: str) -> None:
        """Forget a key whose deletion has committed (never before: a rollback keeps it)."""
        self._open[key_id.encode()] = None

    # -- sealing -----------------------------------------------------------------------
    def seal_rows(self, cur: Cursor, rows: Sequence[Any]) -> list[Any]:
        """``rows`` (stream, version, topic, state) with each worker's fields sealed; a
        row with nothing to seal is returned as the very object it came as."""
        loads = orjson.loads
        parsed: list[tuple[int, dict[str, Any], str]] = []
        for index, row in enumerate(rows):
            state = row[3]
            if b'"worker":"' not in state:
                continue
            data = loads(state)
            worker = data.get("worker")
            if type(worker) is str and not is_pseudonym(worker):
                parsed.append((index, data, worker))
        if not parsed:
            return list(rows)
        keys = self._keys_for(cur, {worker for _, _, worker in parsed})
        out = list(rows)
        dumps, b64, token = orjson.dumps, base64.b64encode, os.urandom
        for index, data, worker in parsed:
            private = {name: data.pop(name) for name in PERSONAL_FIELDS if name in data}
            public = dumps(data)
            kid, aes = keys[worker]
            nonce = token(12)
            # The plaintext without its "{": opening splices it in after a comma.
            sealed = b64(nonce + aes.encrypt(nonce, dumps(private)[1:], None))
            stream, version, topic, _ = out[index]
            out[index] = (
                stream,
                version,
                topic,
                b"".join((public[:-1], _KEY_MARK, kid, _SEAL_MARK, sealed, b'"}')),
            )
        return out

    # -- opening -----------------------------------------------------------------------
    def open_state(self, cur: Cursor, topic: str, state: bytes) -> tuple[str, bytes]:
        """The (topic, state) to read for a stored row: the plaintext while the key
        exists; once destroyed, the pseudonymous placeholder or a RecordErased.

        One row of :meth:`open_rows`."""
        ((_, opened_topic, opened),) = self.open_rows(cur, ((0, topic, state),))
        return opened_topic, opened

    def open_rows(
        self, cur: Cursor, rows: Sequence[tuple[int, str, Any]]
    ) -> list[tuple[int, str, bytes]]:
        """Rows of (position, topic, state) opened as :meth:`open_state` opens one: each
        row whose key is already known at once, the others once their keys have been
        looked up together (a few queries). A rebuild opens every row of the log this
        way, and the per-row cost of the cipher is what its speed with encryption comes
        down to: a handful of byte operations and one decryption (the row's integrity is
        the hash chain's, so nothing else is authenticated here)."""
        out: list[tuple[int, str, bytes]] = list(rows)
        later: list[tuple[int, int, int, bytes]] = []  # (index, key_at, seal_at, kid)
        known = self._open
        wanted: set[bytes] = set()
        # Searches within the state, never slices of it (a slice copies): this loop runs
        # for every row of the log.
        for index, row in enumerate(out):
            state = row[2]
            if type(state) is not bytes:
                state = bytes(state)
                out[index] = (row[0], row[1], state)
            if not state.endswith(b'"}'):
                continue
            seal_at = state.rfind(b'","~s":"')
            key_at = seal_at - 39  # len(',"~k":"') + 32 hex digits
            if key_at < 1 or not state.startswith(b',"~k":"', key_at):
                continue
            if state.find(b'"', seal_at + 8, len(state) - 2) != -1:
                continue  # "~k"/"~s" inside a plaintext value, not our seal
            kid = state[seal_at - 32 : seal_at]
            aes = known.get(kid, _UNKNOWN)
            if aes is _UNKNOWN or aes is None:
                later.append((index, key_at, seal_at, kid))
                if aes is _UNKNOWN:
                    wanted.add(kid)
                continue
            out[index] = (row[0], row[1], _opened(aes, state, key_at, seal_at))
        if wanted:
            self._fetch(cur, wanted)
        for index, key_at, seal_at, kid in later:
            position, topic, state = out[index]
            aes = known[kid]
            if aes is None:
                out[index] = (position, *self._erased(topic, state[:key_at] + b"}", kid.decode()))
            else:
                out[index] = (position, topic, _opened(aes, state, key_at, seal_at))
        return out

    def _fetch(self, cur: Cursor, wanted: set[bytes]) -> None:
        """Look up the keys ``wanted``; those not in the table are destroyed (None)."""
        known = self._open
        ids = [kid.decode() for kid in wanted]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for key_id, wrapped in cur.execute(
                f"SELECT key_id, wrapped FROM cl_worker_keys WHERE key_id IN ({marks})", chunk
            ).fetchall():
                known[str(key_id).encode()] = self._unwrap(str(key_id), bytes(wrapped))
        for kid in wanted:
            known.setdefault(kid, None)  # not in the table: destroyed

    def _erased(self, topic: str, public: bytes, key_id: str) -> tuple[str, bytes]:
        data: dict[str, Any] = orjson.loads(public)
        name = topic.rpartition(":")[2]
        if name in RETAINED_TYPES:
            placeholder = self._placeholders.get(name)
            if placeholder is None:
                placeholder = self._placeholders[name] = _placeholder(name)
            data.update(placeholder)
            data["worker"] = pseudonym_of(key_id)
            if "provider" in data:
                data["provider"] = "local"  # the pseudonym's (a local id)
            return topic, orjson.dumps(data)
        kept = {
            k: data.get(k)
            for k in ("event_id", "actor", "occurred_at", "correlation_id", "timestamp")
        }
        kept.update(erased_type=name, reason=None, idempotency_key=None)
        return ERASED_TOPIC, orjson.dumps(kept)


_UNKNOWN: Any = object()  # a key id not looked up yet


def _opened(aes: AESGCM, state: bytes, key_at: int, seal_at: int) -> bytes:
    """``state`` with its seal (``"~k"`` at ``key_at``, ``"~s"`` at ``seal_at``) replaced
    by the fields it hides."""
    try:
        raw = a2b_base64(state[seal_at + 8 : -2])
        private = aes.decrypt(raw[:12], raw[12:], None)
    except (binascii.Error, _invalid_tag()):
        raise StoreError(
            "stored_events: an encrypted event does not decrypt (altered?); "
            "run `crowdledger verify`"
        ) from None
    return state[:key_at] + b"," + private  # faster than a join of a memoryview


@cache
def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def _placeholder(type_name: str) -> dict[str, Any]:
    """What an erased event of ``type_name`` holds in place of each personal field."""
    cls = event_types()[type_name]
    values: dict[str, Any] = {}
    for spec in field_specs(cls):
        if spec.name not in PERSONAL_FIELDS or spec.name == "worker":
            continue
        if spec.optional:
            values[spec.name] = None
        elif spec.kind == "json":
            values[spec.name] = {}
        else:
            values[spec.name] = "[erased]"
    return values
