"""Filters an LLM's answer while it streams (rag/query/llm.py): ``[n]`` markers that
name no passage given to the model are removed, Markdown images, HTML images and
links to hosts outside the allowlist are stripped (the exfiltration route through
rendered answers), each with a warning.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from rag.query.citations import MARKER
from rag.types import WarningCode, warning

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*>?", re.IGNORECASE)
_LINK = re.compile(r"\[([^\]]*)\]\(\s*([^)\s]*)[^)]*\)")
_BARE_URL = re.compile(r"\b(?:https?|ftp)://[^\s)\]>]+", re.IGNORECASE)


class Sanitizer:
    """Filters LLM text as it streams. Text is released only up to a whitespace where
    no bracket, parenthesis or tag is open, so a link or marker is never cut in two
    and the released pieces joined equal ``clean(full text)``. Nothing is released
    before the first valid citation marker (an answer that has none falls back)."""

    def __init__(self, valid: set[int], allowed_hosts: set[str]) -> None:
        self.valid = valid
        self.allowed_hosts = allowed_hosts
        self._held = ""
        self._released: list[str] = []
        self.cited = False
        self.warnings: list[str] = []

    def _host_allowed(self, url: str) -> bool:
        host = (urlparse(url).hostname or "").lower()
        return bool(host) and host in self.allowed_hosts

    def clean(self, text: str) -> str:
        """``text`` without images, links to hosts outside the allowlist and
        markers of passages not given, noting a warning for each."""

        def image(match: re.Match[str]) -> str:
            self.warnings.append(warning(WarningCode.LLM_IMAGE_REMOVED))
            return ""

        def link(match: re.Match[str]) -> str:
            if self._host_allowed(match.group(2)):
                return match.group(0)
            self.warnings.append(warning(WarningCode.LLM_LINK_REMOVED))
            return match.group(1)

        def bare(match: re.Match[str]) -> str:
            if self._host_allowed(match.group(0)):
                return match.group(0)
            self.warnings.append(warning(WarningCode.LLM_LINK_REMOVED))
            return ""

        def marker(match: re.Match[str]) -> str:
            n = int(match.group(1))
            if n in self.valid:
                self.cited = True
                return match.group(0)
            self.warnings.append(warning(WarningCode.INVALID_CITATION, f"[{n}]"))
            return ""

        text = _IMAGE.sub(image, text)
        text = _HTML_IMAGE.sub(image, text)
        text = _LINK.sub(link, text)
        text = _BARE_URL.sub(bare, text)
        return MARKER.sub(marker, text)

    @staticmethod
    def _safe_cut(text: str) -> int:
        """Length of the longest prefix that ends at whitespace with nothing open."""
        depth = {"[": 0, "(": 0, "<": 0}
        closing = {"]": "[", ")": "(", ">": "<"}
        cut = 0
        for i, ch in enumerate(text):
            if ch in depth:
                depth[ch] += 1
            elif ch in closing and depth[closing[ch]] > 0:
                depth[closing[ch]] -= 1
            elif ch.isspace() and not any(depth.values()):
                cut = i + 1
        return cut

    def feed(self, delta: str) -> str:
        """Take a piece of model output; return what may be shown now ('' if none)."""
        self._held += delta
        cut = self._safe_cut(self._held)
        if cut == 0:
            return ""
        piece = self.clean(self._held[:cut])
        self._held = self._held[cut:]
        self._released.append(piece)
        if not self.cited:
            return ""
        out = "".join(self._released)
        self._released = []
        return out

    def finish(self) -> str:
        """What is left to show at the end of the stream."""
        if self._held:
            self._released.append(self.clean(self._held))
            self._held = ""
        out = "".join(self._released)
        self._released = []
        return out
