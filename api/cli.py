"""The ``rag`` console script: the engine's commands plus ``rag serve``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rag import cli


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: RAG_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: RAG_PORT or 8000)")
    parser.add_argument(
        "--no-index", action="store_true", help="serve the published index as it is"
    )


def _serve(args: argparse.Namespace) -> int:
    # one OpenMP thread per embedding call: under concurrent requests each question
    # takes a core (bench/bench_http.py: 64 against 52 requests/s on 2 cores with 8
    # clients); must be set before the embedding library loads
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from api.app import create_app

    settings = cli.settings_from(host=args.host, port=args.port)
    if not args.no_index:
        cli.build_index(settings)
    print(f"serving on http://{settings.host}:{settings.port} (API docs at /docs)", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    return 0


SERVE = cli.Command(
    "serve",
    "build the index if it is missing or stale, then serve the HTTP API",
    _configure_serve,
    _serve,
)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, extra=[SERVE])


if __name__ == "__main__":
    sys.exit(main())
