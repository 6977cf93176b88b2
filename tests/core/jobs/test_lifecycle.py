"""The lifecycle owner on a real (SQLite, migrated) database: each move happens once, and a
finished job is counted once however often its move is asked for. And it is the only owner:
no other module counts finished jobs, and only the repositories build SQL statements."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from core.domain.catalog import catalog
from core.domain.models import Job, JobStatus, utcnow
from core.domain.users import touch_user
from core.fal.client import FalSubmission
from core.jobs import lifecycle
from core.jobs.queries import get_job, job_of_message
from tests.builders import a_job
from tests.conftest import Sessions

USER = 4242


@pytest.fixture(autouse=True)
async def known_user(sessions: Sessions) -> None:
    async with sessions() as session:
        await touch_user(session, user_id=USER, username=None, first_name=None, language_code="en")


async def _accepted(sessions: Sessions) -> Job:
    model = catalog().models[0]
    job = a_job(USER, model=model)
    assert await lifecycle.accept(sessions, job)
    return job


async def _status(sessions: Sessions, job: Job) -> str:
    async with sessions() as session:
        stored = await get_job(session, job.id)
    assert stored is not None
    return stored.status


def _finished(job: Job, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "kadr_jobs_finished_total", {"mode": job.mode, "outcome": outcome}
    )
    return value or 0.0


def _submission(job: Job) -> FalSubmission:
    base = f"http://fal.test/requests/{job.id}"
    return FalSubmission(
        request_id=f"req-{job.id}",
        status_url=f"{base}/status",
        response_url=base,
        cancel_url=f"{base}/cancel",
    )


async def test_a_cancel_asked_twice_counts_once(sessions: Sessions) -> None:
    job = await _accepted(sessions)
    before = _finished(job, "cancelled")
    assert await lifecycle.cancel(sessions, job)
    assert not await lifecycle.cancel(sessions, job)
    assert _finished(job, "cancelled") == before + 1
    assert await _status(sessions, job) == JobStatus.CANCELLED
    assert not await lifecycle.fail(sessions, job, "timeout")  # final: nothing moves it


async def test_a_failure_asked_twice_counts_once(sessions: Sessions) -> None:
    job = await _accepted(sessions)
    before = _finished(job, "timeout")
    assert await lifecycle.fail(sessions, job, "timeout")
    assert not await lifecycle.fail(sessions, job, "timeout")
    assert _finished(job, "timeout") == before + 1
    async with sessions() as session:
        stored = await get_job(session, job.id)
    assert stored is not None and stored.error == "timeout" and stored.notified_at is None
    assert stored.finished_at is not None


async def test_the_happy_path_counts_delivered_once(sessions: Sessions) -> None:
    job = await _accepted(sessions)
    before = _finished(job, "delivered")
    check_at = utcnow()
    assert await lifecycle.mark_submitted(sessions, job, _submission(job), check_at=check_at)
    assert not await lifecycle.mark_submitted(sessions, job, _submission(job), check_at=check_at)
    assert await lifecycle.mark_completed(sessions, job.id, {"images": []})
    assert not await lifecycle.mark_completed(sessions, job.id, {"images": []})
    assert not await lifecycle.cancel(sessions, job)  # too late once the result came
    assert await lifecycle.mark_delivered(sessions, job, {"images": [], "telegram_file_ids": []})
    assert not await lifecycle.mark_delivered(sessions, job, {"images": []})
    assert _finished(job, "delivered") == before + 1
    assert await _status(sessions, job) == JobStatus.DELIVERED


async def test_an_error_from_fal_cannot_fail_a_job_whose_result_came(sessions: Sessions) -> None:
    job = await _accepted(sessions)
    before = _finished(job, "fal_error")
    assert await lifecycle.mark_completed(sessions, job.id, {"images": []})
    assert not await lifecycle.fail(sessions, job, "content_policy_violation", by_fal=True)
    assert _finished(job, "fal_error") == before
    assert await lifecycle.fail(sessions, job, "undeliverable", "blocked", notified=True)
    assert not await lifecycle.claim_notice(sessions, job)  # no notice for an unreachable chat


async def test_a_failure_notice_is_claimed_once(sessions: Sessions) -> None:
    job = await _accepted(sessions)
    assert await lifecycle.fail(sessions, job, "fal_error", by_fal=True)
    assert await lifecycle.claim_notice(sessions, job)
    assert not await lifecycle.claim_notice(sessions, job)
    await lifecycle.release_notice(sessions, job)
    assert await lifecycle.claim_notice(sessions, job)


async def test_an_undo_is_claimed_once_but_its_own_tap_may_run_again(sessions: Sessions) -> None:
    """A second tap is refused; the same tap handled again (a redelivered update) passes, and
    recording the messages it showed a second time adds nothing."""
    job = await _accepted(sessions)
    assert await lifecycle.claim_undo(sessions, job, update_id=11)
    assert await lifecycle.claim_undo(sessions, job, update_id=11)
    assert not await lifecycle.claim_undo(sessions, job, update_id=12)
    await lifecycle.shown_again(sessions, job, USER, [700])
    await lifecycle.shown_again(sessions, job, USER, [700])
    async with sessions() as session:
        found = await job_of_message(session, USER, 700)
    assert found is not None and (found[0].id, found[1]) == (job.id, 0)
    await lifecycle.release_undo(sessions, job)
    assert await lifecycle.claim_undo(sessions, job, update_id=12)


ROOT = Path(__file__).resolve().parents[3]
PRODUCT = ("api", "bot", "core", "kadr", "workers")
#: The modules that own a table, and so its queries.
REPOSITORIES = {
    "core/jobs/queries.py",
    "core/jobs/moves.py",
    "core/domain/users.py",
    "core/domain/preferences.py",
    "core/domain/credits.py",
    "core/domain/broadcasts.py",
    "core/domain/referrals.py",
    "core/domain/subscriptions.py",
}
STATEMENTS = {"select", "update", "insert", "delete"}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())


def test_finished_jobs_are_counted_at_one_place() -> None:
    counted = [
        name
        for name, module in _modules()
        for node in ast.walk(module)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "JOBS_FINISHED"
    ]
    assert counted == ["core/jobs/lifecycle.py"]


def test_only_the_repositories_build_statements() -> None:
    builders = {
        name
        for name, module in _modules()
        for node in ast.walk(module)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("sqlalchemy")
        and STATEMENTS & {alias.name for alias in node.names}
    }
    assert builders <= REPOSITORIES
