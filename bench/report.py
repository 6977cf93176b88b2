"""The results table, the targets with PASS/FAIL, a JSON dump and the chart.

The table is printed transposed (a row per metric, a column per workload) because there are
many more metrics than workloads; it is Markdown, so it can go into docs/benchmarks.md as is.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.analysis import Summary, Value

os.environ.setdefault("MPLBACKEND", "Agg")


@dataclass(frozen=True)
class Target:
    text: str
    workload: str
    """Which summaries it is checked on: a name, or a prefix ending in "*"."""
    metric: str
    passes: Callable[[float], bool]
    bound: str


TARGETS = (
    Target(
        "webhook p99 < 50 ms at 500 updates/s",
        "ingest",
        "kadr webhook p99 ms",
        lambda v: v < 50,
        "< 50",
    ),
    Target(
        "ingest throughput ≥ 50 % of the bare endpoint",
        "ingest",
        "kadr/bare throughput",
        lambda v: v >= 0.5,
        "≥ 0.50",
    ),
    Target(
        "api CPU per job ≤ 5 ms (the webhook and the fal webhook; handlers run in workers)",
        "W*",
        "CPU s/1000 jobs api",
        lambda v: v <= 5,
        "≤ 5",
    ),
    Target(
        "idle RSS ≤ 150 MB per kadr process",
        "idle",
        "idle RSS max per kadr process MB",
        lambda v: v <= 150,
        "≤ 150",
    ),
    Target(
        "fal webhook → Telegram send p50 < 20 ms, not rate-limited",
        "W0 probe",
        "fal webhook→send p50 ms",
        lambda v: v < 20,
        "< 20",
    ),
    Target(
        "results ≥ 95 % of 30/s while a backlog exists",
        "W*",
        "results/s vs 30",
        lambda v: v >= 0.95,
        "≥ 0.95",
    ),
    Target(
        "all messages ≥ 95 % of 30/s while a backlog exists (status messages share it)",
        "W*",
        "messages/s vs 30",
        lambda v: v >= 0.95,
        "≥ 0.95",
    ),
    Target(
        "results ≥ 95 % of the limiter's 29/s while a backlog exists",
        "W*",
        "results/s vs 29",
        lambda v: v >= 0.95,
        "≥ 0.95",
    ),
    Target(
        "pictures ≥ 27/s during a peak (one send per job)",
        "W5 peak",
        "pictures/s first to last",
        lambda v: v >= 27,
        "≥ 27",
    ),
    Target(
        "every user shown something within 5 s of their prompt during a peak",
        "W5 peak",
        "users shown something within 5 s %",
        lambda v: v >= 100,
        "= 100 %",
    ),
    Target("0 deliveries lost", "*", "deliveries lost", lambda v: v == 0, "= 0"),
    Target("0 deliveries duplicated", "*", "deliveries duplicated", lambda v: v == 0, "= 0"),
    Target("0 updates in the dead letters", "*", "inbox dead letters", lambda v: v == 0, "= 0"),
    Target(
        "every user's ledger balanced: reserved = charged + refunded, charged only for a result",
        "chaos",
        "ledgers unbalanced",
        lambda v: v == 0,
        "= 0",
    ),
    Target("0 jobs live once settled", "chaos", "jobs live at the end", lambda v: v == 0, "= 0"),
    Target(
        "0 fal status requests outside the sweeper",
        "*",
        "fal status before check time",
        lambda v: v == 0,
        "= 0",
    ),
    Target(
        "RSS api + worker < 300 MB with all W3 jobs in flight",
        "W3 in flight",
        "peak RSS api+worker MB",
        lambda v: v < 300,
        "< 300",
    ),
)


def _matches(pattern: str, name: str) -> bool:
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


@dataclass(frozen=True)
class Verdict:
    target: Target
    workload: str
    value: float
    passed: bool


def verdicts(summaries: Sequence[Summary]) -> list[Verdict]:
    """One verdict per target: where a target covers several workloads, the worst of them
    (naming the workloads that failed, or how many passed)."""
    found = []
    for target in TARGETS:
        measured = [
            (summary.name, float(value))
            for summary in summaries
            if _matches(target.workload, summary.name)
            and isinstance(value := summary.values.get(target.metric), int | float)
            and not math.isnan(value)
        ]
        if not measured:
            continue
        failed = [name for name, value in measured if not target.passes(value)]
        worst = max(measured, key=lambda item: (not target.passes(item[1]), abs(item[1])))
        where = (
            ", ".join(failed)
            if failed
            else (measured[0][0] if len(measured) == 1 else f"all {len(measured)} workloads")
        )
        found.append(Verdict(target, where, worst[1], not failed))
    return found


def _format(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.3f}"


def table(summaries: Sequence[Summary]) -> str:
    metrics: list[str] = []
    for summary in summaries:
        metrics.extend(m for m in summary.values if m not in metrics)
    header = "| metric | " + " | ".join(s.name for s in summaries) + " |"
    rule = "|---|" + "---:|" * len(summaries)
    rows = [
        f"| {metric} | " + " | ".join(_format(s.values.get(metric)) for s in summaries) + " |"
        for metric in metrics
    ]
    return "\n".join([header, rule, *rows])


def targets_table(found: Sequence[Verdict]) -> str:
    rows = [
        f"| {v.target.text} | {v.workload} | {_format(v.value)} | {v.target.bound} | "
        f"{'PASS' if v.passed else 'FAIL'} |"
        for v in found
    ]
    return "\n".join(
        ["| target | workload | measured (worst) | bound | |", "|---|---|---:|---|---|", *rows]
    )


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} CPUs, "
        f"{memory:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def descriptions(summaries: Sequence[Summary]) -> str:
    lines = [f"- **{s.name}**: {s.description}" for s in summaries]
    for summary in summaries:
        lines.extend(f"  - {note}" for note in summary.notes)
    return "\n".join(lines)


def write_json(summaries: Sequence[Summary], path: Path) -> None:
    data = [
        {"name": s.name, "description": s.description, "values": s.values, "notes": s.notes}
        for s in summaries
    ]
    path.write_text(json.dumps(data, indent=2, default=str))


def chart(summaries: Sequence[Summary], path: Path, configured: float) -> None:
    """Per workload: load and webhook latency, Telegram's intake, and memory."""
    import matplotlib.pyplot as plt

    shown = [s for s in summaries if s.series]
    if not shown:
        return
    figure, axes = plt.subplots(len(shown), 3, figsize=(16, 3.2 * len(shown)), squeeze=False)
    for row, summary in zip(axes, shown, strict=True):
        load, sends, memory = row
        data = summary.series
        load.bar(range(len(data["posts/s"])), data["posts/s"], color="#9ecae1", label="posts/s")
        if data.get("inbox depth"):
            load.plot(data["t rss"], data["inbox depth"], color="#9467bd", label="inbox depth")
            load.legend(fontsize=7, loc="upper left")
        load.set_ylabel("updates/s, updates waiting")
        latency = load.twinx()
        latency.plot(data["webhook p99 ms"], color="#d62728", label="webhook p99 ms")
        latency.set_ylabel("p99 ms")
        load.set_title(f"{summary.name}: load, inbox and webhook p99")
        sends.plot(data["tg messages/s"], label="all messages/s", color="#7f7f7f")
        sends.plot(data["tg results/s"], label="results/s", color="#2ca02c")
        sends.axhline(30, color="#d62728", linestyle="--", linewidth=1, label="Telegram 30/s")
        sends.axhline(configured, color="#ff7f0e", linestyle=":", linewidth=1, label="limiter")
        sends.set_title("Telegram stand-in: received per second")
        sends.legend(fontsize=7, loc="upper right")
        memory.plot(data["t rss"], data["rss api MB"], label="api")
        memory.plot(data["t rss"], data["rss workers MB"], label="workers (sum)")
        memory.set_title("RSS MB")
        memory.legend(fontsize=7)
        for axis in row:
            axis.set_xlabel("s since workload start")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
