"""The workloads, each a bounded load against one running deployment, measured end to end.

Each starts from a clean slate (stand-ins reset, tables and Redis emptied), posts its updates,
waits until every job has ended (or a time bound passes), then reads what happened.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import RedisError

from bench import analysis
from bench.analysis import Summary, Window
from bench.deploy import Deployment
from bench.driver import Post, at_rate, closed_loop, open_loop
from bench.infra import fetch
from bench.observe import clear_tables, observe, scrape, summed
from bench.updates import Kind, Update, UpdateSource
from sandbox.control import FalSandbox, wait_until

#: Telegram's limit and kadr's default pace under it (TELEGRAM_SENDS_PER_SECOND).
TELEGRAM_LIMIT = 30.0
CONFIGURED_RATE = 29.0
POLL_EVERY = 1.0


#: Updates per second of a closed loop's length prepared for it: more than any loop here
#: posts (the bare endpoint ~12,000/s on a quiet machine). A loop that runs out measures its
#: start-up, not its pace: at 2,000/s each, the bare loop ran out within half a second.
CLOSED_LOOP_CEILING = 15_000


@dataclass(frozen=True)
class Sizes:
    """Every size and time bound of a run; the defaults are the full run's."""

    idle_seconds: float = 10.0
    probe_jobs: int = 40
    probe_rate: float = 2.0
    probe_latency: float = 2.0
    ingest_rate: float = 500.0
    ingest_seconds: float = 10.0
    ingest_steps: tuple[float, ...] = (100.0, 200.0, 300.0, 400.0)
    """Lower rates tried first, to find where the webhook's p99 leaves the target."""
    closed_seconds: float = 10.0
    closed_concurrency: int = 64
    burst_users: int = 1000
    burst_seconds: float = 10.0
    burst_latency: float = 4.0
    sustained_rate: float = 200.0
    sustained_seconds: float = 60.0
    sustained_users: int = 5000
    inflight_jobs: int = 10_000
    inflight_rate: float = 200.0
    inflight_latency: float = 420.0
    """Long enough that every W3 job is at fal before the first comes back, and short of the
    catalog's 10 minutes after which the sweeper would ask fal about a video."""
    inflight_drain_limit: float = 1800.0
    held_results: int = 900
    """W4: jobs fal finishes while their webhooks are held, then sends all at once."""
    held_prompts: int = 300
    """W4: new prompts posted while those results wait."""
    peak_users: int = 2500
    peak_seconds: float = 5.0
    """W5: that many users, one prompt each within this many seconds (500 updates/s)."""
    fault_users: int = 1000
    drain_limit: float = 900.0
    quiet_after: float = 20.0
    """Stop waiting when nothing moved for this long and no job is live."""
    chaos_rate: float = 20.0
    """Chaos: prompts per second, each from a new user."""
    chaos_seconds: float = 180.0
    chaos_kill_every: float = 15.0
    """Chaos: a kill every this many seconds of the load (the first after one interval)."""
    chaos_down: float = 1.0
    """Chaos: seconds between a kill and the start of the new process."""
    chaos_settle: float = 300.0
    """Chaos: the longest wait, after the last prompt, for nothing to be left to happen."""
    chaos_latency: float = 4.0
    chaos_seed: int = 19


QUICK = Sizes(
    idle_seconds=2.0,
    probe_jobs=8,
    probe_rate=4.0,
    probe_latency=1.5,
    ingest_rate=500.0,
    ingest_seconds=0.5,
    ingest_steps=(200.0,),
    closed_seconds=1.0,
    closed_concurrency=32,
    burst_users=80,
    burst_seconds=2.0,
    burst_latency=2.0,
    sustained_rate=100.0,
    sustained_seconds=2.0,
    sustained_users=200,
    inflight_jobs=200,
    inflight_rate=200.0,
    inflight_latency=5.0,
    inflight_drain_limit=45.0,
    held_results=120,
    held_prompts=40,
    peak_users=300,
    peak_seconds=1.0,
    fault_users=80,
    drain_limit=45.0,
    quiet_after=5.0,
    chaos_rate=10.0,
    chaos_seconds=60.0,
    chaos_settle=60.0,
    chaos_latency=2.0,
)


