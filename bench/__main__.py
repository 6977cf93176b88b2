"""`python -m bench [--quick] [--only W1,W3,...] [--out DIR]`: run the benchmarks, print the
results table and the targets, write results.md, results.json and chart.png to DIR.

Exits non-zero only when the benchmark itself breaks (a process that should run died, a
stand-in misbehaved); a missed target is reported as FAIL and still exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import chaos, report, workloads
from bench.analysis import Summary
from bench.deploy import Deployment, deploy
from bench.workloads import QUICK, Context, Sizes

RESULTS = Path(__file__).resolve().parent / "results"

#: Sweeper timing for --quick: production's minute is longer than the whole quick run.
QUICK_ENV = {"SWEEP_INTERVAL": "5", "SWEEP_STALE_AFTER": "10"}
#: One worker fewer for --quick (each Python process costs seconds of CPU to start), and that
#: one runs `kadr worker` with no --queue, every role, so CI runs the default command too.
QUICK_WORKERS: dict[str, tuple[str, ...]] = {"worker-1": (), "video-1": ("video",)}
#: The chaos step's sweeper, full run or quick: what the sweeper must recover after a kill
#: then shows within the settle wait, not a minute or two after it.
CHAOS_ENV = QUICK_ENV


class BenchBroken(RuntimeError):
    """The benchmark could not measure what it set out to (not: kadr missed a target)."""


def _fault(key: str) -> Callable[[Context], object]:
    def step(context: Context) -> Summary:
        fault = workloads.fault_plan(context.sizes)[key]
        return workloads.burst(context, f"fault: {fault.name}", [fault])

    return step


def _all_faults(context: Context) -> Summary:
    faults = list(workloads.fault_plan(context.sizes).values())
    return workloads.burst(context, "faults: all five", faults)


STEPS: dict[str, Callable[[Context], object]] = {
    "idle": workloads.idle,
    "W0": workloads.probe,
    "W1": workloads.burst,
    "W2": workloads.sustained,
    "W3": workloads.in_flight,
    "W4": workloads.held_results,
}
FAULT_KEYS = ("sigkill", "redis", "fal5xx", "twice", "429")
#: W5 runs on a deployment of its own: one api and one worker, Telegram's limits enforced.
PEAK: dict[str, Callable[[Context], object]] = {"W5": workloads.peak}
PEAK_WORKERS: dict[str, tuple[str, ...]] = {"worker-1": ()}


def steps(quick: bool) -> dict[str, Callable[[Context], object]]:
    """--quick strikes with all five faults in one burst; the full run, one burst each.

    Ingest goes last: its handlers finish, and its jobs go to fal, seconds after its own
    measurement ends, and a workload after it would count their messages as its own.
    """
    faults = {"faults": _all_faults} if quick else {key: _fault(key) for key in FAULT_KEYS}
    return {**STEPS, **faults, "ingest": workloads.ingest}


def _selected(name: str, only: set[str] | None) -> bool:
    return only is None or name in only or (name in FAULT_KEYS and "faults" in only)


def _check_alive(deployment: Deployment) -> None:
    api = deployment.stack.service("api").process
    if api is None or api.poll() is not None:
        raise BenchBroken(f"kadr api died: {deployment.stack.service('api').tail()}")


def run(sizes: Sizes, only: set[str] | None, out: Path, quick: bool) -> list[Summary]:
    """The selected steps on one deployment, then the chaos step on one of its own (it kills
    processes and servers); results are rewritten after each step, so a long run that breaks
    late keeps what it measured."""
    command, started = _command(quick), time.monotonic()
    summaries: list[Summary] = []

    def save() -> None:
        write(summaries, out, command, time.monotonic() - started)

    selected = {name: step for name, step in steps(quick).items() if _selected(name, only)}
    if selected:
        _on_one_deployment(Context(_deploy(out, quick), sizes, summaries), selected, save)
    if _selected("W4paid", only):
        print(f"— W4paid, on a deployment of its own in {out / 'paid'} …", flush=True)
        paid = deploy(out / "paid", env=workloads.PAID_ENV)
        _on_one_deployment(
            Context(paid, sizes, summaries), {"W4paid": workloads.paid_held_results}, save
        )
    if _selected("W5", only):
        print(f"— W5, on a deployment of its own in {out / 'peak'} …", flush=True)
        began = time.monotonic()
        _on_one_deployment(Context(_deploy_peak(out, quick), sizes, summaries), PEAK, save)
        print(f"  done in {time.monotonic() - began:.0f} s", flush=True)
    if _selected("chaos", only):
        print(f"— chaos, on a deployment of its own in {out / 'chaos'} …", flush=True)
        began = time.monotonic()
        summaries.append(chaos.run(sizes, out / "chaos", CHAOS_ENV))
        print(f"  done in {time.monotonic() - began:.0f} s", flush=True)
        save()
    return summaries


def _deploy(out: Path, quick: bool) -> Deployment:
    print(f"starting kadr and the stand-ins in {out / 'stack'} …", flush=True)
    started = time.monotonic()
    env = dict(QUICK_ENV) if quick else {}
    deployment = deploy(out / "stack", env=env, workers=QUICK_WORKERS if quick else None)
    print(f"up in {time.monotonic() - started:.0f} s", flush=True)
    return deployment


def _deploy_peak(out: Path, quick: bool) -> Deployment:
    """W5's deployment: one `kadr worker` with every role, the stand-in enforcing Telegram's
    limits (answering 429 above them, as Telegram does)."""
    return deploy(
        out / "peak",
        env=dict(QUICK_ENV) if quick else {},
        workers=PEAK_WORKERS,
        telegram_args=("--no-fetch-urls", "--enforce-limits"),
        baseline=False,
    )


def _on_one_deployment(
    context: Context, selected: dict[str, Callable[[Context], object]], save: Callable[[], None]
) -> None:
    deployment = context.deployment
    try:
        for name, step in selected.items():
            print(f"— {name} …", flush=True)
            began = time.monotonic()
            step(context)
            _check_alive(deployment)
            print(f"  done in {time.monotonic() - began:.0f} s", flush=True)
            save()
        if deployment.restarts:
            names = ", ".join(name for _, name in deployment.restarts)
            print(f"supervisor restarted: {names}", flush=True)
    finally:
        deployment.stop()


def _command(quick: bool) -> str:
    return "python -m bench" + (" --quick" if quick else "")


def write(summaries: list[Summary], out: Path, command: str, elapsed: float) -> str:
    found = report.verdicts(summaries)
    text = "\n\n".join(
        [
            f"Command: `{command}` ({elapsed:.0f} s)  \nMachine: {report.machine()}",
            report.descriptions(summaries),
            report.table(summaries),
            report.targets_table(found),
        ]
    )
    (out / "results.md").write_text(text + "\n")
    report.write_json(summaries, out / "results.json")
    report.chart(summaries, out / "chart.png", workloads.CONFIGURED_RATE)
    return text


def _sized(sizes: Sizes, overrides: list[str]) -> Sizes:
    """`--size name=value`, typed like the field it replaces."""
    changes: dict[str, object] = {}
    for override in overrides:
        name, _, text = override.partition("=")
        current = getattr(sizes, name, None)
        if current is None or not text:
            raise SystemExit(f"--size {override!r}: not NAME=VALUE for a field of Sizes")
        if isinstance(current, tuple):
            changes[name] = tuple(float(v) for v in text.split(",") if v)
        else:
            changes[name] = type(current)(text)
    return dataclasses.replace(sizes, **changes)  # type: ignore[arg-type]


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every process we started is
    stopped and the database dropped instead of left running."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--only",
        help="comma-separated subset of "
        + ", ".join([*STEPS, "faults", *FAULT_KEYS, "ingest", "W4paid", *PEAK, "chaos"]),
    )
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/<time>)")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one of bench.workloads.Sizes (repeatable), e.g. ingest_seconds=4 or "
        "ingest_steps=100,300",
    )
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    out = args.out or RESULTS / stamp
    out.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    started = time.monotonic()
    sizes = _sized(QUICK if args.quick else Sizes(), args.size)
    summaries = run(sizes, only, out, args.quick)
    print(write(summaries, out, _command(args.quick), time.monotonic() - started))
    print(f"\nresults: {out}/results.md, chart: {out}/chart.png", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
