"""The durable update inbox end to end: real api and worker processes, a Redis of their own,
a database of their own, the Telegram and fal stand-ins. Updates are posted the way Telegram
posts them (and posted again after anything but a 2xx); each test reads what users would
notice: what the stand-in recorded as sent, to whom, how many times, and the jobs table.

The deployment here is the module's own: a Redis that these tests stop and start (persisting
over a graceful stop, as production's append-only Redis does), two `kadr api` webhooks and one
`kadr worker` (every queue and the inbox), so nothing another test does can meet it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from PIL import Image
from sqlalchemy import select

from bot.keyboards import PhotoButton, PhotoChoice
from core.domain.catalog import DEFAULT_PATH as DEFAULT_CATALOG
from core.domain.catalog import catalog
from core.domain.models import Job
from core.infra.db import create_engine
from core.jobs.queue import queue_name
from core.telegram.inbox import PARTITIONS, PREFIX, TRIES
from sandbox.control import FalSandbox, Record, TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import KADR, TEST_SECRET, TEST_TOKEN, Service, Stack, free_port

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Telegram's default for setWebhook's max_connections: updates in flight at once.
TELEGRAM_CONNECTIONS = 40
#: Above the stand-in's own update ids (random, below 10^9), below 2^31 like Telegram's.
UPDATE_BASE = 2_000_000_000

API_KILL_USERS = range(9_100_000, 9_100_500)
WORKER_KILL_USERS = range(9_200_000, 9_200_200)
ORDER_CHATS = range(9_300_000, 9_300_008)
PHOTO_USER = 9_300_100
REDIS_USERS = range(9_400_000, 9_400_120)

BOT = {"id": 123456789, "is_bot": True, "first_name": "kadr", "username": "kadr_bot"}
STATUS_PREFIX = "⏳ In the queue"
PROGRESS_PREFIXES = (STATUS_PREFIX, "🎨 Generating")


# ---------------------------------------------------------------------------------------------
# The deployment


def catalog_file(path: Path) -> Path:
    """The catalog with fal's silence noticed after 9 s (a webhook the killed api missed) and
    deadlines of minutes: a burst on a busy machine is slow, and slow is not what is tested."""
    text = DEFAULT_CATALOG.read_text()
    for key, value in {"check_after_minutes": "0.15", "deadline_minutes": "5"}.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
    path.write_text(text)
    return path


@dataclass
class Deployment:
    stack: Stack
    redis: PrivateRedis
    telegram: TelegramSandbox
    fal: FalSandbox
    database_url: str
    api_b_url: str

    @property
    def api_a_url(self) -> str:
        return self.stack.api_url


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("durable")
    server = PrivateRedis(workdir, append_only=True).start()
    env = {
        "KADR_CATALOG": str(catalog_file(workdir / "catalog.toml")),
        "SWEEP_INTERVAL": "5",
        "SWEEP_STALE_AFTER": "30",
        "WORKER_METRICS_PORT": "0",
    }
    stack = Stack(workdir, own_database_url, server.url, extra_env=env)
    api_b_port = free_port()
    api_b = Service(
        "api-b",
        [*KADR, "api", "--port", str(api_b_port)],
        stack.env(),
        workdir / "api-b.log",
        f"http://127.0.0.1:{api_b_port}/livez",
    )
    telegram = TelegramSandbox(stack.telegram_url)
    fal = FalSandbox(stack.fal_url)
    try:
        with stack.starting_together():
            stack.start_telegram("--no-fetch-urls")
            stack.start_fal()
            stack.migrate()
            stack.start_api()
            # A second webhook on its own port, as behind a balancer: same PUBLIC_URL, same Redis.
            stack.services.append(api_b.start(workdir))
            stack.start_worker()
        api_b.wait_ready(stack.startup_timeout)
        stack.run_kadr("set-webhook")  # the stand-in's own deliveries go to webhook A
        yield Deployment(
            stack, server, telegram, fal, own_database_url, f"http://127.0.0.1:{api_b_port}"
        )
    finally:
        telegram.close()
        fal.close()
        stack.stop()
        server.stop()


# ---------------------------------------------------------------------------------------------
# Updates, posted the way Telegram posts them


def update_id(user_id: int, n: int = 0) -> int:
    return UPDATE_BASE + (user_id - 9_000_000) * 10 + n


def sender(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": "en"}


def private_chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": "Ann"}


def text_update(user_id: int, text: str, n: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 100 + n,
        "date": int(time.time()),
        "chat": private_chat(user_id),
        "from": sender(user_id),
        "text": text,
    }
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"update_id": update_id(user_id, n), "message": message}


def button_update(user_id: int, message_id: int, data: str, n: int) -> dict[str, Any]:
    """A press on a button under the bot's message `message_id`."""
    return {
        "update_id": update_id(user_id, n),
        "callback_query": {
            "id": str(update_id(user_id, n)),
            "from": sender(user_id),
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": private_chat(user_id),
                "from": BOT,
                "text": "What shall I do with this photo?",
            },
            "chat_instance": str(user_id),
            "data": data,
        },
    }


