"""The per-word char n-gram hasher gives scikit-learn's matrix exactly, in every script we read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from pipeline.classify import hashing
from pipeline.classify.hashing import hash_units, supports

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "North Korea shipped artillery shells to Russia, U.S. officials said.",
    "  Leading   and trailing\twhitespace\n\nand\u00a0no-break spaces\u2003here  ",
    "",
    "a I x",  # words shorter than the n-gram range
    "북한은 러시아에 포탄을 보냈다고 밝혔다. 선박 천마산호가 환적했다.",
    "朝鲜向俄罗斯运送炮弹。联合国安理会决议禁止。",
    "أرسلت كوريا الشمالية قذائف إلى روسيا، في انتهاك لقرارات مجلس الأمن.",
    "КНДР поставила России снаряды, что нарушает резолюции Совета Безопасности ООН.",
    "ΟΔΟΣ ΣΟΦΙΑΣ final sigma Σ and İstanbul dotted I",
    "La Corée du Nord a livré des obus à la Russie; el régimen niega los envíos.",
    "emoji 🚢🚀 and ZWJ 👩‍🔬 and combining e\u0301",
]


def _corpus_texts(limit: int = 400) -> list[str]:
    out: list[str] = []
    for path in sorted((ROOT / "data" / "corpus").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            out.append(" ".join(str(item.get(k) or "") for k in ("title", "summary", "body")))
            if len(out) >= limit:
                return out
    return out


@pytest.mark.parametrize("ngram_range", [(3, 5), (2, 4), (1, 1)])
@pytest.mark.parametrize("lowercase", [True, False])
def test_equal_to_scikit_learn(ngram_range: tuple[int, int], lowercase: bool) -> None:
    hasher = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=ngram_range,
        lowercase=lowercase,
        n_features=2**20,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )
    texts = TEXTS + _corpus_texts()
    expected = hasher.transform(texts)
    for _ in range(2):  # cold cache, then warm
        got = hash_units(hasher, texts)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert (got != expected).nnz == 0
        assert np.array_equal(got.indptr, expected.indptr)
        assert np.array_equal(got.indices, expected.indices)


def test_other_hashers_go_to_scikit_learn_unchanged() -> None:
    for hasher in (
        HashingVectorizer(analyzer="word", ngram_range=(1, 2), alternate_sign=False, norm=None),
        HashingVectorizer(analyzer="char_wb", norm="l2"),  # normalised and signed: not ours
        HashingVectorizer(analyzer="char_wb", alternate_sign=False, norm=None, binary=True),
    ):
        assert not supports(hasher)
        assert (hash_units(hasher, TEXTS) != hasher.transform(TEXTS)).nnz == 0


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "MAX_WORDS", 50)
    monkeypatch.setattr(hashing, "_CACHES", {})
    hasher = HashingVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), alternate_sign=False, norm=None
    )
    texts = _corpus_texts(200)
    for start in range(0, len(texts), 20):
        batch = texts[start : start + 20]
        assert (hash_units(hasher, batch) != hasher.transform(batch)).nnz == 0
        (cache,) = hashing._CACHES.values()
        # emptied before a batch once over the bound: never more than the bound plus one batch
        assert len(cache) <= 50 + len({w for t in batch for w in t.lower().split()})
