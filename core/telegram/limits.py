"""Telegram's send limits, shared by every worker process through Redis.

About 30 messages/s per bot, 1/s per private chat, 20/min per group (Telegram's Bot FAQ,
"broadcasting").
Each send reserves a moment to go, GCRA-style: one Redis script keeps, per bot and per chat,
the earliest time the next message may leave, so sends are spaced evenly (one every 1/30 s)
instead of leaving in bursts that a moving window would allow and network jitter would push
over the limit.

A moment further away than a worker slot should be held is reserved all the same and kept for
the chat (`held`); the task goes back to the queue until then (`RetryLater`) and takes the
held moment when it runs again. With a backlog every task so runs twice at most; without
holding, every task deferred at once came back at once, and all but one were deferred again
(docs/benchmark-history.md).
A held moment nobody comes for within `HELD_GRACE` costs one send slot. The task is asked
back `EARLY_RETURN` before its moment and waits the rest in-process: arq hands deferred tasks
back late on a busy machine (up to ~0.5 s), and tasks that all come late and all send at once
were a burst past Telegram's 30/s.

A result is given its place in the line of results before its task is queued
(`place_in_line`, when fal's webhook records it), and the task is queued to come back
`EARLY_RETURN` before its turn; it reserves a moment only when it is there. A flood of
results so reaches the workers in the order of their turns, each task run once, and a task
that comes late loses nothing: those already waiting take the moments. Left to reserve on
their first run, 900 results released at once were 900 runs that each held a moment and went
back to the queue, where arq hands out the oldest entries first: the runs that came back for
their moments waited behind the fresh ones, came late, and the moments passed unused. Holding
each moment when the result came instead lost the first second's moments whenever the workers
were slow to start (docs/benchmark-history.md has both).

A 429 pauses the bot (`pause`): no moment is handed out, held or not, until the pause ends,
and a sender that slept until its moment asks once more whether a pause began meanwhile.

Results go first. A sender that yields (a handler's reply, a status message, a broadcast)
reserves a moment only while the bot's reservations and the line of results reach less than
`YIELD_HORIZON` ahead;
behind a longer backlog of results it waits for a turn in a lane of its own, the lane's turns
spaced at the bot's rate, so however many wait they ask Redis at most that often. Without
this, replies to new prompts took every other moment and results left at half the rate,
and a result that is ready is
what the user paid for and waits on; a reply that waits keeps its update in the inbox.

Paid broadcasts (Bot API 7.11, off unless `SendLimits.paid_after` is set): while the line of
results reaches further than `paid_after` seconds, a send that may be paid (a result, a
broadcast) takes a moment in a lane of its own, up to 1,000/s per bot, and goes with
`allow_paid_broadcast` for 0.1 Star; per-chat limits hold as for any send. A result placed in
line then is not kept back for a free turn, and the sends made soon after it go paid too
(`PAID_GRACE`), so the results the line sent to the paid lane go paid when they come. Paid
moments do not take free ones: replies still wait behind the free line, which stays about
`paid_after` long while paid sends drain the rest. Each paid moment counts against the day's
(UTC) budget, `paid_per_day` messages (Telegram bills an album's every message); once it is
spent, sends take free moments again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime

from redis.asyncio import Redis

from core.infra.retry import RetryLater

#: Waits up to this long happen in-process; longer ones are handed back to the queue.
MAX_INLINE_WAIT = 2.0
#: How late a task may come for its held moment and still send at once; a later one
#: reserves afresh (sending it then would add to the sends already due).
HELD_GRACE = 0.1
#: How long before its held moment a deferred task is asked back (at most half its wait).
EARLY_RETURN = 1.0
#: A yielding sender reserves only while the bot's reservations reach less far than this.
YIELD_HORIZON = 0.25
#: After a result is placed in the paid lane, sends that may be paid go paid this long: the
#: results placed there come for their moments within it (a free line then may be short).
PAID_GRACE = 5.0
#: The day's count of paid sends is kept past the day, for the metric's last reading.
PAID_DAY_TTL = 2 * 24 * 3600
#: What Telegram charges a paid broadcast message, in Stars.
STARS_PER_PAID_SEND = 0.1

# KEYS: bot-wide key, chat key, the chat's held moment, the bot-wide pause after a 429, the
# yielding senders' lane, the line of results, the paid lane, today's paid sends, the mark of
# results placed in the paid lane.
# ARGV: bot interval, chat interval, longest acceptable wait, whether a moment may be held
# (and a held one taken), HELD_GRACE, how far reservations may reach for the caller to take
# one (negative: the caller does not yield), how far the line must reach for a paid moment
# (negative: the caller may not go paid), the paid interval, paid messages allowed today, how
# long the day's count is kept, the messages the caller's send would pay for (an album: each),
# whether the caller would rather go without than wait for a turn in the yielding lane ('1':
# an optional send).
# Returns {wait, lane, paid sends today}: the wait before sending (the moment is the caller's)
# or, negative, how long until the caller should ask again (a moment is held for it, or, when
# holding is off, nothing is); the lane: 'paid', 'free', or 'over' (free: the budget is spent).
_RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local max_wait = tonumber(ARGV[3])
local holding = ARGV[4] == '1'
local function keep(key, at)
  redis.call('SET', key, tostring(at), 'PX', math.ceil((at - now) * 1000) + 1000)
end
local spent = tonumber(redis.call('GET', KEYS[8]) or '0')
local paused = tonumber(redis.call('GET', KEYS[4]) or '0')
if paused > now then
  if holding then redis.call('DEL', KEYS[3]) end
  return {tostring(-(paused - now)), 'free', spent}
end
if holding then
  local held = tonumber(redis.call('GET', KEYS[3]) or '')
  if held then
    if held - now > max_wait then
      return {tostring(-(held - now)), 'free', spent}
    end
    redis.call('DEL', KEYS[3])
    if now - held <= tonumber(ARGV[5]) then
      return {tostring(math.max(held - now, 0)), 'free', spent}
    end
  end
end
local bot_next = tonumber(redis.call('GET', KEYS[1]) or '0')
local chat_next = tonumber(redis.call('GET', KEYS[2]) or '0')
local ahead = math.max(bot_next, tonumber(redis.call('GET', KEYS[6]) or '0'))
local lane = 'free'
local paid_after = tonumber(ARGV[7])
if paid_after >= 0 and (ahead - now > paid_after or redis.call('EXISTS', KEYS[9]) == 1) then
  local cost = tonumber(ARGV[11])
  if spent + cost <= tonumber(ARGV[9]) then
    local start = math.max(now, tonumber(redis.call('GET', KEYS[7]) or '0'))
    if chat_next > start then
      return {tostring(-(chat_next - now)), 'paid', spent}
    end
    local wait = start - now
    if wait > max_wait then
      return {tostring(-wait), 'paid', spent}
    end
    keep(KEYS[7], start + tonumber(ARGV[8]) * cost)
    keep(KEYS[2], start + tonumber(ARGV[2]))
    spent = redis.call('INCRBY', KEYS[8], cost)
    redis.call('EXPIRE', KEYS[8], tonumber(ARGV[10]))
    return {tostring(wait), 'paid', spent}
  end
  lane = 'over'
end
local start = math.max(now, bot_next)
if chat_next > start then
  return {tostring(-(chat_next - now)), lane, spent}
end
local horizon = tonumber(ARGV[6])
if horizon >= 0 and ahead - now > horizon then
  if ARGV[12] == '1' then
    return {tostring(-(ahead - now)), lane, spent}
  end
  local turn = math.max(tonumber(redis.call('GET', KEYS[5]) or '0'), ahead - horizon)
  local after = turn + tonumber(ARGV[1])
  redis.call('SET', KEYS[5], tostring(after), 'PX', math.ceil((after - now) * 1000) + 1000)
  return {tostring(-(turn - now)), lane, spent}
end
local wait = start - now
if wait > max_wait and not holding then
  return {tostring(-wait), lane, spent}
end
local bot_after = start + tonumber(ARGV[1])
local chat_after = start + tonumber(ARGV[2])
redis.call('SET', KEYS[1], tostring(bot_after), 'PX', math.ceil((bot_after - now) * 1000) + 1000)
redis.call('SET', KEYS[2], tostring(chat_after), 'PX', math.ceil((chat_after - now) * 1000) + 1000)
if wait > max_wait then
  local keep = math.ceil((wait + tonumber(ARGV[5])) * 1000) + 1000
  redis.call('SET', KEYS[3], tostring(start), 'PX', keep)
  return {tostring(-wait), lane, spent}
end
return {tostring(wait), lane, spent}
"""

