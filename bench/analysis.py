"""Turning one workload's posts and observations into the numbers of the results table.

A job is traced by its key (user, prompt): the post that asked for it, its row, its fal
request (submit and webhook as the fal stand-in saw them) and the result send the Telegram
stand-in received. Everything is measured at the edges, so kadr's own clocks are not trusted
for anything but the stage stamps in its jobs table.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.deploy import Deployment, Usage
from bench.driver import Post
from bench.observe import MESSAGE_METHODS, RESULT_METHODS, FalCall, JobRow, Observation
from bench.stats import busy_spans, peak_in_window, per_second, percentile, rate_within
from core.domain.catalog import catalog

MB = 1024 * 1024
#: A backlog is "a second's worth of results waiting at Telegram's pace".
BACKLOG_AT_LEAST = 30
#: A pace measured over less backlog than this says more about start and end than the pace.
BACKLOG_MIN_SECONDS = 3.0
#: What shows a user that their prompt was seen: any message in their chat, or a reaction.
SIGN_METHODS = MESSAGE_METHODS | {"setMessageReaction"}
#: The time within which every user should be shown something (issue 22).
SIGN_WITHIN = 5.0
#: Job states that may still end in a delivery.
LIVE = frozenset({"queued", "submitted", "completed"})
Value = float | int | str


@dataclass
class Summary:
    """One workload's row of the results table, plus per-second series for the chart."""

    name: str
    description: str
    values: dict[str, Value] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Window:
    """The workload's time span and the resource usage at its start."""

    start: float
    end: float
    cpu_before: dict[str, float]
    cpu_after: dict[str, float]


def _ms(seconds: float) -> float:
    return seconds * 1000


def latency_values(posts: Sequence[Post]) -> dict[str, Value]:
    latencies = [p.latency for p in posts if p.ok]
    span = max((p.due for p in posts), default=0) - min((p.due for p in posts), default=0)
    return {
        "updates posted": len(posts),
        "post rate /s": len(posts) / span if span > 0 else math.nan,
        "webhook p50 ms": _ms(percentile(latencies, 50)),
        "webhook p95 ms": _ms(percentile(latencies, 95)),
        "webhook p99 ms": _ms(percentile(latencies, 99)),
        "webhook non-200": sum(1 for p in posts if not p.ok),
        "webhook delivered again (5xx or none first)": sum(1 for p in posts if p.tries > 1),
    }


def _pair(name: str, unit: str, values: Iterable[float], scale: float = 1.0) -> dict[str, Value]:
    ordered = list(values)
    return {
        f"{name} p50 {unit}": percentile(ordered, 50) * scale,
        f"{name} p99 {unit}": percentile(ordered, 99) * scale,
    }


@dataclass
class Trace:
    """Per-job timings joined across the driver, the jobs table and both stand-ins."""

    due: dict[tuple[int, str], float]
    jobs: dict[tuple[int, str], list[JobRow]]
    sent: dict[str, list[float]]
    """Job id → times a successful result send for it reached Telegram."""
    submitted_at_fal: dict[str, float]
    webhook_at: dict[str, float]


def _result_sends(observation: Observation) -> dict[tuple[int, str], list[float]]:
    sends: dict[tuple[int, str], list[float]] = defaultdict(list)
    for call in observation.telegram:
        if call.method in RESULT_METHODS and call.status == 200 and call.chat_id is not None:
            for url in call.media[:1]:
                sends[(call.chat_id, url)].append(call.t)
    return sends


def _first_by_request(calls: Iterable[FalCall], kind: str, ok_only: bool) -> dict[str, float]:
    first: dict[str, float] = {}
    for call in calls:
        if call.kind != kind or call.request_id is None or (ok_only and call.status != 200):
            continue
        first[call.request_id] = min(call.t, first.get(call.request_id, math.inf))
    return first