@dataclass
class WebhookState:
    """Telegram's side of the webhook: every update is posted until it gets a 2xx, and a
    method call in the 2xx's body (kadr's 👀 on a private prompt) is run at the stand-in."""

    http: httpx.AsyncClient
    bot_api: str
    deadline: float
    attempts: dict[int, list[int | None]] = field(default_factory=lambda: defaultdict(list))
    accepted: int = 0
    on_accept: Callable[[int], None] | None = None

    async def post(self, url: str, update: dict[str, Any]) -> None:
        tries = self.attempts[update["update_id"]]
        while True:
            try:
                response = await self.http.post(
                    f"{url}/webhooks/telegram", json=update, headers={SECRET_HEADER: TEST_SECRET}
                )
                status: int | None = response.status_code
            except httpx.TransportError:
                status = None  # refused, reset, timed out: Telegram tries again
            tries.append(status)
            if status is not None and 200 <= status < 300:
                await self._run_reply(response.json())
                self.accepted += 1
                if self.on_accept is not None:
                    self.on_accept(self.accepted)
                return
            assert status is None or status >= 500, f"update {update['update_id']}: {status}"
            if time.monotonic() > self.deadline:
                raise AssertionError(f"update {update['update_id']} never stored: {tries}")
            await asyncio.sleep(min(0.1 * 2 ** (len(tries) - 1), 1.0))

    async def _run_reply(self, answer: Any) -> None:
        if isinstance(answer, dict) and isinstance(method := answer.pop("method", None), str):
            await self.http.post(f"{self.bot_api}/{method}", json=answer)

    def resent(self) -> dict[int, list[int | None]]:
        """The updates that needed more than one post, with what each post got."""
        return {uid: tries for uid, tries in self.attempts.items() if len(tries) > 1}


@contextlib.asynccontextmanager
async def telegram_webhook(telegram: TelegramSandbox, within: float = 90.0) -> Any:
    limits = httpx.Limits(max_connections=TELEGRAM_CONNECTIONS)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:
        yield WebhookState(http, f"{telegram.base_url}/bot{TEST_TOKEN}", time.monotonic() + within)


async def burst(webhook: WebhookState, url: str, updates: Iterable[dict[str, Any]]) -> None:
    """Every update at once, at most TELEGRAM_CONNECTIONS in flight, each until stored."""
    slots = asyncio.Semaphore(TELEGRAM_CONNECTIONS)

    async def one(update: dict[str, Any]) -> None:
        async with slots:
            await webhook.post(url, update)

    await asyncio.gather(*(one(update) for update in updates))


@dataclass
class Trigger:
    """An on_accept hook that starts `action` once `count` updates are stored."""

    count: int
    action: Callable[[], Awaitable[None]]
    task: asyncio.Task[None] | None = None

    def __call__(self, accepted: int) -> None:
        if accepted >= self.count and self.task is None:
            self.task = asyncio.ensure_future(self.action())


# ---------------------------------------------------------------------------------------------
# What users would notice


