"""Reading the CSV files of ``grant --from-csv`` and ``block --from-csv``.

A file has one row per worker: the worker, then (optionally) the value to grant or the
reason of the block. A first line that names its columns is a header, recognised by a
worker column (``worker``, ``worker_id``, ``Worker ID``, ``participant_id``; case, spaces
and underscores do not matter), and then the columns may come in any order and others
are ignored: MTurk's own worker file (Manage > Workers > Download CSV, whose columns are
``Worker ID``, the approval rates, ``CURRENT-``/``UPDATE-`` qualification scores,
``UPDATE BlockStatus`` and ``BlockReason``) works as it is downloaded, its ``BlockReason``
read as the reason. Without a header the columns are worker, then value or reason.

A worker is ``provider:id``; a bare MTurk worker id (``A`` then upper-case letters and
digits, as MTurk's files write them) is read as ``mturk:<id>``. No other bare id is
guessed. Every problem in the file is collected with its line; the command records
nothing unless there is none.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from crowdledger.domain.errors import InvalidInputError, quoted
from crowdledger.domain.identifiers import check_text, check_value, parse_worker

__all__ = ["MAX_BYTES", "BulkRow", "Problem", "read_rows"]

# A bulk file is read whole; this bounds it (about two million rows of MTurk's worker
# file) so that a path such as /dev/zero is refused instead of filling the memory.
MAX_BYTES = 128 << 20

_BARE_MTURK = re.compile(r"A[A-Z0-9]{1,63}")
_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")
_WORKER_COLUMNS = {"worker", "workerid", "participant", "participantid"}
_EXTRA_COLUMNS = {"value": {"value"}, "reason": {"reason", "blockreason"}}


@dataclass(frozen=True)
class BulkRow:
    """One row: where it is, the worker (as written, or ``mturk:`` added), and the value
    (``int``) or reason (``str``) it gives, or None for the command's default."""

    line: int
    worker: str
    extra: int | str | None


@dataclass(frozen=True)
class Problem:
    line: int
    field: str | None
    message: str

    def located(self, path: Path) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{path}:{self.line}:{field} {self.message}"


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def worker_of(cell: str) -> str:
    """A worker reference; a bare MTurk id becomes ``mturk:<id>``."""
    return f"mturk:{cell}" if _BARE_MTURK.fullmatch(cell) else cell


def _extra(kind: str, cell: str) -> int | str | None:
    if cell == "":
        return None
    if kind == "reason":
        check_text(cell, "reason")  # raises InvalidInputError naming the limit
        return cell
    if not _INTEGER.fullmatch(cell):
        raise ValueError(f"expected an integer, got {quoted(cell)}")
    value = int(cell)
    check_value(value)  # raises InvalidInputError (a ValueError) naming the range
    return value


def read_rows(path: Path, kind: str) -> tuple[list[BulkRow], list[Problem]]:
    """The rows of ``path`` (``kind``: ``value`` or ``reason``) and every problem found."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:  # name the file, even where the OS error does not (EIO)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    if len(data) > MAX_BYTES:
        return [], [Problem(1, None, f"is larger than {MAX_BYTES:,} bytes; split it")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return [], [Problem(line, None, f"not UTF-8 text (byte {data[exc.start]:#04x})")]
    rows: list[BulkRow] = []
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    worker_col, extra_col, width = 0, 1, 2
    first = True
    end = 0
    seen: dict[str, int] = {}  # worker -> the line that names it
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(reader.line_num, None, f"not CSV: {exc}"))
            break
        end = reader.line_num
        cells = [cell.strip() for cell in cells]
        if not any(cells):
            continue
        if first:
            first = False
            names = [_normal(cell) for cell in cells]
            if any(name in _WORKER_COLUMNS for name in names):
                worker_col = next(i for i, n in enumerate(names) if n in _WORKER_COLUMNS)
                extra_col = next((i for i, n in enumerate(names) if n in _EXTRA_COLUMNS[kind]), -1)
                width = 0  # a header: other columns are ignored
                continue
            if ":" not in cells[0] and not _BARE_MTURK.fullmatch(cells[0]):
                problems.append(
                    Problem(
                        start,
                        "worker",
                        f"{quoted(cells[0])} is neither a worker (provider:id) nor a header "
                        "naming a worker column (worker, Worker ID)",
                    )
                )
                continue
        if width and len(cells) > width:
            problems.append(
                Problem(
                    start,
                    None,
                    f"expected at most {width} columns (worker, {kind}), got {len(cells)}; "
                    "quote a field holding a comma, or add a header naming the columns",
                )
            )
            continue
        worker = cells[worker_col] if worker_col < len(cells) else ""
        if not worker:
            problems.append(Problem(start, "worker", "is missing"))
            continue
        extra, extra_problem = None, None
        try:
            extra = _extra(kind, cells[extra_col]) if 0 <= extra_col < len(cells) else None
        except ValueError as exc:
            extra_problem = Problem(start, kind, str(exc).removeprefix(f"{kind}: "))
        ref = worker_of(worker)
        try:
            ref = str(parse_worker(ref))
        except InvalidInputError as exc:
            problems.append(Problem(start, exc.field, exc.message))
            continue
        if ref in seen:
            problems.append(Problem(start, "worker", f"{ref} is also on line {seen[ref]}"))
            continue
        seen[ref] = start
        if extra_problem is not None:
            problems.append(extra_problem)
            continue
        rows.append(BulkRow(start, ref, extra))
    return rows, problems
