"""`python -m bench.photo_memory [--photos 1,50] [--size-mb 15] [--out DIR]`: does the worker's
memory stay flat however many big photos are edited at once?

A user's photo goes Telegram → temp file → fal's storage inside the worker's submit task
(`core/fal/photos.py`), streamed in fixed-size chunks, so 50 photos of 15 MB in flight together
should cost the worker about what one does. This deploys kadr against the stand-ins with one
`kadr worker --queue updates --queue images` (`bench.deploy`; the updates role consumes the
Telegram inbox, so this worker runs the handlers too), warms it up with one small edit, then
for each N: N distinct users send a photo of incompressible noise as a document with a
caption (an edit), all at once, while the worker's and the api's RSS (children included) is
sampled every 50 ms until every user has the edited photo (sendPhoto recorded by the
Telegram stand-in).

Prints the table and the verdict ("flat" when peak(largest N) − peak(smallest N) ≤ 10 MB), and
checks that no request fal received carries the bot token. Exits 1 when a photo was not
delivered or the token reached fal, 0 otherwise (also when memory is not flat: that is a
finding, not a broken benchmark).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from PIL import Image

from bench.deploy import UPDATES, Deployment, deploy
from bench.observe import read_jobs
from core.domain.catalog import catalog
from sandbox.control import TelegramSandbox
from sandbox.stack import TEST_TOKEN

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024
SAMPLE_EVERY = 0.05
FLAT_WITHIN_MB = 10.0
QUIET_BEFORE = 1.0
"""Seconds of samples before a burst that make its "before" figure."""
DELIVERY_LIMIT = 300.0
"""Bound on waiting for one burst's photos."""
WORKER, API = "worker", "api"
PHOTO_WIDTH = 2048
FIRST_USER = 910_000


def noise_png(size_bytes: int) -> bytes:
    """An RGB PNG of random pixels, stored uncompressed (random pixels would not compress
    anyway): `size_bytes` on the wire plus the row filter bytes and chunk headers. Written by
    hand because Pillow's encoder takes a second per 15 MB and a burst needs fifty."""
    height = max(64, -(-size_bytes // (PHOTO_WIDTH * 3)))
    row = PHOTO_WIDTH * 3 + 1
    raw = bytearray(os.urandom(row * height))
    raw[::row] = bytes(height)  # filter type 0 (None) at the start of every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", PHOTO_WIDTH, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(bytes(raw), 0)),
            chunk(b"IEND", b""),
        ]
    )


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (40, 120, 200)).save(out, "PNG")
    return out.getvalue()


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total


@dataclass
class Sampler:
    """RSS of named process trees every SAMPLE_EVERY seconds, on a thread of its own."""

    pids: dict[str, int]
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            rss: dict[str, int] = {}
            for name, pid in self.pids.items():
                with contextlib.suppress(psutil.Error):
                    rss[name] = tree_rss(pid)
            self.samples.append((now, rss))
            self._stop.wait(SAMPLE_EVERY)

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def between(self, name: str, start: float, end: float) -> list[int]:
        return [rss[name] for t, rss in list(self.samples) if start <= t <= end and name in rss]


@dataclass
class Burst:
    photos: int
    photo_bytes: int
    delivered: int
    worker_before: float
    worker_peak: float
    api_peak: float
    wall: float
    samples: int
    statuses: dict[str, int]
    uploads: list[int]
    """Sizes of the uploads fal's storage received during the burst."""

    @property
    def worker_delta(self) -> float:
        return self.worker_peak - self.worker_before


def _send_all(telegram_url: str, users: Sequence[int], photos: Sequence[bytes]) -> None:
    """Every user sends at the same moment, each on a connection of their own."""
    gate = threading.Barrier(len(users))

    def send(user_id: int, data: bytes) -> None:
        with contextlib.closing(TelegramSandbox(telegram_url)) as telegram:
            telegram.http.timeout = 120
            gate.wait(60)
            telegram.send_photo(
                user_id,
                data,
                caption=f"make it winter, user {user_id}",
                as_document=True,
                filename=f"IMG_{user_id}.png",
            )

    with ThreadPoolExecutor(len(users)) as pool:
        for future in [pool.submit(send, u, p) for u, p in zip(users, photos, strict=True)]:
            future.result()


