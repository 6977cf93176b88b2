"""Reading what happened, from outside kadr: the jobs table, the calls each stand-in
recorded, and the Prometheus metrics api and workers expose.

Every timestamp is converted to epoch seconds so the database, the stand-ins and the driver
(all on this machine, one clock) can be compared directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.deploy import Deployment
from bench.infra import connect, fetch, plain_url

#: Bot API methods that put a message in front of a user (and count against Telegram limits).
MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendVideo",
        "sendMediaGroup",
        "sendDocument",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
        "copyMessage",
        "sendInvoice",
    }
)
#: The methods that carry a job's result.
RESULT_METHODS = {"sendPhoto": "photo", "sendVideo": "video", "sendMediaGroup": "media"}


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    user_id: int
    chat_id: int
    mode: str
    prompt: str
    status: str
    error: str | None
    created_at: float
    submitted_at: float | None
    completed_at: float | None
    finished_at: float | None
    check_at: float | None
    fal_request_id: str | None
    urls: tuple[str, ...]

    @property
    def key(self) -> tuple[int, str]:
        return (self.user_id, self.prompt)


@dataclass(frozen=True, slots=True)
class TelegramCall:
    t: float
    method: str
    chat_id: int | None
    status: int
    media: tuple[str, ...]
    """The URLs a result send carried (empty for uploads and other methods)."""
    text: str | None = None
    """A text message's or edit's text, as the bot sent it."""


@dataclass(frozen=True, slots=True)
class FalCall:
    t: float
    kind: str
    status: int | None
    request_id: str | None
    attempt: int | None


@dataclass
class Observation:
    jobs: list[JobRow]
    telegram: list[TelegramCall]
    fal: list[FalCall]
    api_metrics: dict[str, float]
    worker_metrics: dict[str, float]


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _result_urls(result: Any) -> tuple[str, ...]:
    if not isinstance(result, dict):
        return ()
    items = list(result.get("images") or [])
    items += [result[key] for key in ("image", "video") if isinstance(result.get(key), dict)]
    return tuple(item["url"] for item in items if isinstance(item, dict) and item.get("url"))


_JOBS_SQL = """
SELECT id, user_id, chat_id, mode, prompt, status, error, created_at, submitted_at,
       completed_at, finished_at, check_at, fal_request_id, result::text AS result
FROM jobs
"""


async def _read_jobs(url: str) -> list[JobRow]:
    import json

    rows = await fetch(url, _JOBS_SQL)
    return [
        JobRow(
            id=row["id"],
            user_id=row["user_id"],
            chat_id=row["chat_id"],
            mode=row["mode"],
            prompt=row["prompt"],
            status=row["status"],
            error=row["error"],
            created_at=row["created_at"].timestamp(),
            submitted_at=_epoch(row["submitted_at"]),
            completed_at=_epoch(row["completed_at"]),
            finished_at=_epoch(row["finished_at"]),
            check_at=_epoch(row["check_at"]),
            fal_request_id=row["fal_request_id"],
            urls=_result_urls(json.loads(row["result"]) if row["result"] else None),
        )
        for row in rows
    ]


def read_jobs(database_url: str) -> list[JobRow]:
    return asyncio.run(_read_jobs(database_url))


async def _clear(url: str) -> None:
    connection = await connect(plain_url(url))
    try:
        await connection.execute("TRUNCATE jobs, users CASCADE")
    finally:
        await connection.close()


def clear_tables(database_url: str) -> None:
    """Between workloads, so each one's results are its own."""
    asyncio.run(_clear(database_url))


def _media(method: str, params: dict[str, Any]) -> tuple[str, ...]:
    field = RESULT_METHODS.get(method)
    if field is None:
        return ()
    value = params.get(field)
    if field == "media" and isinstance(value, list):
        return tuple(item.get("media", "") for item in value if isinstance(item, dict))
    return (value,) if isinstance(value, str) and not value.startswith("attach://") else ()


def telegram_calls(deployment: Deployment) -> list[TelegramCall]:
    with contextlib.closing(deployment.telegram()) as telegram:
        records = telegram.requests()
    return [
        TelegramCall(
            t=record["t"],
            method=record["method"],
            chat_id=_int_or_none(record["params"].get("chat_id")),
            status=record["status"],
            media=_media(record["method"], record["params"]),
            text=_str_or_none(record["params"].get("text")),
        )
        for record in records
    ]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def fal_calls(deployment: Deployment) -> list[FalCall]:
    with contextlib.closing(deployment.fal()) as fal:
        records = fal.requests("submit,status,result,cancel,webhook")
    return [
        FalCall(r["t"], r["kind"], r.get("status"), r.get("request_id"), r.get("attempt"))
        for r in records
    ]


def scrape(url: str) -> dict[str, float]:
    """One Prometheus text page as {'name{label="value",...}': value}; empty if unreachable.

    Parsed by hand, line by line, so one odd label value cannot lose the whole page."""
    try:
        text = httpx.get(url, timeout=10).text
    except httpx.HTTPError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            values[sample] = float(value)
    return values


def summed(metrics: dict[str, float], name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    total = 0.0
    for sample, value in metrics.items():
        metric, _, rest = sample.partition("{")
        if metric == name and all(label in rest for label in wanted):
            total += value
    return total


def observe(deployment: Deployment) -> Observation:
    worker: dict[str, float] = {}
    for url in deployment.worker_metrics_urls():
        for key, value in scrape(url).items():
            worker[key] = worker.get(key, 0.0) + value
    return Observation(
        jobs=read_jobs(deployment.stack.database_url),
        telegram=telegram_calls(deployment),
        fal=fal_calls(deployment),
        api_metrics=scrape(f"{deployment.api_url}/metrics"),
        worker_metrics=worker,
    )
