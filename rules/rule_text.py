"""Reading a rule file's text, bounded: YAML (or JSON) into plain data, with line numbers.

A rule file comes from people and from other tools, so reading one is bounded in every
direction, each limit a located :class:`~crowdledger.rules.errors.RuleSetError` (never a
traceback, never a hang):

* at most :data:`MAX_BYTES` of text (the pure-Python YAML reader takes minutes over 10 MB;
  libyaml, used when PyYAML has it, a fraction of a second over 1 MB);
* nesting at most :data:`MAX_DEPTH` deep (deeper input ends in ``RecursionError`` in
  every reader, ours included);
* at most :data:`MAX_NODES` nodes once aliases are expanded (a "billion laughs" file is a
  few hundred bytes that expand to 10^9 nodes: the size of each anchor is counted as the
  events stream by, so it is refused before anything is built);
* numbers of at most :data:`MAX_NUMBER_CHARS` characters (Python refuses to read an
  integer of more than 4300 digits, and values are 32-bit anyway);
* no key twice in one mapping (YAML readers keep the last one silently).

YAML 1.2 booleans: only true/false. (In YAML 1.1 ``on:``, the automation trigger key,
would be read as the boolean True, and ``no`` as False.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from crowdledger.rules.errors import RuleProblem, RuleSetError

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_NUMBER_CHARS",
    "Lines",
    "decode",
    "read_text",
]

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_NUMBER_CHARS = 40

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """The C reader where PyYAML has it (libyaml), with YAML 1.2 booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)

_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


class Lines:
    """Line numbers of every path in a YAML (or JSON) document."""

    def __init__(self, root: yaml.Node | None, base: str = "") -> None:
        self.lines: dict[str, int] = {}
        if root is not None:
            self._walk(root, base)

    def _walk(self, node: yaml.Node, path: str) -> None:
        # Depth is bounded by read_text (MAX_DEPTH), and so is the work through aliases.
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                self.lines[child] = key.start_mark.line + 1
                self._walk(value, child)
                self.lines[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, f"{path}[{index}]")

    def line(self, path: str) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("", 0)


def decode(raw: bytes, source: str) -> str:
    """A rule file's bytes as text: UTF-8 (a byte-order mark allowed), at most MAX_BYTES."""
    if len(raw) > MAX_BYTES:
        raise _error(source, 0, f"is larger than {MAX_BYTES:,} bytes; a rule file is far smaller")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start : exc.start + 1].hex()
        raise _error(
            source, line, f"is not UTF-8 text (byte 0x{byte} at offset {exc.start})"
        ) from None


@dataclass
class _Frame:
    """An open mapping or sequence while the events stream by."""

    anchor: str | None
    line: int
    mapping: bool
    path: str
    size: int = 1
    items: int = 0
    keys: set[str] | None = None
    key: str = "?"  # a mapping's latest key


def read_text(text: str, source: str) -> tuple[Any, yaml.Node | None, list[RuleProblem]]:
    """The document in ``text`` as plain data, its node tree (for line numbers) and the
    problems found that do not stop it being read (keys given twice).

    Raises RuleSetError for what stops it: too large, too deep, too many nodes through
    aliases, a number too long, not YAML or JSON.
    """
    if len(text) > MAX_BYTES:  # characters; bytes are checked by decode()
        raise _error(
            source, 0, f"is larger than {MAX_BYTES:,} characters; a rule file is far smaller"
        )
    problems = _scan(text, source)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except RecursionError:  # not expected after _scan; never a traceback either way
        raise _error(source, 0, f"is nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    return data, root, problems


def _scan(text: str, source: str) -> list[RuleProblem]:
    """One pass over the parser's events, before anything is built: depth, the size
    aliases expand to, long numbers, duplicate keys."""
    loader = _Loader(text)
    problems: list[RuleProblem] = []
    stack: list[_Frame] = []
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to

    def child_path() -> str:
        """The path of the node starting now (the root: "", or the list of Mephisto
        qualifications a bare list stands for)."""
        if not stack:
            return ""
        parent = stack[-1]
        if not parent.mapping:
            return f"{parent.path}[{parent.items}]"
        return f"{parent.path}.{parent.key}" if parent.path else parent.key

    def finish(size: int, anchor: str | None, line: int, key: str | None) -> None:
        if anchor is not None:
            sizes[anchor] = size
        if not stack:
            return
        parent = stack[-1]
        parent.size += size
        if parent.size > MAX_NODES:
            raise _error(
                source,
                line,
                f"expands to more than {MAX_NODES:,} nodes (through aliases); "
                "a rule file needs far fewer",
            )
        if parent.mapping:
            if parent.items % 2 == 0:
                parent.key = "?" if key is None else _short(key)
            if parent.items % 2 == 0 and key is not None and key != "<<":
                assert parent.keys is not None
                if key in parent.keys:
                    problems.append(
                        RuleProblem(
                            source,
                            line,
                            child_path(),
                            "duplicate_key",
                            f"key {_short(key)!r} is given twice in this mapping "
                            "(which one is meant cannot be known)",
                        )
                    )
                parent.keys.add(key)
            parent.items += 1

    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise _error(source, line, f"is nested more than {MAX_DEPTH} levels deep")
                mapping = isinstance(event, yaml.MappingStartEvent)
                path = child_path() if stack or mapping else "qualifications"
                keys: set[str] | None = set() if mapping else None
                stack.append(_Frame(event.anchor, line, mapping, path, keys=keys))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                finish(frame.size, frame.anchor, frame.line, None)
            elif isinstance(event, yaml.ScalarEvent):
                value = event.value
                if (
                    len(value) > MAX_NUMBER_CHARS
                    and event.implicit[0]
                    and not event.style
                    and loader.resolve(yaml.ScalarNode, value, event.implicit) in _NUMBER_TAGS
                ):
                    raise _error(
                        source,
                        line,
                        f"a number of {len(value):,} characters; values are 32-bit integers",
                    )
                finish(1, event.anchor, line, value)
            elif isinstance(event, yaml.AliasEvent):
                finish(sizes.get(event.anchor or "", 1), None, line, None)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    finally:
        loader.dispose()
    return problems


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."


def _error(source: str, line: int, message: str) -> RuleSetError:
    return RuleSetError([RuleProblem(source, line, "", "invalid_file", message)])


def _yaml_error(exc: yaml.YAMLError, source: str) -> RuleSetError:
    mark = getattr(exc, "problem_mark", None)
    line = 0 if mark is None else mark.line + 1
    problem = getattr(exc, "problem", None) or str(exc)
    return _error(source, line, f"not YAML or JSON: {problem}")
