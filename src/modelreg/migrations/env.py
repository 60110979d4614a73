"""Alembic environment: runs migrations on the engine the registry hands over."""

from __future__ import annotations

from alembic import context

from modelreg.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    from modelreg.db import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///modelreg.db")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
