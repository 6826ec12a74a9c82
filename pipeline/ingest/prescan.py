"""A linear pre-scan of a feed document: refuses the shapes that make feedparser slow or hungry, and
finds where to cut a document that holds more entries than will be kept.

feedparser is not linear in every shape of document (issue 10), and its loose parser and HTML
sanitizer (both on sgmllib) hold large per-character state for some constructs:

* its strict parser looks each attribute of an element up by scanning all of them (one element with
  160,000 attributes took 281 s), and walks every namespace prefix the document ever declared for
  each element in a namespace it does not know (8,000 prefixes and elements took 3.3 s; 4.8 MB of
  them about 15 minutes);
* nesting and element count are linear but slow (3 MB of either took 8 to 24 s), and a malformed
  document is parsed twice, the second time by the loose parser: 5 MiB of ``<a<a<a`` took 38 s
  and 690 MiB, of ``<<<<`` 25 s;
* sgmllib finds the end of a tag with a regular expression that keeps state for every character
  outside quoted values: one 5 MB tag name, unquoted value or run of blanks took 830 MiB, in the
  document or in HTML in its text; one HTML tag with 580,000 attributes took 949 MiB; 5 MiB of
  ``<!x<!x`` 11 s and 310 MiB.

Before feedparser sees a document, :func:`prescan` walks it once and raises
:class:`~pipeline.errors.FeedParseError` naming the setting (:class:`ParseLimits`, under ``fetch:``
in settings.yaml) when the part that will be parsed has

* an element with more than ``max_attributes`` attributes (namespace declarations included), or an
  HTML tag in its text (escaped, or in CDATA) with that many (``=`` signs after a name, between two
  brackets);
* more than ``max_namespaces`` distinct namespace prefixes declared (feedparser keeps every prefix it
  has seen: declarations on the root or one per element alike);
* elements nested deeper than ``max_depth``;
* more than ``max_elements`` elements, or more than ``max_elements`` comments, CDATA sections,
  processing instructions and declarations, or more than twice ``max_elements`` ``<`` outside them
  (each start or end tag has one; a stray ``<`` of ill-formed markup counts too);
* more than ``max_tags`` tags in the document and in the HTML of its text together, or more than
  ``max_total_attributes`` ``=`` signs (each attribute has one; so do a few URLs): the HTML
  sanitizer is linear but slow, about 10 µs a tag or an attribute (5 MiB of ``<b>x</b>`` took
  5.5 s, of tags of 120 attributes 10 s);
* a tag, in the document or in HTML in its text, longer than ``max_tag_bytes`` outside its quoted
  values.

It also finds where the entry after the first ``max_items`` entries (``item``/``entry`` elements
outside any other entry) starts, and the end tags of the elements open there: :func:`cut` keeps the
document up to that point and closes it, so feedparser never builds the entries that would be thrown
away (a 5 MiB feed of tiny items held 150,000 of them).

**Linear, whatever the input.** Comments, CDATA sections, processing instructions and declarations
are skipped to their end with ``bytes.find``. Between them, tags are found by one regular expression
with possessive quantifiers that cannot pass the next ``<`` (neither names nor attribute values may
contain one); a ``<`` that opens no tag is stepped over inside the regular expression engine, so
only tags and skipped constructs cost a Python iteration, and counting stops at each limit. The
checks on text are regular expressions anchored at brackets whose parts cannot overlap. The input
is the UTF-8 document :mod:`pipeline.ingest.parse` prepared (entities refused, DOCTYPE dropped).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.config import FetchPolicy
from pipeline.errors import ConfigError, FeedParseError

__all__ = ["DEFAULT_LIMITS", "ParseLimits", "Shape", "cut", "prescan"]


_DEFAULTS = FetchPolicy()


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What a feed document may hold before feedparser is asked to parse it (see the module
    docstring); the settings of the same names under ``fetch:`` (:class:`FetchPolicy` holds the
    defaults). The defaults are far above what real feeds use (a few attributes per element, ten
    to twenty namespace prefixes, depth under 30, tags under a few hundred bytes; 500 entries of
    rich items stay under 20,000 elements) and keep the worst document of ``fetch.max_bytes``
    (5 MiB) that passes them to a few seconds of parsing (measured in SECURITY.md)."""

    max_attributes: int = _DEFAULTS.max_attributes
    max_namespaces: int = _DEFAULTS.max_namespaces
    max_depth: int = _DEFAULTS.max_depth
    max_elements: int = _DEFAULTS.max_elements
    max_tags: int = _DEFAULTS.max_tags
    max_tag_bytes: int = _DEFAULTS.max_tag_bytes
    max_total_attributes: int = _DEFAULTS.max_total_attributes

    @classmethod
    def from_policy(cls, policy: FetchPolicy) -> ParseLimits:
        return cls(
            max_attributes=policy.max_attributes,
            max_namespaces=policy.max_namespaces,
            max_depth=policy.max_depth,
            max_elements=policy.max_elements,
            max_tags=policy.max_tags,
            max_tag_bytes=policy.max_tag_bytes,
            max_total_attributes=policy.max_total_attributes,
        )

    def __post_init__(self) -> None:
        for name in (
            "max_attributes",
            "max_namespaces",
            "max_depth",
            "max_elements",
            "max_tags",
            "max_total_attributes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ParseLimits.{name}: expected an integer >= 1, got {value!r}")
        value = self.max_tag_bytes
        if isinstance(value, bool) or not isinstance(value, int) or value < 256:
            raise ConfigError(
                f"ParseLimits.max_tag_bytes: expected an integer >= 256, got {value!r}"
            )


