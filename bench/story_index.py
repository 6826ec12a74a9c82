"""Memory of the stories step's index: bytes held per indexed member (``StoryIndex``).

    .venv/bin/python bench/story_index.py [--members 10000]

Builds a :class:`pipeline.alerts.stories.StoryIndex` from fingerprints of texts composed from the
labelled corpus (as bench/feedgen.py composes feed items), the way the stories step indexes new
articles, and reports what ``tracemalloc`` sees the index hold once the fingerprints' other references
are dropped. The stories step holds one index per run with every member of the story window (72 h of
flagged articles: 9,850 in the 5,000-feed benchmark cycle), so this is the part of a busy cycle's
memory that grows with the window.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=10_000)
    args = ap.parse_args(argv)
    from feedgen import FeedMaker

    from pipeline.alerts.stories import StoryIndex, StoryText, fingerprint

    maker = FeedMaker("http://127.0.0.1:1")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    texts = []
    for n in range(args.members):
        title, summary, _ = maker.item(n // 50, n % 50)
        texts.append(
            StoryText(
                key=n,
                title=title,
                text=f"{title}\n{summary}",
                lang=maker.language(n // 50),
                published_at=now - timedelta(minutes=n % 600),
            )
        )
    index = StoryIndex(0.5)
    fingerprint(texts[0])  # imports and one-off tables outside the measurement
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    for i, item in enumerate(texts):
        index.add(fingerprint(item), story_id=i)
    seconds = time.perf_counter() - t0
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {
        "members": len(index),
        "held_mib": round(held / 2**20, 1),
        "bytes_per_member": round(held / len(index)),
        "peak_mib": round(peak / 2**20, 1),
        "seconds": round(seconds, 2),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
