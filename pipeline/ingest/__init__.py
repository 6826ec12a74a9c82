"""Ingest: fetch feeds (guarded HTTP, conditional GET), parse them (feedparser behind pre-checks) and
normalise entries (clean text, canonical URLs, UTC dates, language, stable keys)."""
