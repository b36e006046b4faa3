"""Label aggregation (Dawid-Skene, GLAD through crowd-kit) and the skill estimates the
ledger records from it: the models agree with crowd-kit run directly, the skills mean what
the docstrings say, and ``estimate_skills`` / ``review skills`` record exactly the values
that change, in one command, with reasons that explain them."""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crowdledger import Ledger
from crowdledger.adapters.cli.app import app
from crowdledger.domain.errors import InvalidInputError, UnknownQualificationError
from crowdledger.rules.label_aggregation import (
    EXTRA_HINT,
    Answer,
    SubmittedAnswer,
    aggregate,
    labelled_answers,
    logistic,
    skill_percent,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

crowdkit = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit is the optional extra")
pd = pytest.importorskip("pandas")

GOOD = ["mturk:A1GOOD", "mturk:A2GOOD", "mturk:A3GOOD"]
SPAMMER = "mturk:A9SPAM"
LABELS = ["cat", "dog", "fox"]
T0 = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)


def synthetic(
    accuracy: dict[str, float], tasks: int, seed: int, labels: list[str] = LABELS
) -> tuple[list[Answer], dict[str, str]]:
    """Every worker answers every task: right with their accuracy, else a wrong label."""
    rnd = random.Random(seed)
    truth = {f"task-{i:03}": rnd.choice(labels) for i in range(tasks)}
    answers = []
    for task, right in truth.items():
        for worker, p in accuracy.items():
            wrong = [label for label in labels if label != right]
            answers.append(Answer(task, worker, right if rnd.random() < p else rnd.choice(wrong)))
    return answers, truth


CROWD = {GOOD[0]: 0.95, GOOD[1]: 0.9, GOOD[2]: 0.85, SPAMMER: 1 / 3}


# -- the pure core ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["dawid_skene", "glad"])
def test_accurate_workers_score_above_a_spammer_and_the_labels_are_recovered(method: str) -> None:
    answers, truth = synthetic(CROWD, tasks=120, seed=7)
    result = aggregate(answers, method)
    assert set(result.skills) == set(CROWD)
    assert all(0.0 <= skill <= 1.0 for skill in result.skills.values())
    assert min(result.skills[w] for w in GOOD) > result.skills[SPAMMER] + 0.15
    right = sum(result.labels[task] == label for task, label in truth.items())
    assert right >= 0.95 * len(truth)
    assert result.tasks == 120
    assert result.answers == 480
    assert result.worker_answers == dict.fromkeys(CROWD, 120)


def test_dawid_skene_skill_is_the_workers_expected_accuracy_under_the_posteriors() -> None:
    """When every worker answers every task, ``sum_c prior[c] * errors[w][c][c]`` equals the
    mean, over the worker's tasks, of the posterior probability of the label they gave: an
    independent computation from crowd-kit's ``probas_``."""
    answers, _ = synthetic(CROWD, tasks=80, seed=3)
    result = aggregate(answers, "dawid_skene")
    frame = pd.DataFrame(answers, columns=["task", "worker", "label"])
    model = crowdkit.DawidSkene(n_iter=100).fit(frame)
    for worker in CROWD:
        own = frame[frame.worker == worker]
        posterior = [
            float(model.probas_.loc[t, label])
            for t, label in zip(own.task, own.label, strict=False)
        ]
        assert result.skills[worker] == pytest.approx(sum(posterior) / len(posterior), abs=2e-3)


@pytest.mark.parametrize("method", ["dawid_skene", "glad"])
def test_labels_are_crowdkits_own_on_the_raw_labels(method: str) -> None:
    answers, _ = synthetic({**CROWD, "mturk:A4SLOPPY": 0.5}, tasks=60, seed=11)
    result = aggregate(answers, method)
    frame = pd.DataFrame(answers, columns=["task", "worker", "label"])
    model = crowdkit.DawidSkene(n_iter=100) if method == "dawid_skene" else crowdkit.GLAD()
    expected = model.fit_predict(frame)
    assert result.labels == {str(task): label for task, label in expected.items()}
    if method == "glad":
        # GLAD is an iterative optimisation that stops within crowd-kit's tolerance
        # (1e-5): two fits of the same answers agree to about that, not to the last bit
        # (seen: 1e-6 apart with pandas 3.1 and scipy 1.17).
        alphas = model.alphas_
        workers = [*CROWD, "mturk:A4SLOPPY"]
        assert result.skills == {
            w: pytest.approx(logistic(float(alphas[w])), abs=1e-4) for w in workers
        }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    tasks=st.integers(3, 25),
    accuracy=st.lists(st.floats(0.2, 1.0), min_size=2, max_size=5),
    shuffle=st.randoms(use_true_random=False),
)
def test_the_answers_order_does_not_matter_and_skills_are_probabilities(
    seed: int, tasks: int, accuracy: list[float], shuffle: random.Random
) -> None:
    crowd = {f"mturk:A{i}X": p for i, p in enumerate(accuracy)}
    answers, _ = synthetic(crowd, tasks=tasks, seed=seed, labels=["a", "b"])
    if len({a.label for a in answers}) < 2:
        with pytest.raises(InvalidInputError, match="same label"):
            aggregate(answers, "dawid_skene")
        return
    first = aggregate(answers, "dawid_skene")
    shuffled = list(answers)
    shuffle.shuffle(shuffled)
    again = aggregate(shuffled, "dawid_skene")
    assert again == first
    assert set(first.skills) == set(crowd)
    assert all(0.0 <= s <= 1.0 for s in first.skills.values())
    assert set(first.labels.values()) <= {"a", "b"}
    assert set(first.labels) == {a.task for a in answers}


