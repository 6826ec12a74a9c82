"""Hashed character n-grams computed once per distinct word: the same matrix, several times faster.

A ``HashingVectorizer(analyzer="char_wb")`` cuts every word of every document into padded character
n-grams and hashes each n-gram, in Python, every time the word appears. Its n-grams never cross a
word boundary, so a document's row is exactly the sum of the rows of its words taken alone. This
module keeps those per-word rows (column indices and counts) in a bounded cache and assembles each
document's row from them, which turns the per-n-gram Python work into a dictionary lookup per word.

Guarantee: :func:`hash_units` returns a matrix equal, entry for entry (same columns, same counts,
same dtype, canonical CSR), to ``hasher.transform(units)`` — tested against scikit-learn on text in
every supported script. Hashers it cannot reproduce exactly (another analyzer, a custom
preprocessor or tokenizer, accent stripping, signed hashing, binary counts or a norm) go to
``hasher.transform`` unchanged. Nothing is trained or stored: models need no change.

The cache is shared by every hasher with the same n-gram range, width and lowercasing (the hash is a
function of those alone) and holds at most :data:`MAX_WORDS` words; when full it is emptied before
the next batch, so memory stays bounded however much text passes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix

__all__ = ["MAX_WORDS", "hash_units", "supports"]

# Distinct words kept per hashing configuration (~200 bytes each: about 40 MB when full).
MAX_WORDS = 200_000

_Row = tuple[np.ndarray, np.ndarray]
_CACHES: dict[tuple[Any, ...], dict[str, _Row]] = {}


def supports(hasher: Any) -> bool:
    """True when :func:`hash_units` reproduces ``hasher`` exactly (a plain char_wb hasher)."""
    try:
        params = hasher.get_params()
    except AttributeError:
        return False
    return (
        params.get("analyzer") == "char_wb"
        and params.get("preprocessor") is None
        and params.get("tokenizer") is None
        and not params.get("strip_accents")
        and params.get("alternate_sign") is False
        and params.get("binary") is False
        and params.get("norm") is None
        and params.get("input") == "content"
    )


def _cache_for(hasher: Any) -> dict[str, _Row]:
    key = (
        int(hasher.n_features),
        tuple(hasher.ngram_range),
        bool(hasher.lowercase),
        np.dtype(hasher.dtype).str,
    )
    cache = _CACHES.get(key)
    if cache is None or len(cache) > MAX_WORDS:
        cache = _CACHES[key] = {}
    return cache


def hash_units(hasher: Any, units: Sequence[str]) -> Any:
    """``hasher.transform(units)``, computed per distinct word for char_wb hashers (see above)."""
    if not supports(hasher):
        return hasher.transform(units)
    cache = _cache_for(hasher)
    lower = bool(hasher.lowercase)
    tokenised = [(u.lower() if lower else u).split() for u in units]
    missing = list({w: None for words in tokenised for w in words if w not in cache})
    if missing:
        # Each new word hashed alone by scikit-learn itself: its row is the word's n-gram counts.
        rows = hasher.transform(missing)
        indptr, indices, data = rows.indptr, rows.indices, rows.data
        for i, word in enumerate(missing):
            start, end = indptr[i], indptr[i + 1]
            cache[word] = (indices[start:end].copy(), data[start:end].copy())
    dtype = np.dtype(hasher.dtype)
    parts_i: list[np.ndarray] = []
    parts_d: list[np.ndarray] = []
    pointer = np.zeros(len(units) + 1, dtype=np.int64)
    total = 0
    for n, words in enumerate(tokenised):
        for word in words:
            ind, dat = cache[word]
            parts_i.append(ind)
            parts_d.append(dat)
            total += len(ind)
        pointer[n + 1] = total
    if parts_i:
        all_i = np.concatenate(parts_i).astype(np.int32, copy=False)
        all_d = np.concatenate(parts_d).astype(dtype, copy=False)
    else:
        all_i, all_d = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=dtype)
    matrix = csr_matrix(
        (all_d, all_i, pointer.astype(np.int32)), shape=(len(units), int(hasher.n_features))
    )
    matrix.sum_duplicates()  # sorts the columns of each row and adds repeated n-grams
    return matrix
