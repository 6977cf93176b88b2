"""Opening a Mini App as Telegram's clients do: the page's URL with `#tgWebAppData=…`, the
initData Telegram signs with the bot's token (HMAC-SHA256 under HMAC-SHA256("WebAppData",
token), over the sorted `key=value` lines), which the bot's server checks."""

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import quote, urlencode

from .state import User

WEB_APP_VERSION = "8.0"


def init_data(token: str, user: User, *, auth_date: int | None = None) -> str:
    fields = {
        "query_id": f"AAH{secrets.token_urlsafe(12)}",
        "user": json.dumps(user.as_telegram(), separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
    }
    fields["hash"] = sign(token, fields)
    return urlencode(fields)


def sign(token: str, fields: dict[str, Any]) -> str:
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")
    return hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def launch_url(url: str, data: str) -> str:
    """The URL a client opens: Telegram passes the launch parameters in the fragment."""
    params = f"tgWebAppData={quote(data, safe='')}&tgWebAppVersion={WEB_APP_VERSION}"
    return f"{url}#{params}&tgWebAppPlatform=web"
