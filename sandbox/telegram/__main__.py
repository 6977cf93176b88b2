"""Serves the Telegram stand-in with uvicorn, for the demo, benchmarks and manual poking."""

import argparse

import uvicorn

from .app import create_app

SHUTDOWN_GRACE = 1  # seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--no-fetch-urls",
        dest="fetch_urls",
        action="store_false",
        help="trust file URLs instead of downloading them like Telegram does",
    )
    parser.add_argument(
        "--enforce-limits",
        action="store_true",
        help="answer 429 above Telegram's flood limits",
    )
    args = parser.parse_args(argv)
    app = create_app(fetch_urls=args.fetch_urls, enforce_limits=args.enforce_limits)
    # Open chat pages hold event streams that never end by themselves; without a bound on
    # the graceful shutdown the stand-in would wait for every browser tab to close.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )


if __name__ == "__main__":
    main()