class Chats:
    """The stand-in's record of successful sends, read incrementally, per chat."""

    def __init__(self, telegram: TelegramSandbox) -> None:
        self.telegram = telegram
        self.since = 0
        self.by_chat: dict[int, list[Record]] = defaultdict(list)
        self.poll()
        self.by_chat.clear()

    def poll(self) -> list[Record]:
        response = self.telegram.http.get("/_sandbox/requests", params={"since": self.since})
        response.raise_for_status()
        new: list[Record] = response.json()
        for record in new:
            self.since = max(self.since, record["seq"])
            chat = record["params"].get("chat_id")
            if isinstance(chat, int):
                self.by_chat[chat].append(record)
        return new

    def sent(self, chat: int, method: str) -> list[Record]:
        return [
            r for r in self.by_chat.get(chat, []) if r["method"] == method and r["status"] == 200
        ]

    def texts(self, chat: int) -> list[str]:
        return [r["params"]["text"] for r in self.sent(chat, "sendMessage")]

    def wait(
        self,
        done: Callable[[], bool],
        timeout: float,
        what: str,
        progress: Callable[[], str] = lambda: "",
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if done():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s: {what} {progress()}")
            time.sleep(0.5)

    def failures(self, chat: int) -> list[str]:
        """Status messages turned into the reason their job failed."""
        edits = [r["params"]["text"] for r in self.sent(chat, "editMessageText")]
        return [text for text in edits if not text.startswith(PROGRESS_PREFIXES)]

    def answered(self, user: int) -> bool:
        """A prompt's outcome is in: the picture, a refusal instead of a status message, or
        (what these tests must never see) the job's failure."""
        return (
            bool(self.sent(user, "sendPhoto"))
            or any(not text.startswith(STATUS_PREFIX) for text in self.texts(user))
            or bool(self.failures(user))
        )

    def wait_answered(self, users: range, timeout: float) -> None:
        self.wait(
            lambda: all(self.answered(u) for u in users),
            timeout,
            f"an outcome for each of {len(users)} users",
            lambda: f"{sum(not self.answered(u) for u in users)} still waiting",
        )


def settle(deploy: Deployment, timeout: float = 60.0) -> None:
    """Wait until nothing more can be sent: no update waits in the inbox and no submit or
    deliver task waits in a queue or runs. Only then is "exactly once" worth checking."""
    queues = [queue_name(q) for q in {mode.queue for mode in catalog().modes.values()}]
    client = deploy.redis.client()
    deadline = time.monotonic() + timeout
    try:
        while True:
            pipe = client.pipeline(transaction=False)
            for partition in range(PARTITIONS):
                pipe.llen(f"{PREFIX}:{partition}")
            for queue in queues:
                pipe.zrange(queue, 0, -1)
            replies = pipe.execute()
            waiting = sum(replies[:PARTITIONS])
            tasks = [m for zset in replies[PARTITIONS:] for m in zset if not m.startswith(b"cron")]
            running = [k for k in client.scan_iter("arq:in-progress:*") if b":cron" not in k]
            if waiting == 0 and not tasks and not running:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"inbox {waiting}, tasks {tasks[:5]}, running {running[:5]}")
            time.sleep(0.3)
    finally:
        client.close()


async def jobs_of(deploy: Deployment, users: Iterable[int]) -> list[Job]:
    engine = create_engine(deploy.database_url)
    try:
        async with engine.connect() as connection:
            query = select(Job).where(Job.user_id.in_(list(users))).order_by(Job.created_at)
            return list((await connection.execute(query)).all())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def reacted(chats: Chats, user: int) -> list[Record]:
    """Reactions asked for: these updates come from the test's door, not from the stand-in,
    which so has no message to put them on (400) but records each ask (the webhook's answers
    run by the door included)."""
    return [r for r in chats.by_chat.get(user, []) if r["method"] == "setMessageReaction"]


