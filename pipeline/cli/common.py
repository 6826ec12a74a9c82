"""Shared by the commands: the clock, the config, loading and closing models, JSON output."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger("sanctions_watch")


REPO = Path(__file__).resolve().parents[2]


def now_utc() -> datetime:
    return datetime.now(UTC)


def config_from_args(args: argparse.Namespace) -> Any:
    from pipeline.config import load_config
    from pipeline.logs import install, secrets_of, use_format

    config = load_config(args.config)
    install(secrets_of(config))  # log records: context fields, secrets masked
    use_format(config.logging.format)
    return config


def load_model(config: Any, version: str | None) -> Any:
    """The named model version, or the active one (falling back to the previous if refused)."""
    from pipeline.classify.registry import load_active, load_version

    if version:
        return load_version(config.model_dir, version, embed_workers=config.embed_workers)
    return load_active(
        config.model_dir, threshold=config.threshold, embed_workers=config.embed_workers
    )


def close_model(model: Any) -> None:
    """Stop the embedding worker processes, if the model has any."""
    if hasattr(model.embedder, "close"):
        model.embedder.close()


def print_json(obj: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def corpus_paths(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    from pipeline.training.corpus import load_items

    corpus = load_items([Path(p) for p in args.data])
    test_path = Path(args.test)
    test = load_items([test_path]) if test_path.exists() else []
    return corpus, test
