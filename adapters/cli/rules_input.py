"""A command's ``--rules`` file, read once against the ledger it is for.

Every command that reads a rule file reports every problem of it in one pass: its
structure, its automations and the qualifications it names (checked against the
ledger's definitions) together, sorted by place. Loading the file before the ledger is
open, then checking the names, would report an unknown qualification only once the
structural errors are fixed: the user would fix one file in several rounds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from crowdledger.adapters.cli.support import opened
from crowdledger.adapters.ledger.application import Ledger
from crowdledger.adapters.ledger.rule_files import RuleSet
from crowdledger.adapters.store.database import no_ledger
from crowdledger.domain.errors import StoreError

__all__ = ["opened_with_rules"]


@contextmanager
def opened_with_rules(path: Path, *, create: bool = False) -> Iterator[tuple[Ledger, RuleSet]]:
    """The ledger of ``--db`` and the rule file at ``path``, checked against it in one pass.

    Where there is no ledger, a reader (``create=False``) reports what is wrong with the
    file itself first (exit 2), then that there is no ledger (exit 3); a writer checks
    the file against an empty ledger (which it would be), and creates the ledger only
    once the file is good, so that a bad rule file creates nothing.
    """
    with ExitStack() as stack:
        try:
            ledger: Ledger | None = stack.enter_context(opened(create=False))
        except StoreError as exc:
            if not create or not _is_missing(exc):
                RuleSet.load(path)  # the file's own problems come first
                raise
            ledger = None
        defined = [] if ledger is None else list(ledger.definitions())
        ruleset = RuleSet.load(path, defined=defined)
        if ledger is None:
            ledger = stack.enter_context(opened(create=True))
        yield ledger, ruleset


_MISSING = no_ledger("\0").partition("\0")[0]  # "no ledger at "


def _is_missing(exc: StoreError) -> bool:
    """Whether opening failed because there is no ledger yet (not a server that is down)."""
    return str(exc).startswith(_MISSING)
