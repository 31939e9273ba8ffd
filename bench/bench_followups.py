"""`make bench-followups`: follow-up conversations in twelve languages, condensed by the
rule before (carry the capitalised words and numbers of the latest earlier question,
past English and Malay question words) and by rag/query/condense.py, each turn then
asked through the pipeline with the real model.

The set is evals/followups/: conversations.jsonl over the small corpus of corpus/
(six English articles on named things, two articles in each other language), written
for this test and fitted on nothing. Each turn says what it is:

- ``dependent``: a pronoun, a demonstrative or nothing at all stands for the subject
  of an earlier turn (``refers_to``); condensed right when the standalone question
  holds every search token of ``refers_to`` and none of another subject of the
  conversation;
- ``independent``: it names a new subject; ``unrelated``: it names nothing and is
  about something else. Condensed right when it stands unchanged.

``source`` is the file that answers the turn (null when the corpus does not):
retrieval is right when it ranks a passage of ``source`` first and the service
answers; an unanswerable turn should be abstained.

Prints a Markdown table per language and kind (before, after), one of the relatedness
test's operating points (none; the fitted threshold, which keeps 90% of XQuAD's
dependent follow-ups; the threshold of best balanced accuracy on XQuAD), and the
figures as JSON on stderr.
Usage: python bench/bench_followups.py
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.config import Settings
from rag.index.build import build
from rag.query.condense import FollowUps, Relatedness
from rag.query.pipeline import Pipeline
from rag.text.segment import tokenize

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "evals" / "followups"
LANGS = ("en", "ms", "id", "vi", "ar", "zh", "de", "es", "fr", "ja", "th", "ru")

_ENTITY = re.compile(r"\b(?:[A-Z][\w-]*|\w*\d\w*)\b")
_QUESTION_WORDS = set(
    [
        "What",
        "Who",
        "Whom",
        "Which",
        "When",
        "Where",
        "Why",
        "How",
        "And",
        "Is",
        "Are",
        "Did",
        "Does",
        "Do",
        "Can",
        "Could",
        "Tell",
        "The",
        "In",
        "Of",
        "Apa",
        "Siapa",
        "Berapa",
        "Bagaimana",
        "Mengapa",
        "Di",
        "Dan",
    ]
)


def legacy_condense(question: str, history: Sequence[str]) -> str:
    """The rule before (rag/query/conversation.py up to this change), for comparison."""

    def entities(text: str) -> list[str]:
        found = [m.group() for m in _ENTITY.finditer(text)]
        return list(dict.fromkeys(e for e in found if e not in _QUESTION_WORDS))

    if not history:
        return question
    own = entities(question)
    if (own and len(question.split()) > 3) or len(question.split()) > 9:
        return question
    for earlier in reversed(history):
        carried = [e for e in entities(earlier) if e not in own]
        if carried:
            return f"{question} ({' '.join(carried)})"
    return question


def behind(follow: FollowUps) -> Callable[[str, Sequence[str]], str]:
    """``follow``'s rule with the carried subject in parentheses after the question, as
    the rule before wrote it ("How many beds does it have? (Lakeside Clinic)")."""

    def condense(question: str, history: Sequence[str]) -> str:
        standalone = follow.standalone(question, history)
        if standalone == question:
            return question
        carried = standalone.removesuffix(question).removesuffix(". ")
        return f"{question} ({carried})"

    return condense


def evaluate(
    pipeline: Pipeline, condense: Callable[[str, Sequence[str]], str]
) -> dict[str, dict[str, list[bool]]]:
    """Per group (each language, each kind, ``all``): ``right`` (condensed right),
    ``retrieved`` (answerable turns: the source ranked first and answered) and
    ``abstained`` (unanswerable turns)."""
    out: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for line in (SET / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        conversation = json.loads(line)
        turns = conversation["turns"]
        subjects = {t["refers_to"] for t in turns if t["refers_to"]}
        history: list[str] = []
        for i, turn in enumerate(turns):
            question = turn["q"]
            standalone = condense(question, list(history))
            history.append(standalone)
            if i == 0:
                continue
            tokens = set(tokenize(standalone))
            if turn["kind"] == "dependent":
                need = set(tokenize(turn["refers_to"]))
                stale = set().union(*(set(tokenize(s)) for s in subjects - {turn["refers_to"]}))
                stale -= need | set(tokenize(question))
                right = need <= tokens and not stale & tokens
            else:
                right = standalone == question
            answer = pipeline.answer(standalone)
            groups = (turn["lang"], turn["kind"], "all")
            for group in groups:
                out[group]["right"].append(right)
            if turn["source"]:
                top = answer.search.passages[0].passage.doc_id if answer.search.passages else ""
                ok = top == turn["source"] and not answer.answer.abstained
                for group in groups:
                    out[group]["retrieved"].append(ok)
            else:
                for group in groups:
                    out[group]["abstained"].append(answer.answer.abstained)
    return out


def share(flags: list[bool]) -> str:
    return f"{sum(flags) / len(flags):.2f} ({sum(flags)}/{len(flags)})" if flags else "-"


def main() -> int:
    base = Settings()
    settings = base.model_copy(
        update={
            "corpus_dir": SET / "corpus",
            "index_dir": base.data_dir / "followups" / "index",
            "data_dir": base.data_dir / "followups",
        }
    )
    build(settings)
    pipeline = Pipeline.open(settings)
    fitted = pipeline.condenser.followups.relatedness
    if fitted is None:
        raise SystemExit("no fitted relatedness test for this embedding: run make fit-condense")
    params = json.loads((ROOT / "rag" / "query" / "condense.json").read_text(encoding="utf-8"))
    balanced = params["balanced_accuracy_threshold"]["threshold"]
    embed = pipeline.retriever.embed_query
    rules = {
        "before": legacy_condense,
        "after": pipeline.condenser.followups.standalone,
        "after, no relatedness test": FollowUps().standalone,
        f"after, threshold {balanced} (balanced)": FollowUps(
            embed, Relatedness(fitted.centre, balanced, fitted.model)
        ).standalone,
        "after, the subject in parentheses behind": behind(pipeline.condenser.followups),
    }
    results = {name: evaluate(pipeline, rule) for name, rule in rules.items()}
    groups = [*LANGS, "dependent", "independent", "unrelated", "all"]
    print(
        "| group | turns | condensed right before | after | answered from the source "
        "before | after | unanswerable abstained before | after |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for g in groups:
        b, a = results["before"][g], results["after"][g]
        print(
            f"| {g} | {len(a['right'])} | {share(b['right'])} | {share(a['right'])} | "
            f"{share(b['retrieved'])} | {share(a['retrieved'])} | {share(b['abstained'])} | "
            f"{share(a['abstained'])} |"
        )
    print()
    print(
        "| rule | dependent right | independent right | unrelated right | all right "
        "| answered from the source | unanswerable abstained |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        label = f"{name} ({fitted.threshold})" if name == "after" else name
        print(
            f"| {label} | {share(r['dependent']['right'])} | {share(r['independent']['right'])} "
            f"| {share(r['unrelated']['right'])} | {share(r['all']['right'])} "
            f"| {share(r['all']['retrieved'])} | {share(r['all']['abstained'])} |"
        )
    figures = {
        name: {g: {k: round(sum(v) / len(v), 3) for k, v in r[g].items() if v} for g in groups}
        for name, r in results.items()
    }
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
