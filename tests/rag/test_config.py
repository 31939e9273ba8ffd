from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from rag.config import Settings, env_example, env_name


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


def test_lists_come_comma_separated_or_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_API_KEYS", " k1, k2 ,")
    monkeypatch.setenv("RAG_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    s = Settings()
    assert [k.get_secret_value() for k in s.api_keys] == ["k1", "k2"]
    assert s.cors_origins == ["https://a.example", "https://b.example"]


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_API_KEYS", "user-secret")
    monkeypatch.setenv("RAG_ADMIN_KEY", "admin-secret")
    s = Settings()
    shown = repr(s) + str(s) + s.model_dump_json()
    assert "user-secret" not in shown and "admin-secret" not in shown
    assert s.admin_key is not None and s.admin_key.get_secret_value() == "admin-secret"


def test_server_values_are_checked() -> None:
    with pytest.raises(ValidationError, match="port must be in"):
        Settings(port=70000)
    with pytest.raises(ValidationError, match="rate_limit_per_minute must be >= 0, got -1"):
        Settings(rate_limit_per_minute=-1)


def test_the_fusion_latent_weight_keeps_its_former_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().fusion_latent_weight == 0.3
    assert Settings(latent_weight=0.1).fusion_latent_weight == 0.1
    assert Settings(fusion_latent_weight=0.2).fusion_latent_weight == 0.2
    monkeypatch.setenv("RAG_LATENT_WEIGHT", "0.4")
    assert Settings().fusion_latent_weight == 0.4
    monkeypatch.setenv("RAG_FUSION_LATENT_WEIGHT", "0.5")
    assert Settings().fusion_latent_weight == 0.5  # the new name wins
    monkeypatch.delenv("RAG_LATENT_WEIGHT")
    monkeypatch.delenv("RAG_FUSION_LATENT_WEIGHT")
    (tmp_path / ".env").write_text("RAG_LATENT_WEIGHT=0.6\n", encoding="utf-8")
    assert Settings().fusion_latent_weight == 0.6
    with pytest.raises(ValidationError, match="fusion_latent_weight must be in"):
        Settings(latent_weight=1.5)


ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_is_in_sync_with_settings() -> None:
    """.env.example is what rag/config.py generates: a setting added, renamed or given
    another default without `make env-example` fails here."""
    assert ENV_EXAMPLE.read_text(encoding="utf-8") == env_example(), "run `make env-example`"
    assert all(field.description for field in Settings.model_fields.values())


def test_env_example_uncommented_is_the_defaults(tmp_path: Path) -> None:
    """Every line of .env.example, uncommented into a .env, is read back as the default
    it shows (a name Settings does not read, or a value written in a form it parses
    differently, fails)."""
    lines = [
        line.removeprefix("# ")
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if re.match(r"# [A-Z_]+=", line)
    ]
    assert len(lines) == len(Settings.model_fields)
    (tmp_path / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert Settings().model_dump() == Settings(_env_file=None).model_dump()
    # and each name is read: a changed value in the file changes the setting
    (tmp_path / ".env").write_text("RAG_TOP_K=9\nRAG_PUBLIC_URL=https://x.example\n")
    assert (Settings().top_k, Settings().public_url) == (9, "https://x.example")
    names = [line.split("=", 1)[0] for line in lines]
    assert names == [env_name(name) for name in Settings.model_fields]


def test_the_data_folder_holds_the_index_and_cache_unless_they_are_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("RAG_DATA_DIR", "RAG_INDEX_DIR", "RAG_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env
    default = Settings()
    assert (default.index_dir, default.cache_dir) == (Path("var/index"), Path("var/cache"))
    monkeypatch.setenv("RAG_DATA_DIR", "/srv/rag")
    moved = Settings()
    assert (moved.index_dir, moved.cache_dir) == (Path("/srv/rag/index"), Path("/srv/rag/cache"))
    monkeypatch.setenv("RAG_INDEX_DIR", "/fast/index")
    own = Settings()
    assert (own.index_dir, own.cache_dir) == (Path("/fast/index"), Path("/srv/rag/cache"))
    assert Settings(data_dir=Path("d"), cache_dir=Path("c")).cache_dir == Path("c")
