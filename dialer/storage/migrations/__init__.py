"""Alembic migrations, shipped inside the package so ``dialer db upgrade`` works when installed."""
