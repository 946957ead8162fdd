"""Migrations upgrade and downgrade on both databases, and match the models exactly."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import migrations
from app.db.migrations import include_object
from app.db.registry import Base


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(unmigrated_database_url: str) -> None:
    migrations.upgrade(unmigrated_database_url)
    assert asyncio.run(_tables(unmigrated_database_url)) == set(Base.metadata.tables)
    migrations.downgrade(unmigrated_database_url, "base")
    assert asyncio.run(_tables(unmigrated_database_url)) == set()
    migrations.upgrade(unmigrated_database_url)
    assert asyncio.run(_tables(unmigrated_database_url)) == set(Base.metadata.tables)


async def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_object}
        )
        return list(compare_metadata(context, Base.metadata))

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    assert diff == []
