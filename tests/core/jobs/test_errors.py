"""Job error codes are a fixed set: the bot has a text or the generic one for each, fal's
types map into it, and nothing else reaches the error column or a metric label."""

from __future__ import annotations

import re

import pytest

from bot.i18n import KEYS
from core.jobs.errors import CODES, FAL_TYPES, GENERIC_FAL, error_code, error_detail


def test_every_error_text_is_of_a_code_and_every_mapping_lands_in_the_set() -> None:
    """A text `error_<x>` with no code `x` would never be shown: the code could not be stored."""
    texts = {key.removeprefix("error_") for key in KEYS if key.startswith("error_")}
    assert texts - {"generic"} <= CODES
    assert set(FAL_TYPES.values()) <= CODES
    assert GENERIC_FAL in CODES


def test_codes_fit_the_column_and_are_plain_labels() -> None:
    assert all(re.fullmatch(r"[a-z_]{1,64}", code) for code in CODES)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("timeout", "timeout"),
        ("content_policy_violation", "content_policy_violation"),
        ("no_media_generated", "no_media_generated"),
        ("request_timeout", "timeout"),
        ("runner_disconnected", "fal_unavailable"),
        ("image_too_large", "fal_error"),
        ("x" * 100, "fal_error"),
        ("", "fal_error"),
    ],
)
def test_errors_become_codes(error: str, code: str) -> None:
    assert error_code(error) == code


def test_the_raw_type_goes_into_the_detail_bounded_and_storable() -> None:
    raw = "weird_new_type_" + "y" * 1000
    detail = error_detail(raw, "the \x00 message", 300)
    assert len(detail) <= 300
    assert detail.startswith("weird_new_type_yyy")
    assert "\x00" not in detail
    assert error_detail("timeout", "late", 300) == "late"
    assert error_detail("odd_type", "", 300) == "odd_type"
