"""`kadr api` and `kadr worker` started as an operator starts them: a bad configuration, a
broken catalog or an unmigrated database stops them with one line and no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.catalog import DEFAULT_PATH
from sandbox.stack import KADR, TEST_SECRET, TEST_TOKEN


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


def test_a_broken_catalog_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(DEFAULT_PATH.read_text().replace("[modes.text_to_video]", ""))
    env = {
        "PATH": "/usr/bin:/bin",
        "TELEGRAM_BOT_TOKEN": TEST_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": TEST_SECRET,
        "PUBLIC_URL": "http://127.0.0.1:1",
        "FAL_KEY": "k",
        "KADR_CATALOG": str(path),
    }
    result = subprocess.run(
        [*KADR, "worker"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("kadr: configuration error: catalog")
