"""A second interpreter that works beside this one and sends back pickled messages.

A large import checks its lines in one (:mod:`crowdledger.adapters.transfer.import_child`);
a rebuild of an encrypted ledger reads and opens the log in one
(:mod:`crowdledger.adapters.store.opening_child`). Both are CPU-bound Python, which a
thread could not run beside the main one; a process uses the second core.

A fresh interpreter (``python -m``), not :mod:`multiprocessing`, which would re-run the
host application's main module; it is told where this crowdledger is, so that it imports
the same code. Its messages, ``pickle`` dumps of ``(kind, payload)`` on its stdout, are
read by a thread as soon as they are written, so the helper never waits for this process
to take them, up to :data:`AHEAD` messages.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["HelperProcess", "sender"]

# Messages the helper may send before it must wait: enough to keep it busy while this
# process does something long (writing a batch of read models takes seconds).
AHEAD = 16


def sender(out: IO[bytes]) -> Callable[[str, Any], None]:
    """The helper's side: a function that sends one message."""

    def say(kind: str, payload: Any) -> None:
        pickle.dump((kind, payload), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    return say


class HelperProcess:
    """``python -m module *args``, its messages read by a thread.

    :meth:`get` returns the next message; once the helper's output ends it returns
    ``("eof", None)``, and after a message that cannot be unpickled (a torn write),
    ``("failed", text)``. The reader stops after the first message whose kind is not in
    ``more`` (the kinds that others follow). :meth:`close` kills a helper still running
    and waits for it and the reader.
    """

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        *,
        more: frozenset[str] = frozenset({"rows"}),
        env: Mapping[str, str] | None = None,
    ) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        environment = dict(os.environ if env is None else env)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_root, os.environ.get("PYTHONPATH")])
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=environment,
        )
        assert self._process.stdout is not None
        self._pipe = self._process.stdout
        self._more = more
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(AHEAD)
        self._thread = threading.Thread(
            target=self._read, name=f"crowdledger-{module.rpartition('.')[2]}", daemon=True
        )
        self._thread.start()

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def _read(self) -> None:
        while True:
            try:
                message: tuple[str, Any] = pickle.load(self._pipe)
            except EOFError:
                message = ("eof", None)
            except Exception as exc:  # a torn message: said as the helper's failure
                message = ("failed", f"{type(exc).__name__}: {exc}")
            self._queue.put(message)
            if message[0] not in self._more:
                return

    def get(self) -> tuple[str, Any]:
        return self._queue.get()

    def wait(self) -> int:
        return self._process.wait()

    def close(self) -> None:
        """Stop the helper (killed if still running) and the reader, unblocking it."""
        if self._process.poll() is None:
            self._process.kill()  # the reader sees the end of its pipe
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()
        self._pipe.close()
        self._process.wait()
