"""The ``rag`` console script: the engine's commands plus ``rag serve``."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from collections.abc import Sequence

from rag import cli
from rag.errors import ConfigError, DiskFullError, IndexCorruptError, PortInUseError


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: RAG_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: RAG_PORT or 8000)")
    parser.add_argument(
        "--no-index", action="store_true", help="serve the published index as it is"
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (SO_REUSEADDR, as uvicorn binds), for
    uvicorn to listen on. Bound before the index is built, so a taken port fails at
    once: PortInUseError (exit code 8) names it; ConfigError for an address this
    machine does not have or a port it may not use."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is in use (another `rag serve`?); stop it or "
                "choose another port with --port or RAG_PORT"
            ) from exc
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def _serve(args: argparse.Namespace) -> int:
    # one OpenMP thread per embedding call: under concurrent requests each question
    # takes a core (bench/bench_http.py: 64 against 52 requests/s on 2 cores with 8
    # clients); must be set before the embedding library loads
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from api.app import create_app
    from api.server import uvicorn_config

    settings = cli.settings_from(host=args.host, port=args.port)
    sock = listening_socket(settings.host, settings.port)
    if not args.no_index:
        try:
            cli.build_index(settings)
        except (IndexCorruptError, DiskFullError) as exc:  # serve what is published
            # (/readyz says what is wrong when nothing can be served)
            print(f"error: {exc}", file=sys.stderr, flush=True)
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"serving on {url}: open {url}/ in a browser to ask questions; the API docs are at "
        f"{url}/docs; Ctrl-C stops",
        flush=True,
    )
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run(sockets=[sock])
    return 0


def _slack(args: argparse.Namespace) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from api.slack import SlackBot
    from api.state import AppState
    from rag.errors import ConfigError

    settings = cli.settings_from()
    if settings.slack_bot_token is None or settings.slack_app_token is None:
        raise ConfigError(
            "Socket Mode needs SLACK_BOT_TOKEN (xoxb-...) and SLACK_APP_TOKEN (xapp-..., "
            "with the connections:write scope); see docs/slack.md"
        )
    if not args.no_index:
        cli.build_index(settings)
    state = AppState(settings)
    state.try_load()
    bot = SlackBot(state)
    print("connected to Slack in Socket Mode; Ctrl-C stops", flush=True)
    SocketModeHandler(bot.app, settings.slack_app_token.get_secret_value()).start()
    return 0


def _configure_slack(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-index", action="store_true", help="answer from the published index as it is"
    )


SLACK = cli.Command(
    "slack",
    "run the Slack bot over Socket Mode (SLACK_BOT_TOKEN, SLACK_APP_TOKEN)",
    _configure_slack,
    _slack,
)

SERVE = cli.Command(
    "serve",
    "build the index if it is missing or stale, then serve the HTTP API",
    _configure_serve,
    _serve,
)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, extra=[SERVE, SLACK])


if __name__ == "__main__":
    sys.exit(main())
