"""The network fault helper itself: a process in a cgroup is cut off (its outbound
packets and the packets to its address), slowed, and everything is undone."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from strom.testing.netfaults import Network, unavailable_reason

pytestmark = [pytest.mark.fault]

CLIENT = """
import socket, sys, time
host, port, n, early = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
s = socket.create_connection((host, port), timeout=1.5) if early else None
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
start = time.monotonic()
try:
    with s or socket.create_connection((host, port), timeout=1.5) as s:
        s.settimeout(10)
        s.sendall(b"x" * n)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)
    print(f"ok {time.monotonic() - start:.3f}")
except OSError as exc:
    print(f"failed {exc}")
"""


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.40", 0))
    sock.listen(8)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(20)
            while conn.recv(65536):
                pass
            conn.sendall(b"k")

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()
    stop.set()
    t.join()
    sock.close()


def client(addr: tuple[str, int], n: int = 10, early: bool = False) -> subprocess.Popen[str]:
    """A process that connects to ``addr`` (at once if ``early``, else when told to go)
    and sends ``n`` bytes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT, addr[0], str(addr[1]), str(n), "1" if early else "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def outcome(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate("go\n", timeout=30)
    return out.strip()


def chains() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True).stdout


def test_a_process_in_a_group_is_cut_and_healed(network: Network, server: tuple[str, int]) -> None:
    cut, other = client(server), client(server)
    group = network.group("cut", [cut.pid])
    network.drop(group=group)
    assert outcome(cut).startswith("failed")
    assert outcome(other).startswith("ok")  # the same address from a process outside
    network.heal()
    healed = client(server)
    network.group("cut", [healed.pid])
    assert outcome(healed).startswith("ok")


def test_packets_to_an_address_and_port_are_dropped(
    network: Network, server: tuple[str, int]
) -> None:
    network.drop(dst=server)
    assert outcome(client(server)).startswith("failed")
    network.heal()
    assert outcome(client(server)).startswith("ok")


def test_a_process_s_traffic_is_rate_limited(network: Network, server: tuple[str, int]) -> None:
    n = 64 * 1024  # 0.5 Mbit: about 2 s at 256 kbit/s
    slow, fast = client(server, n, early=True), client(server, n, early=True)
    network.shape("127.0.0.41", [slow.pid], rate_kbit=256, delay_ms=50)
    fast_result, slow_result = outcome(fast), outcome(slow)
    assert fast_result.startswith("ok") and float(fast_result.split()[1]) < 0.5, fast_result
    assert slow_result.startswith("ok") and float(slow_result.split()[1]) > 1.0, slow_result


def test_close_removes_every_rule_qdisc_and_cgroup(server: tuple[str, int]) -> None:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    proc = client(server)
    net = Network()
    group = net.group("g", [proc.pid])
    net.drop(group=group)
    net.shape("127.0.0.41", [proc.pid], rate_kbit=1000)
    assert net.name in chains()
    net.close()
    assert net.name not in chains()
    assert (
        "htb"
        not in subprocess.run(
            ["tc", "qdisc", "show", "dev", "lo"], capture_output=True, text=True
        ).stdout
    )
    assert not net._base.exists()
    assert outcome(proc).startswith("ok")  # moved back, no rule left