def test_skill_percent_and_logistic() -> None:
    assert [skill_percent(s) for s in (0.0, 0.004, 0.005, 0.015, 0.5, 0.996, 1.0)] == [
        0,
        0,
        0,
        2,
        50,
        100,
        100,
    ]
    assert logistic(0.0) == 0.5
    assert logistic(800.0) == 1.0
    assert logistic(-800.0) == 0.0


def _sub(n: int, task: str, worker: str, answer: dict[str, object]) -> SubmittedAnswer:
    return SubmittedAnswer(f"s{n}", task, worker, answer, T0 + timedelta(minutes=n))


def test_labelled_answers_takes_a_workers_last_answer_and_counts_what_it_left_out() -> None:
    picked = labelled_answers(
        [
            _sub(2, "t1", "w1", {"label": "dog"}),
            _sub(1, "t1", "w1", {"label": "cat"}),  # earlier: superseded
            _sub(3, "t1", "w2", {"label": None}),
            _sub(4, "t2", "w2", {"other": 1}),
            _sub(5, "t2", "w1", {"label": "cat"}),
        ],
        "label",
    )
    assert picked.answers == (Answer("t1", "w1", "dog"), Answer("t2", "w1", "cat"))
    assert (picked.skipped, picked.superseded, picked.looked_at) == (2, 1, 5)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.5], "s0.*no categorical label"),
        ([["a"]], "no categorical label"),
        (
            [1, "1"],
            "different kinds: integers \\(submission 's0'\\) and strings \\(submission 's1'\\)",
        ),
        ([True, 1], "different kinds"),
    ],
)
def test_labels_that_cannot_be_compared_are_refused_naming_a_submission(
    values: list[object], message: str
) -> None:
    subs = [_sub(n, f"t{n}", "w", {"label": v}) for n, v in enumerate(values)]
    with pytest.raises(InvalidInputError, match=message) as caught:
        labelled_answers(subs, "label")
    assert caught.value.field == "label"


def test_unknown_methods_and_nothing_to_aggregate_are_refused() -> None:
    with pytest.raises(
        InvalidInputError, match="unknown method 'em' \\(known: dawid-skene, glad\\)"
    ):
        aggregate([Answer("t", "w", "a")], "em")
    with pytest.raises(InvalidInputError, match="nothing to aggregate"):
        aggregate([], "glad")
    assert aggregate(synthetic(CROWD, 10, 1)[0], "Dawid-Skene").method == "dawid_skene"


def test_without_crowd_kit_the_refusal_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "crowdkit", None)
    with pytest.raises(InvalidInputError, match="crowd-kit, an optional extra") as caught:
        aggregate(synthetic(CROWD, 10, 1)[0], "glad")
    assert EXTRA_HINT in str(caught.value)


# -- through the ledger ---------------------------------------------------------------------
def record_crowd(ledger: Ledger, tasks: int, seed: int) -> dict[str, str]:
    answers, truth = synthetic(CROWD, tasks=tasks, seed=seed)
    for n, answer in enumerate(answers):
        ledger.record_submission(
            answer.worker,
            task=answer.task,
            submission=f"sub-{n:04}",
            answer={"label": answer.label, "note": "free text"},
            submitted_at=T0 + timedelta(seconds=n),
        )
    return truth


@pytest.fixture
def crowd_ledger(ledger: Ledger) -> Ledger:
    record_crowd(ledger, tasks=30, seed=5)
    ledger.define("skill", description="Dawid-Skene label accuracy, percent")
    return ledger