# KEYS: the pause. ARGV: seconds. Extends the pause to now + seconds, never shortens it.
_PAUSE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
"""
PAUSE_KEY = "kadr:tg-pause"
BOT_KEY = "kadr:tg-next:bot"
LINE_KEY = "kadr:tg-line:results"
PAID_KEY = "kadr:tg-next:paid"
PAID_PLACED_KEY = "kadr:tg-paid:placed"


def paid_sends_key(day: date) -> str:
    """Paid sends counted per UTC day, against the day's Stars budget."""
    return f"kadr:tg-paid:{day.isoformat()}"


# KEYS: bot-wide key, the line of results, the pause, today's paid sends, the mark of results
# placed in the paid lane. ARGV: bot interval, how far the line must reach for the paid lane
# (negative: off), paid sends allowed today, PAID_GRACE.
# Returns how far the caller's turn is: after every turn given out, every moment reserved and
# the pause; in the paid lane, after the pause only.
_PLACE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local paused = math.max(now, tonumber(redis.call('GET', KEYS[3]) or '0'))
local turn = math.max(paused, tonumber(redis.call('GET', KEYS[1]) or '0'),
  tonumber(redis.call('GET', KEYS[2]) or '0'))
local paid_after = tonumber(ARGV[2])
if paid_after >= 0 and turn - now > paid_after
    and tonumber(redis.call('GET', KEYS[4]) or '0') < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[5], '1', 'PX', math.ceil((paused - now + tonumber(ARGV[4])) * 1000))
  return tostring(paused - now)
