"""The ``sanctions-watch`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pipeline.cli.common import REPO
from pipeline.cli.data import cmd_corpus, cmd_label, cmd_labels
from pipeline.cli.models import cmd_evaluate, cmd_gate, cmd_kinds, cmd_models, cmd_train
from pipeline.cli.run import cmd_db, cmd_review, cmd_run_once, cmd_score
from pipeline.errors import SanctionsWatchError
from pipeline.logs import cli_handler, mask_secrets

log = logging.getLogger("sanctions_watch")


CONFIG_HELP = "config folder (default: $SANCTIONS_WATCH_CONFIG or ./config)"


def common_options() -> argparse.ArgumentParser:
    """``--config`` and ``-v``, accepted before or after any subcommand.

    The subcommands' copies default to SUPPRESS, so an option given before the subcommand is not
    overwritten by the subcommand's default when it is not repeated after it.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    return common


def force_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="promote even if the gate fails (needs --by and --reason; logged and recorded)",
    )
    p.add_argument("--by", help="who forces the promotion")
    p.add_argument("--reason", help="why the gate is overridden")


def kinds_gate_options(p: argparse.ArgumentParser) -> None:
    """The tagger gate's split and baseline (pipeline/training/kinds_gate.py), and the override."""
    p.add_argument(
        "--gate-test",
        default=str(REPO / "data" / "test" / "frozen.jsonl"),
        help="the frozen split the tagger gate measures on",
    )
    p.add_argument(
        "--kinds-baseline",
        default=str(REPO / "data" / "test" / "kinds_baseline.json"),
        help="the tagger gate's pinned minimums",
    )
    force_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanctions-watch", description=__doc__)
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("-v", "--verbose", action="store_true")
    common = [common_options()]
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        group: Any,  # what add_subparsers() returned
        name: str,
        *,
        parents: Sequence[argparse.ArgumentParser] = (),
        **kwargs: Any,
    ) -> argparse.ArgumentParser:
        leaf: argparse.ArgumentParser = group.add_parser(
            name, parents=[*common, *parents], **kwargs
        )
        return leaf

    p = command(sub, "run-once", help="one full cycle: ingest, classify, record alerts, deliver")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_run_once)

    p = command(sub, "score", help="score JSON lines from stdin")
    p.add_argument("--model", help="a model version (default: the active one)")
    p.add_argument(
        "--embed-workers", type=int, help="embedding processes (default: settings embed_workers)"
    )
    p.add_argument("--processes", type=int, default=1, help="scoring processes (2 on two cores)")
    p.add_argument("--batch", type=int, default=256, help="items per batch")
    p.set_defaults(func=cmd_score)

    p = command(sub, "db", help="database schema")
    dbs = p.add_subparsers(dest="db_command", required=True)
    up = command(dbs, "upgrade")
    up.add_argument("revision", nargs="?", default="head")
    down = command(dbs, "downgrade")
    down.add_argument("revision")
    p.set_defaults(func=cmd_db)

    data_default = [str(REPO / "data" / "corpus")]
    # The frozen split: every *.jsonl of data/test (short items, full-length articles, everyday news).
    test_default = str(REPO / "data" / "test")
    baseline_default = str(REPO / "data" / "test" / "baseline.json")
    p = command(sub, "train", help="compare candidates, train the best, save a new version")
    p.add_argument("--data", nargs="+", default=data_default)
    p.add_argument("--test", default=test_default)
    p.add_argument("--candidates", nargs="*")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--promote", action="store_true", help="promote it if the quality gate passes")
    p.add_argument("--baseline", default=baseline_default)
    force_options(p)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--embed-workers", type=int, default=2, help="processes that compute embeddings")
    p.add_argument(
        "--max-everyday-alarms",
        type=_per_1000,
        default=5.0,
        metavar="N",
        help="choose the threshold among those flagging at most N of every 1,000 ordinary-news "
        "training items out of fold (default 5; 'none': no limit)",
    )
    p.set_defaults(func=cmd_train)

    p = command(sub, "evaluate", help="metrics of a model on labelled JSON lines")
    p.add_argument("--data", required=True)
    p.add_argument("--model")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument(
        "--errors", action="store_true", help="list misclassified item ids with score and kind"
    )
    p.set_defaults(func=cmd_evaluate)

    p = command(sub, "gate", help="the quality gate: frozen test split vs the pinned baseline")
    p.add_argument("--model")
    p.add_argument("--test", default=test_default)
    p.add_argument("--baseline", default=baseline_default)
    p.set_defaults(func=cmd_gate)

    p = command(sub, "models", help="the model registry")
    ms = p.add_subparsers(dest="models_command", required=True)
    command(ms, "list", help="every version, and the promotion history rollback steps through")
    show = command(ms, "show")
    show.add_argument("version")
    prom = command(ms, "promote", help="make a version active if the quality gate passes")
    prom.add_argument("version")
    prom.add_argument("--test", default=test_default)
    prom.add_argument("--baseline", default=baseline_default)
    force_options(prom)
    command(ms, "rollback", help="step back one promotion (again: one further)")
    p.set_defaults(func=cmd_models)

    measured = [
        str(REPO / "data" / "test" / "frozen.jsonl"),
        str(REPO / "data" / "holdout" / "independent.jsonl"),
    ]
    p = command(sub, "kinds", help="the breach-kind tagger (models/kinds/)")
    ks = p.add_subparsers(dest="kinds_command", required=True)
    kt = command(ks, "train", help="cross-validate, train and save a new tagger version")
    kt.add_argument("--data", nargs="+", default=data_default)
    kt.add_argument("--test", default=test_default, help="the frozen split: never trained on")
    kt.add_argument("--measure", nargs="*", default=measured, help="labelled files to report on")
    kt.add_argument("--folds", type=int, default=5)
    kt.add_argument("--promote", action="store_true", help="promote it if the tagger gate passes")
    kinds_gate_options(kt)
    kt.add_argument("--json", action="store_true", help="print the metadata as JSON")
    ke = command(ks, "evaluate", help="per-kind precision, recall and F1 on labelled files")
    ke.add_argument("--data", nargs="+", default=measured)
    ke.add_argument("--model", help="a tagger version (default: the active one)")
    ke.add_argument("--report", help="write the JSON report here")
    kp = command(ks, "promote", help="make a tagger version active if the tagger gate passes")
    kp.add_argument("version")
    kinds_gate_options(kp)
    p.set_defaults(func=cmd_kinds)

    p = command(sub, "label", help="label a scored article (or --alert: an alert's article)")
    p.add_argument("id", type=int)
    choice = p.add_mutually_exclusive_group(required=True)
    for flag, value in (("--relevant", "relevant"), ("--not-relevant", "not_relevant"),
                        ("--unsure", "unsure")):  # fmt: skip
        choice.add_argument(flag, dest="label", action="store_const", const=value)
    p.add_argument("--note")
    p.add_argument("--by", help="the analyst (default: the login name)")
    p.add_argument("--alert", action="store_true", help="ID is an alert id")
    p.set_defaults(func=cmd_label)

    p = command(sub, "labels", help="analysts' labels: export or import (corpus JSON lines)")
    ls_ = p.add_subparsers(dest="labels_command", required=True)
    ex = command(ls_, "export", help="each article's current label as a corpus item")
    ex.add_argument("--out", help="write here (default: stdout)")
    im = command(ls_, "import", help="record the labels of exported items")
    im.add_argument("file")
    im.add_argument("--by", help="the analyst for lines without labelled_by")
    qu = command(ls_, "quality", help="conflicts between analysts; labels the model disputes")
    qu.add_argument("--margin", type=float, default=0.3, help="score distance from the threshold")
    p.set_defaults(func=cmd_labels)

    p = command(sub, "review", help="the analysts' review page")
    rs = p.add_subparsers(dest="review_command", required=True)
    serve = command(rs, "serve", help="serve the review page (needs SANCTIONS_WATCH_REVIEW_SECRET)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    add = command(rs, "add-analyst", help="create an analyst's account (password from stdin)")
    add.add_argument("name")
    p.set_defaults(func=cmd_review)

    # --data/--test before or after `check`/`split` (SUPPRESS: see common_options).
    corpus_files = argparse.ArgumentParser(add_help=False)
    corpus_files.add_argument("--data", nargs="+", default=argparse.SUPPRESS)
    corpus_files.add_argument("--test", default=argparse.SUPPRESS)
    p = command(sub, "corpus", help="the labelled corpus")
    cs = p.add_subparsers(dest="corpus_command", required=True)
    command(cs, "check", parents=[corpus_files])
    split = command(cs, "split", parents=[corpus_files], help="freeze the test split (once)")
    split.add_argument("--force", action="store_true")
    p.add_argument("--data", nargs="+", default=data_default)
    p.add_argument("--test", default=test_default, help="the frozen split (a folder or a file)")
    p.set_defaults(func=cmd_corpus)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(  # text, or json once the config says so (logs.use_format)
        level=logging.DEBUG if args.verbose else logging.INFO, handlers=[cli_handler(sys.stderr)]
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except SanctionsWatchError as err:
        print(f"sanctions-watch: error: {mask_secrets(str(err))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # python -m pipeline.cli runs __main__.py
    raise SystemExit(main())


def _per_1000(value: str) -> float | None:
    """``--max-everyday-alarms``: a non-negative number, or ``none``."""
    if value.strip().lower() == "none":
        return None
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of alarms per 1,000 or 'none', got {value!r}"
        ) from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0 or 'none', got {value!r}")
    return number
