"""Schemathesis generates requests from the OpenAPI schema for every operation and
sends them to a live server: no response may be a server error, and every response
must match the schema (status, content type, body, headers).

Schemathesis' pytest plugin does not run under pytest 9 yet, so each operation's
strategy is driven by Hypothesis directly.

Left out: the "positive data acceptance" check. Some schema-valid requests are refused
on purpose with 422 (a span with start > end, an OpenAI conversation whose last message
is not the user's), as the OpenAI API itself does.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from rag.config import Settings
from rag.index.build import build
from tests.api.conftest import LiveServer, serve
from tests.conftest import SEEDS, make_settings

KEY = "schema-user-key"
ADMIN = "schema-admin-key"
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, item in create_app(Settings()).openapi()["paths"].items()
    for method in item
]


@pytest.fixture(scope="module")
def schema_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("schema")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "001_2da8963e52795fca.txt", corpus)
    (corpus / "notes.md").write_text("The H800 chip was used by DeepSeek.\n", encoding="utf-8")
    s: Settings = make_settings(
        root,
        corpus,
        rate_limit_per_minute=0,
        auth_failures_per_minute=0,  # schemathesis checks that requests without a key fail
        api_keys=KEY,
        admin_key=ADMIN,
        admin_key_as_api_key=True,  # one key for every operation, the admin's among them
    )
    build(s)
    server = serve(s)
    yield server
    server.app.state.rag.index_job.wait(60)
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_matches_its_schema(schema_server: LiveServer, label: str) -> None:
    schema = schemathesis.openapi.from_url(
        schema_server.url + "/openapi.json", headers={"Authorization": f"Bearer {KEY}"}
    )
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label

    @given(data=st.data())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        case.call_and_validate(
            headers={"Authorization": f"Bearer {ADMIN}"},
            excluded_checks=[positive_data_acceptance],
        )

    run()
