"""What the root options tell the commands (``--db``, ``--debug``, ``--lock-timeout``);
imports nothing."""

from __future__ import annotations

__all__ = ["STATE"]


class _State:
    """The root options of the command line being run."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.debug = False
        self.lock_timeout: float | None = None  # None: $CROWDLEDGER_LOCK_TIMEOUT, else 60

    def reset(self, *, debug: bool) -> None:
        self.db = None
        self.debug = debug
        self.lock_timeout = None


STATE = _State()