end
local after = turn + tonumber(ARGV[1])
redis.call('SET', KEYS[2], tostring(after), 'PX', math.ceil((after - now) * 1000) + 1000)
return tostring(turn - now)
"""

# KEYS: the line of results, the bot-wide key, the yielding lane. Returns how far ahead the
# line of results reaches, and how far the line, every reserved moment and the lane reach.
_BACKLOG = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local line = tonumber(redis.call('GET', KEYS[1]) or '0')
local sends = math.max(line, tonumber(redis.call('GET', KEYS[2]) or '0'),
  tonumber(redis.call('GET', KEYS[3]) or '0'))
return {tostring(math.max(line - now, 0)), tostring(math.max(sends - now, 0))}
"""

# KEYS: the pause. Returns how long it still lasts (0: none).
_PAUSED = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
return tostring(math.max(tonumber(redis.call('GET', KEYS[1]) or '0') - now, 0))
"""


@dataclass(frozen=True)
class Backlog:
    """Seconds until the results in line are out (`results`) and until a reply that yields
    could go (`sends`); `interval`: seconds between two of the bot's sends."""

    results: float
    sends: float
    interval: float

    @property
    def results_waiting(self) -> int:
        return round(self.results / self.interval)


@dataclass(frozen=True)
class SendLimits:
    total_per_second: float = 30
    private_per_second: float = 1
    group_per_minute: float = 20
    #: Paid broadcasts: how far the line of results must reach, in seconds, for sends that
    #: may be paid to go paid; None: never.
    paid_after: float | None = None
    paid_per_second: float = 1000
    #: Paid messages a UTC day may take before sends fall back to free moments.
    paid_per_day: int = 0


@dataclass(frozen=True)
class Moment:
    """A reserved moment to send: `paid` goes with allow_paid_broadcast; `over_budget`: it
    would have, but the day's budget is spent; `paid_today`: paid sends so far today."""

    paid: bool = False
    over_budget: bool = False
    paid_today: int = 0


