"""``strom console`` in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real broker process (and, for the ACL page, one with Kafka's ACL authorizer); a
failing test leaves a screenshot (its path is in the report). .ci/run installs chromium."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from strom.cli.sizing import Workload, parse_retention, size
from strom.client.aio.admin import AIOAdmin
from strom.common import acl
from strom.testing import BrokerProcess
from strom.testing.broker import BrokerFactory
from strom.testing.kafka import create_topic, produce_acked

from ..conftest import PHASE_REPORTS

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("STROM_CHROMIUM", "/usr/bin/chromium")
# As the machine's notes say: no sandbox as root, no GPU, and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def broker_overrides() -> dict[str, str]:
    return {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "3"}


@contextlib.contextmanager
def serve_console(bootstrap: str, log: Path) -> Iterator[str]:
    """``strom console`` on a port of its choosing; its base URL."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strom", "console", "--bootstrap-server", bootstrap,
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("strom console on http://"), f"{line!r}\n{log.read_text()}"
        yield line.split()[3].rstrip("/")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def console(broker: BrokerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("console") / "console.log"
    with serve_console(broker.bootstrap, log) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)", pytrace=False)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    yield tab
    reports = request.node.stash.get(PHASE_REPORTS, {})
    call = reports.get("call")
    if call is not None and call.failed:
        shot = tmp_path / "failure.png"
        with contextlib.suppress(Exception):
            tab.screenshot(path=str(shot), full_page=True)
            call.sections.append(("screenshot", f"{shot} (page {tab.url})"))
    context.close()
    assert not problems, problems  # the console's own script raised nothing


def config_row(page: Page, name: str) -> Locator:
    first_cell = page.locator("td:first-child", has_text=re.compile(f"^{re.escape(name)}$"))
    return page.locator("#configs tbody tr", has=first_cell)


def test_cluster_page_shows_brokers_controller_and_versions(page: Page, console: str) -> None:
    page.goto(console + "/")
    expect(page.locator("h1")).to_have_text("Cluster")
    expect(page.locator("#controller")).to_have_text("1")
    row = page.locator("#brokers tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(0)).to_have_text("1")
    expect(row.locator("td").nth(3)).to_have_text("controller")
    page.get_by_text("API versions of broker 1").click()
    expect(page.get_by_role("cell", name="Produce (0)")).to_be_visible()


def test_topic_create_configure_grow_produce_browse_delete(
    page: Page, console: str, topic_name: str
) -> None:
    page.goto(console + "/topics")
    form = page.locator("#create-topic")
    form.get_by_label("name").fill(topic_name)
    form.get_by_label("partitions").fill("2")
    form.get_by_label("configs").fill("retention.ms=3600000")
    form.get_by_role("button", name="Create topic").click()
    expect(page.locator(".notice")).to_have_text(f"created topic {topic_name}")
    expect(page.locator("#partitions tbody tr")).to_have_count(2)
    page.goto(console + "/topics")  # the same name again: the broker's error is shown
    form.get_by_label("name").fill(topic_name)
    form.get_by_role("button", name="Create topic").click()
    expect(page.locator(".error")).to_contain_text("TOPIC_ALREADY_EXISTS")
    page.goto(f"{console}/topics/{topic_name}")
    retention = config_row(page, "retention.ms")
    expect(retention).to_contain_text("3600000")
    expect(retention).to_contain_text("overridden")

    alter = page.locator("#alter-config")
    alter.get_by_label("config").fill("cleanup.policy")
    alter.get_by_label("value").fill("compact,delete")
    alter.get_by_role("button").click()
    expect(page.locator(".notice")).to_have_text("set cleanup.policy")
    expect(config_row(page, "cleanup.policy")).to_contain_text("compact,delete")

    grow = page.locator("#add-partitions")
    grow.get_by_label("count").fill("3")
    grow.get_by_role("button").click()
    expect(page.locator("#partitions tbody tr")).to_have_count(3)

    before = time.time() - 5
    produce = page.locator("#produce")
    produce.get_by_label("key").fill("order-7")
    produce.get_by_label("value").fill('{"id": 7, "items": ["apple", "pear"]}')
    produce.get_by_label("headers").fill("source=console")
    produce.get_by_label("partition").fill("2")
    produce.get_by_role("button", name="Produce").click()
    expect(page.locator(".notice")).to_have_text("produced to partition 2 at offset 0")
    message = page.locator("article.message")
    expect(message).to_have_count(1)
    expect(message.locator("code.text")).to_have_text("order-7")
    value = message.locator("pre.value.json")  # pretty-printed
    expect(value).to_contain_text('"items": [\n    "apple",')
    expect(message.locator("ul.headers")).to_contain_text("source: console")

    browse = page.locator("#browse")
    browse.get_by_label("offset").fill("")
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before))
    browse.get_by_label("timestamp").fill(iso)
    browse.get_by_role("button", name="Show").click()
    expect(page.locator("article.message")).to_have_count(1)
    browse.get_by_label("timestamp").fill(str(int(time.time() + 3600) * 1000))
    browse.get_by_role("button", name="Show").click()
    expect(page.locator("article.message")).to_have_count(0)  # nothing after that time

    page.goto(f"{console}/topics/{topic_name}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#delete-topic button").click()
    expect(page.locator(".notice")).to_have_text(f"deleted topic {topic_name}")
    expect(page.locator("#topics")).not_to_contain_text(topic_name)


