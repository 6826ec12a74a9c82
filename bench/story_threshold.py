"""Measure the story-grouping threshold on labelled article pairs (data/story_pairs.jsonl).

    .venv/bin/python bench/story_threshold.py [--pairs FILE] [--threshold T] [--json]

Each line of the pairs file holds two articles (title, summary, language, publication time) and
whether they report the same story. ``kind`` says what the pair is: ``syndicated``, ``edited`` and
``translated`` copies (same story), independent ``rewrite`` s of one event (same story, not
near-duplicates: reported apart), and ``same_topic``, ``same_topic_crosslingual``, ``template_twin``
(the same wire template about another event) and ``follow_up`` pairs (different stories).

Regimes come from the regimes file's aliases (as the classifier tags them), not from the labels. The
script sweeps the threshold, prints pair precision/recall/F1 for each, picks the threshold with the
best F1 (ties: the higher threshold), then re-runs that threshold through :class:`StoryIndex` (LSH
candidates + verification), the path the pipeline takes, and reports per-kind results.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.alerts.stories import (  # noqa: E402
    DEFAULT_WINDOW,
    StoryIndex,
    StoryText,
    crosslingual_similarity,
    fingerprint,
    lexical_similarity,
    similarity,
)
from pipeline.knowledge.regimes import load_regimes  # noqa: E402

NEAR_DUPLICATE = {"syndicated", "edited", "translated"}
REPORTED_APART = {"rewrite"}


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def load_pairs(path: Path) -> list[dict]:
    book = load_regimes(ROOT / "config" / "regimes.yaml")
    resolutions = {n for r in book.regimes.values() for n in r.resolutions}
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        p = json.loads(line)
        fps = []
        for side in ("a", "b"):
            x = p[side]
            text = f"{x['title']}\n{x['summary']}"
            regimes = tuple(k for k, _ in book.detect(text))
            item = StoryText(
                key=f"{p['id']}{side}",
                title=x["title"],
                text=text,
                lang=x.get("lang", "und"),
                published_at=_when(x.get("published_at")),
                regimes=regimes,
            )
            fps.append(fingerprint(item, ignore_numbers=resolutions))
        pairs.append({**p, "fa": fps[0], "fb": fps[1]})
    return pairs


def prf(decisions: list[tuple[bool, bool]]) -> dict[str, float]:
    tp = sum(1 for pred, gold in decisions if pred and gold)
    fp = sum(1 for pred, gold in decisions if pred and not gold)
    fn = sum(1 for pred, gold in decisions if not pred and gold)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": round(p, 3),
        "recall": round(r, 3),
        "f1": round(f, 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, default=ROOT / "data" / "story_pairs.jsonl")
    ap.add_argument("--threshold", type=float, default=None, help="evaluate this threshold only")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    pairs = load_pairs(args.pairs)
    scored = [
        (
            p,
            similarity(p["fa"], p["fb"], window=DEFAULT_WINDOW),
            lexical_similarity(p["fa"], p["fb"]),
            crosslingual_similarity(p["fa"], p["fb"], window=DEFAULT_WINDOW),
        )
        for p in pairs
    ]
    main_set = [s for s in scored if s[0]["kind"] not in REPORTED_APART]
    sweep = []
    for step in range(1, 20):
        t = step / 20
        sweep.append({"threshold": t, **prf([(sim >= t, p["same"]) for p, sim, _, _ in main_set])})
    if args.threshold is not None:
        chosen = args.threshold
    else:
        chosen = max(sweep, key=lambda row: (row["f1"], row["threshold"]))["threshold"]

    def via_index(p: dict) -> bool:
        index = StoryIndex(chosen, window=DEFAULT_WINDOW)
        index.add(p["fa"], 1)
        return index.best(p["fb"]) is not None

    decisions = [(p, via_index(p)) for p, *_ in scored]
    overall = prf([(pred, p["same"]) for p, pred in decisions if p["kind"] not in REPORTED_APART])
    kinds = Counter(p["kind"] for p in pairs)
    per_kind = {}
    for kind in sorted(kinds):
        rows = [(pred, p["same"]) for p, pred in decisions if p["kind"] == kind]
        agree = sum(1 for pred, gold in rows if pred == gold)
        per_kind[kind] = {"pairs": len(rows), "same": rows[0][1], "correct": agree}
    errors = [
        {
            "id": p["id"],
            "kind": p["kind"],
            "same": p["same"],
            "lexical": round(lex, 3),
            "crosslingual": round(xl, 3),
        }
        for (p, _, lex, xl), (_, pred) in zip(scored, decisions, strict=True)
        if pred != p["same"] and p["kind"] not in REPORTED_APART
    ]
    report = {
        "pairs": len(pairs),
        "positives": sum(1 for p in pairs if p["same"] and p["kind"] not in REPORTED_APART),
        "negatives": sum(1 for p in pairs if not p["same"]),
        "threshold": chosen,
        "via_story_index": overall,
        "per_kind": per_kind,
        "sweep": sweep,
        "errors": errors,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{len(pairs)} pairs ({report['positives']} near-duplicate, {report['negatives']} different; "
        f"{kinds.get('rewrite', 0)} rewrites reported apart)"
    )
    print("threshold  precision  recall  f1     (pairwise similarity >= threshold)")
    for row in sweep:
        mark = "  <- chosen" if abs(row["threshold"] - chosen) < 1e-9 else ""
        print(
            f"  {row['threshold']:.2f}     {row['precision']:.3f}    {row['recall']:.3f}   {row['f1']:.3f}{mark}"
        )
    print(
        f"\nthreshold {chosen:.2f} through StoryIndex (LSH + verification): "
        f"precision {overall['precision']:.3f}, recall {overall['recall']:.3f}, F1 {overall['f1']:.3f} "
        f"(tp {overall['tp']}, fp {overall['fp']}, fn {overall['fn']})"
    )
    print("per kind (correct / pairs):")
    for kind, row in per_kind.items():
        label = "same story" if row["same"] else "different"
        print(f"  {kind:<26} {row['correct']:>3} / {row['pairs']:<3} ({label})")
    if errors:
        print("errors:")
        for e in errors:
            print(
                f"  {e['id']} {e['kind']:<26} same={e['same']!s:<5} lexical={e['lexical']:.3f} crosslingual={e['crosslingual']:.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
