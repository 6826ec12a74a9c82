"""Measure designation matching: false matches on data/designation_eval.jsonl, and speed.

    python bench/designation_matching.py                      # fixture list, eval set, speed
    python bench/designation_matching.py --list consolidated.xml   # speed on the real list too

Quality: each eval line is {"id", "text", "expected": [refs]} against the fixture list; a predicted
ref not expected is a false match, an expected ref not predicted a miss. Speed: a ~1,000-word
article against ~1,000 designations (the fixture plus deterministic synthetic names shaped like the
list's: Korean three-syllable names with variants, four-part Arabic names with aliases, company
names), timed cold (word cache cleared before each run) and warm.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.knowledge.designations import (  # noqa: E402
    Designation,
    DesignationIndex,
    load_consolidated_list,
)
from pipeline.knowledge.matching import canon  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "un_consolidated_sample.xml"
EVAL = ROOT / "data" / "designation_eval.jsonl"


def _words(text: str) -> list[str]:
    return text.split()


_KO = _words(
    "kim ri pak choe jo jang han yun o kang chon song hyon ryu mun paek so ko sin ju "
    "chol nam hyok ryong su il ho gwang myong bok chun dok hun sok jin yong gyu sam kwang "
    "hak chang sun hui dong gil jae man mu pyong ung chan ik hae gun sang yon tae uk rim "
    "jun hwa hyang ok ran mi gyong bong chong sik jong"
)
_AR = _words(
    "abdul rahim khalid yusuf ibrahim hamza tariq nabil faisal sami walid jamal bashir "
    "karim said ziad hassan majid nasser adil munir rashid salim anwar qasim"
)
_ORG = _words(
    "trading corporation company bank shipping group general development industrial "
    "international technology machinery export import"
)
_COIN = _words(
    "ryonbong tangun kwangson hyoksin sobaeksu rungra daedong amnokgang chongbong "
    "haegeumgang sinhung unjong mirim pothong paeksan kumgang"
)


def synthetic(n: int, seed: int = 7) -> list[Designation]:
    rng = random.Random(seed)
    out: list[Designation] = []
    for i in range(n):
        kind = rng.choice(("ko", "ar", "org", "org"))
        if kind == "ko":
            name = f"{rng.choice(_KO[:12])} {rng.choice(_KO[12:])} {rng.choice(_KO[12:])}".upper()
            parts = name.split()
            aliases = (f"{parts[0].title()} {parts[1].title()}-{parts[2].lower()}",)
            d = Designation(f"SYi.{i:04d}", "individual", name, aliases, "dprk", None, None)
        elif kind == "ar":
            names = rng.sample(_AR, 4)
            name = " ".join(names).upper()
            aliases = (
                f"{names[0].title()} al-{names[3].title()}",
                f"Abu {rng.choice(_AR).title()}",
            )
            d = Designation(
                f"SYi.{i:04d}",
                "individual",
                name,
                aliases,
                "isil_aq",
                None,
                None,
                low_quality_aliases=(aliases[1],),
            )
        else:
            coin = rng.choice(_COIN) + rng.choice(("", "-2", " sea", " star"))
            name = f"{rng.choice(('KOREA ', ''))}{coin} {' '.join(rng.sample(_ORG, 2))}".upper()
            d = Designation(f"SYe.{i:04d}", "entity", name, (), "dprk", None, None)
        out.append(d)
    return out


def evaluate(index: DesignationIndex, path: Path) -> dict[str, float]:
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    tp = fp = fn = texts_with_fp = 0
    errors: list[str] = []
    for item in items:
        got = {m.ref for m in index.match(item["text"])}
        want = set(item["expected"])
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
        texts_with_fp += bool(got - want)
        if got != want:
            errors.append(
                f"  {item['id']}: expected {sorted(want)} got {sorted(got)}: {item['text'][:90]}"
            )
    n = len(items)
    print(
        f"eval: {n} texts, {sum(bool(i['expected']) for i in items)} naming designations, "
        f"{sum(len(i['expected']) for i in items)} expected refs"
    )
    print(
        f"  precision {tp / max(tp + fp, 1):.3f}   recall {tp / max(tp + fn, 1):.3f}   "
        f"(tp {tp}, fp {fp}, fn {fn})"
    )
    print(
        f"  false matches per 1,000 texts: {1000 * fp / n:.1f}   "
        f"texts with a false match per 1,000: {1000 * texts_with_fp / n:.1f}"
    )
    for line in errors:
        print(line)
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1)}


def article(words: int = 1000, *, dense: bool = False) -> str:
    """~``words`` words of eval sentences: ``dense`` uses them all (a name in most sentences);
    otherwise a news-like article: six sentences naming designations among ones naming none."""
    items = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    if dense:
        pool = [i["text"] for i in items]
    else:
        named = [i["text"] for i in items if i["expected"]][::11][:6]
        plain = [i["text"] for i in items if i["kind"] == "none"]
        pool = []
        for k, sentence in enumerate(plain):
            pool.append(sentence)
            if k % 8 == 7:
                pool.append(named[(k // 8) % len(named)])
    text: list[str] = []
    i = 0
    while sum(len(t.split()) for t in text) < words:
        text.append(pool[i % len(pool)])
        i += 1
    return " ".join(" ".join(text).split()[:words])


def timed(index: DesignationIndex, text: str, runs: int, cold: bool) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        if cold:
            canon.cache_clear()
        t0 = time.thread_time()  # CPU time: wall time here counts other processes' load too
        index.match(text)
        samples.append((time.thread_time() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def speed(index: DesignationIndex, label: str, runs: int) -> None:
    print(f"speed against {label} ({len(index)} designations), CPU time per match() call:")
    for dense in (False, True):
        text = article(dense=dense)
        n_matches = len(index.match(text))
        kind = "name-dense" if dense else "news-like"
        for cold in (True, False):
            med, p95 = timed(index, text, runs, cold)
            print(
                f"  {kind} article ({len(text.split())} words, {n_matches} matches), "
                f"{'cold' if cold else 'warm'} word cache: median {med:.2f} ms, p95 {p95:.2f} ms"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", type=Path, help="a consolidated list XML to time as well")
    ap.add_argument("--eval", type=Path, default=EVAL)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args(argv)

    fixture = load_consolidated_list(FIXTURE)
    evaluate(fixture, args.eval)
    t0 = time.perf_counter()
    big = DesignationIndex([*fixture.designations, *synthetic(1000 - len(fixture))])
    print(f"index of {len(big)} designations built in {(time.perf_counter() - t0) * 1000:.0f} ms")
    speed(big, "fixture + synthetic", args.runs)
    if args.list:
        t0 = time.perf_counter()
        real = load_consolidated_list(args.list)
        print(f"{args.list}: parsed and indexed in {(time.perf_counter() - t0) * 1000:.0f} ms")
        speed(real, str(args.list), args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