class TelegramLimiter:
    def __init__(self, redis: Redis, limits: SendLimits | None = None) -> None:
        limits = limits or SendLimits()
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._pause = redis.register_script(_PAUSE)
        self._paused = redis.register_script(_PAUSED)
        self._place = redis.register_script(_PLACE)
        self._backlog = redis.register_script(_BACKLOG)
        self._bot_interval = 1 / limits.total_per_second
        self._private_interval = 1 / limits.private_per_second
        self._group_interval = 60 / limits.group_per_minute
        self._paid_after = -1.0 if limits.paid_after is None else limits.paid_after
        self._paid_interval = 1 / limits.paid_per_second
        self._paid_per_day = limits.paid_per_day

    async def _try(
        self,
        chat_id: int,
        max_wait: float,
        *,
        holding: bool,
        yielding: bool = False,
        paid: bool = False,
        messages: int = 1,
        optional: bool = False,
    ) -> tuple[float, Moment]:
        interval = self._private_interval if chat_id > 0 else self._group_interval
        keys = [
            BOT_KEY,
            f"kadr:tg-next:{chat_id}",
            f"kadr:tg-held:{chat_id}",
            PAUSE_KEY,
            "kadr:tg-lane:yielding",
            LINE_KEY,
            PAID_KEY,
            paid_sends_key(_today()),
            PAID_PLACED_KEY,
        ]
        horizon = (0.0 if optional else YIELD_HORIZON) if yielding else -1
        paid_after = self._paid_after if paid else -1
        args = [
            self._bot_interval,
            interval,
            max_wait,
            int(holding),
            HELD_GRACE,
            horizon,
            paid_after,
            self._paid_interval,
            self._paid_per_day,
            PAID_DAY_TTL,
            messages,
            int(optional),
        ]
        wait, lane, spent = await self._reserve(keys=keys, args=args)
        lane = lane.decode() if isinstance(lane, bytes) else lane
        moment = Moment(paid=lane == "paid", over_budget=lane == "over", paid_today=int(spent))
        return float(wait), moment

    async def acquire(
        self,
        chat_id: int,
        *,
        max_wait: float = MAX_INLINE_WAIT,
        yielding: bool = False,
        paid: bool = False,
        messages: int = 1,
    ) -> Moment:
        """Reserve the next free moment for a message to `chat_id` and wait for it; when that
        is more than `max_wait` away, hold it for the chat and raise RetryLater until then.
        `yielding`: results waiting go first; `paid`: the send may go as a paid broadcast
        (see the module's docstring), paying for `messages` (an album pays for each).

        A process that was stalled (CPU starved, long GC) wakes past its moment together with
        every other sender it holds; sending then would be a burst. So a sender that wakes
        late gives its moment up and reserves a fresh one.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while True:
            left = max(deadline - loop.time(), 0.0)
            wait, moment = await self._try(
                chat_id, left, holding=True, yielding=yielding, paid=paid, messages=messages
            )
            if wait < 0:
                # Not yet: a moment is held for -wait seconds from now, the chat is busy, the
                # bot is paused, or results are waiting (a yielding sender's turn comes).
                if loop.time() - wait > deadline:
                    early = min(EARLY_RETURN, max_wait / 2)
                    raise RetryLater(max(-wait - early, 0.0), "telegram send limit")
                await asyncio.sleep(-wait)
                continue
            due = loop.time() + wait
            if wait > 0:
                await asyncio.sleep(wait)
                if float(await self._paused(keys=[PAUSE_KEY])) > 0:
                    continue
            # A paid moment late is no burst past the free rate: the paid lane allows 1,000/s.
            if moment.paid or loop.time() - due <= self._bot_interval / 2:
                return moment

    async def place_in_line(self) -> float:
        """A place in the line of results for a task queued now: how long the queue should
        keep the task back so that it comes `EARLY_RETURN` before its turn (0: at once)."""
        keys = [BOT_KEY, LINE_KEY, PAUSE_KEY, paid_sends_key(_today()), PAID_PLACED_KEY]
        args = [self._bot_interval, self._paid_after, self._paid_per_day, PAID_GRACE]
        turn = float(await self._place(keys=keys, args=args))
        return max(turn - EARLY_RETURN, 0.0)

    async def try_acquire(self, chat_id: int) -> bool:
        """Take a moment only if one is free now and no result waits in line: for optional
        sends such as progress edits, which must never push a result's moment back."""
        wait, _ = await self._try(chat_id, 0.0, holding=False, yielding=True, optional=True)
        return wait == 0.0

    async def spend_budget(self) -> None:
        """Telegram refused a paid send for the bot's Stars balance: no more paid sends today,
        in any process (each would be refused, then sent free)."""
        key = paid_sends_key(_today())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, self._paid_per_day, ex=PAID_DAY_TTL)
            await pipe.execute()

    async def paid_today(self) -> int:
        """Paid sends so far today (UTC), in every process."""
        return int(await self._redis.get(paid_sends_key(_today())) or 0)

    async def backlog(self) -> Backlog:
        """How far ahead the results in line and every reserved moment reach (for the
        estimate a status message shows, and whether one is worth sending)."""
        line, sends = await self._backlog(keys=[LINE_KEY, BOT_KEY, "kadr:tg-lane:yielding"])
        return Backlog(results=float(line), sends=float(sends), interval=self._bot_interval)

    async def pause(self, seconds: float) -> None:
        """Telegram answered 429: no sender of this bot, in any process, sends for `seconds`
        (Telegram's flood control is per bot, so one chat's 429 is everybody's)."""
        await self._pause(keys=[PAUSE_KEY], args=[seconds])


def _today() -> date:
    return datetime.now(UTC).date()
