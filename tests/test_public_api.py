"""The public surface is small, exported on purpose, and documented."""

from __future__ import annotations

import crowdledger


def test_exported_members() -> None:
    exported = {name for name in dir(crowdledger) if not name.startswith("_")}
    exported -= {"adapters", "domain", "projections", "rules", "testing"}  # the subpackages
    assert exported == set(crowdledger.__all__)
    for name in crowdledger.__all__:
        assert getattr(crowdledger, name).__doc__, f"{name} has no docstring"


def test_errors_form_one_tree() -> None:
    for name in crowdledger.__all__:
        member = getattr(crowdledger, name)
        if isinstance(member, type) and issubclass(member, Exception):
            assert issubclass(member, crowdledger.LedgerError)
