"""Running the ``strom`` command in tests: captured, under a pseudo-terminal, or
watching its standard error as it comes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import uuid


def strom(
    *args: str, stdin: str | bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m strom ARGS`` with captured output."""
    data = stdin.decode() if isinstance(stdin, bytes) else stdin
    return subprocess.run(
        [sys.executable, "-m", "strom", *args],
        input=data,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )


def strom_on_terminal(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """``python -m strom ARGS`` with standard error on a pseudo-terminal (stdin empty,
    stdout captured): exit code, stdout, what the terminal showed."""
    leader, follower = pty.openpty()
    shown = bytearray()
    with subprocess.Popen(
        [sys.executable, "-m", "strom", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "PYTHONWARNINGS": "error", "COLUMNS": "160"},
    ) as proc:
        os.close(follower)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the process is gone
                    break
                if not chunk:
                    break
                shown += chunk
            elif proc.poll() is not None:
                break
        os.close(leader)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        code = proc.wait(timeout=timeout)
    return code, out, shown.decode(errors="replace")


def new_topic(prefix: str = "cli") -> str:
    """A topic name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(bootstrap: str, topic: str, partitions: int = 1, *extra: str) -> None:
    """``strom topics --create``; asserts Kafka's answer."""
    r = strom(
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        str(partitions),
        "--replication-factor",
        "1",
        *extra,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Created topic {topic}."