def _delivered(telegram: TelegramSandbox, users: set[int]) -> int:
    return len(
        {
            r["params"].get("chat_id")
            for r in telegram.requests("sendPhoto")
            if r["status"] == 200 and r["params"].get("chat_id") in users
        }
    )


def _statuses(deployment: Deployment, users: set[int]) -> dict[str, int]:
    jobs = read_jobs(deployment.stack.database_url)
    return dict(
        Counter(
            f"{j.status}:{j.error}" if j.error else j.status for j in jobs if j.user_id in users
        )
    )


def _settled(statuses: dict[str, int], expected: int) -> bool:
    """Every job of the burst has ended (delivered or not): nothing more will come."""
    live = sum(
        n for s, n in statuses.items() if s.split(":")[0] in ("queued", "submitted", "completed")
    )
    return sum(statuses.values()) >= expected and live == 0


def burst(deployment: Deployment, sampler: Sampler, users: list[int], size_bytes: int) -> Burst:
    photos = [noise_png(size_bytes) for _ in users]
    wanted = set(users)
    telegram = deployment.telegram()
    fal = deployment.fal()
    uploads_before = len(fal.requests("upload"))
    time.sleep(QUIET_BEFORE)
    started = time.time()
    _send_all(deployment.stack.telegram_url, users, photos)
    del photos
    deadline = time.monotonic() + DELIVERY_LIMIT
    delivered, checked = 0, 0.0
    while time.monotonic() < deadline:
        delivered = _delivered(telegram, wanted)
        if delivered >= len(users):
            break
        if time.monotonic() - checked > 2.0:
            checked = time.monotonic()
            if _settled(_statuses(deployment, wanted), len(users)):
                delivered = _delivered(telegram, wanted)
                break
        time.sleep(0.1)
    ended = time.time()
    before = sampler.between(WORKER, started - QUIET_BEFORE, started)
    worker = sampler.between(WORKER, started, ended)
    api = sampler.between(API, started, ended)
    uploads = [r.get("body", {}).get("size", 0) for r in fal.requests("upload")[uploads_before:]]
    telegram.close()
    fal.close()
    return Burst(
        photos=len(users),
        photo_bytes=size_bytes,
        delivered=delivered,
        worker_before=statistics.median(before or [0]) / MB,
        worker_peak=max(worker, default=0) / MB,
        api_peak=max(api, default=0) / MB,
        wall=ended - started,
        samples=len(worker),
        statuses=_statuses(deployment, wanted),
        uploads=uploads,
    )


def warm_up(deployment: Deployment) -> None:
    """One small edit, so imports, pools and the storage token are in place before measuring."""
    with contextlib.closing(deployment.telegram()) as telegram:
        telegram.send_photo(FIRST_USER - 1, small_png(), caption="warm up", as_document=True)
        if not telegram.wait_for("sendPhoto", chat_id=FIRST_USER - 1, timeout=120):
            raise RuntimeError("the warm-up edit was never delivered")


def token_leaks(deployment: Deployment) -> int:
    """Requests fal received (or made) that carry the bot token or its secret half."""
    with contextlib.closing(deployment.fal()) as fal:
        records = fal.requests()
    secret = TEST_TOKEN.split(":", 1)[1]
    return sum(1 for r in records if secret in json.dumps(r) or TEST_TOKEN in json.dumps(r))


