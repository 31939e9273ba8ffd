"""Eval reports under ``evals/reports/``: NAME.json (the metrics JSON, what
``--baseline`` reads), NAME.md (tables, the questions that failed), NAME.hit.png
(hit@1 and hit@5 per language) and NAME.latency.png (latency distribution)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rag.eval.metrics import QuestionResult


def _names(report: dict[str, Any]) -> list[str]:
    """The metric names in the order ``metrics.metrics`` gives them."""
    return [name for name in report["overall"] if name != "n"]


def _fmt(name: str, value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if name.startswith("latency_") else f"{value:.3f}"


def write_details(results: Iterable[QuestionResult], path: Path) -> None:
    """One JSON line per question (``QuestionResult.to_dict``), for ``--details``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for r in results:
            out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")


def markdown_table(report: dict[str, Any]) -> str:
    """The metrics overall and per language, as a Markdown table."""
    groups = {"overall": report["overall"], **report["by_lang"]}
    head = "| metric | " + " | ".join(f"{g} ({groups[g]['n']})" for g in groups) + " |"
    rule = "| --- |" + " ---: |" * len(groups)
    rows = [
        f"| {name} | " + " | ".join(_fmt(name, groups[g].get(name)) for g in groups) + " |"
        for name in _names(report)
    ]
    return "\n".join([head, rule, *rows])


def comparison_table(ours: dict[str, Any], other: dict[str, Any], other_name: str) -> str:
    """Both pipelines overall, with the ratio ours / other for each metric."""
    lines = [
        f"| metric | this service | {other_name} | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in _names(ours):
        a, b = ours["overall"].get(name), other["overall"].get(name)
        ratio = "-" if a is None or b in (None, 0) else f"{a / b:.2f}"
        lines.append(f"| {name} | {_fmt(name, a)} | {_fmt(name, b)} | {ratio} |")
    return "\n".join(lines)


def _charts(name: str, report: dict[str, Any], results: list[QuestionResult], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    langs = list(report["by_lang"])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.38
    for i, metric in enumerate(("retrieval_hit@1", "retrieval_hit@5")):
        values = [report["by_lang"][lang].get(metric) or 0.0 for lang in langs]
        ax.bar([x + (i - 0.5) * width for x in range(len(langs))], values, width, label=metric)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of answerable questions")
    ax.set_title(f"{name}: hit@k per question language")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / f"{name}.hit.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist([r.latency_ms for r in results], bins=30)
    ax.set_xlabel("latency per question (ms)")
    ax.set_ylabel("questions")
    ax.set_title(f"{name}: latency distribution")
    fig.tight_layout()
    fig.savefig(folder / f"{name}.latency.png", dpi=100)
    plt.close(fig)


def write(
    name: str,
    source: str,
    report: dict[str, Any],
    results: list[QuestionResult],
    folder: Path,
    command: str,
    compared: tuple[str, dict[str, Any]] | None = None,
) -> list[Path]:
    """Write the report files; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    _charts(name, report, results, folder)
    failed = [r for r in results if not all(r.passes().values())]
    lines = [
        f"# Eval report: {name}",
        "",
        f"Set: `{source}` ({report['n']} questions). Command: `{command}`.",
        "",
        markdown_table(report),
        "",
        f"![hit@k per language]({name}.hit.png)",
        f"![latency]({name}.latency.png)",
    ]
    if compared is not None:
        lines += ["", f"## Side by side with {compared[0]}", ""]
        lines.append(comparison_table(report, compared[1], compared[0]))
    lines += ["", f"## Questions that failed a check ({len(failed)})", ""]
    for r in failed:
        checks = ", ".join(k for k, ok in r.passes().items() if not ok)
        lines.append(f"- `{r.item.id}` ({r.item.lang}) {r.item.question} — {checks}")
    (folder / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [folder / f"{name}{suffix}" for suffix in (".json", ".md", ".hit.png", ".latency.png")]