DEFAULT_LIMITS = ParseLimits()


@dataclass(frozen=True, slots=True)
class Shape:
    """What the scan saw. ``cut_at`` is the offset of the first entry past ``max_items`` (None when
    there is none), ``closing`` the end tags of the elements open there, ``entries`` the entries in
    the whole document (those after the cut counted by their start tags)."""

    elements: int
    depth: int
    namespaces: int
    entries: int
    cut_at: int | None = None
    closing: bytes = b""


# ---------------------------------------------------------------------------------------- patterns

# A start or end tag: "/" for an end tag, the name, the attributes, "/" when self-closing. A tag not
# closed by ">" ends before the next "<" (as the loose parser reads it). Possessive quantifiers
# (Python 3.11+) and classes without "<": a match attempt never passes the next "<".
_TAG = re.compile(
    rb"<(/?)([^\s/>!?<\"'=]++)((?:[^<>\"'/]|/(?!>)|\"[^\"<]*+\"|'[^'<]*+')*+)(?:(/?)>|(?=<))"
)
# One attribute (name = quoted value) of a tag's attribute text, its name in group 1. It starts only
# after white space or a quote, so a search over a long run of other bytes stays linear.
_ATTRIBUTE = re.compile(rb"""(?<![^\s"'])([^\s="']++)\s*+=\s*+(?:"[^"]*+"|'[^']*+')""")
# An entry start tag anywhere (used only to count the entries after the cut).
_ENTRY_START = re.compile(rb"<(?:[^\s/>!?<\"'=:]++:)?(?:item|entry)[\s/>]", re.IGNORECASE)
_ENTRY_NAMES = frozenset({b"item", b"entry"})
# Constructs whose content is not markup, and where each ends.
_SKIP_START = re.compile(rb"<(?:!--|!\[CDATA\[|\?|!)")
_SKIP_END = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>", b"<!": b">"}
# What sgmllib reads as "<" and ">" once the XML is parsed: raw, or as references in text.
_OPEN = rb"(?:<|&lt;|&#0*60;|&#[xX]0*3[cC];)"
_BRACKET = rb"(?:<|>|&lt;|&gt;|&#0*6[02];|&#[xX]0*3[cCeE];)"
_NOT_BRACKET = rb"&(?!lt;|gt;|#0*6[02];|#[xX]0*3[cCeE];)"
# A tag in the document or in HTML in its text, as sgmllib recognises one.
_ANY_TAG = re.compile(_OPEN + rb"/?[A-Za-z]")


