"""The conversation: one aiogram Router per feature, in the order bot/dispatcher.py gives.

**The replay rule: a handler run again for the same update makes the same Bot API calls, in
the same order, with the same arguments** (it may stop short, when it finds its work done).

Why: an update leaves the durable inbox only after its handler finished (workers/updates.py).
A handler that raised, or whose process died, runs again from the start, maybe after some of
its messages went out. Its Bot (the `bot` argument, and the one `message.answer()`,
`query.answer()` and the like use) is `Outbox.reply(update_id)` (core/telegram/outbox.py),
which numbers the run's calls and answers the n-th call of a later run with what the n-th
call of the earlier run got back, when the method is the same, instead of calling Telegram
again. A run that calls in another order gets another call's answer (a wrong message id),
or sends again what the user already has; one that decides differently loses what the first
run was doing.

How handlers keep it:
- Decide from the update and from what is keyed by it, not from what an earlier run of it
  changed: a job's id follows from its update (bot/launch.py, so a second run finds the job
  and sends nothing new), a grant's ledger entry is keyed by its update (admin.py), a refund
  says what it took back the first time (core/domain/credits.py).
- Put randomness and the clock into what is stored, not into the calls before it.
- Reads (get*) are asked every time and not numbered; they may differ.

tests/bot/test_replay.py runs every router's handlers twice for one update and fails when
the second run's calls are not the first run's; it lists the handlers that break the rule
today.
"""