async def assert_one_outcome_each(
    deploy: Deployment, chats: Chats, users: range, prompts: dict[int, int]
) -> None:
    """Every user got the picture (with at most one status message), or one refusal and no
    picture; every prompt got one 👀 from the webhook's answer; nobody got anything twice;
    and there is one job per update that was not refused."""
    failed = {u: chats.failures(u) for u in users if chats.failures(u)}
    assert not failed, f"{len(failed)} jobs failed, e.g. {list(failed.items())[:3]}"
    photos = {u: len(chats.sent(u, "sendPhoto")) for u in users}
    texts = {u: chats.texts(u) for u in users}
    twice = {u: (photos[u], texts[u]) for u in users if photos[u] > 1 or len(texts[u]) > 1}
    assert not twice, f"{len(twice)} users got something twice, e.g. {list(twice.items())[:3]}"
    refused = {u for u in users if photos[u] == 0}
    assert all(len(texts[u]) == 1 and not texts[u][0].startswith(STATUS_PREFIX) for u in refused)
    served = set(users) - refused
    jobs = await jobs_of(deploy, users)
    unseen = {u for u in users if len(reacted(chats, u)) != 1}
    assert not unseen, [
        (
            [(r["method"], r["status"], r["params"].get("text")) for r in chats.by_chat[u]],
            [(job.status, job.status_message_id) for job in jobs if job.user_id == u],
        )
        for u in sorted(unseen)[:3]
    ]
    assert Counter(job.user_id for job in jobs) == Counter(served)
    assert sorted(job.update_id for job in jobs) == sorted(prompts[u] for u in served)  # type: ignore[type-var]
    assert {job.status for job in jobs} <= {"delivered"}, Counter(job.status for job in jobs)


def prompt_burst(users: range) -> tuple[list[dict[str, Any]], dict[int, int]]:
    updates = [text_update(u, f"a lighthouse for user {u}") for u in users]
    return updates, {u: update_id(u) for u in users}


# ---------------------------------------------------------------------------------------------
# 1. The api killed in the middle of a burst


@pytest.mark.timeout(200)
async def test_a_burst_survives_the_api_killed_mid_burst(deployment: Deployment) -> None:
    """500 users send a prompt at once; the api is SIGKILLed after 150 are stored and started
    again. Telegram (the driver) posts again whatever got no 2xx. Nobody is lost, nobody gets
    anything twice, and the database holds one job per update."""
    deploy, stack = deployment, deployment.stack
    chats = Chats(deploy.telegram)
    updates, prompts = prompt_burst(API_KILL_USERS)

    async def kill_and_restart() -> None:
        stack.service("api").kill()
        await asyncio.to_thread(stack.restart, "api")

    async with telegram_webhook(deploy.telegram, within=120) as webhook:
        webhook.on_accept = trigger = Trigger(150, kill_and_restart)
        await burst(webhook, deploy.api_a_url, updates)
        assert trigger.task is not None
        await trigger.task

    # The kill landed mid-burst: posts were refused or cut off, and Telegram sent them again.
    failures = [s for tries in webhook.resent().values() for s in tries[:-1]]
    assert failures and all(s is None or s >= 500 for s in failures)
    assert len(webhook.attempts) == len(API_KILL_USERS)

    chats.wait_answered(API_KILL_USERS, 150)
    settle(deploy)
    chats.poll()
    await assert_one_outcome_each(deploy, chats, API_KILL_USERS, prompts)


# ---------------------------------------------------------------------------------------------
# 2. The consumer killed mid-handler


def arq_running(client: redis.Redis) -> list[bytes]:
    return [k for k in client.scan_iter("arq:in-progress:*") if b":cron" not in k]


def wait_quiet(deploy: Deployment, chats: Chats, quiet_for: float, timeout: float) -> None:
    """Until neither the Bot API has been called for `quiet_for` nor a submit/deliver task
    runs: then no send is in flight and every handler in hand is waiting, mid-handler."""
    client = deploy.redis.client()
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if chats.poll() or arq_running(client):
                last = time.monotonic()
            elif time.monotonic() - last >= quiet_for:
                return
            time.sleep(0.1)
        raise AssertionError(f"no quiet moment within {timeout}s")
    finally:
        client.close()


