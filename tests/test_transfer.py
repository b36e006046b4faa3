"""Export and import: a faithful round trip, and untrusted files that cannot corrupt a ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from crowdledger import ImportFileError, Ledger

from .conftest import REJECTION, W1, W2, Clock
from .test_replay_property import tables


def small_history(ledger: Ledger, clock: Clock) -> None:
    ledger.define("english", description="Passed the English test")
    ledger.grant(W1, "english", actor="alice", reason="passed test")
    clock.advance(minutes=5)
    ledger.block(W2, scope="project:x", until=clock.now.replace(year=2027), reason="slow")
    ledger.record_submission(W2, task="t1", submission="s1", answer={"label": "cat"})
    ledger.reject("s1", **REJECTION)
    ledger.revoke(W1, "english")


def lines_of(path: Path) -> list[dict[str, Any]]:
    """The event documents of an export, without the hash that seals each line to the
    file (export_chain): a test that edits them writes a file without hashes, which
    import reads unchecked, as it would a history written by hand."""
    docs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    for doc in docs:
        doc.pop("hash", None)
    return docs


def write_lines(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path


def test_round_trip_reproduces_the_same_state(ledger: Ledger, clock: Clock, tmp_path: Path) -> None:
    small_history(ledger, clock)
    out = tmp_path / "ledger.jsonl"
    assert ledger.export(out) == 6
    docs = lines_of(out)
    assert [d["position"] for d in docs] == [1, 2, 3, 4, 5, 6]
    assert docs[1] | {"event_id": None, "correlation_id": None, "stream": None} == {
        "position": 2,
        "type": "QualificationGranted",
        "event_id": None,
        "actor": "alice",
        "reason": "passed test",
        "occurred_at": "2026-01-05T09:00:00+00:00",
        "correlation_id": None,
        "idempotency_key": None,
        "worker": W1,
        "qualification": "english",
        "value": 1,
        "recorded_at": docs[1]["recorded_at"],
        "stream": None,
        "version": 1,
    }
    with Ledger.open(f"sqlite:///{tmp_path / 'copy.db'}", clock=clock) as copy:
        assert copy.import_(out).added == 6
        assert tables(copy) == tables(ledger)
        assert [e.event_id for e in copy.history(W2)] == [e.event_id for e in ledger.history(W2)]
        # Importing the same file again (a retry after a crash, say) records nothing new.
        assert copy.import_(out).added == 0
        assert copy.head() == 6
        copy_out = tmp_path / "again.jsonl"
        copy.export(copy_out)
        assert copy_out.read_bytes() == out.read_bytes()


def test_a_partial_earlier_import_is_completed_not_duplicated(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    small_history(ledger, clock)
    out = tmp_path / "ledger.jsonl"
    ledger.export(out)
    half = write_lines(tmp_path / "half.jsonl", lines_of(out)[:3])
    with Ledger.open("memory://", clock=clock) as copy:
        assert copy.import_(half).added == 3
        assert copy.import_(out).added == 3
        assert tables(copy) == tables(ledger)


BAD_LINES: list[tuple[str, Any, str]] = [
    ("not json", b"{nope", r"bad.jsonl:3: not valid JSON"),
    ("not an object", b"[1, 2]", r"bad.jsonl:3: expected a JSON object"),
    (
        "unknown type",
        {"type": "QualificationGrunted"},
        r"bad.jsonl:3: type: unknown event type 'QualificationGrunted'",
    ),
    ("missing field", {"drop": "actor"}, r"bad.jsonl:3: actor: is required"),
    ("wrong type", {"set": ("value", "1")}, r"bad.jsonl:3: value: expected an integer, got '1'"),
    (
        "naive time",
        {"set": ("occurred_at", "2026-01-05T09:00:00")},
        r"bad.jsonl:3: occurred_at: expected an ISO 8601 time",
    ),
    (
        "bad worker",
        {"set": ("worker", "mturk:lower")},
        r"bad.jsonl:3: worker: 'lower' is not an MTurk worker id",
    ),
    (
        "bad name",
        {"set": ("qualification", "no spaces")},
        r"bad.jsonl:3: qualification: 'no spaces'",
    ),
    (
        "undefined",
        {"set": ("qualification", "french")},
        r"bad.jsonl:3: qualification: 'french' is not defined",
    ),
    (
        "extra field",
        {"set": ("colour", "red")},
        r"bad.jsonl:3: colour: is not a field of QualificationGranted",
    ),
    (
        "wrong stream",
        {"set": ("stream", "00000000-0000-0000-0000-000000000000")},
        r"bad.jsonl:3: stream: .* does not match",
    ),
    (
        "version gap",
        {"set": ("version", 3)},
        r"bad.jsonl:3: version: 3 does not follow the 0 earlier event\(s\) of worker "
        r"prolific:\w+'s qualification 'english'",
    ),
    (
        "revoke unheld",
        {"set": ("type", "QualificationRevoked"), "drop": "value"},
        r"bad.jsonl:3: worker .* does not hold",
    ),
    (
        "back in time",
        {"set": ("occurred_at", "2020-01-01T00:00:00+00:00")},
        r"bad.jsonl:3: occurred_at: .* is before 'english' was defined",
    ),
]


@pytest.mark.parametrize(("case", "change", "message"), BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_a_bad_line_is_named_and_nothing_is_recorded(
    ledger: Ledger, clock: Clock, tmp_path: Path, case: str, change: Any, message: str
) -> None:
    good = [
        {
            "type": "QualificationDefined",
            "actor": "a",
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "correlation_id": "c",
            "qualification": "english",
            "description": "",
            "event_id": "2b1f1b9e-8c4e-4f57-9d3e-0d5f7a1c2e31",
            "recorded_at": "2026-01-01T00:00:00+00:00",
        },
        {
            "type": "QualificationGranted",
            "actor": "a",
            "occurred_at": "2026-01-02T00:00:00+00:00",
            "correlation_id": "c",
            "worker": W1,
            "qualification": "english",
            "value": 1,
            "event_id": "3c2f1b9e-8c4e-4f57-9d3e-0d5f7a1c2e32",
            "recorded_at": "2026-01-02T00:00:00+00:00",
        },
    ]
    third: Any
    if isinstance(change, bytes):
        third = change
    elif "type" in change and "set" not in change:
        third = dict(change)
    else:
        third = dict(good[1], worker=W2, event_id="4d3f1b9e-8c4e-4f57-9d3e-0d5f7a1c2e33")
        if "drop" in change:
            third.pop(change["drop"])
        if "set" in change:
            third[change["set"][0]] = change["set"][1]
    path = tmp_path / "bad.jsonl"
    body = b"".join(orjson.dumps(d) + b"\n" for d in good)
    body += (third if isinstance(third, bytes) else orjson.dumps(third)) + b"\n"
    path.write_bytes(body)
    with pytest.raises(ImportFileError, match=message) as caught:
        ledger.import_(path)
    assert caught.value.line == 3
    assert ledger.head() == 0, "nothing from a bad file is recorded"
    assert ledger.definitions() == {}


def test_an_import_cannot_overwrite_recorded_history(
    ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    small_history(ledger, clock)
    out = tmp_path / "ledger.jsonl"
    ledger.export(out)
    docs = lines_of(out)
    docs[1]["event_id"] = "9f9f9f9f-8c4e-4f57-9d3e-0d5f7a1c2e31"  # same place, a different event
    tampered = write_lines(tmp_path / "tampered.jsonl", docs)
    with pytest.raises(
        ImportFileError,
        match=r"tampered.jsonl:2: worker mturk:\w+'s qualification 'english' already has a "
        r"different event number 1: event 2 in this ledger \(id [0-9a-f-]{36}\)",
    ):
        ledger.import_(tampered)
    assert ledger.head() == 6


def test_a_missing_file_is_an_error(ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        ledger.import_(tmp_path / "absent.jsonl")


@pytest.mark.parametrize(
    "parallel", [False, True], ids=["in-process", "checked-in-a-second-process"]
)
def test_both_import_paths_agree(clock: Clock, tmp_path: Path, parallel: bool) -> None:
    from crowdledger.adapters.transfer.import_file import append_file

    with Ledger.open(f"sqlite:///{tmp_path / 'src.db'}", clock=clock) as source:
        small_history(source, clock)
        out = tmp_path / "ledger.jsonl"
        source.export(out)
        with Ledger.open(f"sqlite:///{tmp_path / 'dst.db'}", clock=clock) as copy:
            assert append_file(copy, out, parallel=parallel).added == 6
            copy.catch_up()
            assert tables(copy) == tables(source)
            assert append_file(copy, out, parallel=parallel).added == 0


def test_a_bad_line_found_by_the_second_process_records_nothing(
    clock: Clock, tmp_path: Path
) -> None:
    from crowdledger.adapters.transfer.import_file import append_file

    with Ledger.open(f"sqlite:///{tmp_path / 'src.db'}", clock=clock) as source:
        small_history(source, clock)
        out = tmp_path / "ledger.jsonl"
        source.export(out)
    docs = lines_of(out)
    docs[4]["feedback"] = 12
    bad = write_lines(tmp_path / "bad.jsonl", docs)
    with Ledger.open(f"sqlite:///{tmp_path / 'dst.db'}", clock=clock) as copy:
        with pytest.raises(
            ImportFileError, match=r"bad.jsonl:5: feedback: expected a string, got 12"
        ):
            append_file(copy, bad, parallel=True)
        assert copy.head() == 0


def test_the_fast_path_never_accepts_what_the_domain_refuses() -> None:
    """Every line the compiled schema accepts, the domain's own checks accept too."""
    import uuid

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from pydantic import ValidationError

    from crowdledger.adapters.store.codec import event_from_document
    from crowdledger.adapters.transfer.import_checker import event_from_valid_line
    from crowdledger.adapters.transfer.import_schema import line_schema
    from crowdledger.domain import InvalidInputError, LedgerError

    common = {
        "actor": "a",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "correlation_id": "c",
        "event_id": "2b1f1b9e-8c4e-4f57-9d3e-0d5f7a1c2e31",
        "recorded_at": "2026-01-01T00:00:00+00:00",
        "reason": None,
        "idempotency_key": None,
    }
    review = {"worker": W1, "task": "t", "submission": "s", "feedback": None}
    bases: dict[str, dict[str, Any]] = {
        "QualificationDefined": {"qualification": "english", "description": ""},
        "QualificationGranted": {"worker": W1, "qualification": "english", "value": 1},
        "QualificationRevoked": {"worker": W1, "qualification": "english"},
        "WorkerBlocked": {"worker": W1, "scope": "global", "until": None},
        "WorkerUnblocked": {"worker": W1, "scope": "global"},
        "SubmissionRecorded": {
            "worker": W1,
            "provider": "mturk",
            "task": "t",
            "submission": "s",
            "answer": {},
            "accepted_at": None,
            "submitted_at": "2026-01-01T00:00:00+00:00",
        },
        "SubmissionApproved": {**review, "overrode_rejection": False},
        "SubmissionRejected": review,
    }
    values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.text(max_size=30),
        st.sampled_from(
            [
                "mturk:A1",
                "mturk:a1",
                "prolific:" + "a" * 24,
                "prolific:" + "A" * 24,
                "local:x",
                "local:",
                " ",
                "",
                "global",
                "project:x",
                "Project:x",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00",
                "2026-13-01T00:00:00+00:00",
                "2026-01-01T00:00:00-05:00",
                "2B1F1B9E-8C4E-4F57-9D3E-0D5F7A1C2E31",
                "prolific",
                "local",
                "english",
                "a b",
                "x" * 300,
            ]
        ),
    )
    accepted = []

    @settings(max_examples=600, deadline=None)
    @given(st.sampled_from(sorted(bases)), st.data())
    def check(kind: str, data: st.DataObject) -> None:
        doc = {"type": kind, **common, **bases[kind]}
        for key in data.draw(st.lists(st.sampled_from(sorted(doc)), max_size=2)):
            if key != "type":
                doc[key] = data.draw(values)
        try:
            quick = event_from_valid_line(line_schema().validate_json(orjson.dumps(doc)))
        except (ValidationError, InvalidInputError):
            return  # the fast path refused: the domain will say why
        accepted.append(doc)
        try:
            slow = event_from_document(dict(doc), uuid.UUID(int=0), 1)
            slow.validate()
        except LedgerError as exc:
            raise AssertionError(
                f"fast path accepted what the domain refuses: {doc} ({exc})"
            ) from None
        # Both paths store the same state (key order aside).
        sort = orjson.OPT_SORT_KEYS
        assert orjson.dumps(vars(quick), option=sort) == orjson.dumps(
            {k: v for k, v in vars(slow).items() if not k.startswith("originator")}, option=sort
        )

    check()
    assert len(accepted) >= 50, "the property must see many accepted lines to mean anything"
