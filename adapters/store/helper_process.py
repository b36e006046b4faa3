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
from typing import Any

__all__ = ["HelperProcess", "run_helper"]

# Messages the helper may send before it must wait: enough to keep it busy while this
# process does something long (writing a batch of read models takes seconds).
AHEAD = 16


def run_helper(work: Callable[[Callable[[str, Any], None]], None]) -> int:
    """The helper's side: ``work(say)``, where ``say(kind, payload)`` sends a message.
    Whatever ``work`` raises is sent as ``("failed", text)``, for the process that
    started it to act on; the exit code is 1 if that process has gone away, else 0."""
    out = sys.stdout.buffer

    def say(kind: str, payload: Any) -> None:
        pickle.dump((kind, payload), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        work(say)
    except BrokenPipeError:
        return 1
    except Exception as exc:
        say("failed", f"{type(exc).__name__}: {exc}")
    return 0


class HelperProcess:
    """``python -m module *args``, its messages read by a thread.

    :meth:`get` returns the next message; once the helper's output ends it returns
    ``("eof", None)``, and after a message that cannot be unpickled (a torn write),
    ``("failed", text)``. Every message but ``"rows"`` is the helper's last: the reader
    stops after it. :meth:`close` kills a helper still running and waits for it and the
    reader.
    """

    def __init__(
        self, module: str, args: Sequence[str], *, env: Mapping[str, str] | None = None
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
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(AHEAD)
        self._thread = threading.Thread(
            target=self._read, name=f"crowdledger-{module.rpartition('.')[2]}", daemon=True
        )
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                message: tuple[str, Any] = pickle.load(self._pipe)
            except EOFError:
                message = ("eof", None)
            except Exception as exc:  # a torn message: said as the helper's failure
                message = ("failed", f"{type(exc).__name__}: {exc}")
            self._queue.put(message)
            if message[0] != "rows":
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