def trace(posts: Sequence[Post], observation: Observation) -> Trace:
    due: dict[tuple[int, str], float] = {}
    for post in posts:
        key = post.update.job_key
        if key is not None:
            due[key] = min(post.due, due.get(key, math.inf))
    jobs: dict[tuple[int, str], list[JobRow]] = defaultdict(list)
    for job in observation.jobs:
        jobs[job.key].append(job)
    sends = _result_sends(observation)
    sent: dict[str, list[float]] = {}
    for job in observation.jobs:
        if job.urls:
            sent[job.id] = sends.get((job.chat_id, job.urls[0]), [])
    return Trace(
        due=due,
        jobs=jobs,
        sent=sent,
        submitted_at_fal=_first_by_request(observation.fal, "submit", ok_only=True),
        webhook_at=_first_by_request(observation.fal, "webhook", ok_only=False),
    )


def _first_send(trace: Trace, job: JobRow) -> float | None:
    times = trace.sent.get(job.id)
    return min(times) if times else None


def delivery_values(trace: Trace, in_inbox: set[tuple[int, str]]) -> dict[str, Value]:
    """Every prompt posted must end as exactly one result in its chat. `in_inbox`: prompts
    whose update the inbox still held when the wait ended (no job yet, not lost)."""
    made = lost = duplicated = failed = pending = waiting = 0
    for key in trace.due:
        jobs = trace.jobs.get(key, [])
        sends = sum(len(trace.sent.get(job.id, [])) for job in jobs)
        if sends:
            made += 1
            duplicated += sends - 1
        elif any(job.status == "failed" for job in jobs):
            failed += 1
        elif any(job.status in LIVE for job in jobs):
            pending += 1
        elif key in in_inbox:
            waiting += 1
        else:
            lost += 1
    return {
        "deliveries expected": len(trace.due),
        "deliveries made": made,
        "deliveries lost": lost,
        "deliveries still pending when the wait ended (job live)": pending,
        "prompts still in the inbox when the wait ended": waiting,
        "deliveries duplicated": duplicated,
        "jobs failed (user told)": failed,
    }


def stage_values(trace: Trace) -> dict[str, Value]:
    accept, to_fal, at_fal, delivery, e2e, overhead, webhook_to_send, recorded = (
        [] for _ in range(8)
    )
    for key, jobs in trace.jobs.items():
        job = min(jobs, key=lambda j: j.created_at)
        due, sent = trace.due.get(key), _first_send(trace, job)
        if due is not None:
            accept.append(job.created_at - due)
        if job.submitted_at is not None:
            to_fal.append(job.submitted_at - job.created_at)
        if job.submitted_at is not None and job.completed_at is not None:
            at_fal.append(job.completed_at - job.submitted_at)
        request = job.fal_request_id or ""
        hook, submit = trace.webhook_at.get(request), trace.submitted_at_fal.get(request)
        if hook is not None and job.completed_at is not None:
            recorded.append(job.completed_at - hook)
        if sent is None:
            continue
        if job.completed_at is not None:
            delivery.append(sent - job.completed_at)
        if due is not None:
            e2e.append(sent - due)
            if hook is not None and submit is not None:
                overhead.append((sent - due) - (hook - submit))
        if hook is not None:
            webhook_to_send.append(sent - hook)
    return {
        **_pair("accept", "ms", accept, 1000),
        **_pair("to fal", "ms", to_fal, 1000),
        **_pair("at fal", "s", at_fal),
        **_pair("delivery", "s", delivery),
        **_pair("end to end", "s", e2e),
        "end to end max s": max(e2e, default=math.nan),
        **_pair("kadr overhead", "s", overhead),
        **_pair("fal webhook→send", "ms", webhook_to_send, 1000),
        **_pair("of which webhook→recorded", "ms", recorded, 1000),
    }


def first_sign_values(trace: Trace, observation: Observation) -> dict[str, Value]:
    """Per prompt, the time from its post to the first thing its chat got after it (a status
    message, a reaction, a refusal or the picture): what the user waits before knowing the
    bot heard them. The benchmark's users write in their private chats (chat id = user id)."""
    signs: dict[int, list[float]] = defaultdict(list)
    for call in observation.telegram:
        if call.status == 200 and call.chat_id is not None and call.method in SIGN_METHODS:
            signs[call.chat_id].append(call.t)
    for times in signs.values():
        times.sort()
    waits, unseen = [], 0
    for (user, _), due in trace.due.items():
        times = signs.get(user, [])
        at = bisect.bisect_left(times, due)
        if at == len(times):
            unseen += 1
        else:
            waits.append(times[at] - due)
    results = sorted(
        c.t for c in observation.telegram if c.method in RESULT_METHODS and c.status == 200
    )
    span = results[-1] - results[0] if len(results) > 1 else 0.0
    return {
        "first sign p50 s": percentile(waits, 50),
        "first sign p95 s": percentile(waits, 95),
        "first sign max s": max(waits, default=math.nan),
        f"users shown something within {SIGN_WITHIN:g} s %": 100
        * sum(1 for w in waits if w <= SIGN_WITHIN)
        / max(len(trace.due), 1),
        "users shown nothing": unseen,
        "pictures/s first to last": (len(results) - 1) / span if span > 0 else math.nan,
    }


