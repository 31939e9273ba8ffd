"""The ``rag`` command: index a corpus, ask it questions, chat, list sources, evaluate.

Exit codes: 0 ok, 2 usage or bad input, 3 no usable index (none, one built with
another embedding model, or a damaged one), 4 another indexer is running, 5 an eval
metric fell below its baseline, 6 the vector store (a Chroma server) cannot be
reached, 7 the disk is full, 8 ``rag serve``'s port is in use, 141 the output's reader
went away (``rag sources --json | head``; 128 + SIGPIPE, as a shell reports a command
a broken pipe ended), 1 anything else.

Only the standard library and ``rag.errors`` load at import: ``rag --help`` and a
mistyped command answer without pydantic, the model or the index (each command
imports what it needs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError, RagError

if TYPE_CHECKING:
    from rag.config import Settings

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

EXAMPLES = """\
examples:
  rag index                                   build or update the index of seeds/
  rag index --corpus ~/articles --rebuild     rebuild from scratch for another folder
  rag ask "How much did DeepSeek V3 cost to train?"
  rag ask "Siapakah pengasas DeepSeek?" --json --top-k 8
  rag chat                                    a conversation; follow-ups use its history
  rag sources                                 documents with language and passage count
  rag eval evals/seeds_dev.jsonl --json       metrics overall and per language
  rag feedback export -o evals/feedback.jsonl  users' thumbs-up answers as eval-set lines
  rag serve --port 8000                       index if needed, then serve HTTP (/docs)
  rag slack                                   the Slack bot over Socket Mode

settings come from RAG_* environment variables or .env (.env.example lists them), e.g.
  RAG_CORPUS_DIR=seeds RAG_INDEX_DIR=var/index RAG_TOP_K=5
"""

QUOTE_CHARS = 200

EVAL_EXAMPLES = """\
examples:
  rag eval evals/seeds_dev.jsonl                          table overall and per language
  rag eval evals/seeds_dev.jsonl --report seeds_dev       + evals/reports/seeds_dev.{md,json,png}
  rag eval evals/seeds_dev.jsonl --baseline evals/reports/baseline.json --max-drop 0.02
  rag eval evals/seeds_dev.jsonl --against http://127.0.0.1:8000
  rag eval evals/seeds_dev.jsonl --compare naive          this service and the naive pipeline
  rag eval --xquad en:ar [--limit 20] [--json]            XQuAD: English questions, Arabic text
  rag eval --xquad en:ar+vi                               ... on Arabic and Vietnamese together

metrics (a passage or quote supports a question when it is from an expected source
and matches expected_evidence):
  retrieval_hit@1, @5, mrr      a supporting passage among the first 1 or 5 retrieved
  citation_precision            citations whose quoted span itself supports the question
  citation_precision_window     ... or has the evidence within 300 characters of it
  answer_supported              answers whose cited quotes, joined, match the evidence
  abstention_recall             unanswerable questions abstained
  false_abstention_rate         answerable questions abstained
  latency_ms_p50, _p95          per question, end to end
--report also writes the abstention trade-off: abstention recall against false
abstention as the threshold moves over each question's abstain_score.

exit codes: 0 ok, 5 a metric fell more than --max-drop below the baseline
"""

FEEDBACK_EXPORT = """\
what becomes an eval line (the latest rating of each question counts):
  thumbs up, an answer with citations   answerable; expected_sources: the cited files;
                                        expected_evidence: the first cited quote's first
                                        words (up to 60 characters), escaped, as a regex
  thumbs up, "the corpus does not say"  answerable: false, no expected sources
  thumbs down                           no line (it says what is wrong, not where the
                                        answer is); --review lists them to complete

examples:
  rag feedback export                                   eval lines on standard output
  rag feedback export -o evals/feedback.jsonl --review feedback-review.jsonl
  rag eval evals/feedback.jsonl                         then score the service on them
