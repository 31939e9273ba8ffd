"""CPU time of the streaming LLM output filter on adversarial 60 KB answers.

Each answer starts with a cited sentence, then opens a construct it never closes (a
parenthesis, a bracket, an angle bracket, a backtick run, a code fence, a raw HTML
block) and goes on for about 60,000 characters of words, in paragraphs or as one long
paragraph. It is fed to the filter in deltas of 5 characters (about what an LLM
stream delivers), then ``finish()`` is called. Printed: CPU seconds per answer
(``time.process_time``) and, when the filter counts them, the characters it parsed.

``--impl module:Class`` measures another filter with the same interface (for example
the pattern-matching one this filter replaced).

    python bench/bench_sanitize.py [--chars 60000] [--delta 5] [--impl rag.query.sanitize:Sanitizer]
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable

WORDS = "DeepSeek trained the model on H800 chips under export controls in 2023 "


def body(chars: int, paragraphs: bool) -> str:
    """About ``chars`` characters of words; a blank line every ~600 when ``paragraphs``."""
    out: list[str] = []
    size = 0
    while size < chars:
        piece = WORDS * 8 + ("\n\n" if paragraphs else "")
        out.append(piece)
        size += len(piece)
    return "".join(out)[:chars]


def answers(chars: int) -> dict[str, str]:
    head = "DeepSeek used the H800 chip [1]. "
    cases = {
        "early '(' , one paragraph": head + "(see " + body(chars, False),
        "early '(' , paragraphs": head + "(see " + body(chars, True),
        "early '[' , paragraphs": head + "[see " + body(chars, True),
        "early '<' , paragraphs": head + "<see " + body(chars, True),
        "early '``' , paragraphs": head + "`` see " + body(chars, True),
        "unclosed fence": head + "\n\n```\n" + body(chars, True),
        "unclosed <script> block": head + "\n\n<script>\n" + body(chars, True),
        "plain paragraphs": head + body(chars, True),
    }
    return cases


def run(factory: Callable[[], object], text: str, delta: int) -> tuple[float, int | None, int]:
    sanitizer = factory()
    started = time.process_time()
    out = 0
    for i in range(0, len(text), delta):
        out += len(sanitizer.feed(text[i : i + delta]))  # type: ignore[attr-defined]
    out += len(sanitizer.finish())  # type: ignore[attr-defined]
    cpu = time.process_time() - started
    return cpu, getattr(sanitizer, "parsed_chars", None), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=60_000)
    parser.add_argument("--delta", type=int, default=5)
    parser.add_argument("--impl", default="rag.query.sanitize:Sanitizer")
    args = parser.parse_args()
    module, _, name = args.impl.partition(":")
    cls = getattr(importlib.import_module(module), name)

    def factory() -> object:
        return cls({1}, {"docs.example.org"})

    print(f"{args.impl}, answers of ~{args.chars} characters fed in deltas of {args.delta}")
    print("| answer | characters | CPU s | parsed characters | output characters |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, text in answers(args.chars).items():
        cpu, parsed, out = run(factory, text, args.delta)
        shown = "-" if parsed is None else f"{parsed:,}"
        print(f"| {label} | {len(text):,} | {cpu:.2f} | {shown} | {out:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
