"""Every text exists in both languages, and every key the code asks for by name exists: a
missing one would be a KeyError in front of a user."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.texts import TEXTS

ROOT = Path(__file__).resolve().parents[2]


def test_both_languages_have_the_same_keys() -> None:
    assert set(TEXTS["en"]) == set(TEXTS["ru"])


def test_every_key_asked_for_by_name_exists() -> None:
    asked = {
        (path.relative_to(ROOT).as_posix(), node.args[1].value)
        for package in ("bot", "workers")
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "t"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
    }
    assert asked, "no t(lang, key) call found: the test looks in the wrong place"
    assert [(where, key) for where, key in sorted(asked) if key not in TEXTS["en"]] == []
