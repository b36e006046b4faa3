"""After ``apply``, the provider's gate admits exactly the workers the ledger admits.

Known workers as ``eligible_workers`` decides them; workers the ledger has never seen as
``check`` decides them (a gate that needs a grant shuts them out, one built from
exclusions lets them in, each exactly when the ledger would).

Random ledgers and random rule sets (the strategies of the rules property test), synced
to both fakes while they throttle and fail every few calls; then more random history
and another apply. For every known worker of the provider, MTurk's requirements plus its
worker blocks, and Prolific's study filters, must agree with ``eligible_workers``; an
apply right after an apply must send nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdledger import Ledger, RuleSet
from crowdledger.adapters.mturk.provider import MTurkSync
from crowdledger.adapters.prolific.provider import ProlificAPI, ProlificSync
from crowdledger.testing.mturk import FakeMTurk, mturk_client
from crowdledger.testing.prolific import FakeProlific

from .conftest import Clock
from .reference import RefState
from .test_rules_property import QUALS, commands_over, qualification_leaf, rule_sets, run

WORKERS = [
    "mturk:A1B2C3D4E5F6G7",
    "mturk:A9Z8Y7X6W5V4U3",
    "mturk:A5M5M5M5M5M5M5",
    "prolific:5f3c2a1b9d8e7f6a5b4c3d2e",
    "prolific:0123456789abcdef01234567",
    "prolific:aaaaaaaaaaaaaaaaaaaaaaaa",
    "local:tester",
]
commands = commands_over(WORKERS, submissions=10)


# Conditions MTurk can check natively sit at the top of a rule: mix them in often.
native_conjuncts = st.lists(
    st.one_of(qualification_leaf(), st.builds(lambda x: {"not": x}, qualification_leaf())),
    min_size=1,
    max_size=3,
)


@st.composite
def gated_rule_sets(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(rule_sets())
    if draw(st.booleans()):
        extra = draw(native_conjuncts)
        spec["rule"] = {"all_of": [*extra, spec["rule"]]} if "rule" in spec else {"all_of": extra}
    return spec


# Workers no command ever names: the ledger has never seen them.
NEWCOMERS = ["mturk:A7N7N7N7N7N7N7", "prolific:bbbbbbbbbbbbbbbbbbbbbbbb"]


def mturk_admitted(fake: FakeMTurk, sync: MTurkSync, rules: RuleSet) -> set[str]:
    requirements = sync.requirements(rules)
    blocked = fake.blocks()
    return {
        w
        for w in [*WORKERS, *NEWCOMERS]
        if w.startswith("mturk:") and w[6:] not in blocked and fake.admits(w[6:], requirements)
    }


def prolific_admitted(fake: FakeProlific, study: str) -> set[str]:
    everybody = [*WORKERS, *NEWCOMERS]
    return {w for w in everybody if w.startswith("prolific:") and fake.admits(study, w[9:])}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(commands, max_size=25),
    st.lists(commands, max_size=15),
    gated_rule_sets(),
)
def test_after_apply_the_providers_admit_exactly_the_eligible_workers(
    before: list[tuple[Any, ...]], after: list[tuple[Any, ...]], spec: dict[str, Any]
) -> None:
    clock = Clock()
    ref = RefState()
    mturk, prolific = FakeMTurk(page_size_cap=2), FakeProlific(page_size_max=2)
    mturk.fail_every(3, kind="throttle")
    prolific.fail_every(3, status=503)
    study = prolific.add_study()
    with Ledger.open("memory://", clock=clock) as ledger:
        for q in [*QUALS, "a-failed"]:
            ledger.define(q, occurred_at=clock.now - timedelta(days=1))
        status: dict[int, tuple[str, str]] = {}
        rules = RuleSet.from_dict(spec)
        to_mturk = MTurkSync(ledger, mturk_client(mturk), batch=3)
        client = prolific.client()
        to_prolific = ProlificSync(
            ledger,
            client,
            workspace=prolific.workspace_id,
            study=study,
            api=ProlificAPI(client, sleep=lambda _s: None),
            batch=3,
        )
        for history in (before, after):
            for command in history:
                run(ledger, clock, ref, command, status)
            for sync in (to_mturk, to_prolific):
                report = sync.apply(rules)
                assert (report.failed, report.left_pending) == ([], 0), report.to_json()
            # The known workers the ledger admits, and the newcomers a check of them
            # admits (a worker with no history): exactly those, on both providers.
            known = set(ledger.workers())
            eligible = ledger.eligible_workers(rules)
            strangers = [w for w in [*WORKERS, *NEWCOMERS] if w not in known]
            eligible |= {w for w in strangers if ledger.check(w, rules).eligible}
            assert mturk_admitted(mturk, to_mturk, rules) == {
                w for w in eligible if w.startswith("mturk:")
            }
            assert prolific_admitted(prolific, study) == {
                w for w in eligible if w.startswith("prolific:")
            }
            writes = len(mturk.calls), len(prolific.requests)
            assert to_mturk.apply(rules).sent == to_prolific.apply(rules).sent == 0
            mturk_writes = [op for op, _ in mturk.calls[writes[0] :] if not op.startswith("List")]
            prolific_writes = [r for r in prolific.requests[writes[1] :] if r.method != "GET"]
            assert mturk_writes == []
            assert prolific_writes == []
