"""A stand-in for fal.ai (queue, storage, CDN, signed webhooks) for tests, demo and benchmarks."""

from sandbox.fal.app import create_app

__all__ = ["create_app"]
