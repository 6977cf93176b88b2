"""The chaos step (issue 19): a one-machine deployment in which any process may crash.

One `kadr api` and one `kadr worker` (no --queue: every role) run on a private append-only
Redis and a private PostgreSQL cluster, with the Telegram and fal stand-ins. Prompts arrive
at a steady rate, each from a new user, and every `chaos_kill_every` seconds one of api,
worker, Redis or PostgreSQL is SIGKILLed and started again `chaos_down` seconds later, by a
plan drawn with a fixed seed that kills each kind equally often. Telegram posts an update
again after 1, 2, 4 … 32 s while it gets no 2xx; fal retries its webhooks.

Once nothing is left to happen (no live job, no failure notice owed, an empty inbox) or the
settle limit passes, an audit reads from outside kadr, the jobs and ledger tables and what
the Telegram stand-in recorded: did every prompt get exactly one result or one message
saying why, does every user's ledger balance, is any job still live, and how long after the
last kill the last result went out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
from redis import RedisError

from bench import analysis
from bench.analysis import Summary, Window
from bench.deploy import Deployment, deploy
from bench.driver import DOUBLING, Post, at_rate, open_loop
from bench.infra import PrivatePostgres, fetch
from bench.observe import RESULT_METHODS, Observation, TelegramCall, observe
from bench.stats import percentile
from bench.updates import Update, UpdateSource
from bench.workloads import Sizes, lognormal
from bot.job_messages import failure_text
from core.domain.catalog import catalog
from core.domain.models import Job
from core.jobs.errors import CODES
from sandbox.redis_server import PrivateRedis

KINDS = ("api", "worker", "redis", "postgres")
#: The one worker's process name; with "api", the names `Deployment.kill` knows.
WORKER = "worker"
#: fal retries a webhook that got no 2xx; the stand-in's default (three retries within
#: 3.5 s) is shorter than kadr api takes to start again, so here it retries as fal documents
#: it, ten times, from 1 s doubling (17 minutes in all).
FAL_RETRIES = {"webhook_retries": 10, "webhook_retry_delay": 1.0}
SETTLE_POLL = 1.0
#: The settle condition must hold this long: a delivery's database move comes a moment
#: after its send, and a status message's removal after that.
SETTLED_FOR = 3.0
#: The methods a failure notice goes out by (`Sender.send_text`): an edit of the job's
#: status message, or a new message when that cannot be edited.
NOTICE_METHODS = frozenset({"sendMessage", "editMessageText"})


@dataclass(frozen=True)
class Strike:
    at: float
    """Seconds after the first prompt."""
    kind: str


def plan(sizes: Sizes) -> list[Strike]:
    """One kill every `chaos_kill_every` seconds of the load; the kinds in equal shares (as
    near as the count allows), shuffled with a fixed seed so every run kills alike."""
    count = int(sizes.chaos_seconds // sizes.chaos_kill_every)
    kinds = [KINDS[index % len(KINDS)] for index in range(count)]
    random.Random(sizes.chaos_seed).shuffle(kinds)
    return [Strike(sizes.chaos_kill_every * (i + 1), kind) for i, kind in enumerate(kinds)]


def describe_plan(strikes: Sequence[Strike]) -> str:
    return ", ".join(f"{strike.at:g} s {strike.kind}" for strike in strikes)


@dataclass(frozen=True)
class Kill:
    kind: str
    at: float
    """Epoch seconds of the SIGKILL."""
    back: float
    """Epoch seconds when it was started again and answering (the worker: started)."""


def _kill_redis(redis: PrivateRedis) -> None:
    """SIGKILL redis-server and any child it forked (an append-only rewrite), as a kill of its
    process group would: it shares the benchmark's own group, which must live on."""
    process = redis.process
    if process is None:
        return
    children: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        children = psutil.Process(process.pid).children(recursive=True)
    process.kill()
    process.wait()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


