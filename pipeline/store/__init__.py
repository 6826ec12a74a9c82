"""Storage: engines and migrations (SQLite embedded, PostgreSQL in production), the tables, and the
article store (one transaction per feed, deduplication, sightings, fetch log)."""
