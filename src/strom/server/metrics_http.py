"""``metrics.listener=http://HOST:PORT``: the broker's metrics for Prometheus at /metrics.

Off by default. Served by prometheus-client (the ``metrics`` extra:
``pip install strom[metrics]``) on its own thread; a scrape asks the event loop for a
snapshot (strom.broker.metrics) and renders it in that thread, so the loop only copies
counters and walks its partitions once per scrape.

Names are Kafka's JMX beans as the Prometheus JMX exporter's usual Kafka rules name them
(lowercased; a bean's per-second rate becomes its ``_total`` counter), so dashboards
and alerts written for Kafka work unchanged:

- kafka_server_brokertopicmetrics_{messagesin,bytesin,bytesout,replicationbytesout,
  totalproducerequests,totalfetchrequests,failedproducerequests,failedfetchrequests}_total,
  with a ``topic`` label per topic, and without one for all topics (BrokerTopicMetrics)
- kafka_network_requestmetrics_requests_total{request,version} (RequestsPerSec),
  kafka_network_requestmetrics_errors_total{request,error} (ErrorsPerSec: the request's
  error, and each partition's for Produce and Fetch; NONE is not counted),
  kafka_network_requestmetrics_totaltimems{request} (TotalTimeMs, a histogram in ms:
  from the request read to its response written)
- kafka_server_replicamanager_{partitioncount,leadercount,underreplicatedpartitions,
  underminisrpartitioncount,atminisrpartitioncount}, ..._{isrshrinks,isrexpands}_total
- kafka_controller_kafkacontroller_{activecontrollercount,offlinepartitionscount,
  globalpartitioncount,globaltopiccount} (non-zero on the active controller only)
- kafka_log_log_{size,numlogsegments,logstartoffset,logendoffset}{topic,partition},
  kafka_log_logflushstats_logflushrateandtimems (a histogram in ms)
- kafka_server_socket_server_metrics_{connection_count,connection_creation_total,
  connection_close_total}{listener}
- kafka_consumergroup_{lag,current_offset}{consumergroup,topic,partition} and
  kafka_consumergroup_lag_sum{consumergroup,topic}: the names of kafka_exporter, the
  usual exporter of group lag (Kafka's broker has no such bean), for the groups this
  broker coordinates: the high watermark minus the committed offset, as
  ``strom consumer-groups --describe`` prints it
- process_* (CPU seconds, memory, open files) from prometheus-client
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from strom.broker.metrics import Histogram
from strom.broker.metrics_snapshot import MetricsSnapshot, snapshot
from strom.common.config import ConfigError
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from strom.broker.broker import Broker

log = logging.getLogger(__name__)
SCRAPE_TIMEOUT_S = 10.0
TOPIC_COUNTERS = {
    "messages_in": ("messagesin", "Messages appended (MessagesInPerSec)"),
    "bytes_in": ("bytesin", "Bytes appended by producers (BytesInPerSec)"),
    "bytes_out": ("bytesout", "Bytes fetched by consumers (BytesOutPerSec)"),
    "replication_bytes_out": (
        "replicationbytesout",
        "Bytes fetched by follower replicas (ReplicationBytesOutPerSec)",
    ),
    "produce_requests": ("totalproducerequests", "Produce partitions (TotalProduceRequestsPerSec)"),
    "fetch_requests": ("totalfetchrequests", "Fetch partitions (TotalFetchRequestsPerSec)"),
    "failed_produce_requests": (
        "failedproducerequests",
        "Produce partitions that failed (FailedProduceRequestsPerSec)",
    ),
    "failed_fetch_requests": (
        "failedfetchrequests",
        "Fetch partitions that failed (FailedFetchRequestsPerSec)",
    ),
}


def parse_listener(value: str) -> tuple[str, int]:
    """``http://HOST:PORT`` -> (host, port); ConfigError naming metrics.listener."""
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError("metrics.listener", f"expected http://HOST:PORT, got {value!r}")
    return parts.hostname, port


def request_name(api_key: int) -> str:
    """Kafka's request name of an API key (Produce, ListOffsets, ...)."""
    try:
        name = ApiKey(api_key).name
    except ValueError:
        return str(api_key)
    return "".join(word.capitalize() for word in name.split("_"))


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


