"""Pure text normalisation: HTML to text, safe strings, canonical URLs, language, stable keys.

Everything here is a pure function over strings: no I/O, no clock. Feed text comes from anywhere on the
internet, so every function tolerates (and cleans) NUL bytes, lone surrogates, control characters and
absurd lengths.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "article_key",
    "canonical_url",
    "clean_text",
    "content_hash",
    "detect_language",
    "html_to_text",
    "safe_http_url",
    "split_sentences",
]

# Characters that must never reach storage or a mail header: C0/C1 controls except tab/newline,
# lone surrogates (PostgreSQL and UTF-8 encoders refuse them), and the BOM/zero-width no-break space.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufeff]")
_SPACES_RE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANKS_RE = re.compile(r"\n\s*\n\s*")
_TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|ocid|cmpid|cmp|icid|_ga|_hsenc|_hsmkt"
    r"|mkt_tok|igshid|ref|ref_src|src|rss|feed|at_medium|at_campaign|xtor|smid|taid)$",
    re.IGNORECASE,
)
_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "blockquote",
        "section",
        "article",
        "header",
        "footer",
        "pre",
        "figure",
        "figcaption",
        "dd",
        "dt",
        "hr",
    ]
)
_SKIP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "svg", "head"}
)


def clean_text(text: str | None, *, max_chars: int | None = None) -> str:
    """Remove control characters and lone surrogates, fold spaces, trim, and cap the length."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", _CONTROL_RE.sub("", text.replace("\r\n", "\n")))
    text = text.replace("\r", "\n")
    lines = [_SPACES_RE.sub(" ", line).strip() for line in text.split("\n")]
    text = _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()
    if max_chars is not None and len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > max_chars * 0.8 else max_chars].rstrip() + "…"
    return text


# A start or end tag: the name, then anything but another "<" up to its ">".
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*>")


@lru_cache(maxsize=32)
def _end_tag(name: str) -> re.Pattern[str]:
    return re.compile(rf"</{re.escape(name)}\b", re.IGNORECASE)


def _visible_text(html: str, limit: int) -> str:
    """The text of an HTML fragment, in one linear pass (no backtracking over the input).

    Not :class:`html.parser.HTMLParser`: on feed text built for it, that parser rescans the rest of
    the input for every unterminated comment, tag or quote (100 KB of ``<a `` took over two
    minutes) and raises ``AssertionError`` on ``<![``. Here each construct is looked up once:
    comments end at ``-->``, other ``<!...>`` and ``<?...>`` at ``>``; an unterminated one hides
    the rest, as in a browser. A ``<`` that does not open a tag closed before the next ``<`` is
    text. Skipped elements (script, style, ...) end at their end tag, or hide the rest.
    """
    parts: list[str] = []
    size = 0
    pos = 0
    n = len(html)
    while pos < n and size <= limit:
        lt = html.find("<", pos)
        text = html[pos:] if lt < 0 else html[pos:lt]
        if text:
            parts.append(unescape(text))
            size += len(text)
        if lt < 0:
            break
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            if end < 0:
                break
            pos = end + 3
            continue
        if html.startswith(("<!", "<?"), lt):
            end = html.find(">", lt + 2)
            if end < 0:
                break
            pos = end + 1
            continue
        match = _TAG_RE.match(html, lt)
        if match is None:  # a lone "<" is text
            parts.append("<")
            size += 1
            pos = lt + 1
            continue
        pos = match.end()
        name = match.group(2).lower()
        if not match.group(1) and name in _SKIP_TAGS:
            found = _end_tag(name).search(html, pos)
            if found is None:
                break
            close = html.find(">", found.end())
            if close < 0:
                break
            pos = close + 1
        elif name in _BLOCK_TAGS:
            parts.append("\n")
    return "".join(parts)


def html_to_text(html: str | None, *, max_chars: int = 100_000) -> str:
    """Visible text of an HTML fragment: tags dropped, scripts and styles removed, entities decoded.

    Plain text passes through unchanged (apart from entity decoding), so feeds that put text in an
    HTML field and feeds that put HTML in a text field both come out as text. The work is linear in
    the input (see :func:`_visible_text`), which is cut to a bounded prefix first.
    """
    if not html:
        return ""
    if "<" not in html:
        return clean_text(unescape(html), max_chars=max_chars)
    # Look at most at a bounded prefix: a 5 MB summary is cut before it is scanned.
    return clean_text(_visible_text(html[: max_chars * 4], max_chars * 2), max_chars=max_chars)


def safe_http_url(url: str | None) -> str | None:
    """The URL if it is absolute http(s) with a host and no control characters, else None."""
    if not url:
        return None
    url = url.strip()
    if _CONTROL_RE.search(url) or any(c.isspace() for c in url) or len(url) > 2048:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def canonical_url(url: str | None) -> str | None:
    """A canonical form for deduplication: lower-case scheme and host, no default port, no fragment,
    no tracking parameters, remaining query parameters sorted. None for anything but http(s)."""
    url = safe_http_url(url)
    if url is None:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        return None
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else f"{host}:{port}"
    )
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _TRACKING_PARAMS.match(k)
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


