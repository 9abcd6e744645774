"""PostgreSQL: migrations and repositories (asyncpg)."""