@dataclass
class Chaos:
    deployment: Deployment
    postgres: PrivatePostgres

    def kill(self, kind: str) -> None:
        if kind == "redis":
            _kill_redis(self.deployment.redis)
        elif kind == "postgres":
            self.postgres.kill()
        else:
            self.deployment.kill(kind)

    def start(self, kind: str) -> None:
        if kind == "redis":
            self.deployment.redis.start()
        elif kind == "postgres":
            self.postgres.start()
        else:
            self.deployment.restart(kind)

    def strike(self, kind: str, down: float) -> Kill:
        at = time.time()
        self.kill(kind)
        time.sleep(down)
        self.start(kind)
        return Kill(kind, at, time.time())


async def _strike_all(chaos: Chaos, strikes: Sequence[Strike], down: float) -> list[Kill]:
    """Each kill at its time, or as soon as the one before is back (an api that takes
    longer than the interval to start delays the next kill)."""
    began, start, kills = time.monotonic(), time.time(), []
    for strike in strikes:
        await asyncio.sleep(max(0.0, began + strike.at - time.monotonic()))
        kill = await asyncio.to_thread(chaos.strike, strike.kind, down)
        print(f"  {told(kill, start)}", flush=True)
        kills.append(kill)
    return kills


def told(kill: Kill, start: float) -> str:
    return f"{kill.at - start:.0f} s: {kill.kind} SIGKILLed, back {kill.back - kill.at:.1f} s later"


async def _load(
    chaos: Chaos, updates: Sequence[Update], sizes: Sizes, strikes: Sequence[Strike]
) -> tuple[list[Post], list[Kill]]:
    """The prompts at their steady rate, redelivered as Telegram does, while the plan's
    kills strike (in a thread: a restart blocks until the process answers)."""
    striking = asyncio.create_task(_strike_all(chaos, strikes, sizes.chaos_down))
    url = f"{chaos.deployment.api_url}/webhooks/telegram"
    schedule = at_rate(updates, sizes.chaos_rate)
    chaos.deployment.file_messages(update.body for update in updates)
    replies_to = chaos.deployment.bot_api_url
    posts = await open_loop(url, schedule, pauses=DOUBLING, replies_to=replies_to)
    return posts, await striking


_UNSETTLED_SQL = """
SELECT count(*) FROM jobs
WHERE status IN ('queued', 'submitted', 'completed') OR (status = 'failed' AND notified_at IS NULL)
"""


async def _unsettled(url: str) -> int:
    """Jobs that may still send something: live ones, and failed ones whose user has not
    been told yet."""
    return int((await fetch(url, _UNSETTLED_SQL))[0][0])


def _settled(deployment: Deployment) -> bool:
    """Nothing left to happen; a server that does not answer (it may still be recovering)
    counts as not settled."""
    try:
        return (
            asyncio.run(_unsettled(deployment.stack.database_url)) == 0
            and deployment.inbox_depth() == 0
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RedisError):
        return False


def settle(deployment: Deployment, until: float) -> float:
    """Wait until nothing is left to happen, or the epoch moment `until`; the seconds waited."""
    started = time.monotonic()
    quiet_since: float | None = None
    while time.time() < until:
        if not _settled(deployment):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= SETTLED_FOR:
            break
        time.sleep(SETTLE_POLL)
    return time.monotonic() - started


# --- the audit ------------------------------------------------------------------------------


_LEDGER_SQL = """
SELECT j.user_id, j.status, j.error,
       COALESCE(-(r.free + r.paid), 0) AS reserved, COALESCE(f.free + f.paid, 0) AS refunded
FROM jobs j
LEFT JOIN ledger r ON r.reason = 'reserve' AND r.ref = j.id
LEFT JOIN ledger f ON f.reason = 'refund' AND f.ref = j.id
UNION ALL
SELECT l.user_id, 'no job', NULL,
       CASE WHEN l.reason = 'reserve' THEN -(l.free + l.paid) ELSE 0 END,
       CASE WHEN l.reason = 'refund' THEN l.free + l.paid ELSE 0 END
FROM ledger l
WHERE l.reason IN ('reserve', 'refund') AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.ref)
"""