@dataclass
class Context:
    deployment: Deployment
    sizes: Sizes
    summaries: list[Summary] = field(default_factory=list)
    _next_update: int = 1

    def source(self, users: int) -> UpdateSource:
        """Fresh update ids across the whole run, so dedup never links two workloads."""
        source = UpdateSource(users, first_update=self._next_update)
        self._next_update += 10_000_000
        return source

    @property
    def webhook_url(self) -> str:
        return f"{self.deployment.api_url}/webhooks/telegram"


# --- shared steps ---------------------------------------------------------------------------


def clean_slate(context: Context, **fal_config: Any) -> None:
    deployment = context.deployment
    with contextlib.closing(deployment.telegram()) as telegram:
        telegram.reset()
    with contextlib.closing(deployment.fal()) as fal:
        fal.reset()
        if fal_config:
            fal.configure(**fal_config)
    clear_tables(deployment.stack.database_url)
    deployment.redis.client().flushdb()


async def _job_counts(url: str) -> tuple[int, int]:
    [row] = await fetch(
        url,
        "SELECT count(*) AS total, count(*) FILTER (WHERE status IN "
        "('queued', 'submitted', 'completed')) AS live FROM jobs",
    )
    return int(row["total"]), int(row["live"])


def wait_for_jobs(context: Context, expected: int, limit: float | None = None) -> float:
    """Until `expected` jobs exist and none is live, or nothing moved for a while with none
    live and no update waiting in the inbox, or the limit; returns the seconds waited."""
    started = time.monotonic()
    deadline = started + (limit if limit is not None else context.sizes.drain_limit)
    last, moved = (-1, -1), time.monotonic()
    url = context.deployment.stack.database_url
    while time.monotonic() < deadline:
        total, live = asyncio.run(_job_counts(url))
        if total >= expected and live == 0:
            break
        if (total, live) != last:
            last, moved = (total, live), time.monotonic()
        elif (
            live == 0
            and time.monotonic() - moved > context.sizes.quiet_after
            and _depth(context) == 0
        ):
            break
        time.sleep(POLL_EVERY)
    return time.monotonic() - started


@dataclass(frozen=True)
class Drain:
    """The update inbox after a load: how many updates its handlers still owed when the last
    post was answered, the most seen waiting, and how long they took to catch up."""

    backlog: int
    peak: int
    seconds: float

    @property
    def rate(self) -> float:
        """Updates handled per second while the backlog drained (no new posts meanwhile)."""
        return self.backlog / self.seconds if self.backlog and self.seconds > 0 else math.nan

    def values(self, prefix: str) -> dict[str, analysis.Value]:
        return {
            f"{prefix}inbox backlog at last answer": self.backlog,
            f"{prefix}inbox peak": self.peak,
            f"{prefix}handlers caught up after s": self.seconds,
            f"{prefix}backlog drained updates/s": self.rate,
        }


def _depth(context: Context) -> int:
    with contextlib.suppress(RedisError):
        return context.deployment.inbox_depth()
    return -1


def wait_for_handlers(context: Context, limit: float) -> Drain:
    """The webhook answers once an update is stored; the workers' consumers handle it later.
    This waits until the inbox is empty (an update leaves it when its handler finished)."""
    started = time.monotonic()
    backlog = peak = depth = _depth(context)
    while time.monotonic() - started < limit and depth != 0:
        time.sleep(0.2)
        depth = _depth(context)
        peak = max(peak, depth)
    return Drain(backlog, peak, time.monotonic() - started)


def _webhook(context: Context) -> dict[str, float]:
    """The api's webhook counters (type "any"): accepted, duplicate, unavailable, rejected."""
    metrics = scrape(f"{context.deployment.api_url}/metrics")
    return {
        outcome: summed(metrics, "kadr_telegram_updates_total", type="any", outcome=outcome)
        for outcome in ("accepted", "duplicate", "unavailable")
    }


def _webhook_values(before: dict[str, float], after: dict[str, float]) -> dict[str, analysis.Value]:
    return {
        f"webhook {outcome}": int(after.get(outcome, 0.0) - before.get(outcome, 0.0))
        for outcome in ("accepted", "duplicate", "unavailable")
    }


HANDLER_OUTCOMES = ("handled", "redelivered", "dead_lettered")