@pytest.mark.timeout(200)
async def test_a_burst_survives_the_worker_killed_mid_handler(deployment: Deployment) -> None:
    """200 users send a prompt at once; the worker (the inbox consumer and every queue) is
    SIGKILLed while it has handlers in hand, and started again.

    The kill must not land inside a Bot API call: a message Telegram took whose answer never
    came back cannot be known as sent by anyone, so that one would rightly go again. So the
    test makes a moment when nothing is on the wire: one 429 from Telegram pauses every
    sender (kadr's shared limiter), and once the stand-in has heard nothing for a while and
    no task runs, every handler in hand is waiting for its send, mid-handler, and the kill
    comes then (the updates begun and never acked are read from the inbox's try counts).
    Nobody is lost (an update leaves the inbox only after its handler), and nobody gets
    anything twice (an update whose handler finished is not handled again, and one handled
    again finds its job instead of making another)."""
    deploy, stack = deployment, deployment.stack
    chats = Chats(deploy.telegram)
    updates, prompts = prompt_burst(WORKER_KILL_USERS)
    async with telegram_webhook(deploy.telegram) as webhook:
        await burst(webhook, deploy.api_a_url, updates)

    chats.wait(
        lambda: sum(len(chats.sent(u, "sendMessage")) for u in WORKER_KILL_USERS) >= 30,
        60,
        "the first 30 status messages",
    )
    deploy.telegram.fault(method="sendMessage", status=429, retry_after=12, times=1)
    chats.wait(
        lambda: any(
            r["status"] == 429 for u in WORKER_KILL_USERS for r in chats.by_chat.get(u, [])
        ),
        20,
        "the 429",
    )
    wait_quiet(deploy, chats, quiet_for=1.0, timeout=9)

    stack.service("worker").kill()
    client = deploy.redis.client()
    try:
        in_hand = {int(uid) for uid in client.hkeys(TRIES)}  # begun and never acked
    finally:
        client.close()
    mid_handler = {u for u in WORKER_KILL_USERS if update_id(u) in in_hand}
    assert mid_handler, "the kill found no handler in hand"
    assert not all(chats.answered(u) for u in WORKER_KILL_USERS), "the burst was already over"
    stack.restart("worker")

    chats.wait_answered(WORKER_KILL_USERS, 120)
    settle(deploy)
    chats.poll()
    await assert_one_outcome_each(deploy, chats, WORKER_KILL_USERS, prompts)
    assert all(len(chats.sent(u, "sendPhoto")) == 1 for u in mid_handler)


