"""Console page times against a local broker with 1,000 partitions (issue 15: < 200 ms).

    python bench/console_bench.py              # 20 loads of each page
    python bench/console_bench.py --runs 5

Starts a broker process and ``strom console``, creates 10 topics of 100 partitions with
records in them and a consumer group with committed offsets on every partition, then
times each page: the HTTP response (urllib: the console's work, its requests to the broker
and the transfer) and, when Debian's Chromium is there, the browser's load (Playwright:
navigation start to the load event, the page's CSS and script included). Figures only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from strom.testing.broker import BrokerProcess

TOPICS = 10
PARTITIONS = 100
CHROMIUM = "/usr/bin/chromium"


def load_cluster(bootstrap: str) -> tuple[str, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [f"bench-{i}" for i in range(TOPICS)]
    for f in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        f.result(60)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for name in names:
        for p in range(PARTITIONS):
            for i in range(10):
                producer.produce(name, b'{"n": %d, "p": %d}' % (i, p), partition=p)
    producer.flush(60)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-group"})
    consumer.commit(
        offsets=[TopicPartition(n, p, 5) for n in names for p in range(PARTITIONS)],
        asynchronous=False,
    )
    consumer.close()
    return names[0], "bench-group"


def stats(values: list[float]) -> str:
    return (
        f"min {min(values) * 1000:6.1f}  median {statistics.median(values) * 1000:6.1f}  "
        f"max {max(values) * 1000:6.1f} ms"
    )


def http_times(url: str, runs: int) -> list[float]:
    urllib.request.urlopen(url).read()  # warm-up
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        with urllib.request.urlopen(url) as resp:
            resp.read()
        out.append(time.perf_counter() - started)
    return out


def browser_times(urls: list[str], runs: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    out: dict[str, list[float]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page()
        for url in urls:
            page.goto(url)  # warm-up (CSS and script cached as a user's would be)
            times = []
            for _ in range(runs):
                page.goto(url, wait_until="load")
                ms = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return n.loadEventEnd - n.startTime; }"
                )
                times.append(ms / 1000)
            out[url] = times
        browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, BrokerProcess(Path(tmp)) as broker:
        topic, group = load_cluster(broker.bootstrap)
        console = subprocess.Popen(
            [sys.executable, "-m", "strom", "console", "--bootstrap-server", broker.bootstrap,
             "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert console.stdout is not None
            base = console.stdout.readline().split()[3].rstrip("/")
            pages = {
                "cluster": "/",
                "topics (1,000 partitions)": "/topics",
                "topic (100 partitions)": f"/topics/{topic}",
                "messages (50)": f"/topics/{topic}/messages?partition=0&offset=0&limit=50",
                "groups": "/groups",
                "group (1,000 partitions)": f"/groups/{group}",
                "sizing": "/size?throughput_mb_s=50&record_bytes=1024&retention=7d",
            }
            print(f"HTTP response, {args.runs} loads each:")
            for label, path in pages.items():
                print(f"  {label:<28} {stats(http_times(base + path, args.runs))}")
            if Path(CHROMIUM).exists():
                print(f"Chromium, navigation start to load event, {args.runs} loads each:")
                loads = browser_times([base + path for path in pages.values()], args.runs)
                for label, path in pages.items():
                    print(f"  {label:<28} {stats(loads[base + path])}")
        finally:
            console.terminate()
            console.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