def _handlers(context: Context) -> dict[str, dict[str, float]]:
    """Each worker's consumer counters (all update types): handled at the first try, handled
    at a later one (the update was run again), dead-lettered."""
    counts = {}
    for url in context.deployment.worker_metrics_urls():
        metrics = scrape(url)
        counts[url] = {
            outcome: summed(metrics, "kadr_telegram_updates_total", outcome=outcome)
            for outcome in HANDLER_OUTCOMES
        }
    return counts


def _handler_values(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, analysis.Value]:
    """Per worker, what its counters grew by; a worker restarted meanwhile (SIGKILL) starts
    from zero, so what its killed process counted is missing."""
    totals = dict.fromkeys(HANDLER_OUTCOMES, 0.0)
    for url, counts in after.items():
        for outcome, value in counts.items():
            was = before.get(url, {}).get(outcome, 0.0)
            totals[outcome] += value - was if value >= was else value
    return {f"updates {outcome} (workers)": int(n) for outcome, n in totals.items()}


def measure(
    context: Context,
    name: str,
    description: str,
    load: Callable[[], Sequence[Post]],
    *,
    jobs_expected: Callable[[Sequence[Post]], int] | None = None,
    drain_limit: float | None = None,
) -> Summary:
    """Run `load`, wait for its jobs to end, and summarise everything seen meanwhile."""
    deployment = context.deployment
    start, cpu_before = time.time(), deployment.cpu_now()
    webhook_before, handlers_before = _webhook(context), _handlers(context)
    posts = load()
    answered = time.time()
    backlog = _depth(context)
    expected = (jobs_expected or _distinct_jobs)(posts)
    waited = wait_for_jobs(context, expected, drain_limit)
    window = Window(start, time.time(), cpu_before, deployment.cpu_now())
    observation = observe(deployment)
    trace = analysis.trace(posts, observation)
    summary = Summary(name, description)
    summary.values.update(analysis.latency_values(posts))
    in_inbox = deployment.inbox_update_ids()
    waiting = {
        key
        for post in posts
        if post.update.update_id in in_inbox and (key := post.update.job_key) is not None
    }
    summary.values.update(analysis.delivery_values(trace, waiting))
    summary.values.update(analysis.stage_values(trace))
    summary.values.update(analysis.first_sign_values(trace, observation))
    summary.values.update(analysis.peak_at_fal(observation.jobs))
    summary.values.update(analysis.telegram_values(observation, trace, CONFIGURED_RATE))
    summary.values.update(analysis.fal_values(observation))
    summary.values.update(analysis.method_counts(observation))
    workers = list(deployment.workers)
    summary.values.update(
        analysis.resource_values(
            deployment.usage, window, len(observation.jobs), workers, deployment.consumers
        )
    )
    summary.values.update(_webhook_values(webhook_before, _webhook(context)))
    summary.values.update(_handler_values(handlers_before, _handlers(context)))
    summary.values["inbox backlog at last answer"] = backlog
    summary.values["inbox drained after last answer s"] = _drained_after(deployment, answered)
    summary.values["inbox dead letters"] = deployment.dead_letters()
    restarted = [w for t, w in deployment.restarts if window.start <= t <= window.end]
    if restarted:
        summary.notes.append(
            f"exited on their own, restarted by the supervisor: {', '.join(restarted)}"
        )
    summary.values["drain wait s"] = waited
    summary.values["load avg 1 min"] = os.getloadavg()[0]
    summary.series = analysis.series(posts, observation, deployment.usage, window, workers)
    context.summaries.append(summary)
    return summary


def _drained_after(deployment: Deployment, answered: float) -> float:
    """Seconds from the last answer to the first sample of an empty inbox."""
    empty = [s.t for s in deployment.usage.samples if s.t >= answered and s.inbox == 0]
    return min(empty) - answered if empty else math.nan


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _distinct_jobs(posts: Sequence[Post]) -> int:
    return len({p.update.job_key for p in posts if p.update.job_key is not None})


def _post(context: Context, schedule: list[tuple[float, Update]]) -> list[Post]:
    context.deployment.file_messages(update.body for _, update in schedule)
    return asyncio.run(
        open_loop(context.webhook_url, schedule, replies_to=context.deployment.bot_api_url)
    )


def uniform_burst(
    updates: Sequence[Update], seconds: float, seed: int = 1
) -> list[tuple[float, Update]]:
    """Each update at a random moment within `seconds`, as independent users would."""
    rng = random.Random(seed)
    return sorted(((rng.uniform(0, seconds), u) for u in updates), key=lambda item: item[0])


