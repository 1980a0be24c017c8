"""Fixtures that start real broker processes on 127.0.0.1.

STROM_TEST_BROKER selects the broker under test:
  strom (default)  ``python -m strom broker`` with --override settings
  reference        the third-party reference broker from ../shared/tools, to
                   check the tests themselves (in memory: no durability; it
                   ignores overrides)

Fixtures:
  broker_kind      "strom" or "reference" (session)
  broker_overrides broker settings for the module's ``broker``; override it in a
                   test module to change them (module, default {})
  broker           one running broker shared by the tests of a module
  broker_factory   start more brokers: ``broker_factory({"log.segment.bytes": "4096"})``;
                   each gets its own data dir; all are stopped after the test
  topic_name       a topic name unique to the test
  require_strom    skips the test when the broker under test is not strom's
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from strom.testing.broker import (
    ArgvFactory,
    BrokerExitedError,
    BrokerFactory,
    BrokerProcess,
    strom_argv,
)
from strom.testing.cluster import Cluster
from strom.testing.zookeeper import INSTALL_HINT, ZooKeeperProcess, zookeeper_installed

pytest_plugins = ["pytester"]  # strom's pytest plugin is tested in separate pytest runs

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_SCRIPT = ROOT.parent / "shared" / "tools" / "reference-broker"
KINDS = ("strom", "reference")


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python 3.0 calls deprecated importlib.resources functions when first imported;
    # import it once here so that warnings-as-errors only judge our own code.
    with warnings.catch_warnings(), contextlib.suppress(ImportError):
        warnings.simplefilter("ignore", DeprecationWarning)
        import kafka  # noqa: F401


@pytest.fixture(scope="session")
def broker_kind() -> str:
    kind = os.environ.get("STROM_TEST_BROKER", "strom")
    if kind not in KINDS:
        raise pytest.UsageError(f"STROM_TEST_BROKER={kind!r}: expected one of {KINDS}")
    return kind


@pytest.fixture(scope="session")
def broker_argv(broker_kind: str) -> ArgvFactory:
    if broker_kind == "strom":
        return strom_argv
    from strom.testing.reference import reference_argv_factory, reference_broker_binary

    script = Path(os.environ.get("STROM_REFERENCE_SCRIPT", REFERENCE_SCRIPT))
    return reference_argv_factory(reference_broker_binary(script))


def _make_factory(
    kind: str, argv: ArgvFactory, tmp_path_factory: pytest.TempPathFactory, name: str
) -> BrokerFactory:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]
    return BrokerFactory(
        lambda: tmp_path_factory.mktemp(f"broker-{safe}"),
        argv_factory=argv,
        expect_clean_exit=kind == "strom",  # the reference broker's exit status means nothing
    )


def _close(factory: BrokerFactory) -> None:
    try:
        factory.close()
    except BrokerExitedError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def broker_factory(
    broker_kind: str,
    broker_argv: ArgvFactory,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[BrokerFactory]:
    factory = _make_factory(broker_kind, broker_argv, tmp_path_factory, request.node.name)
    request.node.stash[_BROKERS] = factory.brokers
    yield factory
    _close(factory)


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def broker(
    broker_kind: str,
    broker_argv: ArgvFactory,
    broker_overrides: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[BrokerProcess]:
    factory = _make_factory(broker_kind, broker_argv, tmp_path_factory, request.module.__name__)
    proc = factory(broker_overrides)
    yield proc
    if not proc.is_running():
        pytest.fail(f"broker died during the module's tests\n{proc.log_tail()}", pytrace=False)
    _close(factory)


@pytest.fixture
def require_strom(broker_kind: str) -> None:
    if broker_kind != "strom":
        pytest.skip(f"needs strom's broker (STROM_TEST_BROKER={broker_kind})")


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:150]
    return f"{base}-{uuid.uuid4().hex[:8]}"


# -- on failure, show the logs of the brokers the test used ---------------------------

_BROKERS = pytest.StashKey[list[BrokerProcess]]()
# Each phase's report of a test, for fixtures that add to it at teardown (screenshots).
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    if report.failed:
        procs: list[BrokerProcess] = []
        if _BROKERS in item.stash:
            stored = item.stash[_BROKERS]
            procs.extend(stored)
        funcargs = getattr(item, "funcargs", {})
        module_broker = funcargs.get("broker")
        if isinstance(module_broker, BrokerProcess):
            procs.append(module_broker)
        for proc in procs:
            report.sections.append((f"broker log {proc.bootstrap}", proc.log_tail()))
    return report


# -- clusters: one real ZooKeeper for the session, a chroot per cluster ---------------


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperProcess]:
    """Debian's ZooKeeper server on 127.0.0.1 (``.ci/run`` installs it; without it the
    cluster tests fail with the command that installs it)."""
    if not zookeeper_installed():
        pytest.fail(INSTALL_HINT, pytrace=False)
    zk = ZooKeeperProcess(tmp_path_factory.mktemp("zookeeper"))
    zk.start()
    yield zk
    zk.stop()


@pytest.fixture
def cluster_factory(
    zookeeper: ZooKeeperProcess,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Cluster]]:
    """``cluster_factory(brokers=3, overrides={...})``: a started cluster in its own
    chroot of the session's ZooKeeper; stopped after the test."""
    made: list[Cluster] = []
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:40]

    def make(
        brokers: int = 3, overrides: dict[str, str] | None = None, **kwargs: object
    ) -> Cluster:
        cluster = Cluster(
            tmp_path_factory.mktemp(f"cluster-{safe}"),
            brokers,
            overrides,
            zookeeper=zookeeper,
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(cluster)
        request.node.stash.setdefault(_BROKERS, []).extend(cluster.brokers.values())
        return cluster.start()

    yield make
    for cluster in made:
        cluster.stop()