@dataclass(frozen=True)
class Entry:
    """A job and what the ledger holds for it (or a reservation or refund with no job)."""

    user_id: int
    status: str
    error: str | None
    reserved: int
    refunded: int

    @property
    def charged(self) -> int:
        """What the job cost its user: a delivered job's credits (a live job's are held, a
        failed or cancelled one's given back)."""
        return self.reserved - self.refunded if self.status == "delivered" else 0

    @property
    def settled(self) -> bool:
        """A delivered job keeps its reservation whole; a failed or cancelled one gave it all
        back; a live job or a movement with no job is not settled."""
        if self.status == "delivered":
            return self.refunded == 0
        return self.status in ("failed", "cancelled") and self.refunded == self.reserved


async def _read_ledger(url: str) -> list[Entry]:
    return [Entry(**dict(row)) for row in await fetch(url, _LEDGER_SQL)]


def failure_texts() -> frozenset[str]:
    """Every text a job's failure notice can have, in English (the users' language), as the
    worker builds it (`bot.job_messages.failure_text`)."""
    return frozenset(
        failure_text(Job(mode=mode, language="en", error=code))
        for mode in catalog().modes
        for code in CODES
    )


@dataclass
class Chat:
    """What one user's chat received."""

    results: int = 0
    notices: int = 0
    first_result: float = math.inf


def chats(calls: Sequence[TelegramCall]) -> dict[int, Chat]:
    """Results and failure notices per chat, from the sends Telegram accepted."""
    texts = failure_texts()
    found: dict[int, Chat] = {}
    for call in calls:
        if call.status != 200 or call.chat_id is None:
            continue
        chat = found.setdefault(call.chat_id, Chat())
        if call.method in RESULT_METHODS:
            chat.results += 1
            chat.first_result = min(chat.first_result, call.t)
        elif call.method in NOTICE_METHODS and call.text in texts:
            chat.notices += 1
    return found


#: The outcomes that are right answers to a prompt.
RIGHT = frozenset({"result", "notice"})


def outcome(chat: Chat) -> str:
    """What a user's one prompt came to. One result, or one notice saying why, is the only
    right answer; "lost" is neither, "duplicated" the result twice or more."""
    if chat.results + chat.notices == 0:
        return "lost"
    if chat.results >= 2:
        return "duplicated"
    if chat.results + chat.notices >= 2:
        return "told twice"
    return "result" if chat.results else "notice"


def outcomes(updates: Sequence[Update], found: dict[int, Chat]) -> dict[int, str]:
    """User → the outcome of their prompt."""
    return {update.user_id: outcome(found.get(update.user_id, Chat())) for update in updates}


def outcome_values(
    updates: Sequence[Update], outcome_of: dict[int, str]
) -> dict[str, analysis.Value]:
    counts = Counter(outcome_of.values())
    return {
        "prompts (one per user)": len(updates),
        "users with one result": counts["result"],
        "users told why, no result": counts["notice"],
        "deliveries lost": counts["lost"],
        "deliveries duplicated": counts["duplicated"],
        "users told twice otherwise (result and notice, or two notices)": counts["told twice"],
    }


def lost_values(
    outcome_of: dict[int, str], entries: Sequence[Entry], in_inbox: set[int]
) -> dict[str, analysis.Value]:
    """Where each lost prompt stopped: its update still in the inbox, its job in some state
    (live, or ended with nothing reaching the chat), or nothing kept at all."""
    status = {entry.user_id: entry.status for entry in entries if entry.status != "no job"}
    where: Counter[str] = Counter()
    for user, came_to in outcome_of.items():
        if came_to != "lost":
            continue
        if user in in_inbox:
            where["update still in the inbox"] += 1
        else:
            where[f"job {status[user]}" if user in status else "no job, update gone"] += 1
    return {f"lost: {place}": n for place, n in sorted(where.items())}


