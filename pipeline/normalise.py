"""Pure text normalisation: HTML to text, safe strings, canonical URLs, language, stable keys.

Everything here is a pure function over strings: no I/O, no clock. Feed text comes from anywhere on the
internet, so every function tolerates (and cleans) NUL bytes, lone surrogates, control characters and
absurd lengths.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from html import unescape
from html.parser import HTMLParser
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


class _TextExtractor(HTMLParser):
    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth or self.size > self.limit:
            return
        self.parts.append(data)
        self.size += len(data)


def html_to_text(html: str | None, *, max_chars: int = 100_000) -> str:
    """Visible text of an HTML fragment: tags dropped, scripts and styles removed, entities decoded.

    Plain text passes through unchanged (apart from entity decoding), so feeds that put text in an
    HTML field and feeds that put HTML in a text field both come out as text.
    """
    if not html:
        return ""
    if "<" not in html:
        return clean_text(unescape(html), max_chars=max_chars)
    # Parse at most a bounded prefix: a 5 MB summary is cut before the HTML parser sees it.
    parser = _TextExtractor(limit=max_chars * 2)
    parser.feed(html[: max_chars * 4])
    parser.close()
    return clean_text("".join(parser.parts), max_chars=max_chars)


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
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


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
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


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
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str, *, hint: str | None = None) -> str:
    """ISO 639-1 code of the text's language, by script, then by function words for Latin scripts.

    ``hint`` (the feed's declared language) is used when the text is too short to tell. Returns
    ``und`` when nothing can be told.
    """
    sample = text[:4000]
    letters = len(_WORD_RE.findall(sample)) or 1
    for code, pattern in _SCRIPTS:
        if len(pattern.findall(sample)) >= max(3, letters * 0.15):
            if code == "zh" and _SCRIPTS[1][1].search(sample):
                return "ja"
            return code
    words = [w.casefold() for w in _WORD_RE.findall(sample)]
    hint_code = (hint or "").split("-")[0].split("_")[0].lower() or None
    if len(words) >= 4:
        scores = {lang: sum(1 for w in words if w in set(sw)) for lang, sw in _STOPWORDS.items()}
        best = max(scores, key=lambda k: scores[k])
        if scores[best] >= 2:
            return best
    return hint_code or "und"


_SENTENCE_RE = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (simple punctuation rule, good enough for evidence display)."""
    return [s.strip() for s in _SENTENCE_RE.split(text) if s and len(s.strip()) > 1]
