"""`make bench-xquad`: the XQuAD pairs of the evaluation issue, with the dense-only
anchors measured for the same embedding, as a Markdown table.

Each pair runs `rag eval --xquad QLANG:PLANG` in process: PLANG's 240 paragraphs are
indexed once (var/xquad/PLANG, embeddings cached), the 1190 questions asked in QLANG.
"""

from __future__ import annotations

import json
import sys
import time

from rag.config import Settings
from rag.eval import xquad

PAIRS = ["en:ar", "en:vi", "en:zh", "ar:ar", "vi:vi", "en:en", "en:ar+vi"]
ANCHORS = {  # dense-only, same embedding, 240 candidates (R@1, R@5)
    "en:ar": (0.753, 0.955),
    "en:vi": (0.745, 0.940),
    "ar:ar": (0.866, 0.970),
    "vi:vi": (0.896, 0.982),
    "en:en": (0.937, 0.995),
}


def main() -> int:
    settings = Settings()
    rows = []
    for pair in sys.argv[1:] or PAIRS:
        t0 = time.perf_counter()
        result = xquad.run(settings, pair)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    print(
        "| pair | R@1 | anchor R@1 | R@5 | anchor R@5 | R@10 | MRR | answer quotes gold "
        "| first quote gold | quotes | quote precision | s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        o = r["overall"]
        a1, a5 = ANCHORS.get(r["pair"], (None, None))
        print(
            f"| {r['pair']} | {o['recall@1']:.3f} | {a1 or '-'} | {o['recall@5']:.3f} "
            f"| {a5 or '-'} | {o['recall@10']:.3f} | {o['mrr']:.3f} "
            f"| {o['answer_contains_gold']:.3f} | {o['first_quote_gold']:.3f} "
            f"| {o['quotes_per_answer']:.2f} | {o['quote_precision']:.3f} | {r['seconds']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
