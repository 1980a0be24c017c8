"""``strom size`` against cases computed by hand (with fixed figures), and its CLI."""

from __future__ import annotations

import pytest

from strom.cli import sizing_figures
from strom.cli.common import CliError
from strom.cli.main import main
from strom.cli.sizing import Figures, Workload, parse_retention, size

FIGURES = Figures(
    produce_mb_per_core_s=100,
    consume_mb_per_core_s=200,
    replication_mb_per_core_s=50,
    broker_idle_rss_mb=30,
    rss_kb_per_partition=10,
)


def test_a_small_workload_is_bounded_by_the_replication_factor() -> None:
    # wire 10 x 2 x 0.5 = 10 MB/s; CPU 10/100 + 10x2/50 + 10x2/200 = 0.6 cores
    # -> ceil(0.6 / 0.5) = 2 brokers, but RF 3 needs 3; partitions: max(ceil(10/50), 3) = 3
    w = Workload(10, 1000, 86400, replication_factor=3, consumer_groups=2, peak_factor=2,
                 compression_ratio=0.5)  # fmt: skip
    s = size(w, FIGURES)
    assert (s.brokers, s.partitions) == (3, 3)
    assert s.disk_per_broker_gb == pytest.approx(540)  # 10 x 0.5 x 86400 x 3 / 1000 / 3 / 0.8
    assert s.network_in_per_broker_mb_s == pytest.approx(10)  # 10 x 3 / 3
    assert s.network_out_per_broker_mb_s == pytest.approx(40 / 3)  # 10 x (2 + 2) / 3
    assert s.page_cache_per_broker_gb == pytest.approx(0.3)  # 10 x 3 x 30 / 3 / 1000
    assert s.broker_memory_mb == pytest.approx(30 + 3 * 10 / 1024)  # 3 replicas a broker
    rows = {r.what: r for r in s.rows}
    assert rows["records per second (average)"].value == "10,000"
    assert rows["CPU at peak"].value == "0.60 cores"
    assert "replication factor 3" in rows["brokers"].how


def test_a_heavy_workload_is_bounded_by_cpu() -> None:
    # wire 200 MB/s; CPU 200/100 + 200x1/50 + 200x3/200 = 9 cores -> 18 brokers
    w = Workload(200, 500, parse_retention("12h"), replication_factor=2, consumer_groups=3)
    s = size(w, FIGURES)
    assert (s.brokers, s.partitions) == (18, 18)
    assert s.disk_per_broker_gb == pytest.approx(1200)  # 200 x 43200 x 2 / 1000 / 18 / 0.8
    assert s.network_in_per_broker_mb_s == pytest.approx(400 / 18)
    assert s.network_out_per_broker_mb_s == pytest.approx(800 / 18)
    assert s.page_cache_per_broker_gb == pytest.approx(200 * 2 * 30 / 18 / 1000)


def test_partitions_follow_the_slower_loop_and_round_to_the_brokers() -> None:
    # consume is the slower figure: a loop takes 10 x 0.5 = 5 MB/s -> ceil(95 / 5) = 19
    # partitions; CPU 95/100 = 0.95 cores -> 2 brokers; 19 rounds up to 20
    figures = Figures(100, 10, 50, 30, 10)
    s = size(Workload(95, 100, 3600, replication_factor=1, consumer_groups=0), figures)
    assert (s.brokers, s.partitions) == (2, 20)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 604800),
        ("168h", 604800),
        ("1w", 604800),
        ("30m", 1800),
        ("1.5s", 1.5),
        ("250ms", 0.25),
    ],
)
def test_retention(text: str, seconds: float) -> None:
    assert parse_retention(text) == seconds


@pytest.mark.parametrize("text", ["7", "7days", "", "-1d"])
def test_bad_retention(text: str) -> None:
    with pytest.raises(CliError, match="--retention"):
        parse_retention(text)


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"throughput_mb_s": 0}, "--throughput-mb-s"),
        ({"replication_factor": 0}, "--replication-factor"),
        ({"peak_factor": 0.5}, "--peak-factor"),
        ({"compression_ratio": 1.5}, "--compression-ratio"),
    ],
)
def test_bad_workloads_are_refused(changes: dict[str, float], flag: str) -> None:
    args: dict[str, float] = {"throughput_mb_s": 1, "record_bytes": 100, "retention_s": 60}
    with pytest.raises(CliError, match=flag):
        size(Workload(**{**args, **changes}), FIGURES)  # type: ignore[arg-type]


def test_the_default_figures_are_the_measured_ones() -> None:
    f = Figures()
    assert f.produce_mb_per_core_s == sizing_figures.PRODUCE_MB_PER_CORE_S > 0
    assert f.replication_mb_per_core_s == sizing_figures.REPLICATION_MB_PER_CORE_S > 0
    assert "bench/sizing_bench.py" in (sizing_figures.__doc__ or "")


def test_the_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["size", "--throughput-mb-s", "50", "--record-bytes", "1024", "--retention", "7d",
            "--replication-factor", "3", "--consumer-groups", "4", "--peak-factor", "2",
            "--compression-ratio", "0.4"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("50 MB/s of 1024-byte records")
    for what in ("brokers", "partitions", "disk per broker", "network in per broker (peak)",
                 "network out per broker (peak)", "page cache per broker"):  # fmt: skip
        assert what in out
    expected = size(Workload(50, 1024, 604800, 3, 4, 2, 0.4))
    assert f"{expected.disk_per_broker_gb:,.1f} GB" in out
    assert main(["size", "--throughput-mb-s", "50", "--record-bytes", "1", "--retention", "x"]) == 1
