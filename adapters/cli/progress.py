"""A progress bar on stderr for the long commands, shown only on a terminal.

::

    with progress("sending", total=len(items), quiet=quiet) as bar:
        for item in items:
            ...
            bar.advance()

``bar.total(n)`` sets (or changes) the total once it is known, ``bar.set(n)`` how much
is done, ``bar.describe(text)`` the label. Off a terminal (a pipe, a file, a test's runner), or with ``--quiet``, nothing
is drawn and every call does nothing, so scripts and logs see only the command's own
output. rich is imported only when a bar is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = ["Progress", "Quiet", "progress"]

Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar (it is shown only on a terminal).")
]


class Progress:
    """One bar (or nothing, when not shown)."""

    def __init__(self, bar: RichProgress | None = None, task: TaskID | None = None) -> None:
        self._bar = bar
        self._task = task

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def advance(self, by: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, by)

    def set(self, completed: int) -> None:
        """Say how much is done (rather than how much more)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=completed)

    def total(self, total: int | None) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def update(self, done: int, total: int | None = None) -> None:
        """Set how much is done, and the total when given: for the ledger's callbacks
        that report ``(done, total)`` (rebuild, export, import)."""
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=total)

    def describe(self, text: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=text)


@contextmanager
def progress(
    description: str, *, total: int | None = None, quiet: bool = False
) -> Iterator[Progress]:
    """A bar on stderr while the block runs, if stderr is a terminal and not ``quiet``."""
    if quiet:
        yield Progress()
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield Progress()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        yield Progress(bar, bar.add_task(description, total=total))
