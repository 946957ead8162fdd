"""Running Alembic from the application: upgrade on start, and the head for readiness."""

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Indexes only PostgreSQL has (trigram and JSONB GIN), created by migrations outside the models.
POSTGRESQL_ONLY_INDEXES = frozenset(
    {"ix_customer_search_trgm", "ix_company_search_trgm", "ix_customer_tags_gin"}
)


def include_object(
    _object: object, name: str | None, type_: str, _reflected: bool, _compare_to: object
) -> bool:
    """Leaves PostgreSQL-only indexes out of the comparison of models and database."""
    return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES)


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@lru_cache
def head_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads())


async def current_revisions(connection: AsyncConnection) -> frozenset[str]:
    result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return frozenset(row[0] for row in result)
