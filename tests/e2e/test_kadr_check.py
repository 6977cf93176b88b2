"""`kadr check` as an operator runs it against a deployment: every line ok when everything is
in place, and the broken part named, with exit code 1 and no secret, when something is not."""

from __future__ import annotations

import subprocess

from sandbox.stack import KADR, TEST_FAL_KEY, TEST_SECRET, TEST_TOKEN, Stack
from tests.builders import catalog_with_todays_veo


def kadr_check(stack: Stack, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KADR, "check"],
        env=stack.env(**env),
        cwd=stack.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_healthy_deployment_passes_every_check(stack: Stack) -> None:
    checked = kadr_check(stack)
    lines = checked.stdout.splitlines()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(lines) == 7 and all(line.startswith("ok ") for line in lines)


def test_what_is_broken_is_named_and_no_secret_is_shown(stack: Stack) -> None:
    catalog = stack.workdir / "todays-veo.toml"
    catalog.write_text(catalog_with_todays_veo())
    checked = kadr_check(
        stack,
        REDIS_URL="redis://127.0.0.1:1/0",
        FAL_KEY="",
        PUBLIC_URL="https://elsewhere.example",
        KADR_CATALOG=str(catalog),
    )
    failed = {line.split(":")[0] for line in checked.stdout.splitlines() if line.startswith("FAIL")}
    assert checked.returncode == 1
    assert failed == {
        "FAIL worker configuration",
        "FAIL redis",
        "FAIL fal key",
        "FAIL telegram token and webhook",
        "FAIL catalog prices cover fal's costs",
    }
    assert "run `kadr set-webhook`" in checked.stdout
    assert "fal-ai/veo3.1/fast sells for 60 credits ($0.65) and costs $1.20" in checked.stdout
    for secret in (TEST_TOKEN, TEST_SECRET, TEST_FAL_KEY):
        assert secret not in checked.stdout + checked.stderr
