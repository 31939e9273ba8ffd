"""Eval reports under ``evals/reports/``: NAME.json (the metrics JSON, what
``--baseline`` reads, with the abstention curve's points under
``"abstention_curve"``), NAME.md (tables, the abstention trade-off, the questions that
failed), NAME.hit.png (hit@1 and hit@5 per language), NAME.latency.png (latency
distribution) and, when the results have abstention scores, NAME.abstention.png
(abstention recall against false abstention as the threshold moves)."""

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


def curve_steps(curve: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points of an abstention curve (rag/eval/metrics.py ``abstention_curve``)
    where a share changes: the lowest threshold of each distinct pair of shares."""
    steps: list[dict[str, Any]] = []
    for point in curve:
        shares = (point["abstention_recall"], point["false_abstention_rate"])
        if not steps or shares != (
            steps[-1]["abstention_recall"],
            steps[-1]["false_abstention_rate"],
        ):
            steps.append(point)
    return steps


def operating_point(curve: list[dict[str, Any]], threshold: float) -> dict[str, Any] | None:
    """The point of the curve whose shares hold at ``threshold``: the one with the
    lowest threshold at or above it (no observed score lies between the two, so the
    same questions abstain). None when ``threshold`` is above every point."""
    return next((p for p in curve if p["threshold"] >= threshold), None)


CURVE_ROWS = 30
"""Rows of the abstention curve's table at most (evenly spaced steps; the first, the
last and the one in force always shown): the JSON has every point."""


def curve_table(curve: list[dict[str, Any]], threshold: float | None = None) -> str:
    """The abstention curve's steps (``curve_steps``; at most CURVE_ROWS of them) as a
    Markdown table (a question abstains when its score is below the threshold); the
    step in force at ``threshold`` (the service's) is marked."""
    steps = curve_steps(curve)
    current = None
    if threshold is not None and (point := operating_point(curve, threshold)) is not None:
        current = next(s for s in steps if _same_shares(s, point))
    if len(steps) > CURVE_ROWS:
        every = (len(steps) - 1) / (CURVE_ROWS - 1)
        keep = {round(i * every) for i in range(CURVE_ROWS)}
        steps = [s for i, s in enumerate(steps) if i in keep or s is current]
    lines = [
        "| threshold (abstain below) | abstention_recall | false_abstention_rate |",
        "| ---: | ---: | ---: |",
    ]
    for point in steps:
        mark = f" (in force: {threshold:g})" if point is current else ""
        lines.append(
            f"| {point['threshold']:.4f}{mark} | {_fmt('', point['abstention_recall'])} | "
            f"{_fmt('', point['false_abstention_rate'])} |"
        )
    return "\n".join(lines)


def _same_shares(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a["abstention_recall"], a["false_abstention_rate"]) == (
        b["abstention_recall"],
        b["false_abstention_rate"],
    )


def _curve_chart(
    name: str, curve: list[dict[str, Any]], threshold: float | None, folder: Path
) -> None:
    import matplotlib.pyplot as plt

    x = [p["false_abstention_rate"] or 0.0 for p in curve]
    y = [p["abstention_recall"] or 0.0 for p in curve]
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.step(x, y, where="post", marker=".", label="thresholds over the observed scores")
    current = operating_point(curve, threshold) if threshold is not None else None
    if current is not None:
        ax.plot(
            [current["false_abstention_rate"] or 0.0],
            [current["abstention_recall"] or 0.0],
            "o",
            color="crimson",
            label=f"in force (threshold {threshold:g})",
        )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("false abstention (share of answerable questions abstained)")
    ax.set_ylabel("abstention recall (share of unanswerable abstained)")
    ax.set_title(f"{name}: abstention trade-off")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(folder / f"{name}.abstention.png", dpi=100)
    plt.close(fig)


def _charts(
    name: str,
    report: dict[str, Any],
    results: list[QuestionResult],
    folder: Path,
    threshold: float | None = None,
) -> None:
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

    if report.get("abstention_curve"):
        _curve_chart(name, report["abstention_curve"], threshold, folder)


def write(
    name: str,
    source: str,
    report: dict[str, Any],
    results: list[QuestionResult],
    folder: Path,
    command: str,
    compared: tuple[str, dict[str, Any]] | None = None,
    threshold: float | None = None,
) -> list[Path]:
    """Write the report files; returns their paths. ``threshold``: the abstention
    threshold the service used, marked on the abstention curve when given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    _charts(name, report, results, folder, threshold)
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
    curve = report.get("abstention_curve")
    lines += ["", "## Abstention trade-off", ""]
    if curve:
        lines += [
            "Each question's abstention score (what the service compares with its "
            "threshold; `abstain_score` in the per-question results), swept over the "
            "observed scores: a question abstains when its score is below the threshold, "
            "or when it abstained for another reason (a warning), whatever the threshold. "
            f"Points in `{name}.json` under `abstention_curve`.",
            "",
            curve_table(curve, threshold),
            "",
            f"![abstention trade-off]({name}.abstention.png)",
        ]
    else:
        lines.append("No abstention scores in these results (a service asked over HTTP).")
    lines += ["", f"## Questions that failed a check ({len(failed)})", ""]
    for r in failed:
        checks = ", ".join(k for k, ok in r.passes().items() if not ok)
        lines.append(f"- `{r.item.id}` ({r.item.lang}) {r.item.question} — {checks}")
    (folder / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    suffixes = [".json", ".md", ".hit.png", ".latency.png"]
    if curve:
        suffixes.append(".abstention.png")
    return [folder / f"{name}{suffix}" for suffix in suffixes]