"""


@dataclass(frozen=True)
class Command:
    """A subcommand added from outside the engine (``rag serve`` lives in ``api/``,
    which the engine never imports)."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _parser(extra: Sequence[Command] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Ask a folder of articles questions; every answer cites exact sentences.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="build or update the index (only what changed is embedded)")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: RAG_CORPUS_DIR or seeds)")
    p.add_argument("--rebuild", action="store_true", help="ignore the current index and rebuild")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("ask", help="answer one question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the Answer JSON")
    p.add_argument("--top-k", type=int, help="passages to retrieve (default: RAG_TOP_K or 5)")
    p.add_argument("--conversation", help="continue this conversation id")

    sub.add_parser(
        "chat",
        help="interactive chat that keeps the conversation (/help lists its commands)",
        description="Ask questions one after another; a follow-up is read in the light of "
        "the conversation's earlier questions.",
        epilog=CHAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    p = sub.add_parser("sources", help="list the indexed documents")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "eval",
        help="run an eval set (JSONL) or the XQuAD benchmark and print the metrics",
        description="Run an eval set in process or against a running service; write "
        "per-question results, reports, and guard against regressions.",
        epilog=EVAL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, nargs="?", help="eval set (JSONL)")
    p.add_argument("--json", action="store_true", help="print the metrics JSON")
    p.add_argument("--top-k", type=int)
    p.add_argument("--details", type=Path, help="per-question results (JSONL) go here")
    p.add_argument(
        "--report",
        metavar="NAME",
        help="write evals/reports/NAME.{json,md,png} (with the abstention trade-off)",
    )
    p.add_argument("--reports-dir", type=Path, default=Path("evals/reports"))
    p.add_argument("--against", metavar="URL", help="ask a running service's /v1/chat")
    p.add_argument("--api-key", help="bearer key for --against (default: RAG_EVAL_API_KEY)")
    p.add_argument("--baseline", type=Path, help="a metrics JSON to compare with")
    p.add_argument("--max-drop", type=float, default=0.02, help="tolerated drop per metric (0.02)")
    p.add_argument(
        "--guard-languages",
        action="store_true",
        help="with --baseline, guard each language's metrics too (small groups: noisy)",
    )
    p.add_argument("--compare", choices=["naive"], help="run a baseline pipeline side by side")
    p.add_argument(
        "--xquad", metavar="QLANG:PLANG", help="the XQuAD benchmark, e.g. en:ar or en:ar+vi"
    )
    p.add_argument("--limit", type=int, help="with --xquad: only the first N paragraphs")
    p = sub.add_parser("feedback", help="the ratings of answers given on the web page")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "export",
        help="write the ratings as eval-set lines (JSONL)",
        description="Write the stored ratings (RAG_DATA_DIR/feedback.sqlite) as lines "
        "of an eval set (the format `rag eval` reads).",
        epilog=FEEDBACK_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", type=Path, help="write here (default: standard output)")
    p.add_argument("--review", type=Path, help="write the thumbs-down ratings here (JSONL)")
    for command in extra:
        command.configure(sub.add_parser(command.name, help=command.help))
    return parser


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment with ``overrides`` (None values skipped);
    ConfigError naming each invalid setting."""
    from pydantic import ValidationError

    from rag.config import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc


def format_answer(answer: Any) -> str:
    """An Answer as the terminal shows it: the text, its citations, its warnings."""
    lines = [answer.answer]
    if answer.citations:
        lines.append("")
    from rag.query.citations import citation_line

    lines.extend(citation_line(c, QUOTE_CHARS) for c in answer.citations)
    lines.extend(f"warning: {w}" for w in answer.warnings)
    return "\n".join(lines)


def cmd_index(args: argparse.Namespace) -> int:
    """``rag index``: build or update the index."""
    build_index(settings_from(corpus_dir=args.corpus), args.rebuild, args.json)
    return 0


def build_index(settings: Settings, rebuild: bool = False, as_json: bool = False) -> None:
    """Build or update the index, with a progress bar on a terminal and the report."""
    from rag.index.build import build
    from rag.index.corpus import iter_files

    if not as_json and settings.corpus_dir.is_dir():
        files = sum(1 for _ in iter_files(settings.corpus_dir))
        print(
            f"indexing {files} files of {settings.corpus_dir} into {settings.index_dir}: only "
            "new or changed files are embedded (the first time: a few minutes per 100 kB "
            "of text on 2 cores)",
            flush=True,
        )
    with progress_bar("embedding", not as_json) as progress:
        report = build(settings, rebuild=rebuild, progress=progress)
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
    else:
        for problem in report.problems:
            print(f"skipped {problem}", file=sys.stderr)
        print(report.summary(), flush=True)


def cmd_ask(args: argparse.Namespace) -> int:
    """``rag ask``: answer one question (``--json``: the Answer JSON)."""
    from rag.query.chat import ChatService

    service = ChatService(settings_from())
    try:
        answer = service.ask(args.question, args.conversation, args.top_k)
    finally:
        service.close()
    if args.json:
        print(answer.model_dump_json(indent=1))
    else:
        print(format_answer(answer))
    return 0


CHAT_HELP = """\
commands (a line that starts with / is never sent as a question):
  /help        this list
  /new         start a new conversation (the next question is not a follow-up)
  /quit, /exit end the chat (so does Ctrl-D)
