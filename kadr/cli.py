"""kadr's commands: api, worker, migrate, check, jobs, inbox and the webhook's three, and
the admin commands from the operator's shell: grant, ban, unban, stats.

Each command loads the configuration for its process kind first, so a bad configuration ends in one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from core.domain.catalog import CatalogError, catalog
from core.domain.margins import check_margins
from core.infra import patches
from core.infra.config import Config, ConfigError, ProcessKind, load_config
from core.infra.logs import setup_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def _patched() -> None:
    """Before any command imports aiogram or arq: the library patches (core/infra/patches/),
    which refuse a release they were not written for."""
    try:
        patches.apply()
    except patches.UnexpectedVersion as exc:
        typer.echo(f"kadr: {exc}", err=True)
        raise typer.Exit(2) from None


def _config(kind: ProcessKind) -> Config:
    try:
        config = load_config(kind)
        if kind in ("api", "worker"):
            check_margins(catalog(), config.MIN_MARGIN_PERCENT)
    except (ConfigError, CatalogError) as exc:
        typer.echo(f"kadr: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(config.LOG_LEVEL, config.secrets())
    return config


def _fail(message: str) -> typer.Exit:
    typer.echo(f"kadr: {message}", err=True)
    return typer.Exit(1)


def _check_schema(config: Config) -> None:
    from core.infra.db import SchemaNotReady, check_schema

    try:
        asyncio.run(check_schema(config.DATABASE_URL))
    except SchemaNotReady as exc:
        raise _fail(str(exc)) from None


@app.command()
def migrate() -> None:
    """Apply the database migrations (safe to run again)."""
    from alembic import command

    from core.infra.db import alembic_config

    config = _config("migrate")
    command.upgrade(alembic_config(config.DATABASE_URL), "head")
    typer.echo("kadr: database is up to date")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    forwarded_allow_ips: Annotated[
        str, typer.Option(help="Proxies whose X-Forwarded-* headers are trusted (nginx).")
    ] = "127.0.0.1",
) -> None:
    """Serve the webhooks, health probes and /metrics."""
    import uvicorn

    from api.app import create_app

    config = _config("api")
    _check_schema(config)
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=75,
        forwarded_allow_ips=forwarded_allow_ips,
        proxy_headers=True,
    )


@app.command()
def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option(
            help="Serve only this (repeat for several): updates, images, video. "
            "Default: all of them, so one machine needs one worker command."
        ),
    ] = None,
) -> None:
    """Run a worker: Telegram updates from the inbox, jobs to fal, results to Telegram, the
    sweeper (with images)."""
    import uvloop

    from workers.worker import roles, serve

    config = _config("worker")
    _check_schema(config)
    unknown = sorted(set(queue or []) - set(roles()))
    if unknown:
        raise _fail(f"unknown queue {unknown[0]!r}; choose from: {', '.join(roles())}")
    # uvloop, as uvicorn runs the api: a worker's time goes mostly to socket writes and
    # callbacks (Redis, PostgreSQL, the Bot API), which it does in C.
    uvloop.run(serve(config, [role for role in roles() if not queue or role in queue]))


@app.command()
def check() -> None:
    """Check the configuration, catalog and its prices, database, Redis, bot token, webhook
    and fal key."""
    from kadr.check import run_checks

    outcomes = asyncio.run(run_checks(_config("ops")))
    for outcome in outcomes:
        typer.echo(outcome.line())
    if any(outcome.problem for outcome in outcomes):
        raise typer.Exit(1)


@app.command()
def jobs(
    job_id: Annotated[str | None, typer.Argument(help="Show this job in full.")] = None,
    stuck: Annotated[bool, typer.Option(help="List live jobs older than two hours.")] = False,
    hours: Annotated[float, typer.Option(help="How far back to list failed jobs.")] = 24,
    redeliver: Annotated[
        bool, typer.Option(help="Deliver JOB_ID's result again (a job that failed with one).")
    ] = False,
) -> None:
    """Inspect jobs: one in full, the failed ones lately (default) or the stuck ones."""
    from kadr import jobs as tools

    config = _config("ops")
    if redeliver and job_id is None:
        raise _fail("--redeliver needs a JOB_ID")
    one = job_id or ""
    work: Callable[[Any, Any], Awaitable[str]]
    if redeliver:
        work = lambda sessions, redis: tools.redeliver(sessions, redis, one)  # noqa: E731
    elif job_id is not None:
        work = lambda sessions, _: tools.show(sessions, one)  # noqa: E731
    else:
        work = lambda sessions, _: tools.listing(sessions, stuck=stuck, hours=hours)  # noqa: E731
    typer.echo(asyncio.run(_with_stores(config, work)))


@app.command()
def inbox(
    requeue: Annotated[
        bool, typer.Option(help="Put every dead letter back in the inbox for another try.")
    ] = False,
    replay: Annotated[
        int | None,
        typer.Option(metavar="UPDATE_ID", help="Put only this dead letter back for another try."),
    ] = None,
) -> None:
    """Show the Telegram update inbox: waiting updates, the oldest one's age, dead letters."""
    from core.telegram.inbox import inspect_inbox

    config = _config("ops")
    typer.echo(asyncio.run(inspect_inbox(config.REDIS_URL, requeue=requeue, replay=replay)))


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port of the chat page.")] = 8080,
    fast: Annotated[bool, typer.Option(help="Answer every model in milliseconds.")] = False,
    redis: Annotated[
        str | None,
        typer.Option(
            help="Use this Redis (its database must be empty) instead of a private "
            "redis-server; REDIS_URL is never used."
        ),
    ] = None,
) -> None:
    """Run the whole bot offline: stand-ins for Telegram and fal, api, worker, a chat page."""
    try:
        from sandbox.demo import DemoError, run_demo
    except ModuleNotFoundError as exc:  # the image ships no stand-ins
        if exc.name != "sandbox":
            raise
        raise _fail("kadr demo runs from a source checkout: bash scripts/run.sh") from None

    try:
        run_demo(port=port, fast=fast, redis_url=redis)
    except DemoError as exc:
        raise _fail(str(exc)) from None


