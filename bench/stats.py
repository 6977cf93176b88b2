"""Small statistics over timestamps and durations, with no opinion about where they came from."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the finite values; NaN when there are none."""
    ordered = sorted(v for v in values if math.isfinite(v))
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def peak_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """Most events inside any sliding window of `window` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


#: No run is longer than this; a wrong origin must not turn into a list of a billion zeros.
MAX_SECONDS = 24 * 3600


def per_second(times: Iterable[float], origin: float) -> list[int]:
    """Counts per whole second since `origin` (up to a day), for charts."""
    counts: list[int] = []
    for t in times:
        second = int(t - origin)
        if not 0 <= second < MAX_SECONDS:
            continue
        if second >= len(counts):
            counts.extend([0] * (second + 1 - len(counts)))
        counts[second] += 1
    return counts


def busy_spans(
    intervals: Sequence[tuple[float, float]], at_least: int
) -> list[tuple[float, float]]:
    """The spans during which at least `at_least` of the intervals were open at once: here,
    when a delivery backlog existed (results in, not yet sent)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    spans: list[tuple[float, float]] = []
    open_now, since = 0, 0.0
    for t, step in events:
        before = open_now
        open_now += step
        if before < at_least <= open_now:
            since = t
        elif open_now < at_least <= before:
            spans.append((since, t))
    return spans


def rate_within(times: Iterable[float], spans: Sequence[tuple[float, float]]) -> float:
    """Events per second inside the spans, over their total length; NaN for no span."""
    length = sum(end - start for start, end in spans)
    if length <= 0:
        return math.nan
    inside = sum(1 for t in times if any(start <= t < end for start, end in spans))
    return inside / length
