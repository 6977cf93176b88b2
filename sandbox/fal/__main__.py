"""`python -m sandbox.fal --host 127.0.0.1 --port 8082 [--latency 0.2] [--fast]`."""

import argparse

import uvicorn

from sandbox.fal import create_app

FAST_LATENCY = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.fal", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument(
        "--latency", type=float, default=0.2, help="seconds a request stays in progress"
    )
    parser.add_argument("--fast", action="store_true", help=f"latency {FAST_LATENCY} s")
    parser.add_argument(
        "--public-url", help="base URL put into handed-out URLs (default: the request's)"
    )
    args = parser.parse_args()
    app = create_app(
        latency=FAST_LATENCY if args.fast else args.latency, public_url=args.public_url
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