def peak_at_fal(jobs: Sequence[JobRow]) -> dict[str, Value]:
    """How many jobs were waiting on fal at the same moment."""
    events = sorted(
        [(j.submitted_at, 1) for j in jobs if j.submitted_at and j.completed_at]
        + [(j.completed_at, -1) for j in jobs if j.submitted_at and j.completed_at]
    )
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return {"peak jobs at fal": peak}


def telegram_values(observation: Observation, trace: Trace, configured: float) -> dict[str, Value]:
    """Sends as Telegram saw them: the peak second, and the pace while results were waiting."""
    messages = [c.t for c in observation.telegram if c.method in MESSAGE_METHODS]
    results = [c.t for c in observation.telegram if c.method in RESULT_METHODS and c.status == 200]
    waiting = []
    for jobs in trace.jobs.values():
        for job in jobs:
            sent = _first_send(trace, job)
            if job.completed_at is not None and sent is not None:
                waiting.append((job.completed_at, sent))
    spans = busy_spans(waiting, BACKLOG_AT_LEAST)
    backlog = sum(end - start for start, end in spans)
    in_backlog = rate_within(results, spans) if backlog >= BACKLOG_MIN_SECONDS else math.nan
    return {
        "tg messages/s peak": peak_in_window(messages),
        "seconds over 30 messages": sum(
            1 for n in per_second(messages, min(messages, default=0.0)) if n > 30
        ),
        "tg results/s peak": peak_in_window(results),
        "backlog s": backlog,
        "tg messages/s in backlog": rate_within(messages, spans) if backlog else math.nan,
        # Status messages and replies share Telegram's budget with results now, so the pace
        # of everything sent is what shows whether the budget is used.
        "messages/s vs 30": rate_within(messages, spans) / 30
        if backlog >= BACKLOG_MIN_SECONDS
        else math.nan,
        "tg results/s in backlog": in_backlog,
        "results/s vs 30": in_backlog / 30,
        f"results/s vs {configured:g}": in_backlog / configured,
    }


#: The machine a figure per core is scaled to.
MACHINE_CORES = 2


def paid_values(
    values: dict[str, Value], stars: dict[str, float], deployment: Deployment
) -> dict[str, Value]:
    """With paid broadcasts on, CPU is the limit: results/s per worker process (those that
    deliver pictures) and per core of kadr's CPU (api, workers and Redis, per result), and the
    machines of MACHINE_CORES cores a peak of 1,000 results/s needs at that cost."""
    rate = float(values["tg results/s in backlog"])
    image_workers = [n for n, roles in deployment.workers.items() if not roles or "images" in roles]
    cpu_ms = float(values["CPU s/1000 jobs api + workers"]) + float(values["CPU s/1000 jobs redis"])
    per_core = 1000 / cpu_ms if cpu_ms > 0 else math.nan
    return {
        "paid sends": stars["paid_sends"],
        "paid sends/s peak (stand-in)": stars["peak_paid_per_second"],
        "Stars spent": stars["paid_sends"] / 10,
        "results/s per worker process": rate / len(image_workers),
        "kadr CPU ms/result (api+workers+redis)": cpu_ms,
        "results/s per core": per_core,
        f"results/s per {MACHINE_CORES}-core machine": per_core * MACHINE_CORES,
        f"{MACHINE_CORES}-core machines for 1,000 results/s": math.ceil(
            1000 / (per_core * MACHINE_CORES)
        )
        if per_core > 0
        else math.nan,
    }


