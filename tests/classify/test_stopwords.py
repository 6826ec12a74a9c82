"""Evidence terms shown to an analyst carry no function words, in any supported language."""

from __future__ import annotations

import pytest

from pipeline.classify.stopwords import LANGUAGES, STOP_WORDS, is_stop_word, meaningful_terms
from pipeline.training.corpus import LANGS


def test_every_supported_language_has_a_list() -> None:
    assert set(LANGS) <= set(LANGUAGES)
    assert all(len(STOP_WORDS[lang]) >= 20 for lang in LANGS)


@pytest.mark.parametrize(
    ("lang", "terms", "expected"),
    [
        # the complaint: Korean "said", "is", "that it was" among the terms shown
        ("ko", ("밝혔다", "있다", "것으로", "컨테이너", "군수품", "했다"), ("컨테이너", "군수품")),
        (
            "en",
            ("said", "arms to", "the tanker", "north korean", "of the"),
            ("arms", "tanker", "north korean"),
        ),
        ("fr", ("selon", "des obus", "la russie", "a déclaré"), ("obus", "russie")),
        ("es", ("según", "los misiles", "dijo"), ("misiles",)),
        ("ru", ("заявил", "что", "снаряды в", "россии"), ("снаряды", "россии")),
        ("ar", ("في", "قال", "من الأسلحة", "الحوثيين"), ("الأسلحة", "الحوثيين")),
        ("zh", ("的", "表示", "弹道导弹"), ("弹道导弹",)),
        ("de", ("sagte", "die waffen"), ("waffen",)),
        ("uk", ("заявив", "ракети"), ("ракети",)),
        ("fa", ("گفت", "موشک"), ("موشک",)),
        ("ja", ("の", "ミサイル"), ("ミサイル",)),
        ("pt", ("disse", "armas"), ("armas",)),
        ("it", ("secondo", "armi"), ("armi",)),
    ],
)
def test_function_words_are_dropped(
    lang: str, terms: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert meaningful_terms(terms, lang) == expected


def test_trimming_keeps_order_and_drops_duplicates_and_numbers() -> None:
    assert meaningful_terms(["arms to", "arms", "2017", "to the", "coal"], "en") == ("arms", "coal")


def test_a_chinese_or_japanese_clause_is_not_a_term() -> None:
    clause = "这违反了联合国安理会决议"  # one "word" to a tokenizer that splits at spaces
    assert meaningful_terms([clause, "朝鲜", "武器贸易", "tanker"], "zh") == (
        "朝鲜",
        "武器贸易",
        "tanker",
    )
    assert meaningful_terms(["国連安保理決議に違反する", "弾道ミサイル"], "ja") == ("弾道ミサイル",)


def test_unknown_language_uses_every_list() -> None:
    assert meaningful_terms(["밝혔다", "заявил", "said", "tanker"], None) == ("tanker",)
    assert meaningful_terms(["밝혔다", "tanker"], "xx") == ("tanker",)


def test_content_words_of_the_domain_are_never_stop_words() -> None:
    for word in (
        "arms",
        "coal",
        "missile",
        "tanker",
        "sanctions",
        "북한",
        "석탄",
        "оружие",
        "سلاح",
    ):
        assert not any(is_stop_word(word, lang) for lang in LANGUAGES), word
