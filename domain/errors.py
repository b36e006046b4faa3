"""The one exception tree of crowdledger.

Every error a caller can act on derives from :class:`LedgerError`, so a host application
needs a single ``except`` to catch what the ledger refuses. Errors carry the context a
person needs to fix the input (the field, the worker, the file and line), because the
command line prints them as they are::

    LedgerError
      x InvalidInputError           .field              a value is malformed (worker id, name, time)
      x CommandRefused                                  the input is well formed but the ledger says no
      |   x UnknownQualificationError
      |   x AlreadyDefinedError
      |   x QualificationNotHeldError
      |   x NotBlockedError
      |   x UnknownSubmissionError
      |   x SubmissionAlreadyRecordedError
      |   x SubmissionStateError
      |   x OutOfOrderError                             occurred_at before the stream's last event
      |   x IdempotencyKeyReusedError                   same key, different command
      x ConcurrencyError                                could not commit after retrying conflicts
      x BatchError                  .errors             items of a batch refused: (index, error) each
      x ImportFileError             .path .line .field  an import file is not what export writes
      x StoreError                                      the database URL or schema is unusable
      x ProviderError               .code .retryable    a provider refused or could not be reached

The rules layer adds its own branch (``RuleSetError``) under the same root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "QUOTE_LIMIT",
    "AlreadyDefinedError",
    "BatchError",
    "CommandRefused",
    "ConcurrencyError",
    "IdempotencyKeyReusedError",
    "ImportFileError",
    "InvalidInputError",
    "LedgerError",
    "NotBlockedError",
    "OutOfOrderError",
    "ProviderError",
    "QualificationNotHeldError",
    "StoreError",
    "SubmissionAlreadyRecordedError",
    "SubmissionStateError",
    "UnknownQualificationError",
    "UnknownSubmissionError",
    "quoted",
]

# Messages quote what they were given, but never more than this much of it: a 100 KB
# worker id or a 10 MB name would otherwise come back whole in the one error line.
QUOTE_LIMIT = 80


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with an ellipsis and the full length."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        return f"an integer of {value.bit_length()} bits"  # str() of it may even be refused
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class LedgerError(Exception):
    """Root of every error crowdledger raises on purpose."""


class InvalidInputError(LedgerError, ValueError):
    """A value does not have the form the ledger accepts; ``field`` names which one."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreError(LedgerError):
    """The event store cannot be opened or used (bad URL, unreachable server, foreign schema)."""


class ConcurrencyError(LedgerError):
    """Other writers kept changing the same stream; the command was not recorded."""


class CommandRefused(LedgerError):
    """The command is well formed but the current state of the ledger does not allow it."""


class UnknownQualificationError(CommandRefused, KeyError):
    """A command names a qualification nobody has defined."""

    def __init__(self, qualification: str, suggestion: str | None = None) -> None:
        hint = f" (did you mean {quoted(suggestion)}?)" if suggestion else ""
        super().__init__(
            f"qualification {quoted(qualification)} is not defined{hint}; "
            f"define it first with `crowdledger define {qualification[:255]}`"
        )
        self.qualification = qualification
        self.suggestion = suggestion

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class AlreadyDefinedError(CommandRefused):
    """A second definition of the same qualification in one history (imports only:
    the ``define`` command treats an existing definition as a no-op)."""

    def __init__(self, qualification: str) -> None:
        super().__init__(f"qualification {quoted(qualification)} is already defined")
        self.qualification = qualification


class QualificationNotHeldError(CommandRefused):
    """Revoking (or adjusting) a qualification the worker does not hold."""

    def __init__(self, worker: str, qualification: str) -> None:
        super().__init__(f"worker {worker} does not hold qualification {quoted(qualification)}")
        self.worker = worker
        self.qualification = qualification


class NotBlockedError(CommandRefused):
    """Unblocking a worker who has no block in force in that scope."""

    def __init__(self, worker: str, scope: str) -> None:
        super().__init__(f"worker {worker} is not blocked in scope {quoted(scope)}")
        self.worker = worker
        self.scope = scope


class UnknownSubmissionError(CommandRefused, KeyError):
    """Reviewing a submission that was never recorded."""

    def __init__(self, submission: str) -> None:
        super().__init__(f"submission {quoted(submission)} has not been recorded")
        self.submission = submission

    def __str__(self) -> str:
        return str(self.args[0])


class SubmissionAlreadyRecordedError(CommandRefused):
    """Recording a submission id that is already in the ledger."""

    def __init__(self, submission: str) -> None:
        super().__init__(f"submission {quoted(submission)} is already recorded")
        self.submission = submission


class SubmissionStateError(CommandRefused):
    """A review that the submission's current status does not allow."""

    def __init__(self, submission: str, status: str, action: str) -> None:
        super().__init__(f"submission {quoted(submission)} is {status}; it cannot be {action}")
        self.submission = submission
        self.status = status
        self.action = action


class OutOfOrderError(CommandRefused):
    """An event would take effect before the last event of the same stream."""

    def __init__(self, what: str, occurred_at: str, last: str) -> None:
        super().__init__(
            f"{what}: occurred_at {occurred_at} is before the last recorded change "
            f"({last}); history of one stream is kept in time order"
        )
        self.occurred_at = occurred_at
        self.last = last


class IdempotencyKeyReusedError(CommandRefused):
    """An idempotency key already recorded a different command."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {quoted(key)} was already used for a different command; "
            "use a new key for a new command"
        )
        self.key = key


class BatchError(LedgerError):
    """Some items of a batch command (``grant_many``, ``block_many``) were refused; nothing
    of the batch was recorded. ``errors`` holds every refused item as ``(index, error)``,
    the index counting from 0 in the order the items were given."""

    def __init__(self, errors: Sequence[tuple[int, LedgerError]]) -> None:
        index, first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"item {index}: {first}{more}; nothing of the batch was recorded")
        self.errors = tuple(errors)


class ImportFileError(LedgerError):
    """A line of an import file cannot be imported; nothing from the file was recorded."""

    def __init__(self, path: str, line: int, field: str | None, message: str) -> None:
        where = (f"{path}:{line}" if line > 0 else path) + (f": {field}" if field else "")
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.field = field
        self.message = message


class ProviderError(LedgerError):
    """A provider refused a request or could not be reached (after retrying).

    ``code`` is the provider's error code (MTurk's TurkErrorCode or error type, Prolific's
    HTTP status); ``retryable`` says whether trying again later may succeed. The message
    never contains credentials.
    """

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