def lognormal(median: float, sigma: float = 0.5) -> dict[str, Any]:
    return {"latency": {"default": median}, "distribution": "lognormal", "sigma": sigma}


# --- the workloads --------------------------------------------------------------------------


def idle(context: Context) -> Summary:
    """Nothing to do: what each process costs just by running (arq polls Redis, sweeps, the
    consumers look for inbox partitions with updates)."""
    sizes, deployment = context.sizes, context.deployment
    clean_slate(context)
    start, before = time.time(), deployment.cpu_now()
    time.sleep(sizes.idle_seconds)
    after = deployment.cpu_now()
    summary = Summary("idle", f"no load for {sizes.idle_seconds:g} s")
    for name in ["api", *deployment.workers]:
        used = after.get(name, 0.0) - before.get(name, 0.0)
        summary.values[f"idle CPU % {name}"] = 100 * used / sizes.idle_seconds
    rss = {name: deployment.usage.peak_rss(name, start) for name in ["api", *deployment.workers]}
    for name, used in rss.items():
        summary.values[f"idle RSS {name} MB"] = used / analysis.MB
    summary.values["idle RSS max per kadr process MB"] = max(rss.values()) / analysis.MB
    summary.values["idle RSS baseline endpoint MB"] = (
        deployment.usage.peak_rss("baseline", start) / analysis.MB
    )
    context.summaries.append(summary)
    return summary


def probe(context: Context) -> Summary:
    """A trickle well under every limit: what kadr itself adds when nothing waits."""
    sizes = context.sizes
    clean_slate(context, latency={"default": sizes.probe_latency}, distribution="fixed")
    updates = context.source(sizes.probe_jobs).prompts(sizes.probe_jobs)
    return measure(
        context,
        "W0 probe",
        f"{sizes.probe_jobs} prompts at {sizes.probe_rate:g}/s, "
        f"fal {sizes.probe_latency:g} s fixed",
        lambda: _post(context, at_rate(updates, sizes.probe_rate)),
    )


def burst(context: Context, name: str = "W1 burst", faults: Sequence[Fault] = ()) -> Summary:
    """W1: distinct users each send one prompt within a few seconds; fal lognormal."""
    sizes = context.sizes
    users = sizes.fault_users if faults else sizes.burst_users
    clean_slate(context, **lognormal(sizes.burst_latency))
    updates = context.source(users).prompts(users)
    schedule = uniform_burst(updates, sizes.burst_seconds)
    description = (
        f"{users} users, one prompt each within {sizes.burst_seconds:g} s, "
        f"fal lognormal median {sizes.burst_latency:g} s"
    )
    if faults:
        description += "; " + ", ".join(f.describe() for f in faults)

    def load() -> list[Post]:
        return asyncio.run(_with_faults(context, schedule, faults))

    summary = measure(context, name, description, load)
    for fault in faults:
        summary.notes.extend(fault.notes)
    return summary


def peak(context: Context) -> Summary:
    """W5: a peak on the smallest deployment (one `kadr api`, one `kadr worker`) with
    Telegram's limits enforced by the stand-in: distinct users each send one prompt within a
    few seconds. Every result costs one of the bot's ~30 sends a second, so how fast the
    pictures leave and how long each user waits for a first sign are what it measures."""
    sizes = context.sizes
    clean_slate(context, **lognormal(sizes.burst_latency))
    updates = context.source(sizes.peak_users).prompts(sizes.peak_users)
    schedule = uniform_burst(updates, sizes.peak_seconds)
    return measure(
        context,
        "W5 peak",
        f"{sizes.peak_users} users, one prompt each within {sizes.peak_seconds:g} s, fal "
        f"lognormal median {sizes.burst_latency:g} s; one api, one worker, Telegram's limits "
        "enforced",
        lambda: _post(context, schedule),
    )


def sustained(context: Context) -> Summary:
    """W2: a steady mixed stream: prompts, commands, noise and Telegram's redeliveries."""
    sizes = context.sizes
    clean_slate(context, **lognormal(sizes.burst_latency))
    count = int(sizes.sustained_rate * sizes.sustained_seconds)
    updates = list(context.source(sizes.sustained_users).mixed(count))
    return measure(
        context,
        "W2 sustained",
        f"{sizes.sustained_rate:g} updates/s for {sizes.sustained_seconds:g} s from "
        f"{sizes.sustained_users} users, mixed kinds",
        lambda: _post(context, at_rate(updates, sizes.sustained_rate)),
    )


