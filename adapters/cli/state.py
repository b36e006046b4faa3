"""What the root options tell the commands (``--db``, ``--debug``); imports nothing."""

from __future__ import annotations

__all__ = ["STATE"]


class _State:
    """The root options of the command line being run."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.debug = False

    def reset(self, *, debug: bool) -> None:
        self.db = None
        self.debug = debug


STATE = _State()