class MetricsServer:
    """The /metrics endpoint of one broker (start on the broker's loop)."""

    def __init__(self, broker: Broker, listener: str) -> None:
        self.broker = broker
        self.host, self.port = parse_listener(listener)
        self._httpd: Any = None
        self._thread: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> None:
        """Bind and serve (in prometheus-client's thread); OSError if the port is taken."""
        try:
            from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
        except ImportError:
            raise ConfigError(
                "metrics.listener", "needs prometheus-client: pip install 'strom[metrics]'"
            ) from None
        self._loop = asyncio.get_running_loop()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        ProcessCollector(registry=registry)
        self._httpd, self._thread = start_http_server(self.port, self.host, registry)
        self.port = self._httpd.server_port
        log.info("metrics on %s", self.url)

    async def close(self) -> None:
        if self._httpd is not None:
            httpd, self._httpd = self._httpd, None
            await asyncio.to_thread(httpd.shutdown)
            httpd.server_close()

    def snapshot(self) -> MetricsSnapshot:
        """A snapshot taken on the broker's loop (called from the HTTP thread)."""
        loop = self._loop
        assert loop is not None, "not started"
        fut: concurrent.futures.Future[MetricsSnapshot] = concurrent.futures.Future()

        def take() -> None:
            try:
                fut.set_result(snapshot(self.broker))
            except BaseException as exc:  # handed to the scraping thread
                fut.set_exception(exc)

        loop.call_soon_threadsafe(take)
        return fut.result(SCRAPE_TIMEOUT_S)


class _Collector:
    def __init__(self, server: MetricsServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Any]:
        return iter(families(self.server.snapshot()))


def families(snap: MetricsSnapshot) -> list[Any]:
    """The Prometheus metric families of a snapshot."""
    return [
        *_topic_families(snap),
        *_request_families(snap),
        *_replica_families(snap),
        *_log_families(snap),
        *_connection_families(snap),
        *_lag_families(snap),
    ]


def _metric(name: str, doc: str, kind: str) -> Any:
    from prometheus_client.metrics_core import Metric

    return Metric(name, doc, kind)


def _gauge(name: str, doc: str, samples: Iterable[tuple[dict[str, str], float]]) -> Any:
    metric = _metric(name, doc, "gauge")
    for labels, value in samples:
        metric.add_sample(name, labels, value)
    return metric


def _counter(name: str, doc: str, samples: Iterable[tuple[dict[str, str], float]]) -> Any:
    metric = _metric(name, doc, "counter")
    for labels, value in samples:
        metric.add_sample(f"{name}_total", labels, value)
    return metric


