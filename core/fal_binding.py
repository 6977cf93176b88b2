"""Binding a fal webhook to its job: an unguessable per-job token in the webhook URL.

fal signs the webhooks of all its customers with the same keys, so a valid signature proves
only that fal sent it, not that it is about a request of ours: anyone with a fal account can
submit a request of their own with our webhook URL and a job id they know (from a button's
callback data, or someone else's in a group) and fal will post a correctly signed "result"
for that job. The token is what they cannot know: an HMAC of the job id under a key derived
from a server secret, given to fal only in the URL of that job's own submit.

The key is derived from TELEGRAM_BOT_TOKEN, the one secret the api (which checks tokens) and
the worker (which makes them) both require (DESIGN.md's configuration contract: the api
does not need FAL_KEY, the worker not TELEGRAM_WEBHOOK_SECRET), under a label of its own so
that the token says nothing about the secret and no other use of it can produce one. Whoever
holds the bot token holds the bot already; nothing new depends on it. Rotating the bot token
unbinds the webhooks of jobs in flight: they are ignored and the sweeper's status check
finishes those jobs instead.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from core.config import Config

_LABEL = b"kadr fal webhook v1"
#: 128 bits of the HMAC, as hex: far past guessing, short enough for a URL.
TOKEN_CHARS = 32
#: Job ids are 32 hex characters; anything much longer is not one of ours.
_MAX_JOB_ID = 64


def _key(config: Config) -> bytes:
    return hmac.new(config.TELEGRAM_BOT_TOKEN.encode(), _LABEL, hashlib.sha256).digest()


def job_token(config: Config, job_id: str) -> str:
    """The token of `job_id`'s webhook URL."""
    digest = hmac.new(_key(config), job_id.encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_CHARS]


def job_webhook_url(config: Config, job_id: str) -> str:
    """The URL fal calls back for this job: the job id and the token that binds it, in the
    path (`/webhooks/fal/<job>/<token>`). No source says fal keeps a webhook URL's query
    string on every retry, and nothing between fal and kadr (a proxy, a redirect) drops a
    path. The api still takes the query form that releases before this one gave fal."""
    return f"{config.fal_webhook_url}/{quote(job_id, safe='')}/{job_token(config, job_id)}"


def is_bound(config: Config, job_id: str | None, token: str | None) -> bool:
    """Whether a webhook's job id and token belong together; compared in constant time so
    that the answer's timing does not spell out the token."""
    if not job_id or not token or len(job_id) > _MAX_JOB_ID or len(token) != TOKEN_CHARS:
        return False
    return hmac.compare_digest(job_token(config, job_id).encode(), token.encode())