@lru_cache(maxsize=8)
def _attribute_run(limit: int) -> re.Pattern[bytes]:
    """More than ``limit`` attribute-like ``=`` between two brackets: a tag, in the document or in
    HTML in its text, that sgmllib would split into that many attributes. An ``=`` counts when it
    follows a name character or white space (a "=====" rule counts once)."""
    return re.compile(
        rb"%s(?:(?:[^<>&=]|%s|(?<![\w.:\s-])=)*+=){%d}" % (_BRACKET, _NOT_BRACKET, limit + 1)
    )


@lru_cache(maxsize=8)
def _long_tag(limit: int) -> re.Pattern[bytes]:
    """A tag (a bracket, an optional "/", a letter) with more than ``limit`` bytes outside quoted
    values (raw or ``&quot;`` quotes) before the next bracket: what sgmllib keeps state for."""
    quoted = rb"\"[^\"<>]*+\"|'[^'<>]*+'|&quot;(?:[^&<>]|&(?!quot;|lt;|gt;))*+&quot;"
    plain = rb"[^<>&\"']|&(?!quot;|lt;|gt;|#0*6[02];|#[xX]0*3[cCeE];)"
    return re.compile(rb"%s/?[A-Za-z](?:(?:%s)*+(?:%s)){%d}" % (_OPEN, quoted, plain, limit))


# ------------------------------------------------------------------------------------------- scan


def _refuse(what: str, limit: int, setting: str) -> FeedParseError:
    return FeedParseError(
        f"the feed has {what}, over the limit of {limit:,} (fetch.{setting}); refused "
        "(parser complexity risk)"
    )


def _attributes(attributes: bytes, limit: int, prefixes: set[bytes]) -> int:
    """How many attributes (counting no further than ``limit + 1``); the prefixes their namespace
    declarations declare are added to ``prefixes`` (``b""`` for the default namespace)."""
    count = 0
    for count, attribute in enumerate(_ATTRIBUTE.finditer(attributes), start=1):
        if count > limit:
            break
        name = attribute.group(1)
        if name == b"xmlns" or name.startswith(b"xmlns:"):
            prefixes.add(name[6:])
    return count


class _Scan:
    """The state of one :func:`prescan`."""

    def __init__(self, data: bytes, limits: ParseLimits, max_items: int) -> None:
        self.data = data
        self.limits = limits
        self.max_items = max_items
        self.stack: list[bytes] = []
        self.prefixes: set[bytes] = set()
        self.elements = self.end_tags = self.depth = self.entries = 0
        self.skipped = self.skipped_lt = 0
        self.in_entry = 0  # len(stack) inside the entry being read, 0 outside any entry

    def run(self) -> Shape:
        data, size, pos = self.data, len(self.data), 0
        while pos < size:
            skip = _SKIP_START.search(data, pos)
            for tag in _TAG.finditer(data, pos, skip.start() if skip else size):
                shape = self._tag(tag)
                if shape is not None:
                    return shape
            if skip is None:
                break
            self.skipped += 1
            if self.skipped > self.limits.max_elements:
                raise _refuse(
                    f"more than {self.limits.max_elements:,} comments, CDATA sections, processing "
                    "instructions and declarations",
                    self.limits.max_elements,
                    "max_elements",
                )
            opener = skip.group()
            closer = _SKIP_END[opener]
            limit = size
            if opener in (b"<?", b"<!"):  # as the loose parser reads them: never past a "<"
                following = data.find(b"<", skip.end())
                limit = size if following < 0 else following
            end = data.find(closer, skip.end(), limit)
            pos = limit if end < 0 else end + len(closer)  # unterminated: it hides the rest
            self.skipped_lt += data.count(b"<", skip.start(), pos)
        return Shape(self.elements, self.depth, len(self.prefixes), self.entries)

    def _tag(self, tag: re.Match[bytes]) -> Shape | None:
        """Account for one tag; the shape to stop with when it starts the entry past the cut."""
        end_tag, name, attributes, self_closing = tag.group(1, 2, 3, 4)
        stack, limits = self.stack, self.limits
        if end_tag:
            self.end_tags += 1
            if self.end_tags > limits.max_elements:  # more than start tags can close
                raise _refuse(
                    f"more than {limits.max_elements:,} end tags",
                    limits.max_elements,
                    "max_elements",
                )
            if stack and stack[-1] == name:
                stack.pop()
            elif name in stack:  # unclosed elements in between (ill-formed): closed by this one
                while stack.pop() != name:
                    pass
            if self.in_entry > len(stack):
                self.in_entry = 0
            return None
        local = name.rpartition(b":")[2].lower()
        entry = local in _ENTRY_NAMES and not self.in_entry
        if entry:
            self.entries += 1
            if self.max_items and self.entries > self.max_items:
                start = tag.start()
                closing = b"".join(b"</" + n + b">" for n in reversed(stack))
                rest = sum(1 for _ in _ENTRY_START.finditer(self.data, start))
                return Shape(
                    self.elements,
                    self.depth,
                    len(self.prefixes),
                    self.entries - 1 + rest,
                    start,
                    closing,
                )
        self.elements += 1
        if self.elements > limits.max_elements:
            raise _refuse(
                f"more than {limits.max_elements:,} elements", limits.max_elements, "max_elements"
            )
        if len(attributes) > 2:  # room for one attribute: ' a=""'
            count = _attributes(attributes, limits.max_attributes, self.prefixes)
            if len(self.prefixes) > limits.max_namespaces:  # first: the more specific reason
                raise _refuse(
                    f"more than {limits.max_namespaces:,} namespace prefixes declared",
                    limits.max_namespaces,
                    "max_namespaces",
                )
            if count > limits.max_attributes:
                raise _refuse(
                    f"an element <{name[:40].decode('utf-8', 'replace')}> with more than "
                    f"{limits.max_attributes:,} attributes",
                    limits.max_attributes,
                    "max_attributes",
                )
        if self_closing:
            return None
        stack.append(name)
        if len(stack) > self.depth:
            self.depth = len(stack)
            if self.depth > limits.max_depth:
                raise _refuse(
                    f"elements nested more than {limits.max_depth:,} deep",
                    limits.max_depth,
                    "max_depth",
                )
        if entry:
            self.in_entry = len(stack)
        return None


