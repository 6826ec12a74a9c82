"""Running the pipeline: ``run-once``, ``score``, ``db`` and ``review``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import uuid
from typing import Any, BinaryIO, TextIO

from pipeline.cli.common import close_model, config_from_args, load_model, now_utc
from pipeline.errors import InputError

log = logging.getLogger("sanctions_watch")


def cmd_run_once(args: argparse.Namespace) -> int:
    from pipeline.jobs import Runtime, run_once

    # Opening the runtime migrates the schema, once, before the stages run.
    with Runtime.open(config_from_args(args)) as rt:
        summary = run_once(rt, now=now_utc(), run_id=f"cli-{uuid.uuid4().hex[:12]}")
    out = summary.as_dict()
    if args.json:
        sys.stdout.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
    else:
        for key, value in out.items():
            print(f"{key:>18}: {value}")
    return 1 if summary.feeds_failed and not summary.feeds_ok else 0


BOM = b"\xef\xbb\xbf"


def score_item(raw: bytes, number: int) -> dict[str, Any]:
    """One input line (bytes) → an item; raises :class:`InputError` naming what is wrong.

    Each line is decoded on its own, so a line in another encoding (Latin-1, UTF-16) is one bad
    line, not the end of the run; an escaped lone surrogate (``"\\ud800"``) is refused here too,
    since it could not be written back out as UTF-8.
    """
    from pipeline.classify.scoring import parse_line

    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})"
        ) from err
    item = parse_line(line)
    try:
        json.dumps(item, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError("contains an escaped lone surrogate, which is not text") from err
    return item


def cmd_score(
    args: argparse.Namespace, stdin: BinaryIO | None = None, stdout: TextIO | None = None
) -> int:
    """JSON lines in (id, title, summary, body, lang) → JSON lines out (id, score, flagged, ...).

    Output lines keep the input order; a bad line (not UTF-8, not JSON, not an item) is reported on
    stderr with its number and, in its place, as ``{"line": N, "error": ...}``; the other lines are
    scored.
    """
    from pipeline.classify.scoring import BatchScorer
    from pipeline.knowledge.regimes import load_regimes

    source = stdin if stdin is not None else sys.stdin.buffer
    sink = stdout if stdout is not None else sys.stdout

    config = config_from_args(args)
    if args.embed_workers:
        config = dataclasses.replace(config, embed_workers=args.embed_workers)
    model = load_model(config, args.model)
    regimes_path = config.config_dir / "regimes.yaml"
    scorer = BatchScorer(model, load_regimes(regimes_path), model_dir=config.model_dir,
                         regimes_path=regimes_path, processes=args.processes)  # fmt: skip
    errors = 0

    def segments() -> Any:
        """Batches of valid items, with error lines emitted between them in input order."""
        nonlocal errors
        batch: list[dict[str, Any]] = []
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                batch.append(score_item(line, number))
            except InputError as err:
                errors += 1
                print(f"sanctions-watch score: line {number}: {err}", file=sys.stderr)
                if batch:
                    yield batch
                    batch = []
                yield json.dumps({"line": number, "error": str(err)})
                continue
            if len(batch) >= args.batch:
                yield batch
                batch = []
        if batch:
            yield batch

    # Errors are strings, batches are lists: score the batches, pass the errors through, in order.
    pending: list[Any] = []

    def drain() -> None:
        for lines in scorer.run(b for b in pending if isinstance(b, list)):
            for out in lines:
                sink.write(out + "\n")
        pending.clear()

    try:
        for segment in segments():
            if isinstance(segment, str):
                drain()
                sink.write(segment + "\n")
            else:
                pending.append(segment)
                if len(pending) >= 16:
                    drain()
        drain()
    finally:
        scorer.close()
        close_model(model)
    return 1 if errors else 0


def cmd_db(args: argparse.Namespace) -> int:
    from pipeline.store.db import downgrade_database, make_engine, redact_db_url, upgrade_database

    config = config_from_args(args)
    engine = make_engine(config.database_url)
    try:
        if args.db_command == "upgrade":
            upgrade_database(engine, args.revision)
        else:
            downgrade_database(engine, args.revision)
    finally:
        engine.dispose()
    print(f"database {redact_db_url(config.database_url)} at {args.revision}")
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """``review serve``: the analysts' review page (its own login); ``review add-analyst NAME``:
    create or reset an account (the password read from the terminal, or one line of stdin)."""
    config = config_from_args(args)
    if args.review_command == "add-analyst":
        import getpass

        from pipeline.review.auth import add_user

        if config.review.users_file is None:
            raise InputError("review.users_file is not set")
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {args.name}: ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        add_user(config.review.users_file, args.name, password)
        print(f"analyst {args.name} can log in to the review page")
        return 0
    import uvicorn

    from pipeline.jobs import Runtime
    from pipeline.review.app import create_app

    with Runtime.open(config):  # migrates the schema once, like every CLI command
        pass
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")
    return 0
