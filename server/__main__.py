"""`python -m server`: serve PyDisco on uvicorn; fail early and plainly on a taken port or a missing setup."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import socket
from pathlib import Path

import uvicorn

from py_shared.protocol.framing import KEEPALIVE_TIMEOUT_S
from py_shared.protocol.peer_messages import IceServer
from server.app import ROOT, create_app
from server.connection_control import ControlledWebSocketProtocol
from server.federation.endpoint import Limits
from server.tasks_api import MAX_MODEL_VALUES

log = logging.getLogger("pydisco")
MAX_WEBSOCKET_FRAME = 4 * MAX_MODEL_VALUES + 2 * 1024 * 1024  # the largest model's update, and room for a header


def missing_runtime(root: Path) -> str | None:
    """Say what of the browser runtime is missing under `root`, or None when all of it is there."""
    manifest = root / "www" / "dist" / "runtime.json"
    if not manifest.exists():
        return f"{manifest.relative_to(root)} is missing"
    runtime = json.loads(manifest.read_text())
    paths = [runtime["pyodide"], runtime["pyscript"] + "/core.js", *runtime["wheels"]]
    absent = [p for p in paths if not (root / p.lstrip("/")).is_file()]
    return f"missing: {', '.join(absent)}" if absent else None


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves so that a taken port is one clear sentence, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise SystemExit(
                f"error: port {port} on {host} is already in use (another PyDisco server?). "
                f"Stop that process or choose another port with --port."
            ) from None
        raise SystemExit(f"error: cannot listen on {host}:{port}: {e.strerror}") from None
    sock.set_inheritable(True)
    return sock


def ice_server(text: str) -> IceServer:
    """--ice-server's value: `stun:host:port`, or `turn:host:port,username,credential`."""
    parts = text.split(",")
    if not re.fullmatch(r"(stun|stuns|turn|turns):[^\s,]+", parts[0]) or len(parts) not in (1, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: expected stun:HOST[:PORT] or turn:HOST[:PORT],USERNAME,CREDENTIAL")
    if parts[0].startswith("turn") and len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: a TURN server needs ,USERNAME,CREDENTIAL")
    return IceServer(
        urls=(parts[0],), username=parts[1] if len(parts) == 3 else "", credential=parts[-1] if len(parts) == 3 else ""
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, check the setup, and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="where tasks and models are kept")
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("PYDISCO_ADMIN_TOKEN", ""),
        help="require this token to create tasks (default: $PYDISCO_ADMIN_TOKEN; empty: anyone may)",
    )
    parser.add_argument("--max-connections", type=int, default=Limits.max_connections)
    parser.add_argument("--max-connections-per-address", type=int, default=Limits.max_connections_per_address)
    parser.add_argument(
        "--send-timeout",
        type=float,
        default=Limits.send_timeout_s,
        help="seconds a participant's connection may take no data before it is dropped",
    )
    parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        type=ice_server,
        metavar="URL[,USERNAME,CREDENTIAL]",
        help="a STUN or TURN server decentralized peers use to reach each other (repeatable; none on one LAN)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if problem := missing_runtime(ROOT):
        raise SystemExit(f"error: the browser runtime is not set up ({problem}). Run `make setup` first.")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    sock = bind(args.host, args.port)
    log.info("PyDisco serving http://%s:%d (data in %s)", args.host, args.port, args.data_dir)
    limits = Limits(
        args.max_connections,
        args.max_connections_per_address,
        send_timeout_s=args.send_timeout,
        ice_servers=tuple(args.ice_server),
    )
    app = create_app(ROOT, args.data_dir, args.admin_token, limits)
    # the endpoint refuses frames larger than a task's model with a message; this bound only stops the absurd
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,
        log_config=None,
        ws=ControlledWebSocketProtocol,  # per-connection frame limits and send pacing (connection_control.py)
        ws_max_size=MAX_WEBSOCKET_FRAME,
        ws_per_message_deflate=False,  # float32 weights barely compress; deflating them costs CPU on both sides
        ws_ping_timeout=KEEPALIVE_TIMEOUT_S,  # uvicorn's 20 s dropped stalled CPython participants
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
