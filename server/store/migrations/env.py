"""Alembic's entry: always run on the connection ``engine.migrate`` hands over (no ini file)."""

from alembic import context

from server.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