def ledger_values(entries: Sequence[Entry], found: dict[int, Chat]) -> dict[str, analysis.Value]:
    """Per user: credits reserved = charged + refunded (every job settled), and a charge
    only where a result reached the chat."""
    unsettled: set[int] = set()
    charged: dict[int, int] = Counter()
    for entry in entries:
        if not entry.settled:
            unsettled.add(entry.user_id)
        charged[entry.user_id] += entry.charged
    without_result = {
        user for user, credits in charged.items() if credits and not found.get(user, Chat()).results
    }
    failed = Counter(entry.error or "?" for entry in entries if entry.status == "failed")
    return {
        "users with a ledger": len(charged),
        "ledgers unbalanced": len(unsettled | without_result),
        "of which charged with no result sent": len(without_result),
        "jobs live at the end": sum(
            1 for e in entries if e.status in ("queued", "submitted", "completed")
        ),
        **{f"jobs failed: {error}": n for error, n in sorted(failed.items())},
    }


def timing_values(
    posts: Sequence[Post], kills: Sequence[Kill], found: dict[int, Chat]
) -> dict[str, analysis.Value]:
    due = {post.update.user_id: post.due for post in posts}
    end_to_end = [
        chat.first_result - due[user]
        for user, chat in found.items()
        if user in due and chat.results
    ]
    last_delivery = max((chat.first_result for chat in found.values() if chat.results), default=0)
    last_kill = max((kill.at for kill in kills), default=math.nan)
    return {
        "kills": ", ".join(f"{kind}×{n}" for kind, n in Counter(k.kind for k in kills).items()),
        "longest restart s": max((kill.back - kill.at for kill in kills), default=math.nan),
        "last kill → last delivery s": last_delivery - last_kill if last_delivery else math.nan,
        "end to end p50 s": percentile(end_to_end, 50),
        "end to end p99 s": percentile(end_to_end, 99),
        "end to end max s": max(end_to_end, default=math.nan),
    }


def _unanswered(updates: Sequence[Update], posts: Sequence[Post]) -> int:
    """Updates Telegram would have given up on: no 2xx after every redelivery."""
    answered = {p.update.update_id for p in posts if p.status is not None and p.status < 300}
    return sum(1 for update in updates if update.update_id not in answered)


# --- the step -------------------------------------------------------------------------------


def run(sizes: Sizes, workdir: Path, env: dict[str, str]) -> Summary:
    """The chaos step on a deployment of its own (stopped, and its cluster deleted, after)."""
    strikes = plan(sizes)
    print(f"  plan: {describe_plan(strikes)}", flush=True)
    postgres = PrivatePostgres().init().start()
    try:
        deployment = deploy(
            workdir,
            workers={WORKER: ()},
            env=env,
            pg_admin_url=postgres.admin_url,
            baseline=False,
        )
        try:
            return measure(Chaos(deployment, postgres), sizes, strikes)
        finally:
            deployment.stop()
    finally:
        postgres.remove()


def _description(sizes: Sizes, strikes: Sequence[Strike], users: int) -> str:
    return (
        f"{users} users, one prompt each at {sizes.chaos_rate:g}/s for {sizes.chaos_seconds:g} s, "
        f"fal lognormal median {sizes.chaos_latency:g} s; one `kadr api`, one `kadr worker`, "
        f"PostgreSQL and append-only Redis; every {sizes.chaos_kill_every:g} s one of them "
        f"SIGKILLed and started again {sizes.chaos_down:g} s later ({describe_plan(strikes)}); "
        "Telegram redelivers after 1, 2, 4 … 32 s, fal retries webhooks 10 times from 1 s; "
        f"audit once settled, at most {sizes.chaos_settle:g} s after the last prompt"
    )


#: Every prompt that did not come to one answer, with its job rows and its chat's calls.
CASES = "cases.json"


