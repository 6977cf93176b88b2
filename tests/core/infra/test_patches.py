"""The library patches refuse a release they were not written for, and each still finds in
its library what it relies on: this fails first when an upgrade changes it."""

from __future__ import annotations

import inspect

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import SendMessage
from aiogram.methods.base import Response
from aiogram.types import Message
from arq import func
from arq.worker import Worker

from core.infra import patches
from core.infra.patches.arq_claims import CLAIM_SECONDS, KadrWorker


@pytest.mark.parametrize("library", sorted(patches.WRITTEN_FOR))
def test_another_release_is_refused_with_one_line(
    library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = patches.version
    monkeypatch.setattr(
        patches, "version", lambda name: "99.0.0" if name == library else real(name)
    )
    with pytest.raises(patches.UnexpectedVersion) as refused:
        patches.apply()
    message = str(refused.value)
    assert "\n" not in message
    assert f"{library} 99.0.0" in message and patches.WRITTEN_FOR[library] in message


def test_the_installed_releases_are_the_ones_written_for() -> None:
    patches.check_versions()


async def _noop(ctx: dict[str, object]) -> None:
    return None


async def test_arq_still_has_what_the_claims_patch_relies_on() -> None:
    worker = KadrWorker(functions=[func(_noop, name="noop")], redis_pool=None, handle_signals=False)
    assert worker.in_progress_timeout_s == CLAIM_SECONDS
    for name in ("tasks", "sem", "job_counter", "pool"):
        assert hasattr(worker, name), name
    for name in ("main", "start_jobs"):
        assert inspect.iscoroutinefunction(getattr(Worker, name)), name


def test_aiogram_still_reads_answers_as_the_session_patch_expects() -> None:
    params = list(inspect.signature(AiohttpSession.check_response).parameters)
    assert params == ["self", "bot", "method", "status_code", "content"]
    assert SendMessage.__returning__ is Message
    assert Response[Message].model_fields["result"].annotation is not None
