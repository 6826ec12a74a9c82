"""Audit: corpus events likely to be the same real event as a frozen-split or hold-out event.

Prints each likely pair (the rule of ``pipeline.training.corpus.likely_overlaps``: same regime, event
months at most one apart, shared distinctive tokens of the slugs and ``event`` texts) with its score,
the shared tokens, both events' ``event`` texts and, when the pair is already decided in
``data/test/event_aliases.json``, the decision. A labeller reads both events and records the decision
there (``same: true`` or ``false``). ``corpus check`` warns on every undecided pair.

    .venv/bin/python scripts/event_overlap.py [--min-score 7] [--undecided] [--titles] [--json]

``--move`` then moves every corpus item whose event a decision makes a held-out event (``same: true``)
out of ``data/corpus/*.jsonl`` into ``data/excluded/leaked_events.jsonl`` (nothing trains on it), each
with ``excluded_from`` (its file), ``alias_of`` and ``alias_split``; other lines are kept byte for byte.
``--skip FILE ...`` leaves the named corpus files alone (one another helper is still writing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.training.corpus import (  # noqa: E402
    ALIASES_PATH,
    MIN_OVERLAP_SCORE,
    likely_overlaps,
    load_aliases,
    load_items,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=str(ROOT / "data" / "corpus"))
    p.add_argument("--test", default=str(ROOT / "data" / "test"))
    p.add_argument("--holdout", default=str(ROOT / "data" / "holdout"))
    p.add_argument("--aliases", default=str(ALIASES_PATH))
    p.add_argument("--min-score", type=float, default=MIN_OVERLAP_SCORE)
    p.add_argument("--undecided", action="store_true", help="only pairs not yet in the alias file")
    p.add_argument("--titles", action="store_true", help="also print up to 3 titles per event")
    p.add_argument("--json", action="store_true")
    p.add_argument("--move", action="store_true", help="move confirmed duplicates' items out")
    p.add_argument("--skip", nargs="*", default=[], help="corpus file names --move leaves alone")
    p.add_argument("--excluded", default=str(ROOT / "data" / "excluded" / "leaked_events.jsonl"))
    args = p.parse_args(argv)
    if args.move:
        return move(Path(args.corpus), Path(args.aliases), Path(args.excluded), set(args.skip))
    corpus = load_items([Path(args.corpus)], require_labels=False)
    held = {
        "test": load_items([Path(args.test)], require_labels=False),
        "holdout": load_items([Path(args.holdout)], require_labels=False),
    }
    decided = {(a.corpus_event, a.test_event): a for a in load_aliases(Path(args.aliases))}
    by_event: dict[str, list[dict[str, object]]] = {}
    for item in corpus + held["test"] + held["holdout"]:
        by_event.setdefault(str(item.get("event_id")), []).append(item)
    pairs = likely_overlaps(corpus, held, min_score=args.min_score)
    rows = []
    for o in pairs:
        d = decided.get((o.corpus_event, o.test_event))
        if args.undecided and d is not None:
            continue
        rows.append(
            {
                "corpus_event": o.corpus_event,
                "test_event": o.test_event,
                "split": o.split,
                "score": o.score,
                "shared": list(o.shared),
                "decided": None if d is None else ("same" if d.same else "different"),
                "corpus_text": sorted({str(i.get("event")) for i in by_event[o.corpus_event]}),
                "test_text": sorted({str(i.get("event")) for i in by_event[o.test_event]}),
                "corpus_titles": [str(i.get("title")) for i in by_event[o.corpus_event][:3]],
                "test_titles": [str(i.get("title")) for i in by_event[o.test_event][:3]],
                "corpus_files": sorted(
                    {str(i["_source"]).split(":")[0] for i in by_event[o.corpus_event]}
                ),
            }
        )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        print(
            f"{r['score']:6.1f}  {r['corpus_event']}  ~  {r['split']}:{r['test_event']}"
            f"  [{r['decided'] or 'UNDECIDED'}]  shared: {', '.join(r['shared'])}"
        )
        for t in r["corpus_text"]:
            print(f"        corpus: {t}")
        for t in r["test_text"]:
            print(f"        {r['split']}: {t}")
        if args.titles:
            for t in r["corpus_titles"]:
                print(f"          c-title: {t}")
            for t in r["test_titles"]:
                print(f"          t-title: {t}")
    undecided = sum(1 for r in rows if r["decided"] is None)
    print(f"\n{len(rows)} pairs (score >= {args.min_score}), {undecided} undecided")
    return 0


def move(corpus: Path, aliases: Path, excluded: Path, skip: set[str]) -> int:
    same = {a.corpus_event: a for a in load_aliases(aliases) if a.same}
    excluded.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if excluded.exists():
        done = {json.loads(x)["id"] for x in excluded.read_text("utf-8").splitlines() if x.strip()}
    moved_out: list[str] = []
    for path in sorted(corpus.glob("*.jsonl")):
        if path.name in skip:
            continue
        keep: list[str] = []
        moved = 0
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            item = json.loads(line) if line.strip() else None
            alias = same.get(str(item.get("event_id"))) if item else None
            if alias is None:
                keep.append(line)
                continue
            moved += 1
            if item["id"] not in done:
                item |= {
                    "excluded_from": path.name,
                    "alias_of": alias.test_event,
                    "alias_split": alias.split,
                }
                moved_out.append(json.dumps(item, ensure_ascii=False) + "\n")
        if moved:
            path.write_text("".join(keep), encoding="utf-8")
            print(f"{path.name}: moved {moved}")
    with excluded.open("a", encoding="utf-8") as fh:
        fh.writelines(moved_out)
    print(f"{len(moved_out)} items appended to {excluded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