def write_cases(
    path: Path, outcome_of: dict[int, str], observation: Observation, in_inbox: set[int]
) -> None:
    """A FAIL is worth a look at each case: what the jobs table and Telegram hold for every
    user whose prompt was lost or answered more than once, beside the processes' logs."""
    wrong = {user: came_to for user, came_to in outcome_of.items() if came_to not in RIGHT}
    jobs: dict[int, list[dict[str, object]]] = defaultdict(list)
    for job in observation.jobs:
        if job.user_id in wrong:
            jobs[job.user_id].append(dataclasses.asdict(job))
    calls: dict[int, list[dict[str, object]]] = defaultdict(list)
    for call in observation.telegram:
        if call.chat_id in wrong:
            calls[call.chat_id].append(dataclasses.asdict(call))
    cases = [
        {
            "user": user,
            "outcome": came_to,
            "update in the inbox": user in in_inbox,
            "jobs": jobs[user],
            "telegram": calls[user],
        }
        for user, came_to in sorted(wrong.items())
    ]
    path.write_text(json.dumps(cases, indent=1))


def audit(
    deployment: Deployment, updates: Sequence[Update], posts: Sequence[Post], kills: Sequence[Kill]
) -> tuple[dict[str, analysis.Value], Observation]:
    """Everything read from outside once the wait is over: the inbox, the jobs and ledger
    tables, the chats. In that order, for when the wait ran out with work still moving: an
    update leaves the inbox only once its job row is written, and a job is marked delivered
    only once Telegram took its result, so nothing falls between two reads."""
    inbox = deployment.inbox_update_ids()
    entries = asyncio.run(_read_ledger(deployment.stack.database_url))
    observation = observe(deployment)
    found = chats(observation.telegram)
    outcome_of = outcomes(updates, found)
    in_inbox = {update.user_id for update in updates if update.update_id in inbox}
    write_cases(deployment.workdir / CASES, outcome_of, observation, in_inbox)
    values = {
        **outcome_values(updates, outcome_of),
        **lost_values(outcome_of, entries, in_inbox),
        **ledger_values(entries, found),
        **timing_values(posts, kills, found),
        **analysis.latency_values(posts),
        "updates never answered 2xx": _unanswered(updates, posts),
        "inbox dead letters": deployment.dead_letters(),
    }
    return values, observation


def measure(chaos: Chaos, sizes: Sizes, strikes: Sequence[Strike]) -> Summary:
    deployment = chaos.deployment
    with contextlib.closing(deployment.fal()) as fal:
        fal.configure(**lognormal(sizes.chaos_latency), **FAL_RETRIES)
    users = int(sizes.chaos_rate * sizes.chaos_seconds)
    updates = UpdateSource(users).prompts(users)
    start, cpu_before = time.time(), deployment.cpu_now()
    psutil.cpu_percent()  # from here: the next call answers for the load's span
    posts, kills = asyncio.run(_load(chaos, updates, sizes, strikes))
    busy, load_average = psutil.cpu_percent(), os.getloadavg()[0]
    waited = settle(deployment, start + sizes.chaos_seconds + sizes.chaos_settle)
    window = Window(start, time.time(), cpu_before, deployment.cpu_now())
    summary = Summary("chaos", _description(sizes, strikes, users))
    values, observation = audit(deployment, updates, posts, kills)
    summary.values.update(values)
    summary.values["settle wait s"] = waited
    summary.values.update(analysis.method_counts(observation))
    jobs = len(observation.jobs)
    summary.values.update(
        analysis.resource_values(deployment.usage, window, jobs, [WORKER], [WORKER])
    )
    # Other work on the machine slows kadr down as much as a kill does: say how busy it was.
    summary.values["machine CPU busy % while prompts arrived"] = busy
    summary.values["load avg 1 min at the last prompt"] = load_average
    summary.notes.extend(told(kill, start) for kill in kills)
    restarted = [name for _, name in deployment.restarts]
    if restarted:
        summary.notes.append(f"exited on their own, restarted: {', '.join(restarted)}")
    summary.notes.append(f"logs, and {CASES} (every wrong answer): {deployment.workdir}")
    summary.series = analysis.series(posts, observation, deployment.usage, window, [WORKER])
    return summary