def test_message_search_in_a_range(
    page: Page, console: str, broker: BrokerProcess, topic_name: str
) -> None:
    create_topic(broker.bootstrap, topic_name, partitions=1)
    values = [b'{"n": %d, "colour": "%s"}' % (i, b"red" if i % 10 == 3 else b"blue")
              for i in range(100)]  # fmt: skip
    produce_acked(broker.bootstrap, topic_name, [(0, b"k%d" % i, v) for i, v in enumerate(values)])
    page.goto(f"{console}/topics/{topic_name}/messages?partition=0&offset=0&limit=100&search=red")
    offsets = page.locator("article.message").evaluate_all(
        "els => els.map(e => Number(e.dataset.offset))"
    )
    assert offsets == [3, 13, 23, 33, 43, 53, 63, 73, 83, 93]
    page.goto(f"{console}/topics/{topic_name}/messages?partition=0&offset=50&limit=3")
    assert page.locator("article.message").evaluate_all(
        "els => els.map(e => Number(e.dataset.offset))"
    ) == [50, 51, 52]


def test_consumer_group_members_lag_and_plot(
    page: Page, console: str, broker: BrokerProcess, topic_name: str
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    create_topic(broker.bootstrap, topic_name, partitions=2)
    produce_acked(broker.bootstrap, topic_name, [(i % 2, None, b"%d" % i) for i in range(100)])
    group = f"console-{topic_name}"
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": "lag-watcher",
         "enable.auto.commit": False}
    )  # fmt: skip
    consumer.subscribe([topic_name])
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
        assert len(consumer.assignment()) == 2
        consumer.commit(
            offsets=[TopicPartition(topic_name, 0, 20), TopicPartition(topic_name, 1, 30)],
            asynchronous=False,
        )
        page.goto(console + "/groups")
        row = page.locator("#groups tr", has_text=group)
        expect(row).to_contain_text("Stable")
        expect(row).to_contain_text("50")  # (50 - 20) + (50 - 30)
        row.get_by_role("link").click()
        expect(page.locator("#total-lag")).to_have_text("50")
        expect(page.locator("#members")).to_contain_text("lag-watcher")
        expect(page.locator("#members")).to_contain_text(f"{topic_name}-0, {topic_name}-1")
        lag = page.locator("#lag tbody tr")
        expect(lag).to_have_count(2)
        expect(lag.nth(0)).to_contain_text("30")
        page.wait_for_function("window.stromLag && window.stromLag.length >= 2")
        produce_acked(broker.bootstrap, topic_name, [(0, None, b"more")] * 10)
        # the plot follows the lag while the page is open
        page.wait_for_function(
            "window.stromLag.length > 0 && window.stromLag[window.stromLag.length - 1].total == 60"
        )
        expect(page.locator("#lag-caption")).to_contain_text("total lag 60")
        painted = page.evaluate(
            """() => { const c = document.getElementById('lag-plot');
                       const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                       let n = 0;
                       for (let i = 2; i < d.length; i += 4) if (d[i] > 200 && d[i-2] < 80) n++;
                       return n; }"""
        )
        assert painted > 50  # the blue line is drawn
    finally:
        consumer.close()


def test_sizing_page_matches_the_calculator(page: Page, console: str) -> None:
    page.goto(console + "/size")
    form = page.locator("#sizing")
    values: dict[str, Any] = {
        "throughput_mb_s": "50",
        "record_bytes": "1024",
        "retention": "7d",
        "replication_factor": "3",
        "consumer_groups": "4",
        "peak_factor": "2",
        "compression_ratio": "0.4",
    }
    for name, value in values.items():
        form.get_by_label(name, exact=True).fill(value)
    form.get_by_role("button").click()
    expected = size(Workload(50, 1024, parse_retention("7d"), 3, 4, 2, 0.4))
    table = page.locator("#sizing-result")
    for row in expected.rows:
        expect(table.locator("tr", has_text=row.what).first).to_contain_text(row.value)
    form.get_by_label("retention", exact=True).fill("soon")
    form.get_by_role("button").click()
    expect(page.locator(".error")).to_contain_text("--retention")


# -- ACLs --------------------------------------------------------------------------------------

# Kafka's authorizer and no super user: the console's principal on PLAINTEXT,
# User:ANONYMOUS, may do whatever no ACL covers (allow.everyone.if.no.acl.found), so a
# test can also deny it something.
ACL_BROKER = {
    "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
    "allow.everyone.if.no.acl.found": "true",
}
ANONYMOUS = "User:ANONYMOUS"
Op, RT, PT = acl.AclOperation, acl.ResourceType, acl.PatternType
ALLOW, DENY = acl.AclPermissionType.ALLOW, acl.AclPermissionType.DENY


