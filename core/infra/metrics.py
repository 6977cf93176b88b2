"""Prometheus metrics kadr defines itself (HTTP request metrics of the routes FastAPI serves
come from the instrumentator; the Telegram webhook, which FastAPI does not serve, counts its own).

api and each worker expose their own registry; Prometheus sums across processes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

TELEGRAM_UPDATES = Counter(
    "kadr_telegram_updates_total",
    "Telegram updates by type and outcome: at the webhook (accepted, duplicate, rejected, "
    "unavailable; type 'any') and in the consumers (handled, redelivered, dead_lettered).",
    ["type", "outcome"],
)
TELEGRAM_WEBHOOK_SECONDS = Histogram(
    "kadr_telegram_webhook_seconds",
    "Time the Telegram webhook took to answer a post, whatever the answer.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
FAL_WEBHOOKS = Counter("kadr_fal_webhooks_total", "fal webhooks by outcome.", ["outcome"])
JOBS_CREATED = Counter("kadr_jobs_created_total", "Jobs accepted, by mode.", ["mode"])
JOBS_FINISHED = Counter(
    "kadr_jobs_finished_total",
    "Jobs that reached a final state, by mode and outcome.",
    ["mode", "outcome"],
)
STAGE_SECONDS = Histogram(
    "kadr_job_stage_seconds",
    "Time a job spent in each stage: queued (until submitted), fal (until the result came), "
    "delivery (until sent), total (accepted to sent).",
    ["mode", "stage"],
    buckets=STAGE_BUCKETS,
)
FAL_CALLS = Counter(
    "kadr_fal_calls_total", "Calls to fal by operation and outcome.", ["op", "outcome"]
)
TELEGRAM_CALLS = Counter(
    "kadr_telegram_calls_total",
    "Bot API calls by method and outcome (replayed: a handler run again got its earlier "
    "answer back instead of sending again).",
    ["method", "outcome"],
)
TELEGRAM_THROTTLED = Counter(
    "kadr_telegram_throttled_total",
    "Sends postponed: by our limiter or by Telegram's 429.",
    ["source"],
)
TASKS = Counter("kadr_tasks_total", "Worker task runs by task and outcome.", ["task", "outcome"])
TASK_SECONDS = Histogram(
    "kadr_task_seconds", "Worker task run time.", ["task"], buckets=STAGE_BUCKETS
)
QUEUE_DEPTH = Gauge("kadr_queue_depth", "Jobs in an arq queue (due now or deferred).", ["queue"])
QUEUE_DUE = Gauge("kadr_queue_due", "Jobs in an arq queue that are due now.", ["queue"])
QUEUE_OLDEST_AGE = Gauge(
    "kadr_queue_oldest_age_seconds", "How long the oldest due job has waited.", ["queue"]
)
INBOX_DEPTH = Gauge("kadr_inbox_depth", "Telegram updates stored and not yet handled.")
INBOX_OLDEST_AGE = Gauge(
    "kadr_inbox_oldest_age_seconds", "How long the oldest unhandled update has waited."
)
INBOX_DEAD = Gauge("kadr_inbox_dead_letters", "Updates whose handler kept failing, kept aside.")
OUTBOX_WAITING = Gauge(
    "kadr_outbox_waiting", "Bot API sends of this process waiting for their moment to go."
)
OUTBOX_OLDEST_WAIT = Gauge(
    "kadr_outbox_oldest_wait_seconds", "How long the longest-waiting send has waited."
)
CREDITS_RESERVED = Counter(
    "kadr_credits_reserved_total",
    "Credits reserved by accepted jobs, by kind (free, paid).",
    ["kind"],
)
CREDITS_REFUNDED = Counter(
    "kadr_credits_refunded_total",
    "Credits given back by jobs that ended without a result, by kind (free, paid).",
    ["kind"],
)
CREDITS_BOUGHT = Counter("kadr_credits_bought_total", "Credits bought with Telegram Stars.")
STARS_EARNED = Counter(
    "kadr_stars_earned_total", "Telegram Stars paid for credits (each payment credited once)."
)
STAR_DOLLARS = Gauge(
    "kadr_star_dollars", "Dollars one Telegram Star brings the operator, as the catalog says."
)
FAL_SPEND = Counter(
    "kadr_fal_spend_dollars_total",
    "Dollars fal bills for the results it made, as the catalog estimates them, by model and by "
    "what paid the job's credits (free, paid, none: an admin's job or a model sold for 0).",
    ["model", "paid_with"],
)
PAYMENTS = Counter(
    "kadr_payments_total",
    "Telegram Stars payments by outcome: pre-checkout answered ok or refused, a payment "
    "credited, a duplicate of one already credited, invalid (not our payload), refunded; "
    "a subscription's periods as subscription_credited and subscription_duplicate.",
    ["outcome"],
)
REFERRALS = Counter(
    "kadr_referrals_total",
    "Invitations by outcome: recorded (a newcomer came by a link), refused (not new, their "
    "own link, an unknown inviter, invited before), credited (both sides paid on the "
    "newcomer's first delivery), capped (the inviter was past the daily cap).",
    ["outcome"],
)
CREDIT_REFUSALS = Counter(
    "kadr_credit_refusals_total", "Requests refused for lack of credits, by mode.", ["mode"]
)
