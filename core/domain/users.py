"""The users repository: one upsert per update keeps the row fresh without a read first."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core.domain.models import User, utcnow

LANGUAGES = ("en", "ru")


def language_from_code(language_code: str | None) -> str:
    """Russian for Russian-speaking clients, English for everyone else."""
    return "ru" if (language_code or "").lower().startswith("ru") else "en"


async def touch_user(
    session: AsyncSession,
    *,
    user_id: int,
    username: str | None,
    first_name: str | None,
    language_code: str | None,
) -> User:
    """Create the user on first contact, else refresh names and last-seen; the language a
    user chose is kept."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    statement = (
        insert(User)
        .values(
            id=user_id,
            username=username,
            first_name=first_name,
            language=language_from_code(language_code),
            preferences={},
            banned=False,
            created_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_update(
            index_elements=[User.id],
            set_={"username": username, "first_name": first_name, "last_seen_at": now},
        )
        .returning(User)
    )
    user = (await session.scalars(statement, execution_options={"populate_existing": True})).one()
    await session.commit()
    return user


async def set_language(session: AsyncSession, user_id: int, language: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(language=language))
    await session.commit()


async def set_banned(session: AsyncSession, user_id: int, banned: bool) -> bool:
    """Not committed; False for a user kadr never saw."""
    result = await session.execute(update(User).where(User.id == user_id).values(banned=banned))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)