@pytest.fixture(scope="module")
def acl_console(
    broker_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A broker with the ACL authorizer and a console on it: (bootstrap, console URL)."""
    if broker_kind != "strom":
        pytest.skip("configures strom's authorizer")
    factory = BrokerFactory(lambda: tmp_path_factory.mktemp("acl-broker"))
    try:
        bootstrap = factory(ACL_BROKER).bootstrap
        with serve_console(bootstrap, tmp_path_factory.mktemp("acl-console") / "log") as base:
            yield bootstrap, base
    finally:
        factory.close()


def admin_call(bootstrap: str, work: Callable[[AIOAdmin], Awaitable[Any]]) -> Any:
    """``work`` with an AIOAdmin, on a thread of its own (Playwright's loop has this one)."""

    async def main() -> Any:
        async with AIOAdmin({"bootstrap.servers": bootstrap}) as admin:
            return await work(admin)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def binding(
    kind: acl.ResourceType,
    name: str,
    pattern: acl.PatternType,
    principal: str,
    op: acl.AclOperation,
    permission: acl.AclPermissionType,
) -> acl.AclBinding:
    return acl.AclBinding(
        acl.ResourcePattern(kind, name, pattern),
        acl.AccessControlEntry(principal, "*", op, permission),
    )


def test_acls_add_list_filter_and_delete(page: Page, acl_console: tuple[str, str]) -> None:
    bootstrap, base = acl_console
    prefix = f"orders-{uuid.uuid4().hex[:8]}-"
    on_prefix = acl.AclBindingFilter(RT.TOPIC, prefix, PT.PREFIXED)
    read, describe = (
        binding(RT.TOPIC, prefix, PT.PREFIXED, "User:alice", op, ALLOW)
        for op in (Op.READ, Op.DESCRIBE)
    )
    admin_call(bootstrap, lambda a: a.create_acls([describe]))  # differs in the operation only
    page.goto(base + "/acls")
    add = page.locator("#add-acl")
    add.get_by_label("principal").fill("User:alice")
    add.get_by_label("operation").select_option("Read")
    add.get_by_label("resource_type").select_option("Topic")
    add.get_by_label("name", exact=True).fill(prefix)
    add.get_by_label("pattern_type").select_option("prefixed")
    add.get_by_role("button", name="Add ACL").click()
    expect(page.locator(".notice")).to_contain_text("added (principal=User:alice, host=*")
    assert set(admin_call(bootstrap, lambda a: a.describe_acls(on_prefix))) == {read, describe}

    search = page.locator("#acl-filter")
    search.get_by_label("principal").fill("ALICE")
    search.get_by_label("resource", exact=True).fill(prefix)
    search.get_by_role("button", name="Filter").click()
    rows = page.locator("#acls tbody tr")
    expect(rows).to_have_count(2)
    row = rows.filter(has_text="Read")
    expect(row.locator("td")).to_have_text(
        ["User:alice", "*", "Read", "Allow", "Topic", prefix, "prefixed", "Delete"]
    )
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator(".notice")).to_contain_text("deleted (principal=User:alice, host=*")
    assert admin_call(bootstrap, lambda a: a.describe_acls(on_prefix)) == [describe]
    page.goto(f"{base}/acls?resource={prefix}")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Describe")

    add.get_by_label("principal").fill("alice")  # no principal type: refused, and said why
    add.get_by_label("name", exact=True).fill(prefix)
    add.get_by_role("button", name="Add ACL").click()
    expect(page.locator(".error")).to_contain_text("Could not parse principal from `alice`")
    admin_call(bootstrap, lambda a: a.delete_acls([describe.to_filter()]))


def test_acls_page_says_the_console_may_not_see_them(
    page: Page, acl_console: tuple[str, str]
) -> None:
    bootstrap, base = acl_console
    # Alter stays allowed, so that the console's principal can take these back
    bindings = [
        binding(RT.CLUSTER, acl.CLUSTER_NAME, PT.LITERAL, ANONYMOUS, op, permission)
        for op, permission in ((Op.ALTER, ALLOW), (Op.DESCRIBE, DENY))
    ]
    admin_call(bootstrap, lambda a: a.create_acls(bindings))
    try:
        page.goto(base + "/acls")
        expect(page.locator("#acls-unavailable")).to_contain_text(
            "may not describe ACLs (CLUSTER_AUTHORIZATION_FAILED)"
        )
        expect(page.locator("#add-acl")).to_have_count(0)
    finally:
        admin_call(bootstrap, lambda a: a.delete_acls([b.to_filter() for b in bindings]))


def test_acls_page_without_an_authorizer(page: Page, console: str) -> None:
    page.goto(console + "/acls")
    unavailable = page.locator("#acls-unavailable")
    expect(unavailable).to_contain_text("brokers have no authorizer")
    expect(unavailable).to_contain_text("SECURITY_DISABLED")
    expect(page.locator("#acls")).to_have_count(0)