def prescan(data: bytes, limits: ParseLimits = DEFAULT_LIMITS, *, max_items: int = 0) -> Shape:
    """Scan ``data`` once; raise :class:`FeedParseError` on a shape over ``limits`` (see the module
    docstring). With ``max_items`` > 0, find where the entry after the first ``max_items`` starts
    (see :class:`Shape`); only the part before it is held to the limits. Raises nothing else."""
    scan = _Scan(data, limits, max_items)
    shape = scan.run()
    end = len(data) if shape.cut_at is None else shape.cut_at
    stray_limit = 2 * limits.max_elements
    if data.count(b"<", 0, end) - scan.skipped_lt > stray_limit:
        raise _refuse(
            f"more than {stray_limit:,} tags and stray '<' outside comments and CDATA sections",
            limits.max_elements,
            "max_elements",
        )
    if data.count(b"=", 0, end) > limits.max_total_attributes:  # each attribute has one
        raise _refuse(
            f"more than {limits.max_total_attributes:,} '=' (attributes, in its markup and in the "
            "HTML of its text)",
            limits.max_total_attributes,
            "max_total_attributes",
        )
    tags = _ANY_TAG.finditer(data, 0, end)
    if next(itertools.islice(tags, limits.max_tags, None), None) is not None:
        raise _refuse(
            f"more than {limits.max_tags:,} tags in its markup and in the HTML of its text",
            limits.max_tags,
            "max_tags",
        )
    if _attribute_run(limits.max_attributes).search(data, 0, end):
        raise _refuse(
            f"a tag in its HTML content with more than {limits.max_attributes:,} attributes",
            limits.max_attributes,
            "max_attributes",
        )
    if _long_tag(limits.max_tag_bytes).search(data, 0, end):
        raise _refuse(
            f"a tag longer than {limits.max_tag_bytes:,} bytes outside its quoted values",
            limits.max_tag_bytes,
            "max_tag_bytes",
        )
    return shape


def cut(data: bytes, shape: Shape) -> bytes:
    """``data`` up to ``shape.cut_at``, closed with ``shape.closing`` (``data`` when no cut)."""
    if shape.cut_at is None:
        return data
    return data[: shape.cut_at] + shape.closing
