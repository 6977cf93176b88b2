"""The Mini App gallery under /app/: a static page, and a JSON API whose every call carries
Telegram's initData (`Authorization: tma <initData>`), checked as Telegram documents it:
HMAC-SHA256 under HMAC-SHA256("WebAppData", bot token) over the sorted fields, and an
`auth_date` no older than MINI_APP_INIT_DATA_MAX_AGE. The user it names is the only one whose
results the call reaches: another user's item is 404, as if it did not exist.

Regenerate starts a job by the bot's normal path (checked, charged, its status message in
the chat); Share prepares the result as an inline message (`savePreparedInlineMessage`) for
the page's `WebApp.shareMessage`. Both are limited per user across every api process (the
count is in Redis); while Redis is down they answer 503.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from aiogram.exceptions import TelegramAPIError
from aiogram.utils.web_app import safe_parse_webapp_init_data
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.deps import ConfigDep, ResourcesDep
from api.rate_limits import SharedLimit
from bot.i18n import use_locale
from bot.launch import Launcher
from bot.routers.results import again
from bot.shared_results import shared_results
from core.domain.models import Job, JobStatus, User, utcnow
from core.jobs.output import media_files, output_of
from core.jobs.queries import get_job, results_of

log = logging.getLogger(__name__)

PAGE = Path(__file__).resolve().parents[1] / "mini_app"
#: Share and Make again per user: each is a Bot API call (and Make again a job); a person taps
#: a few a minute. Counted in Redis, so two api processes do not allow it twice.
ACTIONS_PER_USER = "20/minute"
ACTIONS_PREFIX = "kadr:mini-app-actions"
PAGE_SIZE = 24
MAX_PAGE_SIZE = 60
#: Seconds an initData may be dated ahead of our clock (Telegram's and ours differ a little).
CLOCK_SKEW = 60
#: The page loads Telegram's script and shows fal's media; it sends nothing elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' https://telegram.org; style-src 'self'; "
        "img-src https: http: data: blob:; media-src https: http: blob:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(prefix="/app")


def install(app: FastAPI) -> None:
    """The page's script and style, next to the routes."""
    app.include_router(router)
    app.mount("/app/static", StaticFiles(directory=PAGE / "static"), name="mini_app_static")


def actions_limit(redis: Redis) -> SharedLimit:
    """The per-user limit of Share and Make again, on the process's Redis client; the app's
    lifespan keeps it as `app.state.mini_app_actions`."""
    return SharedLimit(ACTIONS_PER_USER, redis, ACTIONS_PREFIX)


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "tma"})


async def viewer(request: Request, config: ConfigDep) -> int:
    """The Telegram user the call's initData names, once Telegram's signature and its age
    are checked; 401 with the reason otherwise."""
    scheme, _, init_data = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "tma" or not init_data.strip():
        raise unauthorized("no initData: send Authorization: tma <initData>")
    try:
        data = safe_parse_webapp_init_data(config.TELEGRAM_BOT_TOKEN, init_data.strip())
    except ValueError:
        raise unauthorized("initData is not signed by Telegram for this bot") from None
    age = (utcnow() - data.auth_date).total_seconds()
    if age > config.MINI_APP_INIT_DATA_MAX_AGE:
        raise unauthorized("initData is too old: open the gallery again")
    if age < -CLOCK_SKEW:
        raise unauthorized("initData is dated in the future")
    if data.user is None:
        raise unauthorized("initData names no user")
    return data.user.id


ViewerDep = Annotated[int, Depends(viewer)]


async def acting_viewer(request: Request, user_id: ViewerDep) -> int:
    """The viewer, for a call that reaches Telegram or starts a job: 429 past the user's limit,
    503 while Redis (which counts it) is down."""
    try:
        allowed = await request.app.state.mini_app_actions.allows(str(user_id))
    except RedisError as exc:
        log.warning("mini app action limit unavailable (%s); answering 503", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the gallery is unavailable: try again shortly"
        ) from None
    if not allowed:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many actions: wait a minute")
    return user_id


ActingViewerDep = Annotated[int, Depends(acting_viewer)]


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(PAGE / "index.html", headers=PAGE_HEADERS)


@router.get("/api/results")
async def list_results(
    user_id: ViewerDep,
    resources: ResourcesDep,
    before: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> dict[str, Any]:
    """The user's results, newest first; `next` continues after the last one."""
    async with resources.sessions() as session:
        jobs = await results_of(session, user_id, limit=limit, before=_cursor(before))
    items = [_item(job) for job in jobs]
    last = jobs[-1] if len(jobs) == limit else None
    return {"items": items, "next": f"{last.created_at.isoformat()}~{last.id}" if last else None}


@router.get("/api/results/{job_id}")
async def one_result(job_id: str, user_id: ViewerDep, resources: ResourcesDep) -> dict[str, Any]:
    return _item(await _own_result(resources, user_id, job_id))


@router.post("/api/results/{job_id}/regenerate")
async def regenerate(
    job_id: str, user_id: ActingViewerDep, resources: ResourcesDep
) -> dict[str, Any]:
    """A new job like this one, by the bot's normal path: the chat shows its status, a
    refusal (no credits, too many at once) is told there as well."""
    job = await _own_result(resources, user_id, job_id)
    async with resources.sessions() as session:
        user = await session.get(User, user_id)
    if user is None or user.banned:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this user cannot start jobs")
    with use_locale(user.language):
        started = await Launcher.of(resources).launch(
            resources.outbox.notice, job.chat_id, user, again(job), update_id=None
        )
    return {"started": started is not None, "job_id": started.id if started else None}


@router.post("/api/results/{job_id}/share")
async def share(job_id: str, user_id: ActingViewerDep, resources: ResourcesDep) -> dict[str, Any]:
    """A prepared inline message of the result, for `WebApp.shareMessage(id)`."""
    job = await _own_result(resources, user_id, job_id)
    results = shared_results(job)
    if not results:
        raise HTTPException(status.HTTP_409_CONFLICT, "this result was sent as links only")
    try:
        prepared = await resources.outbox.notice.save_prepared_inline_message(
            user_id=user_id,
            result=results[0],
            allow_user_chats=True,
            allow_bot_chats=True,
            allow_group_chats=True,
            allow_channel_chats=True,
        )
    except TelegramAPIError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, "Telegram did not prepare it") from exc
    return {"prepared_id": prepared.id}


async def _own_result(resources: ResourcesDep, user_id: int, job_id: str) -> Job:
    """The viewer's delivered job; anyone else's is "not found", never "forbidden"."""
    async with resources.sessions() as session:
        job = await get_job(session, job_id[:32])
    if job is None or job.user_id != user_id or job.status != JobStatus.DELIVERED:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such result")
    return job


def _cursor(before: str | None) -> tuple[datetime, str] | None:
    if not before:
        return None
    created_at, _, job_id = before.partition("~")
    try:
        return datetime.fromisoformat(created_at), job_id
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "before: not a cursor") from None


def _item(job: Job) -> dict[str, Any]:
    result = job.result or {}
    output = output_of(job, result)
    return {
        "id": job.id,
        "prompt": job.prompt,
        "mode": job.mode,
        "created_at": job.created_at.isoformat(),
        "kind": "video" if output == "video" else "image",
        "media": [item["url"] for item in media_files(output, result)],
        "shareable": bool(shared_results(job)),
    }
