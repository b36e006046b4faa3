"""Text for people: what every human printer of the command line passes its lines through.

Pure (``re`` only), so that the root of the command line can use it for usage errors
without importing a command.
"""

from __future__ import annotations

import re

__all__ = ["ERROR_LIMIT", "capped", "printable"]

# C0 and C1 controls, DEL, the format characters that reorder or hide text (bidi
# overrides and isolates, zero-width marks, line and paragraph separators), and lone
# surrogates (undecodable argv or file names), which no output encoding accepts.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
ERROR_LIMIT = 2000  # characters of one error line, whatever the message holds


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def printable(text: object) -> str:
    """``text`` safe for a terminal and for line-oriented readers: every control or
    reordering character written as its escape (``\\n``, ``\\x1b``, ``\\u202e``).

    Every human printer goes through this, so that a reason holding a newline cannot
    fake an extra line and an ANSI escape never reaches the terminal raw; JSON output is
    written exactly (its encoder escapes what JSON requires)."""
    return _UNSAFE.sub(_escape, str(text))


def capped(line: str, limit: int = ERROR_LIMIT) -> str:
    """``line`` cut to ``limit`` characters, saying how long it was."""
    return line if len(line) <= limit else f"{line[:limit]}... ({len(line)} characters)"
