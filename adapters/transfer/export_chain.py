"""The hash chain of an export file: each line sealed over the one before, checked on import.

``export`` ends every line with ``"hash":"<64 hex>"``, the last member of its JSON object:
``SHA-256(b"crowdledger/export/v1\\0" || previous || body)``, where ``body`` is the line as
it would be without that member (the object's bytes up to it, then ``}``) and ``previous``
is the hash of the line before (32 zero bytes for the first). ``import`` recomputes the
chain as it reads and refuses the file at the first line that does not match: a line
changed, removed, inserted or moved breaks the chain there (exit 5, tampering found),
before anything is recorded. The check is on the bytes, before the line is parsed, so it
costs one SHA-256 per line.

What it does not catch: lines cut from the end of the file (nothing follows them to
tell), or a file whose every hash was recomputed after an edit (the hashes are not
secret). A file without any hash (an older export, or a history written by hand) is
imported as before, unchecked; a file that mixes lines with and without is refused.
For proof that holds against someone who can recompute hashes, keep a signed checkpoint
of the ledger (``crowdledger checkpoint``) and verify the ledger itself.
"""

from __future__ import annotations

import hashlib

from crowdledger.adapters.audit.errors import TamperingDetected

__all__ = ["EXPORT_PREFIX", "LineChain", "TamperedFileError", "seal"]

EXPORT_PREFIX = b"crowdledger/export/v1\x00"
_START = bytes(32)
_MARK = b',"hash":"'
_SUFFIX_LENGTH = len(_MARK) + 64 + 2  # ,"hash":" then 64 hex digits then "}


class TamperedFileError(TamperingDetected):
    """A line of an export file no longer matches the chain export wrote (CLI exit 5)."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__("file", message)
        self.args = (f"{path}:{line}: tampering detected (file): {message}",)
        self.path = path
        self.line = line

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[type, tuple[str, int, str]]:
        return (type(self), (self.path, self.line, self.message))


def seal(previous: bytes, body: bytes) -> tuple[bytes, bytes]:
    """The line for ``body`` (a JSON object's bytes) after ``previous``, and its hash."""
    digest = hashlib.sha256(EXPORT_PREFIX + previous + body).digest()
    return body[:-1] + b',"hash":"' + digest.hex().encode() + b'"}', digest


class LineChain:
    """Checks the lines of one file in order: :meth:`check` returns each line's body
    (without its hash: what the importer parses) or raises :class:`TamperedFileError`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.previous = _START
        self.chained: bool | None = None  # decided by the first line
        self.first_line = 0

    def check(self, number: int, raw: bytes) -> bytes:
        line = raw.rstrip(b"\r\n")
        if self.chained:  # the usual case, in one comparison of the hex digits
            body, digest = self._sealed(line)
            if line[-_SUFFIX_LENGTH:-66] == _MARK and line[-66:] == digest.hex().encode() + b'"}':
                self.previous = digest
                return body
        return self._check_slowly(number, raw, line)

    def _sealed(self, line: bytes) -> tuple[bytes, bytes]:
        """The line's body (without its hash) and the hash it must carry."""
        body = line[:-_SUFFIX_LENGTH] + b"}"
        return body, hashlib.sha256(EXPORT_PREFIX + self.previous + body).digest()

    def _check_slowly(self, number: int, raw: bytes, line: bytes) -> bytes:
        """The first line, a file without hashes, and every line that fails: which way."""
        # The seal is fixed-width at the end of the line: compare bytes, no regex (this
        # runs for every line of a million-line import).
        sealed = line[-_SUFFIX_LENGTH:-66] == _MARK and line[-2:] == b'"}'
        if sealed:
            try:
                stated = bytes.fromhex(line[-66:-2].decode("ascii"))
            except ValueError:
                sealed = False
            else:
                sealed = line[-66:-2].islower() or line[-66:-2].isdigit()
        if self.chained is None:
            self.chained = sealed
            self.first_line = number
        if not self.chained:
            if sealed:
                raise TamperedFileError(
                    self.path,
                    number,
                    f"the line carries a hash but line {self.first_line} does not: lines "
                    "were removed from the start of the file, or edited",
                )
            return raw
        if not sealed:
            raise TamperedFileError(
                self.path,
                number,
                "the line has no hash, unlike the lines before it: it was inserted or edited",
            )
        body, digest = self._sealed(line)
        if digest != stated:
            raise TamperedFileError(
                self.path,
                number,
                "the line does not match its hash: it was changed, or a line before it was "
                "removed, inserted or moved (nothing was imported)",
            )
        self.previous = digest
        return body