def method_counts(observation: Observation) -> dict[str, Value]:
    """What kadr asked of Telegram, per method: the shape of a job's conversation."""
    counts: dict[str, int] = defaultdict(int)
    for call in observation.telegram:
        counts[call.method] += 1
    return {f"tg {method} calls": n for method, n in sorted(counts.items())}


def _check_after(mode: str) -> float:
    modes = catalog().modes
    return modes[mode].check_after.total_seconds() if mode in modes else 0.0  # type: ignore[index]


def fal_values(observation: Observation) -> dict[str, Value]:
    """kadr may ask fal for a status only from the sweeper, after the job's check time."""
    by_request = {job.fal_request_id: job for job in observation.jobs if job.fal_request_id}
    statuses = [c for c in observation.fal if c.kind == "status"]
    early = 0
    for call in statuses:
        job = by_request.get(call.request_id or "")
        if (
            job is None
            or job.submitted_at is None
            or call.t < job.submitted_at + _check_after(job.mode) - 1.0
        ):
            early += 1
    return {
        "fal submits": sum(1 for c in observation.fal if c.kind == "submit"),
        "fal status requests": len(statuses),
        "fal status before check time": early,
        "fal result requests": sum(1 for c in observation.fal if c.kind == "result"),
    }


def resource_values(
    usage: Usage, window: Window, jobs: int, workers: list[str], consumers: list[str]
) -> dict[str, Value]:
    """CPU seconds per 1,000 jobs are milliseconds per job. `consumers`: the workers that run
    the update handlers too (they share their process, so their CPU cannot be split there)."""

    def cpu(names: Iterable[str]) -> float:
        return sum(window.cpu_after.get(n, 0.0) - window.cpu_before.get(n, 0.0) for n in names)

    per_thousand = 1000 / jobs if jobs else math.nan
    others = [w for w in workers if w not in consumers]
    return {
        "peak inbox depth": usage.peak_inbox(window.start),
        "peak RSS api MB": usage.peak_rss("api", window.start) / MB,
        "peak RSS worker MB": max(usage.peak_rss(w, window.start) for w in workers) / MB,
        "peak RSS api+worker MB": max(usage.peak_sum_rss(["api", w], window.start) for w in workers)
        / MB,
        "peak RSS api+all workers MB": usage.peak_sum_rss(["api", *workers], window.start) / MB,
        "peak Redis MB": usage.peak_redis(window.start) / MB,
        "jobs": jobs,
        "CPU s/1000 jobs api": cpu(["api"]) * per_thousand,
        "CPU s/1000 jobs workers": cpu(workers) * per_thousand,
        "CPU s/1000 jobs update workers (handlers + their queues)": cpu(consumers) * per_thousand,
        "CPU s/1000 jobs other workers": cpu(others) * per_thousand if others else math.nan,
        "CPU s/1000 jobs api + workers": cpu(["api", *workers]) * per_thousand,
        "CPU s/1000 jobs redis": cpu(["redis"]) * per_thousand,
    }


def series(
    posts: Sequence[Post],
    observation: Observation,
    usage: Usage,
    window: Window,
    workers: Sequence[str],
) -> dict[str, list[float]]:
    origin = window.start
    by_second: dict[int, list[float]] = defaultdict(list)
    for post in posts:
        if post.ok:
            by_second[int(post.due - origin)].append(post.latency * 1000)
    length = max(by_second, default=-1) + 1
    samples = [s for s in usage.samples if s.t >= origin]
    return {
        "posts/s": [float(n) for n in per_second((p.due for p in posts), origin)],
        "webhook p99 ms": [percentile(by_second.get(i, []), 99) for i in range(length)],
        "tg messages/s": [
            float(n)
            for n in per_second(
                (c.t for c in observation.telegram if c.method in MESSAGE_METHODS), origin
            )
        ],
        "tg results/s": [
            float(n)
            for n in per_second(
                (
                    c.t
                    for c in observation.telegram
                    if c.method in RESULT_METHODS and c.status == 200
                ),
                origin,
            )
        ],
        "t rss": [s.t - origin for s in samples],
        "rss api MB": [s.rss.get("api", 0) / MB for s in samples],
        "rss workers MB": [sum(s.rss.get(w, 0) for w in workers) / MB for s in samples],
        "inbox depth": [float(s.inbox) for s in samples],
    }
