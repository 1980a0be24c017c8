"""``strom console --bootstrap-server HOST:PORT [--listen 127.0.0.1:8080]``."""

from __future__ import annotations

import argparse
import asyncio
import signal

from strom.cli.common import CliError, add_bootstrap, add_command_config, client_config

DEFAULT_LISTEN = "127.0.0.1:8080"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_bootstrap(p)
    add_command_config(p)
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where the console serves its pages (default {DEFAULT_LISTEN}; port 0: any)",
    )


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise CliError(f"--listen {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    try:
        from aiohttp import web
    except ImportError:
        raise CliError("strom console needs aiohttp: pip install 'strom[console]'") from None
    from strom.cli.console.app import make_app

    host, port = parse_listen(args.listen)
    config = client_config(args)

    async def serve() -> None:
        runner = web.AppRunner(make_app(config), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = runner.addresses[0][1] if runner.addresses else port
            print(f"strom console on http://{host}:{bound}/ (Ctrl-C stops it)", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(serve())
    return 0
