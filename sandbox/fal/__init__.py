"""A stand-in for fal.ai (queue, storage, CDN, signed webhooks) for tests, demo and benchmarks.

One server plays every fal host: FAL_QUEUE_URL = FAL_REST_URL = its base URL, FAL_RUN_URL =
base + /run (fal.run's synchronous calls), FAL_JWKS_URL = base + /.well-known/jwks.json, the
CDN is base + /cdn. Run it with `python -m sandbox.fal`.

fal's side: POST /{model_id}?fal_webhook=…, GET|PUT /{owner}/{app}/requests/{id}[/status|/cancel],
POST /run/{model_id} (the output in the answer; openrouter/router, the prompt helper's LLM,
answers "A detailed, high quality picture of: <prompt>"; fault kind "run"),
POST /storage/auth/token, POST /cdn/files/upload, GET /cdn/files/{id}/{name}, GET the JWKS.
Model families and their outputs are in models.FAMILIES; a prompt containing
"[content_policy]" fails like fal's content checker.

Control (/_sandbox, JSON): GET requests?kind=&request_id=&since=, GET jobs/{id},
POST jobs/{id}/webhook {copies}, GET|POST config, GET|POST|DELETE faults, POST sign, POST reset.
"""

from sandbox.fal.app import create_app

__all__ = ["create_app"]
