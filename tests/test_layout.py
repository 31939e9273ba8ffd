"""The import rules of the layout (ARCHITECTURE.md), checked on every module's source:
dependencies point one way, api/ -> rag/, and inside rag/ eval/ -> query/ ->
index/reader.py -> types.py, text/."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

WEB = ("fastapi", "starlette", "uvicorn", "slack_bolt", "slack_sdk", "api")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str) -> set[str]:
    """Every module (or name of one) that ``source`` imports, anywhere in it:
    ``import a.b`` gives ``a.b``, ``from a import b`` gives ``a.b``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                package = module.rsplit(".", node.level)[0]
                base = f"{package}.{base}" if base else package
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@dataclass(frozen=True)
class Rule:
    says: str
    applies: Callable[[str], bool]
    forbidden: Callable[[str], bool]


RULES = [
    Rule(
        "rag/ imports no web framework, no Slack and nothing of api/",
        lambda m: within(m, "rag"),
        lambda name: within(name, *WEB),
    ),
    Rule(
        "rag/query/ imports of rag/index/ only reader.py",
        lambda m: within(m, "rag.query"),
        lambda name: within(name, "rag.index") and not within(name, "rag.index.reader"),
    ),
    Rule(
        "rag/types.py, rag/text/, config.py and errors.py import nothing of index/, "
        "query/ or eval/",
        lambda m: within(m, "rag.types", "rag.text", "rag.config", "rag.errors"),
        lambda name: within(name, "rag.index", "rag.query", "rag.eval"),
    ),
    Rule(
        "rag/index/ imports nothing of query/ or eval/",
        lambda m: within(m, "rag.index"),
        lambda name: within(name, "rag.query", "rag.eval"),
    ),
    Rule(
        "rag/eval/ imports nothing of api/",
        lambda m: within(m, "rag.eval"),
        lambda name: within(name, "api"),
    ),
    Rule(
        "only the XQuAD benchmark (which builds its corpora) imports the index builder "
        "from query/ or eval/",
        lambda m: within(m, "rag.query", "rag.eval") and m != "rag.eval.xquad",
        lambda name: within(name, "rag.index.build"),
    ),
]


def violations(module: str, source: str) -> list[str]:
    names = imported(source, module)
    return [
        f"{module} imports {name}: {rule.says}"
        for rule in RULES
        if rule.applies(module)
        for name in sorted(names)
        if rule.forbidden(name)
    ]


MODULES = sorted((ROOT / "rag").rglob("*.py"))


def test_the_engine_has_the_layout_the_rules_speak_of() -> None:
    names = {module_name(p) for p in MODULES}
    for package in ("rag.text", "rag.index", "rag.query", "rag.eval"):
        assert package in names
    assert {"rag.types", "rag.index.reader", "rag.index.build", "rag.query.pipeline"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_every_module_follows_the_import_rules(path: Path) -> None:
    assert violations(module_name(path), path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("rag.query.chat", "from fastapi import FastAPI"),
        ("rag.index.store", "def f():\n    import slack_bolt"),
        ("rag.query.retriever", "from rag.index.lexical import LexicalIndex"),
        ("rag.query.extractive", "from rag.index import build"),
        ("rag.query.sentences", "import rag.index.layout"),
        ("rag.query.llm", "from ..index import store"),
        ("rag.types", "from rag.index.reader import LoadedIndex"),
        ("rag.text.segment", "from rag.query.params import DEFAULT"),
        ("rag.index.build", "from rag.query.pipeline import Pipeline"),
        ("rag.index.reader", "from rag.eval.metrics import metrics"),
        ("rag.eval.runner", "from api.state import AppState"),
        ("rag.eval.runner", "from rag.index.build import build"),
    ],
)
def test_an_import_against_the_rules_is_caught(module: str, source: str) -> None:
    assert violations(module, source)


def test_the_imports_the_rules_allow_pass() -> None:
    allowed = [
        ("rag.query.chat", "from rag.index.reader import LoadedIndex, open_index"),
        ("rag.query.retriever", "from rag.text.segment import tokenize\nimport numpy"),
        ("rag.eval.xquad", "from rag.index.build import build"),
        ("rag.eval.runner", "from rag.query.pipeline import Pipeline"),
        ("rag.index.chunking", "from rag.text.segment import split_sentences"),
        ("api.state", "from rag.index.build import build"),
    ]
    for module, source in allowed:
        assert violations(module, source) == [], module