def in_flight(context: Context) -> Summary:
    """W3: many /video jobs at fal at once, each for minutes."""
    sizes = context.sizes
    clean_slate(context, **lognormal(sizes.inflight_latency, sigma=0.1))
    updates = context.source(sizes.inflight_jobs).prompts(sizes.inflight_jobs, Kind.VIDEO)
    return measure(
        context,
        "W3 in flight",
        f"{sizes.inflight_jobs} /video prompts at {sizes.inflight_rate:g}/s, fal lognormal "
        f"median {sizes.inflight_latency:g} s (σ 0.1)",
        lambda: _post(context, at_rate(updates, sizes.inflight_rate)),
        drain_limit=sizes.inflight_drain_limit,
    )


def held_results(context: Context, name: str = "W4 held results", stars: float = 0) -> Summary:
    """W4: results waiting for Telegram while new prompts keep coming. fal finishes a first
    wave of jobs but holds their webhooks (as after an outage on its side), then sends them
    all within a second or two while a second wave of users writes: the results should leave
    at the limiter's pace, the new users' status messages after them."""
    sizes = context.sizes
    clean_slate(context, latency={"default": 0.5}, webhook_drop=True)
    if stars:  # the bot's Stars balance at the stand-in, for paid broadcasts
        with contextlib.closing(context.deployment.telegram()) as telegram:
            telegram.stars(balance=stars)
    source = context.source(sizes.held_results + sizes.held_prompts)
    first = source.prompts(sizes.held_results)
    later = source.prompts(sizes.held_prompts)

    def load() -> list[Post]:
        posts = _post(context, at_rate(first, 100.0))
        wait_for_handlers(context, sizes.drain_limit)
        with contextlib.closing(context.deployment.fal()) as fal:
            submits = wait_until(lambda: fal.requests("submit"), len(first), sizes.drain_limit)
            time.sleep(1.0)  # the last ones finish at fal (0.5 s) and their webhooks drop
            request_ids = [submit["request_id"] for submit in submits]
            _each(request_ids, lambda request_id: _render(fal, request_id))
            fal.configure(webhook_drop=False)
        resend = threading.Thread(target=_resend_webhooks, args=(context, request_ids))
        resend.start()
        posts += _post(context, at_rate(later, 100.0))
        resend.join()
        return posts

    return measure(
        context,
        name,
        f"{sizes.held_results} results fal sends at once after holding them, while "
        f"{sizes.held_prompts} new prompts arrive at 100/s",
        load,
    )


#: The paid step's operator settings: results go paid once the line is 2 s long; a budget
#: no run reaches. Ten database connections a process: four processes at the default 20 took
#: most of a PostgreSQL shared with other work, and the bench's own queries were refused.
PAID_ENV = {
    "PAID_BROADCAST_AFTER_SECONDS": "2",
    "PAID_BROADCAST_DAILY_STARS": "1000000",
    "DATABASE_POOL_SIZE": "10",
}


def paid_held_results(context: Context) -> Summary:
    """W4 on a deployment with paid broadcasts on (`PAID_ENV`): how fast results leave when
    Telegram's 30/s is no longer the limit, and what that costs in CPU: results/s per worker
    process and per core, and so how many machines like this one a peak needs."""
    summary = held_results(context, name="W4 paid", stars=1_000_000)
    with contextlib.closing(context.deployment.telegram()) as telegram:
        seen = telegram.stars()
    summary.values.update(analysis.paid_values(summary.values, seen, context.deployment))
    return summary


def _resend_webhooks(context: Context, request_ids: list[str]) -> None:
    with contextlib.closing(context.deployment.fal()) as fal:
        _each(request_ids, fal.resend_webhook)


def _render(fal: FalSandbox, request_id: str) -> None:
    """The stand-in draws a picture on its first download, where fal has it ready: drawn
    before the release, 900 pictures do not hold the deliveries back behind Pillow."""
    output = fal.job(request_id)["output"] or {}
    for image in output.get("images", []):
        fal.http.get(image["url"]).raise_for_status()


def _each(items: list[str], work: Callable[[str], object]) -> None:
    """`work` on every item, 16 at a time (httpx's Client may be shared between threads)."""
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(work, items))