# ---------------------------------------------------------------------------------------------
# 3. Two webhooks, one order per chat


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.timeout(120)
async def test_two_apis_keep_each_chats_order(deployment: Deployment) -> None:
    """Each chat's updates go alternately to webhook A and webhook B. Prompts "step 1".."step 5"
    become jobs in that order in every chat; and a photo without a caption, the press on ✏️
    and the instruction, sent one right after the other through both webhooks, make an edit of
    that photo (handled out of order, the instruction would be a text-to-image prompt, or the
    press would find no photo)."""
    deploy = deployment
    chats = Chats(deploy.telegram)
    webhooks = [deploy.api_a_url, deploy.api_b_url]
    steps = range(1, 6)

    async with telegram_webhook(deploy.telegram) as webhook:

        async def chat_sends(chat: int) -> None:
            for n in steps:
                await webhook.post(webhooks[n % 2], text_update(chat, f"step {n}", n))

        photo = await asyncio.to_thread(deploy.telegram.send_photo, PHOTO_USER, png())
        [delivery] = photo["deliveries"]
        assert delivery["status"] == 200
        # The bot's question will be the chat's second message, right after the photo.
        question_id = photo["update"]["message"]["message_id"] + 1
        edit = PhotoButton(choice=PhotoChoice.EDIT).pack()
        await webhook.post(deploy.api_b_url, button_update(PHOTO_USER, question_id, edit, 1))
        await webhook.post(deploy.api_a_url, text_update(PHOTO_USER, "add a rainbow", 2))
        await asyncio.gather(*(chat_sends(chat) for chat in ORDER_CHATS))

    def done() -> bool:
        return len(chats.sent(PHOTO_USER, "sendPhoto")) == 1 and all(
            len(chats.sent(chat, "sendPhoto")) == len(steps) for chat in ORDER_CHATS
        )

    chats.wait(done, 90, "every picture")
    settle(deploy)
    chats.poll()

    jobs = await jobs_of(deploy, [*ORDER_CHATS, PHOTO_USER])
    for chat in ORDER_CHATS:
        in_order = [job.prompt for job in jobs if job.chat_id == chat]
        assert in_order == [f"step {n}" for n in steps], (chat, in_order)
        # A 👀 on each prompt from the webhook's answer; at most a status message each (none
        # at a peak); no refusal.
        texts = chats.texts(chat)
        assert all(text.startswith(STATUS_PREFIX) for text in texts), texts
        assert len(texts) <= len(steps)
        assert len(reacted(chats, chat)) == len(steps)

    [edit_job] = [job for job in jobs if job.chat_id == PHOTO_USER]
    photo_file = photo["update"]["message"]["photo"][-1]["file_id"]
    assert (edit_job.mode, edit_job.prompt) == ("edit", "add a rainbow")
    assert edit_job.options.get("image_file_id") == photo_file
    assert edit_job.status == "delivered"
    texts = chats.texts(PHOTO_USER)
    assert texts[0] == "What shall I do with this photo?"
    assert texts[1].startswith("✏️ What should I change?")
    assert texts[2].startswith(STATUS_PREFIX)
    assert len(texts) == 3


# ---------------------------------------------------------------------------------------------
# 4. Redis stopped and started under a burst


@pytest.mark.timeout(120)
async def test_redis_down_means_503_and_nothing_is_lost(deployment: Deployment) -> None:
    """120 users send /start. Once 80 are stored and the first greetings are out, Redis stops
    for three seconds (the rest of those 80 wait in the inbox or in a handler's hand) while
    the other 40 arrive, and starts again. The webhook answers 503 while Redis is away, Telegram
    posts those updates again, and every user is greeted exactly once. (Redis keeps its data
    over the stop, as production's append-only Redis does; one that lost it would lose the
    updates it had said 200 for, and this test would say so.)"""
    deploy = deployment
    chats = Chats(deploy.telegram)
    updates = [text_update(u, "/start") for u in REDIS_USERS]
    first, rest = updates[:80], updates[80:]

    def greeted() -> set[int]:
        return {u for u in REDIS_USERS if chats.texts(u)}

    async with telegram_webhook(deploy.telegram) as webhook:
        await burst(webhook, deploy.api_a_url, first)
        chats.wait(lambda: len(greeted()) >= 5, 30, "the first greetings")
        deploy.redis.stop()
        chats.poll()
        waiting = set(REDIS_USERS[:80]) - greeted()
        down = asyncio.create_task(burst(webhook, deploy.api_a_url, rest))
        await asyncio.sleep(3.0)
        refused = [s for u in rest for s in webhook.attempts[u["update_id"]]]
        await asyncio.to_thread(deploy.redis.start)
        await down

    assert waiting, "every update was handled before Redis stopped"
    assert 503 in refused, f"while Redis was down the webhook answered {Counter(refused)}"
    assert all(s is None or s == 503 for s in refused)
    chats.wait(
        lambda: len(greeted()) == len(REDIS_USERS),
        60,
        "every user greeted",
        lambda: f"{len(REDIS_USERS) - len(greeted())} not greeted",
    )
    settle(deploy)
    chats.poll()
    greetings = {u: chats.texts(u) for u in REDIS_USERS}
    twice = {u: len(texts) for u, texts in greetings.items() if len(texts) != 1}
    assert not twice, f"greeted more than once: {twice}"
    assert all(texts[0].startswith("👋 Hi, Ann!") for texts in greetings.values())
