"""Models: ``train``, ``evaluate``, ``gate``, ``models`` and ``kinds``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from pipeline.cli.common import (
    REPO,
    config_from_args,
    corpus_paths,
    load_model,
    now_utc,
    print_json,
)
from pipeline.errors import InputError, SanctionsWatchError

log = logging.getLogger("sanctions_watch")


def metric(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def train_table(out: dict[str, Any]) -> list[str]:
    """What ``train`` prints: the candidates compared by cross-validation, best first, and the
    chosen model's scores on the frozen test split (the full report is ``train --json``)."""
    rows: list[tuple[str, dict[str, Any]]] = sorted(
        out["cross_validation"].items(), key=lambda kv: -float(kv[1].get("pr_auc") or 0.0)
    )
    lines = [
        f"model {out['version']}: chose {out['chosen']} (threshold {metric(out['threshold'])})",
        "",
        f"  {'candidate':<34} {'kind':<10} {'PR-AUC':>7} {'F1':>7} {'P@R.9':>7} {'ROC-AUC':>7}",
    ]
    for name, m in rows:
        mark = "*" if name == out["chosen"] else " "
        lines.append(
            f"{mark} {name:<34} {m.get('kind', '-')!s:<10} {metric(m.get('pr_auc')):>7} "
            f"{metric(m.get('f1_at_best')):>7} {metric(m.get('precision_at_recall_0.9')):>7} "
            f"{metric(m.get('roc_auc')):>7}"
        )
    test = out.get("test") or {}
    lines.append("")
    if test:
        lines.append(
            f"frozen test split: F1 {metric(test.get('f1'))}  PR-AUC {metric(test.get('pr_auc'))}"
            f"  precision {metric(test.get('precision'))}  recall {metric(test.get('recall'))}"
        )
    else:
        lines.append("frozen test split: none (no --test file)")
    lines.append("(cross-validated on the training corpus; full report: train --json)")
    return lines


def override(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """``--force --by NAME --reason TEXT``: all three or none (a bare ``--force`` is refused)."""
    by, reason = getattr(args, "by", None), getattr(args, "reason", None)
    if getattr(args, "force", False):
        if not (by and by.strip() and reason and reason.strip()):
            raise InputError("--force needs --by NAME and --reason TEXT (both recorded)")
        return by, reason
    if by or reason:
        raise InputError("--by and --reason only go with --force")
    return None, None


def promote_gated(args: argparse.Namespace, config: Any, version: str) -> None:
    """Promote ``version`` through the quality gate; a refusal raises :class:`GateError` naming
    every failure (printed by :func:`main`, exit code 2)."""
    from pipeline.training.promotion import promote_through_gate

    forced_by, reason = override(args)
    verdict = promote_through_gate(
        config.model_dir,
        version,
        now=now_utc(),
        test_path=Path(args.test),
        baseline_path=Path(args.baseline),
        forced_by=forced_by,
        reason=reason,
    )
    if verdict.passed:
        print(f"gate passed; promoted {version}")
    else:
        for failure in verdict.failures:
            print(f"GATE FAILED (overridden): {failure}")
        print(f"promoted {version}, forced by {forced_by}: {reason}")


def cmd_train(args: argparse.Namespace) -> int:
    """Train a new version into the model store (``model_store``; uploaded when it is a URL)."""
    from pipeline.classify.registry import publish, writable_dir
    from pipeline.training.corpus import training_items
    from pipeline.training.train import train_model

    config = config_from_args(args)
    corpus, test = corpus_paths(args)
    train = training_items(corpus, test)
    result = train_model(
        train,
        model_dir=writable_dir(config.model_dir),
        now=now_utc(),
        test=test or None,
        candidates=args.candidates or None,
        folds=args.folds,
        repo_root=REPO,
        embed_workers=args.embed_workers or 2,
        max_everyday_per_1000=args.max_everyday_alarms,
    )
    publish(config.model_dir, result.version)
    out = {
        "version": result.version,
        "chosen": result.chosen,
        "threshold": result.threshold,
        "cross_validation": result.comparison,
        "test": (result.test_report or {}).get("overall"),
    }
    if args.json:
        print_json(out)
    else:
        print("\n".join(train_table(out)))
    if args.promote:
        promote_gated(args, config, result.version)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.classify.model import doc_of
    from pipeline.training.corpus import load_items
    from pipeline.training.evaluate import evaluate_items, format_report

    config = config_from_args(args)
    data = Path(args.data)
    if not data.exists():
        raise InputError(f"{data}: no such file or folder")
    items = load_items([data], require_labels=False)
    if not items:
        where = "has no *.jsonl file with an item" if data.is_dir() else "has no items"
        raise InputError(f"{data} {where}: nothing to evaluate")
    missing = [i["_source"] for i in items if i.get("label") not in (0, 1)]
    if missing:
        raise InputError(
            f"{missing[0]}: every item needs a 'label' of 0 or 1 ({len(missing)} without)"
        )
    model = load_model(config, args.model)
    probs = model.predict_docs([doc_of(i) for i in items])
    report = evaluate_items(items, probs.tolist(), model.threshold)
    report["model_version"] = model.version
    report["data"] = str(args.data)
    print(f"model {model.version} on {args.data}")
    print(format_report(report))
    if args.errors:
        wrong = [
            (i, p)
            for i, p in zip(items, probs.tolist(), strict=True)
            if (p >= model.threshold) != (i["label"] == 1)
        ]
        print(f"\nmisclassified: {len(wrong)} of {len(items)} (threshold {model.threshold:.3f})")
        print(f"  {'id':<28} {'label':>5} {'score':>6}  kind")
        for item, prob in sorted(wrong, key=lambda ip: (-ip[0]["label"], ip[1])):
            print(f"  {item['id']!s:<28} {item['label']:>5} {prob:>6.3f}  {item.get('kind', '-')}")
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"\nreport written to {args.report}")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from pipeline.training.gate import check_gate, evaluate_frozen, load_baseline

    config = config_from_args(args)
    model = load_model(config, args.model)
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
    from pipeline.classify.registry import list_models, promotion_history, rollback, store_label

    config = config_from_args(args)
    if args.models_command == "list":
        shipped = getattr(config.model_dir, "shipped", None)
        print(
            f"model store: {store_label(config.model_dir)}"
            + (f" (shipped: {shipped})" if shipped else "")
        )
        for info in list_models(config.model_dir):
            if info.version == "kinds":  # the breach-kind tagger's own registry: `kinds`
                continue
            m = info.metadata
            test = (m.get("test_metrics") or {}).get("overall") or {}
            print(
                f"{'*' if info.active else ' '} {info.version:<45} {info.place:<7} "
                f"{m.get('candidate', '?'):<22} threshold {m.get('threshold', '?')}  "
                f"test F1 {test.get('f1', '-')}  PR-AUC {test.get('pr_auc', '-')}"
            )
        history = promotion_history(config.model_dir)
        if history:
            print("\npromotion history, newest first (each `models rollback` steps one back):")
            for depth, version in enumerate(reversed(history)):
                print(f"  {'active' if depth == 0 else f'-{depth}':>6}  {version}")
    elif args.models_command == "show":
        found = {i.version: i for i in list_models(config.model_dir)}.get(args.version)
        if found is None:
            raise SanctionsWatchError(
                f"no model {args.version} in {store_label(config.model_dir)} "
                "nor among the shipped models"
            )
        print_json({"active": found.active, "place": found.place, **found.metadata})
    elif args.models_command == "promote":
        promote_gated(args, config, args.version)
    else:
        print(f"rolled back to {rollback(config.model_dir, now=now_utc())}")
    return 0


