"""What a task waits out (a server away) and what it counts as its own failure."""

from __future__ import annotations

import pytest
from asyncpg.exceptions import ConnectionDoesNotExistError, InternalClientError
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.infra.retry import is_broken_connection, is_outage


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "outage"),
    [("53300", True), ("08006", True), ("57P01", True), ("23505", False), ("42P01", False)],
    ids=["too many clients", "connection failure", "admin shutdown", "unique", "no table"],
)
def test_database_errors_about_the_server_are_waited_out_not_counted(
    sqlstate: str, outage: bool
) -> None:
    error = DBAPIError("SELECT 1", None, _PgError(sqlstate))
    assert is_outage(error) is outage


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("translated") from cause
    except RuntimeError as error:
        return error


@pytest.mark.parametrize(
    "broken",
    [
        InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ],
    ids=["state machine stuck", "closed mid-operation"],
)
def test_a_connection_broken_by_a_crash_is_an_outage_raised_or_wrapped(
    broken: Exception,
) -> None:
    wrapped = DBAPIError("SELECT 1", None, _raised_from(broken))
    for error in (broken, _raised_from(broken), wrapped):
        assert is_broken_connection(error)
        assert is_outage(error)


def test_a_statement_the_database_refuses_is_not_an_outage() -> None:
    error = IntegrityError("INSERT", None, _PgError("23505"))
    assert not is_outage(error)
    assert not is_broken_connection(error)