def _histogram(name: str, doc: str, samples: Iterable[tuple[dict[str, str], Histogram]]) -> Any:
    metric = _metric(name, doc, "histogram")
    for labels, h in samples:
        cumulative = 0
        for bound, count in zip((*h.bounds, float("inf")), h.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            metric.add_sample(f"{name}_bucket", {**labels, "le": le}, cumulative)
        metric.add_sample(f"{name}_count", labels, h.count)
        metric.add_sample(f"{name}_sum", labels, h.sum)
    return metric


def _topic_families(snap: MetricsSnapshot) -> Iterator[Any]:
    for key, (bean, doc) in TOPIC_COUNTERS.items():
        samples: list[tuple[dict[str, str], float]] = [({}, snap.all_topics[key])]
        samples += [({"topic": t}, values[key]) for t, values in sorted(snap.topics.items())]
        yield _counter(f"kafka_server_brokertopicmetrics_{bean}", doc, samples)


def _request_families(snap: MetricsSnapshot) -> Iterator[Any]:
    yield _counter(
        "kafka_network_requestmetrics_requests",
        "Requests by API and version (RequestsPerSec)",
        (
            ({"request": request_name(k), "version": str(v)}, n)
            for (k, v), n in sorted(snap.requests.items())
        ),
    )
    yield _counter(
        "kafka_network_requestmetrics_errors",
        "Error codes answered, by API (ErrorsPerSec)",
        (
            ({"request": request_name(k), "error": error_name(code)}, n)
            for (k, code), n in sorted(snap.errors.items())
        ),
    )
    yield _histogram(
        "kafka_network_requestmetrics_totaltimems",
        "Request time in ms, from read to response written (TotalTimeMs)",
        (({"request": request_name(k)}, h) for k, h in sorted(snap.latency.items())),
    )


def _replica_families(snap: MetricsSnapshot) -> Iterator[Any]:
    parts = snap.partitions
    gauges = {
        "partitioncount": ("Partitions with a replica here", len(parts)),
        "leadercount": ("Partitions led here", sum(p.is_leader for p in parts)),
        "underreplicatedpartitions": (
            "Partitions led here with an ISR smaller than their replicas",
            sum(p.under_replicated for p in parts),
        ),
        "underminisrpartitioncount": (
            "Partitions led here with an ISR below min.insync.replicas",
            sum(p.under_min_isr for p in parts),
        ),
        "atminisrpartitioncount": (
            "Partitions led here with an ISR at min.insync.replicas",
            sum(p.at_min_isr for p in parts),
        ),
    }
    for bean, (doc, value) in gauges.items():
        yield _gauge(f"kafka_server_replicamanager_{bean}", doc, [({}, value)])
    yield _counter(
        "kafka_server_replicamanager_isrshrinks", "ISR shrinks", [({}, snap.isr_shrinks)]
    )
    yield _counter(
        "kafka_server_replicamanager_isrexpands", "ISR expands", [({}, snap.isr_expands)]
    )
    controller = {
        "activecontrollercount": ("1 on the active controller", int(snap.active_controller)),
        "offlinepartitionscount": ("Partitions without a leader", snap.offline_partitions),
        "globalpartitioncount": ("Partitions in the cluster", snap.global_partitions),
        "globaltopiccount": ("Topics in the cluster", snap.global_topics),
    }
    for bean, (doc, value) in controller.items():
        yield _gauge(f"kafka_controller_kafkacontroller_{bean}", doc, [({}, value)])


def _log_families(snap: MetricsSnapshot) -> Iterator[Any]:
    parts = sorted(snap.partitions, key=lambda p: (p.topic, p.partition))
    for bean, doc, attr in (
        ("size", "Bytes of the partition's log", "size_bytes"),
        ("numlogsegments", "Segments of the partition's log", "segments"),
        ("logstartoffset", "The log start offset", "log_start_offset"),
        ("logendoffset", "The log end offset", "log_end_offset"),
    ):
        yield _gauge(
            f"kafka_log_log_{bean}",
            doc,
            (({"topic": p.topic, "partition": str(p.partition)}, getattr(p, attr)) for p in parts),
        )
    yield _histogram(
        "kafka_log_logflushstats_logflushrateandtimems",
        "Log flush (fsync) time in ms (LogFlushRateAndTimeMs)",
        [({}, snap.log_flush)],
    )


def _connection_families(snap: MetricsSnapshot) -> Iterator[Any]:
    prefix = "kafka_server_socket_server_metrics_connection"
    yield _gauge(
        f"{prefix}_count",
        "Open client connections",
        (({"listener": k}, v) for k, v in sorted(snap.connections.items())),
    )
    yield _counter(
        f"{prefix}_creation",
        "Connections accepted",
        (({"listener": k}, v) for k, v in sorted(snap.connections_created.items())),
    )
    yield _counter(
        f"{prefix}_close",
        "Connections closed",
        (({"listener": k}, v) for k, v in sorted(snap.connections_closed.items())),
    )


def _lag_families(snap: MetricsSnapshot) -> Iterator[Any]:
    rows = sorted(snap.lag, key=lambda g: (g.group, g.topic, g.partition))

    def labels(g: Any) -> dict[str, str]:
        return {"consumergroup": g.group, "topic": g.topic, "partition": str(g.partition)}

    yield _gauge(
        "kafka_consumergroup_lag",
        "High watermark minus committed offset, per group and partition",
        ((labels(g), g.lag) for g in rows),
    )
    yield _gauge(
        "kafka_consumergroup_current_offset",
        "Committed offset, per group and partition",
        ((labels(g), g.committed_offset) for g in rows),
    )
    sums: dict[tuple[str, str], int] = {}
    for g in rows:
        sums[(g.group, g.topic)] = sums.get((g.group, g.topic), 0) + g.lag
    yield _gauge(
        "kafka_consumergroup_lag_sum",
        "Lag summed over a topic's partitions, per group",
        (({"consumergroup": k[0], "topic": k[1]}, v) for k, v in sorted(sums.items())),
    )
