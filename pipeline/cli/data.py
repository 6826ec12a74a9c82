"""Labelled data: ``corpus``, ``label`` and ``labels``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pipeline.cli.common import config_from_args, now_utc, print_json
from pipeline.cli.models import metric
from pipeline.errors import InputError, SanctionsWatchError

log = logging.getLogger("sanctions_watch")


def cmd_corpus(args: argparse.Namespace) -> int:
    from pipeline.training.corpus import (
        ALIASES_PATH,
        check_items,
        load_aliases,
        load_items,
        split_frozen_test,
    )

    if args.corpus_command == "check":
        # Every problem, not only the first: items are read without the shape check here.
        items = load_items([Path(p) for p in args.data], require_labels=False)
        frozen_path = Path(args.test)
        frozen = load_items([frozen_path], require_labels=False) if frozen_path.exists() else []
        # The hold-out and the alias decisions sit next to the frozen split's folder
        # (data/holdout, data/test/event_aliases.json).
        base = frozen_path if frozen_path.is_dir() else frozen_path.parent
        holdout_path = base.parent / "holdout"
        alias_path = base / ALIASES_PATH.name
        holdout = load_items([holdout_path], require_labels=False) if holdout_path.is_dir() else []
        report = check_items(
            items,
            frozen=frozen,
            holdout=holdout,
            aliases=load_aliases(alias_path),
            alias_file=str(alias_path),
        )
        print_json(report.as_dict())
        for warning in report.warnings:
            log.warning("%s", warning)
        return 1 if report.problems else 0
    items = load_items([Path(p) for p in args.data])
    test_path = Path(args.test)
    if test_path.is_dir():  # the frozen split's folder: the short items' file in it
        test_path = test_path / "frozen.jsonl"
    if test_path.exists() and not args.force:
        raise SanctionsWatchError(
            f"{test_path} exists: the test split is frozen (use --force to remake it)"
        )
    _, test = split_frozen_test(items)
    test_path.parent.mkdir(parents=True, exist_ok=True)
    with test_path.open("w", encoding="utf-8") as fh:
        for item in test:
            fh.write(
                json.dumps(
                    {k: v for k, v in item.items() if not k.startswith("_")}, ensure_ascii=False
                )
                + "\n"
            )
    print(
        f"wrote {len(test)} items from {len({i['event_id'] for i in test})} events to {test_path}"
    )
    return 0


def analyst(args: argparse.Namespace) -> str:
    import getpass

    return str(args.by or getpass.getuser())


def cmd_label(args: argparse.Namespace) -> int:
    """``label ID --relevant|--not-relevant|--unsure``: one label event, on an article (or with
    ``--alert``, on the article an alert is about)."""
    from pipeline.jobs import Runtime
    from pipeline.review.labels import record_label

    with Runtime.open(config_from_args(args)) as rt, rt.sessions() as session, session.begin():
        record = record_label(
            session,
            label=args.label,
            analyst=analyst(args),
            now=now_utc(),
            via="cli",
            article_id=None if args.alert else args.id,
            alert_id=args.id if args.alert else None,
            note=args.note,
        )
    assert record is not None
    print(
        f"article {record.article_id}: {record.label} by {record.analyst} "
        f"(scored {metric(record.score)} by model {record.model_version or '-'}; label event {record.id})"
    )
    return 0


def cmd_labels(args: argparse.Namespace) -> int:
    """``labels export [--out FILE]`` (corpus-format JSON lines) and ``labels import FILE``."""
    from pipeline.jobs import Runtime
    from pipeline.review.labels import export_labels, import_labels
    from pipeline.review.quality import label_quality

    with Runtime.open(config_from_args(args)) as rt, rt.sessions() as session, session.begin():
        if args.labels_command == "quality":
            quality = label_quality(session, margin=args.margin)
            print_json(quality.as_dict())
            return 1 if quality.conflicts or quality.model_disagrees else 0
        if args.labels_command == "export":
            lines = [json.dumps(i, ensure_ascii=False) + "\n" for i in export_labels(session)]
            if args.out:
                Path(args.out).write_text("".join(lines), encoding="utf-8")
                print(f"wrote {len(lines)} labelled items to {args.out}")
            else:
                sys.stdout.write("".join(lines))
            return 0
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{args.file}: cannot be read: {err}") from err
        report = import_labels(session, text.splitlines(), analyst=analyst(args), now=now_utc())
    print_json(report.as_dict())
    return 1 if report.problems else 0
