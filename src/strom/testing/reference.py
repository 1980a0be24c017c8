"""Run the third-party reference broker (shared/tools/reference-broker) through BrokerProcess.

The reference broker (Tansu, in-memory storage) is used to check the tests
themselves and to compare speed. It ignores strom's config overrides and keeps
nothing on disk, so durability tests do not apply to it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from strom.testing.broker import HOST, ArgvFactory

__all__ = ["reference_argv_factory", "reference_broker_binary"]


def reference_broker_binary(script: Path) -> Path:
    """The broker binary behind the shared ``reference-broker`` script (installed on first use)."""
    out = subprocess.run(
        ["bash", str(script), "path"],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    binary = Path(out.stdout.strip())
    if not binary.is_file():
        raise FileNotFoundError(f"{script} path printed {binary!s}, which is not a file")
    return binary


def reference_argv_factory(binary: Path) -> ArgvFactory:
    """An ArgvFactory that starts the reference binary on 127.0.0.1:port (overrides ignored)."""

    def argv(port: int, data_dir: Path, overrides: Mapping[str, str]) -> list[str]:
        url = f"tcp://{HOST}:{port}"
        return [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ]

    return argv
