"""Bounded decoding of HTTP bodies: gzip/deflate in steps, and a byte cap on what is kept.

Only ``gzip`` and ``deflate`` are accepted; each is decoded with ``zlib``'s ``max_length`` in pieces of
at most 64 KiB, so a compression bomb never holds more than the cap plus a few buffers in memory.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Generator, Iterator
from typing import Literal

__all__ = ["ACCEPT_ENCODING", "CappedBuffer", "DecodeError", "Decoder"]

# Only what we can decode in bounded steps; br/zstd are never advertised (and refused if sent).
ACCEPT_ENCODING = "gzip, deflate"
_DECODE_STEP = 64 * 1024
_MAX_ENCODINGS = 3


class DecodeError(Exception):
    pass


class _ZlibStage:
    """Incremental gzip/deflate decoder whose output comes in pieces of <= _DECODE_STEP bytes."""

    def __init__(self, encoding: Literal["gzip", "deflate"]) -> None:
        self._encoding = encoding
        self._wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self._d = zlib.decompressobj(self._wbits)
        self._fed = False
        self._produced = False
        # "deflate" is often sent as raw DEFLATE without the zlib header. Until the first output
        # proves the header right, keep the input (at most one step) to replay it as raw DEFLATE.
        self._replay: bytes | None = b"" if encoding == "deflate" else None

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._replay is not None:
            self._replay = None if self._produced else self._replay + data
            if self._replay is not None and len(self._replay) > _DECODE_STEP:
                self._replay = None
        while data:
            if self._d.eof:
                if self._encoding != "gzip" or not data.strip(b"\x00"):
                    return  # trailing bytes after a deflate stream, or zero padding: ignored
                self._d = zlib.decompressobj(self._wbits)  # next member of a multi-member gzip
            self._fed = True
            try:
                data = yield from self._drain(data)
            except zlib.error as exc:
                if self._replay is not None and not self._produced:
                    self._wbits = -zlib.MAX_WBITS
                    self._d = zlib.decompressobj(self._wbits)
                    data, self._replay = self._replay, None
                    continue
                raise DecodeError(f"corrupt {self._encoding} data: {exc}") from exc

    def _drain(self, data: bytes) -> Generator[bytes, None, bytes]:
        """Decompress all of ``data`` in bounded pieces; returns the bytes after the stream end."""
        d = self._d
        while True:
            out = d.decompress(data, _DECODE_STEP)
            if out:
                self._produced = True
                yield out
            if d.eof:
                return d.unused_data
            data = d.unconsumed_tail
            if not data and len(out) < _DECODE_STEP:
                return b""

    def finish(self) -> Iterator[bytes]:
        if self._fed and not self._d.eof:
            raise DecodeError(
                f"{self._encoding} body ended before the end of its compressed stream"
            )
        return iter(())


class Decoder:
    """The chain of content-encodings of a response, decoded last-applied first."""

    def __init__(self, header: str | None) -> None:
        names = [n.strip().lower() for n in (header or "").split(",")]
        names = [n for n in names if n and n != "identity"]
        if len(names) > _MAX_ENCODINGS:
            raise DecodeError(f"too many content-encodings ({header!r})")
        stages: list[_ZlibStage] = []
        for name in reversed(names):
            if name in ("gzip", "x-gzip"):
                stages.append(_ZlibStage("gzip"))
            elif name == "deflate":
                stages.append(_ZlibStage("deflate"))
            else:
                raise DecodeError(
                    f"unsupported content-encoding {name!r} (we only accept {ACCEPT_ENCODING})"
                )
        self._stages = stages

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._push(0, data)

    def _push(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[index].feed(data):
            yield from self._push(index + 1, piece)

    def finish(self) -> Iterator[bytes]:
        for index, stage in enumerate(self._stages):
            for piece in stage.finish():
                yield from self._push(index + 1, piece)


class CappedBuffer:
    """Collects at most ``limit`` bytes; remembers whether anything beyond was offered."""

    def __init__(self, limit: int) -> None:
        self._buf = io.BytesIO()
        self._size = 0
        self._limit = limit
        self.truncated = False

    def add(self, piece: bytes) -> bool:
        """Append ``piece``; False once the cap is exceeded (the excess is dropped)."""
        room = self._limit - self._size
        if len(piece) > room:
            self._buf.write(memoryview(piece)[:room])
            self._size = self._limit
            self.truncated = True
            return False
        self._buf.write(piece)
        self._size += len(piece)
        return True

    def getvalue(self) -> bytes:
        return self._buf.getvalue()
