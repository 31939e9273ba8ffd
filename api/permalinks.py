"""Citation permalinks: a source-viewer link carries the content hash of the passage
it points at, so that it still finds that passage after a re-index moved it, and says
so when the passage is gone instead of highlighting other text.

The hash is of the cited **quote** (the citation's ``quote``, i.e. the file's text at
``[start_char:end_char]``): the first 16 hex digits (64 bits) of the SHA-256 of its
UTF-8 bytes. A link is ``/v1/sources/NAME?start=S&end=E&sha=H``.
"""

from __future__ import annotations

import hashlib

import numpy as np

SHA_CHARS = 16
"""Hex digits of the SHA-256 a link carries (64 bits: a collision by chance is ~1e-19)."""

MAX_CANDIDATES = 250_000
"""Start positions tried, nearest the link's own first, before a passage counts as
gone: bounds the work one request can cause on a large file (250,000 windows of a
300-character Arabic quote hash in ~0.45 s on one core)."""


def quote_hash(text: str) -> str:
    """The first ``SHA_CHARS`` hex digits of SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:SHA_CHARS]


def locate(text: str, start: int, end: int, sha: str) -> tuple[int, int] | None:
    """Where the passage whose ``quote_hash`` is ``sha`` (``end - start`` characters
    long) is in ``text`` now: ``(start, end)`` itself when it is still there, else the
    nearest place holding it (the file was edited before it), else None (its text
    changed, or it is not within ``MAX_CANDIDATES`` positions of the old place).

    Raises ValueError when ``start > end`` or ``sha`` is not ``SHA_CHARS`` hex digits.
    """
    if start > end:
        raise ValueError(f"start must be <= end, got start={start}, end={end}")
    if len(sha) != SHA_CHARS:
        raise ValueError(f"sha must be {SHA_CHARS} hex digits, got {sha!r}")
    target = bytes.fromhex(sha)
    length = end - start
    if end <= len(text) and quote_hash(text[start:end]) == sha.lower():
        return start, end
    last = len(text) - length  # the last start a window of this length can have
    if last < 0:
        return None
    data = text.encode("utf-8")
    # the byte offset of every character and of the end: window i is data[at[i]:at[i+length]]
    raw = np.frombuffer(data, dtype=np.uint8)
    at: list[int] = np.append(np.flatnonzero((raw & 0xC0) != 0x80), len(data)).tolist()
    view = memoryview(data)
    origin = min(start, last)
    tried = 0
    for distance in range(last + 1):
        for i in (origin + distance, origin - distance) if distance else (origin,):
            if 0 <= i <= last:
                if hashlib.sha256(view[at[i] : at[i + length]]).digest()[: len(target)] == target:
                    return i, i + length
                tried += 1
        if tried >= MAX_CANDIDATES or (origin + distance >= last and origin - distance <= 0):
            break
    return None
