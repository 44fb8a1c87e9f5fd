"""The ``net-relay`` command line.

Each subcommand is a small function; errors from the library become one line
on stderr and a non-zero exit status, never a traceback. A bad argument is a
usage error (status 2). When whoever reads the output goes away (``net-relay
stats URL | head``), the command ends quietly with status 141, the status a
shell reports for a Unix tool killed by SIGPIPE (128 + 13), so that a pipeline
under ``set -o pipefail`` tells it from success as it does for ``cat``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from relay_core._compiled import build_description
from relay_core._version import __version__
from relay_core.config.address import parse_address
from relay_core.config.node_config import NodeConfig
from relay_core.errors import AppError, RelayError
from relay_core.plugins.registry import PluginRegistry
from relay_core.protocol.messages import UnknownMessage, message_types
from relay_core.runtime.actors import RemoteRef
from relay_core.runtime.loop import CHOICES as LOOP_CHOICES
from relay_core.runtime.loop import ENVIRONMENT_VARIABLE as LOOP_VARIABLE
from relay_core.runtime.loop import loop_name
from relay_core.runtime.loop import run as run_on_loop
from relay_core.runtime.node import STATS_ACTOR, Node
from relay_core.runtime.rpc import RequestIdFilter, new_request_id
from relay_core.tools.bench import add_arguments as add_bench_arguments
from relay_core.tools.bench import run_command as run_bench_command
from relay_core.tools.demo import run_demo, spawn_demo_actors
from relay_core.tools.new_plugin import KINDS as NEW_PLUGIN_KINDS
from relay_core.tools.new_plugin import write_plugin
from relay_core.tools.plugin_options import (
    OptionRow,
    default_text,
    option_rows,
    options_markdown,
    type_text,
)
from relay_core.tools.serve import APP_FORMAT, load_app, serve, set_up_with
from relay_core.tools.train_dict import train_from_samples

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"
LOOP_HELP = (f"event loop: auto (uvloop when installed, else the stock asyncio loop), "
             f"asyncio or uvloop "
             f"(default: ${LOOP_VARIABLE}, else auto)")
BENCH_LOOP_HELP = (f"event loop of the net-relay rows and the bench itself: auto, asyncio or "
                   f"uvloop (default: ${LOOP_VARIABLE}, else auto); raw asyncio rows always "
                   "run on the stock loop")

SEND_WAIT = 10.0
"""Seconds ``send`` waits for its message to leave: to connect, or to finish a TLS handshake."""


def _setup_logging(verbosity: int) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(
        logging.DEBUG if verbosity > 1 else logging.INFO if verbosity else logging.WARNING
    )


def _to_json(value: object) -> object:
    """json.dumps ``default``: the data model's non-JSON values, made readable."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, UnknownMessage):
        return {"$type": value.type_name, "fields": value.fields}
    described = message_types.describe(value)
    if described is not None:
        return {"$type": described[0], "fields": described[1]}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds greater than 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(
            f"--timeout must be a number of seconds greater than 0, not {text!r}")
    return seconds


