"""The bare endpoint: FastAPI answering 200 to POST /webhooks/telegram and doing nothing else.

Served by uvicorn with the options `kadr api` uses, on the same machine and at the same rate,
so the webhook's cost can be read as a ratio to this rather than as an absolute time.
`python -m bench.baseline --port P`.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/telegram")
    async def webhook() -> dict[str, str]:
        return {"status": "accepted"}

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
