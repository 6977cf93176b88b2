"""`kadr api` and `kadr worker` started as an operator starts them: a bad configuration, a
broken catalog, a model sold below its margin or an unmigrated database stops them with one
line and no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.domain.catalog import DEFAULT_PATH
from sandbox.stack import KADR, TEST_SECRET, TEST_TOKEN
from tests.builders import catalog_with_todays_veo


def test_api_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TEST_SECRET,
        "PUBLIC_URL": "http://127.0.0.1:1",
    }
    result = subprocess.run([*KADR, "api"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "database is at migration none" in result.stderr
    assert "run `kadr migrate`" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_prints_one_line_and_no_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"PATH": "/usr/bin:/bin", "TELEGRAM_BOT_TOKEN": "oops"}
    result = subprocess.run([*KADR, "api"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kadr: configuration error: TELEGRAM_BOT_TOKEN: must look like 123456:ABC… "
        "(the token BotFather gave)"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def start(command: str, tmp_path: Path, catalog: str) -> subprocess.CompletedProcess[str]:
    """`kadr <command>` on a catalog of this text, with a configuration it accepts."""
    path = tmp_path / "catalog.toml"
    path.write_text(catalog)
    env = {
        "PATH": "/usr/bin:/bin",
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TEST_SECRET,
        "PUBLIC_URL": "http://127.0.0.1:1",
        "FAL_KEY": "k",
        "KADR_CATALOG": str(path),
    }
    return subprocess.run(
        [*KADR, command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_a_broken_catalog_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    result = start(
        "worker", tmp_path, DEFAULT_PATH.read_text().replace("[modes.text_to_video]", "")
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("kadr: configuration error: catalog")


@pytest.mark.parametrize("command", ["api", "worker"])
def test_a_model_sold_below_its_margin_stops_start_up_with_one_line(
    command: str, tmp_path: Path
) -> None:
    result = start(command, tmp_path, catalog_with_todays_veo())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "kadr: configuration error: catalog: fal-ai/veo3.1/fast sells for 60 credits ($0.65) "
        "and costs $1.20 at fal: a margin of -85 %, under the minimum 20 % (raise its price, "
        "or mark it loss_leader = true)"
    ]


def test_a_loss_leader_starts(tmp_path: Path) -> None:
    text = catalog_with_todays_veo().replace(
        'id = "fal-ai/veo3.1/fast"\n', 'id = "fal-ai/veo3.1/fast"\nloss_leader = true\n'
    )
    result = start("worker", tmp_path, text)
    # Past the catalog, it goes on to the database (none here), as any worker would.
    assert "database is at migration none" in result.stderr, result.stderr