def table(bursts: Sequence[Burst]) -> str:
    lines = [
        "| photos at once | delivered | worker RSS before (MB) | worker peak (MB) "
        "| worker Δ (MB) | api peak (MB) | wall (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in bursts:
        lines.append(
            f"| {b.photos} | {b.delivered}/{b.photos} | {b.worker_before:.1f} "
            f"| {b.worker_peak:.1f} | {b.worker_delta:+.1f} | {b.api_peak:.1f} | {b.wall:.1f} |"
        )
    return "\n".join(lines)


def verdict(bursts: Sequence[Burst]) -> tuple[bool, str]:
    first, last = bursts[0], bursts[-1]
    growth = last.worker_peak - first.worker_peak
    flat = growth <= FLAT_WITHIN_MB
    word = "flat" if flat else "NOT flat"
    return flat, (
        f"{word}: worker peak with {last.photos} photos − with {first.photos} = {growth:+.1f} MB "
        f"(flat means ≤ {FLAT_WITHIN_MB:.0f} MB)"
    )


def run(counts: list[int], size_mb: float, out: Path) -> tuple[str, bool]:
    """Returns the report and whether the benchmark measured what it meant to (every photo
    delivered, no token at fal)."""
    size_bytes = int(size_mb * MB)
    cap = catalog().modes["edit"].max_input_bytes
    probe = len(noise_png(size_bytes))
    if probe > cap:
        raise SystemExit(
            f"a {size_mb} MB photo is {probe} bytes, over the edit mode's cap of {cap} bytes "
            "(core/domain/catalog.toml, [modes.edit] max_input_mb)"
        )
    print(f"starting kadr and the stand-ins in {out / 'stack'} …", flush=True)
    deployment = deploy(out / "stack", workers={WORKER: (UPDATES, "images")})
    try:
        pids = {
            name: deployment.stack.service(name).process.pid  # type: ignore[union-attr]
            for name in (WORKER, API)
        }
        sampler = Sampler(pids).start()
        try:
            warm_up(deployment)
            bursts = []
            user = FIRST_USER
            for count in counts:
                print(f"— {count} × {probe / MB:.1f} MB at once …", flush=True)
                users = list(range(user, user + count))
                user += count
                result = burst(deployment, sampler, users, size_bytes)
                print(
                    f"  delivered {result.delivered}/{count} in {result.wall:.1f} s, "
                    f"worker peak {result.worker_peak:.1f} MB, jobs {result.statuses}",
                    flush=True,
                )
                bursts.append(result)
        finally:
            sampler.stop()
        leaks = token_leaks(deployment)
    finally:
        deployment.stop()
    _, said = verdict(bursts)
    uploads = [size for b in bursts for size in b.uploads]
    lines = [
        table(bursts),
        "",
        f"Photo: {PHOTO_WIDTH}×{-(-size_bytes // (PHOTO_WIDTH * 3))} PNG of random pixels, "
        f"{probe / MB:.2f} MB, sent as a document with a caption "
        f"(edit mode, cap {cap / MB:.0f} MB); "
        f"fal's storage received {len(uploads)} uploads of "
        f"{min(uploads, default=0) / MB:.2f}–{max(uploads, default=0) / MB:.2f} MB.",
        f"RSS sampled every {SAMPLE_EVERY * 1000:.0f} ms (process and children); "
        f"before = median of the {QUIET_BEFORE:.0f} s before the burst, peak = max from the "
        "burst until the last sendPhoto.",
        f"Bot token in fal requests: {'none' if not leaks else f'{leaks} requests CONTAIN IT'}.",
        "",
        f"Verdict: {said}",
    ]
    text = "\n".join(lines)
    ok = all(b.delivered == b.photos for b in bursts) and not leaks
    if not ok:
        text += "\n\nBROKEN: a photo was not delivered, or the bot token reached fal"
    return text, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.photo_memory", description=__doc__)
    parser.add_argument("--photos", default="1,50", help="comma-separated burst sizes, in order")
    parser.add_argument("--size-mb", type=float, default=15.0, help="size of each photo (MiB)")
    parser.add_argument(
        "--out", type=Path, help="results folder (default bench/results/<time>-photo-memory)"
    )
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.photos.split(",") if n.strip()]
    if not counts or any(n < 1 or n > 200 for n in counts):
        parser.error("--photos: burst sizes between 1 and 200")
    out = args.out or RESULTS / (time.strftime("%Y%m%d-%H%M%S") + "-photo-memory")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    text, ok = run(counts, args.size_mb, out)
    command = f"python -m bench.photo_memory --photos {args.photos} --size-mb {args.size_mb:g}"
    text = f"Command: `{command}` ({time.monotonic() - started:.0f} s)\n\n{text}"
    (out / "results.md").write_text(text + "\n")
    print(text)
    print(f"\nresults: {out}/results.md", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
