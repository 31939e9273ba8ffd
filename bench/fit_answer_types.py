"""`make fit-answer-types`: fit the answer-type classifier (rag/query/answer_types.py)
on XQuAD and write rag/query/answer_types.json.

Data: XQuAD's questions in en, ar, vi and zh (RAG_XQUAD_DIR, 1,190 each, the same
questions in every language; 48 articles), embedded as the service embeds a question.

Labels (training only, never at query time): XQuAD is parallel, so one label per
question, read from its English wording and English gold answer (``label``): "how
many / how much / what percentage" ask for a quantity; "when / what year" or an answer
that is a year or a month name ask for a time; an answer of digits is a quantity; "who"
asks for a person; "where" or a short capitalised answer is an entity (a place or
another name); the rest is "other". The classifier never sees these words: it learns
from the question's vector, in all four languages at once.

Model: scikit-learn ``LogisticRegression`` (multinomial, C=2) on the raw unit vectors.
Cross-validated in 5 folds grouped by article (no article on both sides): accuracy per
language, the majority class's share, recall of each type, and the accuracy of a model
fitted on English questions only (how well it carries to a language it never saw). The
shipped model is fitted on all questions.

Usage: python bench/fit_answer_types.py [--out rag/query/answer_types.json]
Needs the dev extras (scikit-learn). Question vectors are kept in
var/fit/answer_types_questions.npz (re-used while the texts and model are the same).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from rag.config import Settings
from rag.eval import xquad
from rag.index.embedding import load_embedding, model_id
from rag.query.answer_types import TYPES, numbers

LANGS = ("en", "ar", "vi", "zh")
FOLDS = 5
C = 2.0
SEED = 0
CACHE = Path("var/fit/answer_types_questions.npz")

_TIME_WORDS = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|century|centuries|decade|bc|ad|bce)\b",
    re.IGNORECASE,
)


def label(question_en: str, answer_en: str) -> str:
    """The answer type of an XQuAD question from its English question and gold answer
    (the module doc's rules; training labels only)."""
    q = question_en.casefold()
    a = answer_en.strip()
    digits = [x.digits for x in numbers(a)]
    year = any(len(d) == 4 and d.isdigit() and 1000 <= int(d) <= 2100 for d in digits)
    if re.search(r"\bhow (many|much)\b|\bwhat (percentage|percent|proportion|amount)\b", q):
        return "quantity"
    if re.search(
        r"^\s*when\b|\bwhat (year|century|decade|date|month|day|time)\b|\bin which year\b", q
    ):
        return "time"
    if (digits and year) or (_TIME_WORDS.search(a) and len(a.split()) <= 4):
        return "time"
    if digits:
        return "quantity"
    if re.search(r"\bwho(m|se)?\b", q):
        return "person"
    if re.search(r"^\s*where\b|\bin (what|which) (city|country|state|region|place|town)\b", q):
        return "entity"
    words = a.split()
    if words and len(words) <= 6 and sum(w[0].isupper() for w in words) >= max(1, len(words) // 2):
        return "entity"
    return "other"


def question_vectors(texts: list[str], model: str, embed: object) -> np.ndarray:
    """The questions' vectors, from CACHE when it holds these texts for this model."""
    key = hashlib.sha256(("\n".join(texts) + "\0" + model).encode("utf-8")).hexdigest()
    if CACHE.is_file():
        cached = np.load(CACHE)
        if str(cached["key"]) == key:
            return np.asarray(cached["vectors"], dtype=np.float32)
    print(f"embedding {len(texts)} questions with {model}", file=sys.stderr)
    get = embed.get_query_embedding  # type: ignore[attr-defined]
    vectors = np.asarray([get(t) for t in texts], dtype=np.float32)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, key=np.array(key), vectors=vectors)
    return vectors


def used(types: np.ndarray) -> np.ndarray:
    """The types as the answerer uses them (rag/query/answer_types.py ``mismatch``):
    person, time, quantity, and the rest as one."""
    return np.where(np.isin(types, ["person", "time", "quantity"]), types, "rest")


def model() -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=3000, random_state=SEED)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("rag/query/answer_types.json"))
    args = parser.parse_args()
    settings = Settings()
    embedding = load_embedding(settings.embedding)
    mid = model_id(embedding)
    questions = {lang: xquad.load(settings.xquad_dir, lang)[1] for lang in LANGS}
    english = {q.qid: q for q in questions["en"]}
    rows = [(lang, q) for lang in LANGS for q in questions[lang] if q.qid in english]
    texts = [q.question for _, q in rows]
    y = np.array([label(english[q.qid].question, english[q.qid].answers[0]) for _, q in rows])
    langs = np.array([lang for lang, _ in rows])
    groups = np.array([q.pid[:3] for _, q in rows])
    X = question_vectors(texts, mid, embedding)

    classes = [t for t in TYPES if t in set(y)]
    pred = np.empty(len(y), dtype=object)
    zero = np.zeros(len(y), dtype=bool)
    for train, test in GroupKFold(n_splits=FOLDS).split(X, y, groups):
        pred[test] = model().fit(X[train], y[train]).predict(X[test])
        en = train[langs[train] == "en"]
        zero[test] = model().fit(X[en], y[en]).predict(X[test]) == y[test]
    by_lang: dict[str, dict[str, float | None]] = {}
    for lang in LANGS:
        m = langs == lang
        figures: dict[str, float | None] = {
            "accuracy": round(float((pred[m] == y[m]).mean()), 3),
            "trained_on_english_only": round(float(zero[m].mean()), 3),
            "majority_class": round(Counter(y[m]).most_common(1)[0][1] / int(m.sum()), 3),
            "accuracy_used": round(float((used(pred[m]) == used(y[m])).mean()), 3),
        }
        for t in classes:
            sel = m & (y == t)
            figures[f"recall_{t}"] = round(float((pred[sel] == t).mean()), 3) if sel.any() else None
        by_lang[lang] = figures
    final = model().fit(X, y)
    order = [list(final.classes_).index(c) for c in classes]
    result = {
        "embedding_model": mid,
        "classes": classes,
        "coef": [[round(float(w), 5) for w in final.coef_[k]] for k in order],
        "intercept": [round(float(final.intercept_[k]), 5) for k in order],
        "fitted_on": (
            f"XQuAD questions in {', '.join(LANGS)} ({len(y)}: {len(y) // len(LANGS)} per "
            "language), labelled from the English question and gold answer "
            f"({ {str(k): v for k, v in Counter(y[langs == 'en']).items()} }); "
            f"scikit-learn LogisticRegression C={C}; accuracy_used: person, time, quantity "
            "and the rest as one class, as the answerer uses them"
        ),
        "command": "make fit-answer-types (bench/fit_answer_types.py)",
        "cross_validated": {"folds_by_article": FOLDS, "by_lang": by_lang},
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k not in ("coef", "intercept")}
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
