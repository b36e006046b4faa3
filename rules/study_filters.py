"""The sync's share of a Prolific study's filters, and how it is put in among the others.

A researcher may have set filters of their own on a study (an age range, a country, a
block-list group of their own). The sync owns only its part: the filters its rule set
declares, and, inside the participant-group filters, the values that are its own groups
(and the group ids the rule set names). Everything else on the study is left as it is.

Prolific admits the members of *any* group in an allowlist, so an allowlist of the
researcher's cannot be combined with the eligible participant group without letting
their members in whatever the rules say: that is refused, never merged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

__all__ = ["GROUP_FILTERS", "FilterConflict", "merged", "ours"]

ALLOWLIST, BLOCKLIST = "participant_group_allowlist", "participant_group_blocklist"
GROUP_FILTERS = frozenset({ALLOWLIST, BLOCKLIST})

Filter = Mapping[str, Any]


class FilterConflict(ValueError):
    """The study has a filter the sync cannot put its own beside safely."""


def ours(filters: Sequence[Filter], groups: Set[str], managed: Set[str]) -> list[dict[str, Any]]:
    """The sync's part of ``filters``: the values of ``groups`` in the block list (an
    allowlist that holds one of them, whole), and the ``managed`` filters (by id)."""
    part: list[dict[str, Any]] = []
    for flt in filters:
        filter_id = flt.get("filter_id")
        if filter_id in GROUP_FILTERS:
            values = list(flt.get("selected_values") or [])
            mine = [v for v in values if v in groups]
            # Any other group in an allowlist with ours lets its members in: it is part
            # of what the sync must see (as drift), not someone else's business.
            if mine:
                part.append(
                    {
                        "filter_id": filter_id,
                        "selected_values": values if filter_id == ALLOWLIST else mine,
                    }
                )
        elif filter_id in managed:
            part.append(dict(flt))
    return part


def merged(
    current: Sequence[Filter], wanted: Sequence[Filter], groups: Set[str], replaced: Set[str]
) -> list[dict[str, Any]]:
    """The study's filters with the sync's part made ``wanted``.

    ``groups`` are the group ids that are the sync's to put in or take out; ``replaced``
    the other filter ids the sync set before (taken out unless wanted again).
    """
    wanted_ids = {str(f["filter_id"]) for f in wanted}
    kept: dict[str, dict[str, Any]] = {}
    for flt in current:
        filter_id = str(flt.get("filter_id"))
        if filter_id in GROUP_FILTERS:
            values = [v for v in flt.get("selected_values") or [] if v not in groups]
            if values:
                kept[filter_id] = {"filter_id": filter_id, "selected_values": values}
        elif filter_id not in wanted_ids and filter_id not in replaced:
            kept[filter_id] = dict(flt)
    for flt in wanted:
        filter_id = str(flt["filter_id"])
        theirs = kept.get(filter_id)
        if theirs is None:
            kept[filter_id] = dict(flt)
        elif filter_id == ALLOWLIST:
            raise FilterConflict(
                "the study has a participant_group_allowlist of its own "
                f"({', '.join(theirs['selected_values'])}): Prolific admits the members of "
                "any allowlisted group, so the eligible group cannot be added to it; remove "
                "it from the study and express it as rules instead"
            )
        else:  # a block list of theirs: blocking more is always safe
            values = [*theirs["selected_values"], *flt.get("selected_values", [])]
            kept[filter_id] = {"filter_id": filter_id, "selected_values": values}
    return list(kept.values())
