from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.config import Settings


def test_precedence_arguments_then_environment_then_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(
        "RAG_TOP_K=3\nRAG_CANDIDATES=11\nRAG_RRF_K=7\n", encoding="utf-8"
    )
    monkeypatch.setenv("RAG_TOP_K", "4")
    monkeypatch.setenv("RAG_CANDIDATES", "12")
    s = Settings(top_k=5)
    assert (s.top_k, s.candidates, s.rrf_k) == (5, 12, 7)


def test_bad_values_are_named() -> None:
    with pytest.raises(ValidationError, match="top_k must be > 0, got 0"):
        Settings(top_k=0)
    with pytest.raises(ValidationError, match="chunk_overlap_tokens must be >= 0 and below"):
        Settings(chunk_tokens=50, chunk_overlap_tokens=50)
    with pytest.raises(ValidationError, match="fusion_dense_weight must be in"):
        Settings(fusion_dense_weight=1.5)
