"""Why a job failed, as one code of a fixed set: what `jobs.error` holds and what metrics count.

fal's error types are free-form and unbounded: stored as they come they overflowed
`jobs.error` (VARCHAR(64): PostgreSQL refused the row, so the webhook answered 500 and fal
retried it for hours) and every new one was a new label of `kadr_jobs_finished_total`. A code
here is short, is a label Prometheus can afford, and is the key of the text the user gets
(`error_<code>` in `bot/locales/*/LC_MESSAGES/messages.po`; a code without a text gets the
generic one). fal's own type, when it is not a code, is kept in `jobs.error_detail`.
"""

from __future__ import annotations

from typing import Final

#: Every code a job can fail with. A new failure reason is added here (and usually a text).
CODES: Final = frozenset(
    {
        "cancelled",
        "content_policy_violation",
        "fal_error",
        "fal_rejected",
        "fal_unavailable",
        "model_unavailable",
        "no_media_generated",
        "photo_not_an_image",
        "photo_too_big",
        "photo_too_large_dimensions",
        "photo_too_small_dimensions",
        "photo_unreadable",
        "result_url_refused",
        "timeout",
        "undeliverable",
    }
)

#: fal's error types (fal's docs, "Errors"; `sandbox/fal/queue.py` answers them) that mean
#: something the bot explains better than "the model could not finish". Input errors about
#: fal's own limits (`image_too_large`, `file_too_large`, `file_download_error`) stay
#: `fal_error`: the photo texts quote kadr's limits, which are not fal's.
FAL_TYPES: Final = {
    "content_policy_violation": "content_policy_violation",
    "no_media_generated": "no_media_generated",
    "request_timeout": "timeout",
    "runner_disconnected": "fal_unavailable",
}

GENERIC_FAL = "fal_error"
#: Enough of a raw error type to recognise it in the detail; fal's are a few words long.
RAW_TYPE_LIMIT = 200


def error_code(error: str) -> str:
    """`error` if it is a code, the code of a known fal type, else the generic fal error."""
    if error in CODES:
        return error
    return FAL_TYPES.get(error, GENERIC_FAL)


def clean_text(text: str, limit: int) -> str:
    """At most `limit` characters of `text` that any database stores: PostgreSQL's text
    refuses NUL, which a JSON body can carry as \\u0000."""
    return text.replace("\x00", "")[:limit]


def error_detail(error: str, detail: str, limit: int) -> str:
    """The detail to store with `error_code(error)`: the raw error first when it is not a
    code itself, so fal's exact type is kept where its length harms nothing."""
    if error in CODES:
        return clean_text(detail, limit)
    raw = clean_text(error, RAW_TYPE_LIMIT)
    return clean_text(f"{raw}: {detail}" if detail else raw, limit)
