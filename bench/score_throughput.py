"""Scoring throughput and peak memory of a model, end to end, on 2 cores.

End to end means what `sanctions-watch score` does per item: build the model text from title, summary
and body, score it (calibrated probability), and for flagged items compute the evidence (sentences,
terms, regimes); plus JSON encoding of the result line. Items are the labelled corpus and the
independent hold-out set, repeated to --items.

    .venv/bin/python bench/score_throughput.py [--items 5000] [--shape summary|article]
        [--processes 1|2] [--model VERSION] [--model-dir DIR] [--out bench/results/x.json]

``--shape summary`` (default) scores the corpus's short items (title, summary, sometimes a short body) and
the hold-out; ``--shape article`` scores 600-word articles: each full-length corpus article's body
extended with paragraphs of other articles and cut at 600 words (title + summary + body), so every
article carries the passage-scoring work of a real 600-word story.

Run it on an otherwise idle machine. It pins BLAS/OpenMP to 2 threads (the target machine's cores).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.classify.model import doc_of  # noqa: E402
from pipeline.classify.registry import load_active, load_version  # noqa: E402
from pipeline.classify.scoring import BatchScorer  # noqa: E402
from pipeline.knowledge.regimes import load_regimes  # noqa: E402
from pipeline.training.corpus import load_items  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TotalRss:
    """Samples the resident memory of this process plus its children (embedding workers)."""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        import psutil

        self.proc = psutil.Process()
        self.peak = 0.0
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                total = self.proc.memory_info().rss + sum(
                    c.memory_info().rss for c in self.proc.children(recursive=True)
                )
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total / 2**20)
            self.stop.wait(self.interval)

    def __enter__(self) -> TotalRss:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _words(item: dict[str, object]) -> int:
    return len(" ".join(str(item.get(k) or "") for k in ("title", "summary", "body")).split())


def articles_of_600_words(articles: list[dict[str, object]]) -> list[dict[str, object]]:
    """Each article's body extended with other articles' paragraphs, cut at 600 words in all."""
    paragraphs = [p for a in articles for p in str(a.get("body") or "").split("\n\n") if p.strip()]
    out = []
    for n, article in enumerate(articles):
        head = f"{article['title']} {article.get('summary') or ''}"
        body = str(article.get("body") or "").split("\n\n")
        k = n
        while len(" ".join([head, *body]).split()) < 600:
            body.append(paragraphs[k % len(paragraphs)])
            k += 7
        budget = 600 - len(head.split())
        text = " ".join("\n\n".join(body).split(" ")[:budget])
        out.append({**article, "body": text})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--processes", type=int, default=2, help="scoring processes (the target is 2 cores)"
    )
    parser.add_argument("--model")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--shape", choices=("summary", "article"), default="summary")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--embed-workers", type=int, default=1, help="embedding processes of the score-only pass"
    )
    args = parser.parse_args()

    rss_start = peak_rss_mb()
    sampler = TotalRss().__enter__()
    t0 = time.perf_counter()
    model_dir = args.model_dir
    if args.model:
        model = load_version(model_dir, args.model, embed_workers=args.embed_workers)
    else:
        model = load_active(model_dir, embed_workers=args.embed_workers)
    regimes_path = ROOT / "config" / "regimes.yaml"
    regimes = load_regimes(regimes_path)
    load_seconds = time.perf_counter() - t0
    sources = [ROOT / "data" / "corpus"]
    if (ROOT / "data" / "holdout").exists():
        sources.append(ROOT / "data" / "holdout")
    base = load_items(sources)
    if args.shape == "summary":
        base = [i for i in base if i.get("style") != "article"]
    else:
        base = articles_of_600_words([i for i in base if i.get("style") == "article"])
    items = [base[i % len(base)] for i in range(args.items)]

    # End to end, as `sanctions-watch score --processes N` runs it: batches of items in, JSON lines out.
    scorer = BatchScorer(model, regimes, model_dir=model_dir, regimes_path=regimes_path,
                         processes=args.processes)  # fmt: skip
    batches = [items[start : start + args.batch] for start in range(0, len(items), args.batch)]
    scorer.warm_up()  # worker start-up and model loading are not part of the throughput
    list(scorer.run([items[:64]] * max(1, args.processes)))  # first-call allocations, not timed
    t1 = time.perf_counter()
    flagged = 0
    for lines in scorer.run(batches):
        flagged += sum('"flagged": true' in line for line in lines)
    end_to_end = time.perf_counter() - t1
    scorer.close()

    docs = [doc_of(i) for i in items]
    t2 = time.perf_counter()
    for start in range(0, len(docs), args.batch):
        model.predict_docs(docs[start : start + args.batch])
    score_only = time.perf_counter() - t2

    result = {
        "model_version": model.version,
        "candidate": model.metadata.get("candidate"),
        "shape": args.shape,
        "mean_words_per_item": round(sum(map(_words, items)) / len(items), 1),
        "items": len(items),
        "flagged": flagged,
        "processes": args.processes,
        "end_to_end_items_per_second": round(len(items) / end_to_end, 1),
        "score_only_items_per_second_one_process": round(len(items) / score_only, 1),
        "model_load_seconds": round(load_seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_children_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "embed_workers": args.embed_workers if model.embedder is not None else 0,
        "rss_before_load_mb": round(rss_start, 1),
        "threads": os.environ["OMP_NUM_THREADS"],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    sampler.__exit__()
    result["peak_total_rss_mb_incl_workers"] = round(sampler.peak, 1)
    if model.embedder is not None and hasattr(model.embedder, "close"):
        model.embedder.close()
        result["peak_rss_children_mb"] = round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        )
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