"""


def cmd_chat(args: argparse.Namespace) -> int:
    """``rag chat``: a conversation on the terminal (or questions from stdin)."""
    from rag.query.chat import ChatService

    service = ChatService(settings_from())
    interactive = sys.stdin.isatty()
    conversation: str | None = None
    if interactive:
        print("Ask about the corpus; /help lists the commands, /quit or Ctrl-D ends.")
    try:
        while True:
            try:
                line = input("> " if interactive else "")
            except EOFError:
                break
            line = line.strip()
            if not line:
                continue
            if line in {"/quit", "/exit"}:
                break
            if line == "/new":
                conversation = None
                print("a new conversation", flush=True)
                continue
            if line in {"/help", "/?"}:
                print(CHAT_HELP, flush=True)
                continue
            if line.startswith("/"):
                print(f"unknown command {line.split()[0]}; /help lists them", file=sys.stderr)
                continue
            try:
                answer = service.ask(line, conversation)
            except RagError as exc:
                print(f"error: {exc}", file=sys.stderr)
                continue
            conversation = answer.conversation_id
            print(format_answer(answer) + "\n", flush=True)
    finally:
        service.close()
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    """``rag sources``: the documents of the published index."""
    from rag.index.layout import documents, published

    version, manifest = published(settings_from().index_dir)
    rows = documents(manifest)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    from rich.table import Table

    table = Table(title=f"index version {version}")
    for column in ("source", "lang", "passages", "title"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["source"], r["lang"], str(r["passages"]), r["title"][:60])
    console().print(table)
    return 0


@contextlib.contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """``update(done, total)`` of a rich progress bar on a terminal; a no-op elsewhere."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total or None)


def _print_metrics(title: str, report: dict[str, Any]) -> None:
    from rich.table import Table

    names = [k for k in report["overall"] if k != "n"]
    table = Table(title=title)
    table.add_column("metric")
    groups = {"overall": report["overall"], **report.get("by_lang", {})}
    for group in groups:
        table.add_column(f"{group} ({groups[group].get('n', report['n'])})", justify="right")
    for name in names:
        values = [groups[g].get(name) for g in groups]
        table.add_row(name, *("-" if v is None else f"{v:.3f}" for v in values))
    console(width=None if sys.stdout.isatty() else 160).print(table)