_FOLD_RE = re.compile(r"[\W_]+", re.UNICODE)


def _fold(text: str) -> str:
    return _FOLD_RE.sub(" ", text.casefold()).strip()


def content_hash(title: str, summary: str) -> str:
    """Hash of the folded title and the start of the summary: equal for syndicated copies of one text."""
    basis = _fold(title) + "\n" + _fold(summary)[:400]
    # surrogatepass: a lone surrogate (in text not cleaned yet) must not make hashing fail.
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def article_key(feed_id: str, *, url: str | None, guid: str | None, chash: str) -> str:
    """A stable, deterministic key for an article.

    The canonical URL wins (it is the same across feeds); a GUID that is not a URL is only unique within
    its feed, so it is namespaced by the feed id; otherwise the content hash.
    """
    curl = canonical_url(url) or canonical_url(guid)
    if curl:
        basis = "url:" + curl
    elif guid:
        basis = f"guid:{feed_id}:{guid.strip()}"
    else:
        basis = "hash:" + chash
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:32]


_SCRIPTS = (
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
)
_STOPWORDS = {
    "en": [
        "the",
        "of",
        "and",
        "to",
        "in",
        "is",
        "that",
        "for",
        "on",
        "with",
        "was",
        "as",
        "by",
        "from",
        "at",
        "are",
        "this",
        "said",
        "has",
        "have",
        "will",
        "be",
        "it",
    ],
    "fr": [
        "le",
        "la",
        "les",
        "des",
        "du",
        "de",
        "et",
        "un",
        "une",
        "est",
        "dans",
        "pour",
        "sur",
        "que",
        "qui",
        "au",
        "aux",
        "par",
        "pas",
        "ont",
        "été",
        "selon",
        "avec",
    ],
    "es": [
        "el",
        "la",
        "los",
        "las",
        "del",
        "de",
        "y",
        "en",
        "un",
        "una",
        "es",
        "que",
        "por",
        "para",
        "con",
        "se",
        "al",
        "según",
        "sobre",
        "fue",
        "ha",
        "han",
    ],
    "de": [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "mit",
        "den",
        "von",
        "zu",
        "im",
        "ein",
        "eine",
        "auf",
        "für",
        "dem",
        "des",
        "sich",
        "auch",
    ],
    "pt": [
        "o",
        "a",
        "os",
        "as",
        "do",
        "da",
        "dos",
        "das",
        "e",
        "em",
        "um",
        "uma",
        "que",
        "para",
        "com",
        "não",
        "por",
        "foi",
        "segundo",
        "pelo",
    ],
    "it": [
        "il",
        "lo",
        "la",
        "gli",
        "le",
        "di",
        "e",
        "in",
        "un",
        "una",
        "che",
        "per",
        "con",
        "non",
        "del",
        "della",
        "sono",
        "secondo",
    ],
}
_STOPWORD_SETS = {lang: frozenset(words) for lang, words in _STOPWORDS.items()}
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)
_LANG_CODE_RE = re.compile(r"[a-z]{2,3}", re.ASCII)


def detect_language(text: str, *, hint: str | None = None) -> str:
    """ISO 639-1 code of the text's language, by script, then by function words for Latin scripts.

    ``hint`` (the feed's declared language) is used when the text is too short to tell; it comes from
    the feed, so only its primary subtag is kept, and only when it looks like an ISO 639 code (two
    or three letters). Returns ``und`` when nothing can be told.
    """
    sample = text[:4000]
    found = _WORD_RE.findall(sample)
    letters = len(found) or 1
    for code, pattern in _SCRIPTS:
        if len(pattern.findall(sample)) >= max(3, letters * 0.15):
            if code == "zh" and _SCRIPTS[1][1].search(sample):
                return "ja"
            return code
    words = [w.casefold() for w in found]
    hint_code = (hint or "").strip().split("-")[0].split("_")[0].lower()
    if not _LANG_CODE_RE.fullmatch(hint_code):
        hint_code = ""
    if len(words) >= 4:
        counts = Counter(words)  # each distinct word looked up once per language
        scores = {
            lang: sum(n for w, n in counts.items() if w in sw)
            for lang, sw in _STOPWORD_SETS.items()
        }
        best = max(scores, key=lambda k: scores[k])
        if scores[best] >= 2:
            return best
    return hint_code or "und"


_SENTENCE_RE = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (simple punctuation rule, good enough for evidence display)."""
    return [s.strip() for s in _SENTENCE_RE.split(text) if s and len(s.strip()) > 1]
