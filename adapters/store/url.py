"""Database URLs: ``sqlite:///path``, ``postgresql://user@host:port/db``, ``memory://``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from crowdledger.domain.errors import StoreError

__all__ = ["DEFAULT_URL", "StoreURL", "default_url", "parse_url", "redact"]

DEFAULT_URL = "sqlite:///crowdledger.db"
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class StoreURL:
    kind: str  # "sqlite" | "postgresql" | "memory"
    path: str = ""  # sqlite file
    conninfo: str = ""  # postgresql, without our own parameters
    schema: str = "public"
    text: str = ""

    def __str__(self) -> str:
        return redact(self.text)


def default_url() -> str:
    """``CROWDLEDGER_DB`` if set, else a SQLite file in the current directory."""
    return os.environ.get("CROWDLEDGER_DB") or DEFAULT_URL


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def parse_url(url: str) -> StoreURL:
    if url in ("memory://", "memory:", ":memory:"):
        return StoreURL("memory", text=url)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy spells them.
        if not path.startswith("/") or path == "/":
            raise StoreError(f"{url!r}: expected sqlite:///path/to/file.db")
        path = path[1:]
        if path in ("", ":memory:"):
            return StoreURL("memory", text=url)
        return StoreURL("sqlite", path=path, text=url)
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        schema = query.pop("schema", ["public"])[-1]
        if not _SCHEMA.fullmatch(schema):
            raise StoreError(
                f"{redact(url)}: schema {schema!r} is not a plain lower-case identifier"
            )
        rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
        conninfo = parts._replace(scheme="postgresql", query=rest).geturl()
        if not parts.path.strip("/"):
            raise StoreError(
                f"{redact(url)}: no database name (postgresql://user@host:port/dbname)"
            )
        return StoreURL("postgresql", conninfo=conninfo, schema=schema, text=url)
    raise StoreError(
        f"{redact(url)!r} is not a ledger URL: use sqlite:///path/to/file.db, "
        "postgresql://user@host:port/dbname or memory://"
    )
