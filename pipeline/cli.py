"""The ``sanctions-watch`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pipeline.errors import InputError, SanctionsWatchError

log = logging.getLogger("sanctions_watch")

REPO = Path(__file__).resolve().parent.parent


def _now() -> datetime:
    return datetime.now(UTC)


def _config(args: argparse.Namespace) -> Any:
    from pipeline.config import load_config

    return load_config(args.config)


def _load_model(config: Any, version: str | None) -> Any:
    """The named model version, or the active one (falling back to the previous if refused)."""
    from pipeline.classify.registry import load_active, load_version

    if version:
        return load_version(config.model_dir, version, embed_workers=config.embed_workers)
    return load_active(
        config.model_dir, threshold=config.threshold, embed_workers=config.embed_workers
    )


def _close_model(model: Any) -> None:
    """Stop the embedding worker processes, if the model has any."""
    if hasattr(model.embedder, "close"):
        model.embedder.close()


def _print_json(obj: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def cmd_run_once(args: argparse.Namespace) -> int:
    from pipeline.jobs import Runtime, run_once

    rt = Runtime.open(_config(args))
    try:
        summary = run_once(rt, now=_now(), run_id=f"cli-{uuid.uuid4().hex[:12]}")
    finally:
        rt.close()
    if args.json:
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, default=str) + "\n")
    else:
        for key, value in summary.items():
            print(f"{key:>18}: {value}")
    return 1 if summary["feeds_failed"] and not summary["feeds_ok"] else 0


def cmd_score(
    args: argparse.Namespace, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> int:
    """JSON lines in (id, title, summary, body, lang) → JSON lines out (id, score, flagged, ...).

    Output lines keep the input order; a bad line is reported on stderr with its number and, in its
    place, as ``{"line": N, "error": ...}``; the other lines are scored.
    """
    from pipeline.classify.scoring import BatchScorer, parse_line
    from pipeline.knowledge.regimes import load_regimes

    config = _config(args)
    if args.embed_workers:
        config = dataclasses.replace(config, embed_workers=args.embed_workers)
    model = _load_model(config, args.model)
    regimes_path = config.config_dir / "regimes.yaml"
    scorer = BatchScorer(model, load_regimes(regimes_path), model_dir=config.model_dir,
                         regimes_path=regimes_path, processes=args.processes)  # fmt: skip
    errors = 0

    def segments() -> Any:
        """Batches of valid items, with error lines emitted between them in input order."""
        nonlocal errors
        batch: list[dict[str, Any]] = []
        for number, line in enumerate(stdin, 1):
            if not line.strip():
                continue
            try:
                batch.append(parse_line(line))
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
                stdout.write(out + "\n")
        pending.clear()

    try:
        for segment in segments():
            if isinstance(segment, str):
                drain()
                stdout.write(segment + "\n")
            else:
                pending.append(segment)
                if len(pending) >= 16:
                    drain()
        drain()
    finally:
        scorer.close()
        _close_model(model)
    return 1 if errors else 0


def cmd_db(args: argparse.Namespace) -> int:
    from pipeline.store.db import downgrade_database, make_engine, redact_db_url, upgrade_database

    config = _config(args)
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


def _corpus_paths(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    from pipeline.training.corpus import load_items

    corpus = load_items([Path(p) for p in args.data])
    test_path = Path(args.test)
    test = load_items([test_path]) if test_path.exists() else []
    return corpus, test


def cmd_train(args: argparse.Namespace) -> int:
    from pipeline.classify.registry import promote
    from pipeline.training.corpus import training_items
    from pipeline.training.train import train_model

    config = _config(args)
    corpus, test = _corpus_paths(args)
    train = training_items(corpus, test)
    result = train_model(
        train,
        model_dir=config.model_dir,
        now=_now(),
        test=test or None,
        candidates=args.candidates or None,
        folds=args.folds,
        repo_root=REPO,
        embed_workers=args.embed_workers,
    )
    out = {
        "version": result.version,
        "chosen": result.chosen,
        "threshold": result.threshold,
        "cross_validation": result.comparison,
        "test": (result.test_report or {}).get("overall"),
    }
    _print_json(out)
    if args.promote:
        promote(config.model_dir, result.version, now=_now())
        print(f"promoted {result.version}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.classify.model import article_text
    from pipeline.training.corpus import load_items
    from pipeline.training.evaluate import evaluate_items, format_report

    config = _config(args)
    model = _load_model(config, args.model)
    items = load_items([Path(args.data)], require_labels=False)
    missing = [i["_source"] for i in items if i.get("label") not in (0, 1)]
    if missing:
        raise InputError(
            f"{missing[0]}: every item needs a 'label' of 0 or 1 ({len(missing)} without)"
        )
    probs = model.predict_proba(
        [article_text(i.get("title"), i.get("summary"), i.get("body")) for i in items]
    )
    report = evaluate_items(items, probs.tolist(), model.threshold)
    report["model_version"] = model.version
    report["data"] = str(args.data)
    print(f"model {model.version} on {args.data}")
    print(format_report(report))
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"\nreport written to {args.report}")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from pipeline.training.gate import check_gate, evaluate_frozen, load_baseline

    config = _config(args)
    model = _load_model(config, args.model)
    report = evaluate_frozen(model, Path(args.test))
    failures = check_gate(report, load_baseline(Path(args.baseline)))
    o = report["overall"]
    print(
        f"model {model.version} on the frozen test split: F1 {o['f1']} PR-AUC {o['pr_auc']} "
        f"precision {o['precision']} recall {o['recall']}"
    )
    for failure in failures:
        print(f"GATE FAILED: {failure}")
    if not failures:
        print("gate passed")
    return 1 if failures else 0


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline.classify.registry import list_models, promote, rollback

    config = _config(args)
    if args.models_command == "list":
        for info in list_models(config.model_dir):
            m = info.metadata
            test = (m.get("test_metrics") or {}).get("overall") or {}
            print(
                f"{'*' if info.active else ' '} {info.version:<45} {m.get('candidate', '?'):<22} "
                f"threshold {m.get('threshold', '?')}  test F1 {test.get('f1', '-')}  PR-AUC {test.get('pr_auc', '-')}"
            )
    elif args.models_command == "show":
        found = {i.version: i for i in list_models(config.model_dir)}.get(args.version)
        if found is None:
            raise SanctionsWatchError(f"no model {args.version} in {config.model_dir}")
        _print_json({"active": found.active, **found.metadata})
    elif args.models_command == "promote":
        promote(config.model_dir, args.version, now=_now())
        print(f"promoted {args.version}")
    else:
        print(f"rolled back to {rollback(config.model_dir, now=_now())}")
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    from pipeline.training.corpus import check_items, load_items, split_frozen_test

    items = load_items([Path(p) for p in args.data])
    if args.corpus_command == "check":
        report = check_items(items)
        _print_json(report.as_dict())
        return 1 if report.problems else 0
    test_path = Path(args.test)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanctions-watch", description=__doc__)
    parser.add_argument(
        "--config", help="config folder (default: $SANCTIONS_WATCH_CONFIG or ./config)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run-once", help="one full cycle: ingest, classify, record alerts, deliver")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_run_once)

    p = sub.add_parser("score", help="score JSON lines from stdin")
    p.add_argument("--model", help="a model version (default: the active one)")
    p.add_argument(
        "--embed-workers", type=int, help="embedding processes (default: settings embed_workers)"
    )
    p.add_argument("--processes", type=int, default=1, help="scoring processes (2 on two cores)")
    p.add_argument("--batch", type=int, default=256, help="items per batch")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("db", help="database schema")
    dbs = p.add_subparsers(dest="db_command", required=True)
    up = dbs.add_parser("upgrade")
    up.add_argument("revision", nargs="?", default="head")
    down = dbs.add_parser("downgrade")
    down.add_argument("revision")
    p.set_defaults(func=cmd_db)

    data_default = [str(REPO / "data" / "corpus")]
    test_default = str(REPO / "data" / "test" / "frozen.jsonl")
    p = sub.add_parser("train", help="compare candidates, train the best, save a new version")
    p.add_argument("--data", nargs="+", default=data_default)
    p.add_argument("--test", default=test_default)
    p.add_argument("--candidates", nargs="*")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--promote", action="store_true")
    p.add_argument("--embed-workers", type=int, default=2, help="processes that compute embeddings")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a model on labelled JSON lines")
    p.add_argument("--data", required=True)
    p.add_argument("--model")
    p.add_argument("--report", help="write the JSON report here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("gate", help="the quality gate: frozen test split vs the pinned baseline")
    p.add_argument("--model")
    p.add_argument("--test", default=test_default)
    p.add_argument("--baseline", default=str(REPO / "data" / "test" / "baseline.json"))
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("models", help="the model registry")
    ms = p.add_subparsers(dest="models_command", required=True)
    ms.add_parser("list")
    show = ms.add_parser("show")
    show.add_argument("version")
    prom = ms.add_parser("promote")
    prom.add_argument("version")
    ms.add_parser("rollback")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("corpus", help="the labelled corpus")
    cs = p.add_subparsers(dest="corpus_command", required=True)
    cs.add_parser("check")
    split = cs.add_parser("split", help="freeze the test split (once)")
    split.add_argument("--force", action="store_true")
    p.add_argument("--data", nargs="+", default=data_default)
    p.add_argument("--test", default=test_default)
    p.set_defaults(func=cmd_corpus)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except SanctionsWatchError as err:
        print(f"sanctions-watch: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