def _fresh_mix(context: Context, count: float) -> list[Update]:
    return list(context.source(max(int(count), 1)).mixed(int(count)))


def _post_and_catch_up(
    context: Context, updates: list[Update], rate: float
) -> tuple[list[Post], Drain]:
    """Updates at `rate` to kadr's webhook, then the wait for its handlers to finish them."""
    posts = _post(context, at_rate(updates, rate))
    return posts, wait_for_handlers(context, context.sizes.drain_limit)


def ingest(context: Context) -> Summary:
    """The webhook at rising rates (where does its p99 cross the target?), then against the
    bare endpoint: same rate, same mix, same machine; then each closed-loop for its maximum:
    the bare endpoint, kadr's webhook with copies (redeliveries: parse, dedup, answer), the same
    pushed through the Telegram stand-in, and kadr's webhook with fresh updates (parse, dedup,
    store in the inbox), while the workers' consumers handle them on the same cores. After
    each load, how many updates the inbox still held and how fast the consumers drained it.
    The jobs these make go to fal and are delivered after the step; nothing counts them."""
    sizes = context.sizes
    clean_slate(context, **lognormal(sizes.burst_latency))
    count = int(sizes.ingest_rate * sizes.ingest_seconds)
    source = context.source(max(count, 1))
    kadr_updates, bare_updates = list(source.mixed(count)), list(source.mixed(count))
    deployment = context.deployment
    base = deployment.baseline_url + "/webhooks/telegram"
    consumers = deployment.consumers
    # Each step draws from a source of its own: a redelivery drawn from the lists posted later
    # would be handled here and answered "duplicate" there, and never be waited out.
    steps = {
        rate: _post_and_catch_up(context, _fresh_mix(context, rate * sizes.ingest_seconds), rate)
        for rate in sizes.ingest_steps
    }
    kadr, drain = _post_and_catch_up(context, kadr_updates, sizes.ingest_rate)
    bare = asyncio.run(open_loop(base, at_rate(bare_updates, sizes.ingest_rate)))
    plenty = int(CLOSED_LOOP_CEILING * sizes.closed_seconds)
    summary = Summary(
        "ingest",
        f"W2 mix for {sizes.ingest_seconds:g} s at each of "
        f"{', '.join(f'{r:g}' for r in sizes.ingest_steps)} updates/s against kadr, "
        f"then at {sizes.ingest_rate:g}/s against kadr and "
        f"the bare endpoint; then each closed-loop with {sizes.closed_concurrency} connections "
        f"for {sizes.closed_seconds:g} s",
    )
    for label, posts in (("kadr", kadr), ("bare", bare)):
        for key, value in analysis.latency_values(posts).items():
            summary.values[f"{label} {key}"] = value
    summary.values.update(drain.values("kadr "))
    for rate, (posts, step_drain) in steps.items():
        values = analysis.latency_values(posts)
        summary.values[f"kadr at {rate:g}/s: webhook p99 ms"] = values["webhook p99 ms"]
        summary.values.update(step_drain.values(f"kadr at {rate:g}/s: "))
    webhook = kadr_updates[:1] * plenty
    stand_in = f"{deployment.stack.telegram_url}/_sandbox/updates"
    maxima = {  # fresh updates last: the backlog they leave would slow the others
        "bare": (base, list(source.mixed(plenty))),
        "kadr webhook only": (context.webhook_url, webhook),
        "kadr webhook only via stand-in": (stand_in, webhook),
        "kadr": (context.webhook_url, list(source.mixed(plenty))),
    }
    for label, (url, updates) in maxima.items():
        cpu_before, driver_before = deployment.cpu_now(), _own_cpu()
        posts, elapsed = asyncio.run(
            closed_loop(
                url, updates, concurrency=sizes.closed_concurrency, duration=sizes.closed_seconds
            )
        )
        ok = [p for p in posts if p.ok]
        summary.values[f"{label} max updates/s"] = len(ok) / elapsed
        cpu_after, driver = deployment.cpu_now(), _own_cpu() - driver_before
        for process in ("api", "baseline", "telegram", "redis"):
            used = cpu_after.get(process, 0.0) - cpu_before.get(process, 0.0)
            if used > 0.05 * elapsed:
                summary.values[f"{label}: {process} CPU ms/update"] = 1000 * used / max(1, len(ok))
        summary.values[f"{label}: driver CPU ms/update"] = 1000 * driver / max(1, len(ok))
    used = sum(cpu_after.get(w, 0.0) - cpu_before.get(w, 0.0) for w in consumers)
    summary.values["kadr: update workers CPU s while posting"] = used
    # The fresh closed loop leaves a backlog: the consumers' own pace, with the webhook quiet.
    cpu_before = deployment.cpu_now()
    closed = wait_for_handlers(context, sizes.drain_limit)
    cpu_after = deployment.cpu_now()
    summary.values.update(closed.values("closed loop: "))
    handled = len({p.update.update_id for p in ok})
    summary.values["closed loop: updates stored"] = handled
    if closed.backlog > 0:
        used = sum(cpu_after.get(w, 0.0) - cpu_before.get(w, 0.0) for w in consumers)
        summary.values["closed loop drain: update workers CPU ms/update"] = (
            1000 * used / closed.backlog
        )
    bare_max = float(summary.values["bare max updates/s"])
    for label in ("kadr", "kadr webhook only"):
        kadr_max = float(summary.values[f"{label} max updates/s"])
        summary.values[f"{label}/bare throughput"] = kadr_max / bare_max if bare_max else math.nan
    summary.values["load avg 1 min"] = os.getloadavg()[0]
    context.summaries.append(summary)
    return summary


