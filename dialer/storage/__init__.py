"""Storage adapter: SQLAlchemy 2 async engine, tables, Alembic migrations, the repository."""