def test_estimate_skills_grants_each_worker_their_percent_in_one_command(
    crowd_ledger: Ledger,
) -> None:
    ledger = crowd_ledger
    head = ledger.head()
    estimate = ledger.estimate_skills(field="label", qualification="skill", actor="ops")
    expected = aggregate(synthetic(CROWD, tasks=30, seed=5)[0], "dawid_skene")
    assert estimate.skills == {w: skill_percent(s) for w, s in expected.skills.items()}
    assert estimate.estimates == expected.skills
    assert (estimate.tasks, estimate.answers, estimate.skipped) == (30, 120, 0)
    # one command: contiguous events, one correlation id, each with its own reason
    assert [e.position for e in estimate.granted] == list(range(head + 1, head + 5))
    assert len({e.correlation_id for e in estimate.granted}) == 1
    assert ledger.holders("skill") == estimate.skills
    spam = next(e for e in estimate.granted if e.worker == SPAMMER)
    assert spam.actor == "ops"
    assert spam.reason == (
        f"Dawid-Skene skill estimate: {estimate.skills[SPAMMER]}% over 120 answers on 30 "
        "tasks (field label; 30 by this worker)"
    )
    assert estimate.skills[SPAMMER] < min(estimate.skills[w] for w in GOOD)

    # the same answers again: nothing changes, nothing is recorded
    head = ledger.head()
    again = ledger.estimate_skills(field="label", qualification="skill")
    assert again.granted == ()
    assert not any(c.changed for c in again.changes)
    assert ledger.head() == head

    # another method: only the values that differ are granted, with their reasons
    glad = ledger.estimate_skills(field="label", qualification="skill", method="glad")
    changed = {c.worker for c in glad.changes if c.changed}
    assert {e.worker for e in glad.granted} == changed
    assert all(e.reason.startswith("GLAD skill estimate:") for e in glad.granted)
    assert ledger.holders("skill") == glad.skills


def test_a_dry_run_and_every_refusal_record_nothing(crowd_ledger: Ledger) -> None:
    ledger = crowd_ledger
    head = ledger.head()
    dry = ledger.estimate_skills(field="label", qualification="skill", dry_run=True)
    assert dry.granted == ()
    assert len(dry.skills) == 4
    assert ledger.head() == head
    with pytest.raises(InvalidInputError, match=r"did you mean 'label'.*'label', 'note'"):
        ledger.estimate_skills(field="lable", qualification="skill")
    with pytest.raises(UnknownQualificationError):
        ledger.estimate_skills(field="label", qualification="skil")
    with pytest.raises(InvalidInputError, match="no submission of a task matching 'img-\\*'"):
        ledger.estimate_skills(field="label", qualification="skill", tasks="img-*")
    ledger.record_submission(
        GOOD[0], task="task-999", submission="odd", answer={"label": 0.5}, submitted_at=T0
    )
    head = ledger.head()
    with pytest.raises(InvalidInputError, match=r"submission 'odd' answers 0\.5"):
        ledger.estimate_skills(field="label", qualification="skill")
    assert ledger.head() == head


def test_a_task_glob_limits_the_answers(crowd_ledger: Ledger) -> None:
    some = crowd_ledger.estimate_skills(
        field="label", qualification="skill", tasks="task-00?", dry_run=True
    )
    assert (some.tasks, some.answers) == (10, 40)
    one = crowd_ledger.estimate_skills(
        field="label", qualification="skill", tasks="task-001", method="glad", dry_run=True
    )
    assert (one.tasks, one.answers) == (1, 4)


# -- the command line -------------------------------------------------------------------------
def test_review_skills_on_the_command_line(
    crowd_ledger: Ledger, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.setenv("CROWDLEDGER_ACTOR", "operator")
    runner = CliRunner()
    args = ["review", "skills", "--field", "label", "--qualification", "skill"]
    head = crowd_ledger.head()

    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.stderr
    assert f"{SPAMMER}  " in dry.stdout
    assert "was -" in dry.stdout
    assert "would grant skill to 4 of 4 workers" in dry.stderr
    assert crowd_ledger.head() == head

    done = runner.invoke(app, [*args, "--method", "dawid-skene", "--json"])
    assert done.exit_code == 0, done.stderr
    document = orjson.loads(done.stdout)
    assert document["granted"] == 4
    assert sorted(document["changed"]) == sorted(CROWD)
    assert document["skills"] == crowd_ledger.holders("skill")
    assert set(document) == {
        "method", "field", "tasks", "answers", "skipped", "skills", "labels", "granted", "changed"
    }  # fmt: skip

    history = runner.invoke(app, ["history", SPAMMER])
    assert "Dawid-Skene skill estimate:" in history.stdout

    for bad, message in [
        (["--method", "em"], "unknown method 'em'"),
        (["--field", "lable"], "did you mean 'label'"),
    ]:
        result = runner.invoke(app, [*args, *bad])
        assert result.exit_code == 2, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    assert crowd_ledger.head() == head + 4


def test_review_skills_without_crowd_kit_exits_2_with_the_install_line(
    crowd_ledger: Ledger, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDLEDGER_DB", ledger_url)
    monkeypatch.setitem(sys.modules, "crowdkit", None)
    result = CliRunner().invoke(
        app, ["review", "skills", "--field", "label", "--qualification", "skill"]
    )
    assert result.exit_code == 2
    assert EXTRA_HINT in result.stderr
    assert "Traceback" not in result.stderr