@app.command("set-webhook")
def set_webhook(
    max_connections: Annotated[
        int | None, typer.Option(min=1, max=100, help="Default: TELEGRAM_MAX_CONNECTIONS.")
    ] = None,
    drop_pending_updates: Annotated[
        bool, typer.Option(help="Discard updates Telegram still holds (payments too!).")
    ] = False,
) -> None:
    """Register PUBLIC_URL/webhooks/telegram with Telegram."""
    from bot.webhook import set_webhook as run

    config = _config("ops")
    info = asyncio.run(run(config, max_connections, drop_pending_updates=drop_pending_updates))
    typer.echo(info)


@app.command("delete-webhook")
def delete_webhook(
    drop_pending_updates: Annotated[bool, typer.Option()] = False,
) -> None:
    """Unregister the webhook (updates wait at Telegram for up to 24 h)."""
    from bot.webhook import delete_webhook as run

    asyncio.run(run(_config("ops"), drop_pending_updates=drop_pending_updates))
    typer.echo("kadr: webhook deleted")


@app.command("webhook-info")
def webhook_info() -> None:
    """Show what Telegram knows about our webhook."""
    from bot.webhook import webhook_info as run

    typer.echo(asyncio.run(run(_config("ops"))))


async def _with_stores(config: Config, work: Any) -> Any:
    """Run `work(sessions, redis)` on clients opened for it and closed after."""
    from core.infra.db import create_engine, session_factory
    from core.resources import create_redis

    engine = create_engine(config.DATABASE_URL)
    redis = create_redis(config.REDIS_URL)
    try:
        return await work(session_factory(engine), redis)
    finally:
        await redis.aclose()
        await engine.dispose()


@app.command()
def grant(user_id: int, credits: Annotated[int, typer.Argument(min=1)]) -> None:
    """Give a user credits (kept like bought ones)."""
    import uuid

    from core.domain.payments import grant as give

    config = _config("admin")
    _check_schema(config)
    ref = f"cli:{uuid.uuid4().hex}"
    given = asyncio.run(
        _with_stores(
            config,
            lambda sessions, _: give(sessions, user_id=user_id, amount=credits, ref=ref),
        )
    )
    if not given:
        raise _fail(f"user {user_id} has never written to the bot")
    typer.echo(f"kadr: {credits} credits given to user {user_id}")


def _ban(user_id: int, banned: bool) -> None:
    from core.domain.bans import ban as set_ban

    config = _config("admin")
    _check_schema(config)
    done = asyncio.run(
        _with_stores(config, lambda sessions, redis: set_ban(sessions, redis, user_id, banned))
    )
    if not done:
        raise _fail(f"user {user_id} has never written to the bot")
    typer.echo(f"kadr: user {user_id} {'banned' if banned else 'unbanned'}")


@app.command()
def ban(user_id: int) -> None:
    """Make the bot ignore a user."""
    _ban(user_id, True)


@app.command()
def unban(user_id: int) -> None:
    """Let a banned user use the bot again."""
    _ban(user_id, False)


@app.command()
def stats() -> None:
    """Today's users, jobs, failures and credits, and the backlog (as /stats shows them)."""
    import html
    import re

    from bot.i18n import use_locale
    from bot.routers.admin import stats_text
    from core.jobs.stats import gather_stats

    config = _config("admin")
    _check_schema(config)
    found = asyncio.run(
        _with_stores(
            config,
            lambda sessions, redis: gather_stats(sessions, redis, config.UPDATE_DEDUP_TTL),
        )
    )
    with use_locale("en"):
        text = stats_text(found)
    typer.echo(html.unescape(re.sub(r"</?b>", "", text)))