def promote_tagger_gated(args: argparse.Namespace, kinds_dir: Path, version: str) -> None:
    """Promote tagger ``version`` through the tagger gate; a refusal raises :class:`GateError`
    naming every failure (printed by :func:`main`, exit code 2)."""
    from pipeline.training.kinds_gate import promote_tagger_through_gate

    forced_by, reason = override(args)
    verdict = promote_tagger_through_gate(
        kinds_dir,
        version,
        now=now_utc(),
        test_path=Path(args.gate_test),
        baseline_path=Path(args.kinds_baseline),
        forced_by=forced_by,
        reason=reason,
    )
    if verdict.passed:
        print(f"tagger gate passed (macro-F1 {verdict.metrics.get('macro_f1')})")
        print(f"promoted tagger {version}")
    else:
        for failure in verdict.failures:
            print(f"TAGGER GATE FAILED (overridden): {failure}")
        print(f"promoted tagger {version}, forced by {forced_by}: {reason}")


def cmd_kinds(args: argparse.Namespace) -> int:
    """The breach-kind tagger: ``train`` a new version (grouped CV, then measured on the frozen split
    and the hold-out), ``evaluate`` the active one (or ``--model``) on labelled files, ``promote``."""
    from pipeline.classify.kinds import KINDS_DIR, load_active_tagger, load_tagger
    from pipeline.training.corpus import load_items, training_items
    from pipeline.training.kinds import evaluate_tagger, format_tagger_report, train_tagger

    config = config_from_args(args)
    kinds_dir = config.model_dir / KINDS_DIR
    if args.kinds_command == "train":
        corpus = load_items([Path(p) for p in args.data])
        frozen = load_items([Path(args.test)]) if Path(args.test).exists() else []
        tests = {Path(p).stem: load_items([Path(p)]) for p in args.measure if Path(p).exists()}
        result = train_tagger(
            training_items(corpus, frozen),
            model_dir=kinds_dir,
            now=now_utc(),
            tests=tests,
            folds=args.folds,
            repo_root=REPO,
        )
        meta = result.metadata
        if args.json:
            print_json(meta)
        else:
            print(f"tagger {result.version}: C={meta['C']}, input {meta['input']}")
            print("\ngrouped cross-validation (out of fold)")
            print(format_tagger_report(meta["cross_validation"]))
            for name, report in meta["test_metrics"].items():
                print(f"\n{name}")
                print(format_tagger_report(report))
        if args.promote:
            promote_tagger_gated(args, kinds_dir, result.version)
        return 0
    if args.kinds_command == "promote":
        promote_tagger_gated(args, kinds_dir, args.version)
        return 0
    tagger = load_tagger(kinds_dir, args.model) if args.model else load_active_tagger(kinds_dir)
    reports = {}
    for path in args.data:
        items = load_items([Path(path)])
        reports[path] = evaluate_tagger(tagger, items)
        print(f"tagger {tagger.version} on {path}")
        print(format_tagger_report(reports[path]) + "\n")
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(
            json.dumps(reports, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return 0