def _parse_json(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RelayError(f"the message is not valid JSON: {exc}") from None


def _client_config(args: argparse.Namespace) -> NodeConfig:
    if args.config:
        return NodeConfig.from_file(args.config)
    # No listener: the transport opens what it needs to reach the address (for UDP an
    # ephemeral socket on the wildcard address, so any destination host works).
    return NodeConfig(name="net-relay-cli", listen={})


async def _cmd_send(args: argparse.Namespace) -> int:
    message = _parse_json(args.message)
    async with Node(_client_config(args)) as node:
        ref = node.ref(args.address)
        await ref.send(message)
        if isinstance(ref, RemoteRef):  # fail, rather than exit 0, when it could not leave
            await ref.wait_sent(SEND_WAIT)
    return 0


async def _cmd_rpc(args: argparse.Namespace) -> int:
    request = _parse_json(args.request)
    request_id = args.request_id or new_request_id()
    if args.verbose:
        print(f"request id: {request_id}", file=sys.stderr)
    async with Node(_client_config(args)) as node:
        reply = await node.ref(args.address).rpc(
            request, timeout=args.timeout, request_id=request_id
        )
    print(json.dumps(reply, default=_to_json, ensure_ascii=False))
    return 0


async def _cmd_stats(args: argparse.Namespace) -> int:
    address = parse_address(args.address, forbid_actor=True)
    async with Node(NodeConfig(name="net-relay-cli", listen={})) as node:
        reply = await node.ref(f"{address.node_url()}/{STATS_ACTOR}").rpc(None, timeout=args.timeout)
    print(json.dumps(reply, indent=2, default=_to_json))
    return 0


async def _cmd_node(args: argparse.Namespace) -> int:
    async def spawn_demo(node: Node) -> None:
        spawn_demo_actors(node)
    return await serve(_served_config(args), spawn_demo, loop_name(args.loop))


async def _cmd_run(args: argparse.Namespace) -> int:
    set_up = set_up_with(args.app, load_app(args.app))  # before the node binds its ports
    return await serve(_served_config(args), set_up, loop_name(args.loop))


def _served_config(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig.from_file(args.config) if args.config else NodeConfig()


def _cmd_plugins(args: argparse.Namespace) -> int:
    # Loading never raises for an installed plugin: a broken one is a row saying why.
    registry = PluginRegistry.load()
    plugins = registry.plugins()
    if args.markdown:
        print(options_markdown(registry, plugins), end="")
        return 0
    if args.options:
        _print_table(("kind", "name", "table", "option", "type", "default", "meaning"), [
            (row.kind, row.name, row.table, *_option_cells(row)) for row in
            option_rows(registry, plugins)])
        return 0
    rows: list[tuple[str, ...]] = [
        (p.kind, p.name, p.distribution, p.version, "ok") for p in plugins]
    rows += [
        (f.kind, f.listed_as, f.distribution, f.version, f"unavailable: {f.error}")
        for f in registry.failures
    ]
    _print_table(("kind", "name", "distribution", "version", "status"), rows)
    return 0


def _option_cells(row: OptionRow) -> tuple[str, ...]:
    option = row.option
    if option is None and not row.declared:
        return ("*", "", "", "not declared: any keyword of the constructor")
    if option is None:
        return ("-", "", "", "takes no options")
    return (option.name, type_text(option), default_text(option), option.doc)


async def _cmd_demo(args: argparse.Namespace) -> int:
    print(
        f"two nodes on loopback; {args.messages} messages and {args.rpcs} RPCs "
        "per transport and codec",
        flush=True,
    )
    rows = await run_demo(args.messages, args.rpcs)
    table = [
        (
            r.transport,
            r.codec,
            str(r.sent),
            str(r.received),
            str(r.rpcs),
            f"{r.rtt_p50_ms:.3f}",
            f"{r.rtt_p99_ms:.3f}",
            r.error,
        )
        for r in rows
    ]
    _print_table(
        ("transport", "codec", "sent", "received", "rpcs", "rtt p50 ms", "rtt p99 ms", "error"),
        table,
    )
    return EXIT_ERROR if any(r.error for r in rows) else 0


async def _cmd_bench(args: argparse.Namespace) -> int:
    return await run_bench_command(args)


def _cmd_gen_cert(args: argparse.Namespace) -> int:
    from relay_transports._certs import generate_self_signed  # a plugin's tool, used only here

    hosts = args.host or ("localhost", "127.0.0.1", "::1")
    made = generate_self_signed(args.cert, args.key, hosts=hosts, days=args.days,
                                overwrite=args.force)
    print(f"wrote {made.certificate_path} and {made.key_path} (keep the key private)")
    print(f"hosts: {', '.join(made.hosts)}; valid until {made.not_after:%Y-%m-%d}")
    print(f"sha256 fingerprint: {made.fingerprint}")
    print("for development only: peers trust it by naming it as their ca, e.g. "
          f'[peers.NAME] ca = "{made.certificate_path}"')
    return 0


def _cmd_train_dict(args: argparse.Namespace) -> int:
    report = train_from_samples(Path(args.samples), Path(args.out), codec=args.codec,
                                size=args.size)
    print(f"trained on {report.samples} samples ({args.codec}): wrote {args.out}, "
          f"{report.dictionary_bytes} bytes, dictionary id {report.dictionary_id}")
    print(f"mean bytes per message: {report.mean_plain:.1f} plain, {report.mean_zstd:.1f} "
          f"with zstd, {report.mean_dictionary:.1f} with zstd and this dictionary")
    print(f'use it on both ends: [compressors.zstd] dictionary = "{args.out}"')
    return 0


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _version_line() -> str:
    return f"net-relay {__version__}, {build_description()}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="net-relay", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    parser.add_argument("--loop", choices=LOOP_CHOICES, help=LOOP_HELP)
    parser.add_argument("--version", action="version", version=_version_line(),
                        help="print the version and whether the hot modules run compiled")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins = commands.add_parser("plugins", help="list every transport, codec and compressor")
    plugins.add_argument("--options", action="store_true",
                         help="list the options each plugin declares, per config table")
    plugins.add_argument("--markdown", action="store_true",
                         help="print the declared options as Markdown tables (docs/config.md)")
    new_plugin = commands.add_parser(
        "new-plugin", help="write a plugin package that installs and passes net-relay's kit",
        description="Write the package net-relay-NAME: a KIND plugin registered through its "
        "entry point, with the conformance kit as its tests.")
    new_plugin.add_argument("kind", choices=NEW_PLUGIN_KINDS, help="what the plugin provides")
    new_plugin.add_argument("name", help="its name: codec or compressor name, or URL scheme")
    new_plugin.add_argument("--directory", default=".",
                            help="where to write net-relay-NAME (default: here)")
    node = commands.add_parser(
        "node", help="run a node hosting the demo actors echo, counter, sink and forward",
        description="Run a node hosting the demo actors: echo (answers an RPC with its "
        "request), counter (counts plain messages; an RPC gets the count), sink (answers "
        'nothing) and forward (answers an RPC {"to": ADDRESS, "message": M} with the reply '
        "of the RPC of M it makes to ADDRESS; anyone who reaches the node can have it call "
        "any address).")
    node.add_argument("--config", help="TOML config file (default: udp on 127.0.0.1, any port)")
    run = commands.add_parser(
        "run", help="run a node hosting your own actors: MODULE:FUNCTION sets it up",
        description="Import MODULE (from the current directory first, or installed), start a "
        "node, call FUNCTION(node) (a plain or an async function) to spawn actors and install "
        "routers, and serve until Ctrl-C or SIGTERM, then close the node gracefully. A module "
        "that does not import, a missing function or one that raises: one line, status 2.")
    run.add_argument("app", metavar="MODULE:FUNCTION", help=APP_FORMAT)
    run.add_argument("--config", help="TOML config file (default: udp on 127.0.0.1, any port)")
    send = commands.add_parser("send", help="send one JSON message to an actor")
    send.add_argument("address", help="SCHEME://HOST:PORT/ACTOR")
    send.add_argument("message", help="the message, as JSON")
    send.add_argument("--config", help="TOML config for the sending node")
    rpc = commands.add_parser("rpc", help="send a JSON request and print the reply")
    rpc.add_argument("address", help="SCHEME://HOST:PORT/ACTOR")
    rpc.add_argument("request", help="the request, as JSON")
    rpc.add_argument("--timeout", type=_seconds, default=5.0,
                     help="seconds to wait (default 5)")
    rpc.add_argument("--request-id", help="use this request id instead of a random one")
    rpc.add_argument("--config", help="TOML config for the calling node")
    cert = commands.add_parser("gen-cert", help="write a self-signed certificate and key for "
                               "development (QUIC, TCP with TLS)")
    cert.add_argument("--cert", default="cert.pem", help="certificate file (default cert.pem)")
    cert.add_argument("--key", default="key.pem", help="private key file (default key.pem)")
    cert.add_argument("--host", action="append",
                      help="a name or IP the certificate is for (repeatable; default "
                      "localhost, 127.0.0.1 and ::1)")
    cert.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    cert.add_argument("--force", action="store_true", help="overwrite existing files")
    train = commands.add_parser("train-dict", help="train a zstd dictionary on sample messages")
    train.add_argument("samples", help="a file of sample messages, one JSON message per line")
    train.add_argument("--out", default="messages.zstd-dict", help="dictionary file to write")
    train.add_argument("--codec", default="msgpack", help="codec the messages travel in")
    train.add_argument("--size", type=int, default=16 * 1024, help="dictionary size in bytes")
    stats = commands.add_parser("stats", help="ask a running node for its counters (JSON)")
    stats.add_argument("address", help="the node's URL, SCHEME://HOST:PORT")
    stats.add_argument("--timeout", type=_seconds, default=5.0,
                       help="seconds to wait (default 5)")
    demo = commands.add_parser("demo", help="two loopback nodes over every transport and codec")
    demo.add_argument("--messages", type=int, default=1000)
    demo.add_argument("--rpcs", type=int, default=200)
    bench = commands.add_parser(
        "bench", help="net-relay side by side with raw asyncio sockets and pyzmq"
    )
    add_bench_arguments(bench)
    for sub in (node, run, send, rpc, demo, bench, stats):
        sub.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="log more (-v: info, -vv: debug)",
        )
        sub.add_argument("--loop", choices=LOOP_CHOICES, default=argparse.SUPPRESS,
                         help=BENCH_LOOP_HELP if sub is bench else LOOP_HELP)
    return parser


_ASYNC_COMMANDS = {
    "send": _cmd_send,
    "rpc": _cmd_rpc,
    "node": _cmd_node,
    "run": _cmd_run,
    "demo": _cmd_demo,
    "bench": _cmd_bench,
    "stats": _cmd_stats,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if args.command == "plugins":
            return _cmd_plugins(args)
        if args.command == "new-plugin":
            root = write_plugin(args.kind, args.name, Path(args.directory))
            print(f"wrote {root}; next: pip install -e \"{root}[test]\" and pytest {root}")
            return 0
        if args.command == "gen-cert":
            return _cmd_gen_cert(args)
        if args.command == "train-dict":
            return _cmd_train_dict(args)
        return run_on_loop(_ASYNC_COMMANDS[args.command](args), loop=args.loop)
    except AppError as exc:  # the user's module or function: like a bad argument
        print(f"net-relay {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RelayError as exc:
        print(f"net-relay {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the interpreter flushes it at exit, and would
    otherwise report the broken pipe a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
