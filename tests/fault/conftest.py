"""Fixtures of the fault scenarios: network faults (root only) and clusters whose
brokers are each on their own loopback address (the cluster fixtures' default)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strom.testing.netfaults import Network, unavailable_reason


@pytest.fixture
def network() -> Iterator[Network]:
    """Cut and slow links; every rule, qdisc and cgroup is removed afterwards."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    net = Network()
    try:
        yield net
    finally:
        net.close()