def cmd_eval(args: argparse.Namespace) -> int:
    """``rag eval``: run an eval set (or XQuAD); 5 when a metric fell below the baseline."""
    if args.xquad:
        return _eval_xquad(args)
    if args.file is None:
        raise ConfigError("rag eval needs an eval set (FILE.jsonl) or --xquad QLANG:PLANG")
    from rag.eval import dataset, metrics, reporting, runner

    items = dataset.load_eval_set(args.file)
    baseline = _read_baseline(args.baseline) if args.baseline else None  # fail before the run
    settings = settings_from()
    asker: runner.InProcess | runner.RemoteService
    if args.against:
        key = args.api_key or os.environ.get("RAG_EVAL_API_KEY")
        asker = runner.RemoteService(args.against, key)
    else:
        from rag.query.pipeline import Pipeline

        asker = runner.InProcess(Pipeline.open(settings))
    total = len(items) * (2 if args.compare else 1)
    done = 0
    with progress_bar("asking", not args.json) as update:

        def tick() -> None:
            nonlocal done
            done += 1
            update(done, total)

        try:
            results = runner.run(asker, items, args.top_k, tick)
            compared = None
            if args.compare == "naive":
                from rag.eval.naive import NaivePipeline

                naive_results = runner.run(NaivePipeline(settings), items, None, tick)
                compared = ("naive llama-index pipeline", metrics.report(naive_results))
        finally:
            asker.close()
    report = metrics.report(results)
    details = args.details or (
        args.reports_dir / f"{args.report}.questions.jsonl"
        if args.report
        else settings.data_dir / "eval" / f"{args.file.stem}.questions.jsonl"
    )
    reporting.write_details(results, details)
    if args.report:
        command = "rag eval " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "rag eval"
        threshold = (
            asker.pipeline.abstention.threshold if isinstance(asker, runner.InProcess) else None
        )
        reporting.write(
            args.report,
            str(args.file),
            report,
            results,
            args.reports_dir,
            command,
            compared,
            threshold,
        )
    if args.json:
        out = dict(report)
        if compared is not None:
            out["compare"] = {compared[0]: compared[1]}
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        _print_metrics(f"{args.file} ({report['n']} questions)", report)
        if compared is not None:
            _print_metrics(f"{compared[0]} ({report['n']} questions)", compared[1])
            print(reporting.comparison_table(report, compared[1], compared[0]))
        print(f"per-question results: {details}", file=sys.stderr)
    if baseline is not None:
        worse = metrics.regressions(report, baseline, args.max_drop, args.guard_languages)
        for line in worse:
            print(f"regression: {line}", file=sys.stderr)
        if worse:
            return 5
        print(f"no metric fell more than {args.max_drop} below {args.baseline}", file=sys.stderr)
    return 0


def _read_baseline(path: Path) -> dict[str, Any]:
    try:
        baseline: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the baseline {path}: {exc}") from exc
    return baseline


def _eval_xquad(args: argparse.Namespace) -> int:
    from rag.eval import xquad

    with progress_bar(f"XQuAD {args.xquad}", not args.json) as progress:
        result = xquad.run(settings_from(), args.xquad, args.limit, progress)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        title = (
            f"XQuAD {result['pair']} ({result['n']} questions, {result['paragraphs']} paragraphs)"
        )
        _print_metrics(title, result)
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    from rag.eval import feedback

    path = feedback.store_path(settings_from().data_dir)
    ratings: list[feedback.Feedback] = []
    if path.exists():
        store = feedback.FeedbackStore(path)
        try:
            ratings = store.all()
        finally:
            store.close()
    lines = feedback.eval_items(ratings)
    review = feedback.review_items(ratings)
    try:
        if args.output:
            args.output.write_text(feedback.dumps(lines), encoding="utf-8")
        else:
            sys.stdout.write(feedback.dumps(lines))
        if args.review:
            args.review.write_text(feedback.dumps(review), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    answerable = sum(1 for line in lines if line["answerable"])
    print(
        f"{len(ratings)} ratings in {path}: {len(lines)} eval lines ({answerable} answerable, "
        f"{len(lines) - answerable} unanswerable), {len(review)} thumbs-down to review",
        file=sys.stderr,
    )
    return 0


COMMANDS = {
    "feedback": cmd_feedback,
    "index": cmd_index,
    "ask": cmd_ask,
    "chat": cmd_chat,
    "sources": cmd_sources,
    "eval": cmd_eval,
}


def main(argv: Sequence[str] | None = None, extra: Sequence[Command] = ()) -> int:
    """Run the ``rag`` command (``extra``: subcommands from outside the engine); the
    exit code (module doc)."""
    args = _parser(extra).parse_args(argv)
    commands = {**COMMANDS, **{c.name: c.run for c in extra}}
    try:
        code = commands[args.command](args)
        sys.stdout.flush()  # here, so a closed pipe is caught below, not at exit
        return code
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _broken_pipe()


def console(**options: Any) -> Any:
    """A rich Console on standard output whose closed pipe raises BrokenPipeError, so
    that ``main`` ends it as every command's (rich's own handler exits with 1)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(**options)


def _broken_pipe() -> int:
    """The reader of standard output went away (``| head``): no traceback. Standard
    output is pointed at /dev/null so that Python's flush at exit does not fail
    again; the exit code is 128 + SIGPIPE, as a shell shows a command a closed pipe
    ended."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


if __name__ == "__main__":
    sys.exit(main())