# --- faults ---------------------------------------------------------------------------------


@dataclass
class Fault:
    """Something that goes wrong `at` seconds into a W1 burst."""

    name: str
    at: float
    action: Callable[[Context], Awaitable[str | None]]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.name} at {self.at:g} s"


async def _with_faults(
    context: Context, schedule: list[tuple[float, Update]], faults: Sequence[Fault]
) -> list[Post]:
    async def inject(fault: Fault) -> None:
        await asyncio.sleep(fault.at)
        note = await fault.action(context)
        if note:
            fault.notes.append(f"{fault.name}: {note}")

    context.deployment.file_messages(update.body for _, update in schedule)
    injections = [asyncio.create_task(inject(fault)) for fault in faults]
    posts = await open_loop(
        context.webhook_url, schedule, replies_to=context.deployment.bot_api_url
    )
    await asyncio.gather(*injections)
    return posts


async def kill_worker(context: Context) -> str:
    deployment = context.deployment
    await asyncio.to_thread(deployment.kill, "worker-1")
    await asyncio.sleep(2.0)
    started = time.monotonic()
    await asyncio.to_thread(deployment.restart, "worker-1")
    return (
        f"worker-1 SIGKILLed, a new one started {time.monotonic() - started:.1f} s after 2 s down"
    )


async def restart_redis(context: Context) -> str:
    down = await asyncio.to_thread(context.deployment.restart_redis, 1.0)
    return (
        f"Redis stopped (SIGTERM) and started again with its append-only file (down {down:.1f} s)"
    )


async def fal_errors(context: Context) -> str:
    times = max(1, context.sizes.fault_users // 5)
    with contextlib.closing(context.deployment.fal()) as fal:
        await asyncio.to_thread(fal.fault, on="submit", times=times, status=503)
    return f"the next {times} fal submits answered 503"


async def telegram_429(context: Context) -> str:
    times = max(1, context.sizes.fault_users // 4)
    with contextlib.closing(context.deployment.telegram()) as telegram:
        await asyncio.to_thread(telegram.fault, status=429, retry_after=3, times=times)
    return f"the next {times} Telegram sends answered 429 retry_after 3"


async def double_webhooks(context: Context) -> str:
    with contextlib.closing(context.deployment.fal()) as fal:
        await asyncio.to_thread(fal.configure, webhook_copies=2)
    return "every fal webhook from now on is delivered twice, concurrently"


def fault_plan(sizes: Sizes) -> dict[str, Fault]:
    """When each fault strikes: while prompts still arrive and results already go out."""
    busy = sizes.burst_latency + sizes.burst_seconds / 2
    return {
        "sigkill": Fault("worker SIGKILL", busy, kill_worker),
        "redis": Fault("Redis restart", busy, restart_redis),
        "fal5xx": Fault("fal 5xx burst", sizes.burst_seconds / 10, fal_errors),
        "twice": Fault("fal webhooks twice", 0.0, double_webhooks),
        "429": Fault("Telegram 429 storm", sizes.burst_latency + 1, telegram_429),
    }
