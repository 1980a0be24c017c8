"""The console's aiohttp application: pages, form actions (post, then redirect), the lag API.

One AIOAdmin (and a reader and a producer sharing its client) serve every request; they
are made when the application starts and closed when it stops.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from yarl import URL

from strom.cli.common import CliError
from strom.cli.console import data, views
from strom.cli.sizing import Workload, parse_retention, size
from strom.client.admin_types import (
    AlterConfigOp,
    AlterConfigOpType,
    ConfigResource,
    ConfigResourceType,
    NewTopic,
)
from strom.client.aio.admin import AIOAdmin
from strom.client.aio.producer import AIOProducer
from strom.client.aio.reader import AIOPartitionReader
from strom.common.acl import AclBinding, ResourceType, describe_binding, resource_type_from_name
from strom.common.types import TopicPartition
from strom.protocol.errors import KafkaError

STATIC = Path(__file__).parent / "static"
ADMIN = web.AppKey("admin", AIOAdmin)
READER = web.AppKey("reader", AIOPartitionReader)
PRODUCER = web.AppKey("producer", AIOProducer)
CONFIG = web.AppKey("config", dict[str, Any])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(config: Mapping[str, Any]) -> web.Application:
    """The console for the cluster of client ``config`` (bootstrap.servers, ...)."""
    app = web.Application(middlewares=[_errors])
    app[CONFIG] = dict(config)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    app.add_routes(
        [
            web.get("/", cluster),
            web.get("/topics", topics),
            web.post("/topics", create_topic),
            web.get("/topics/{name}", topic),
            web.get("/topics/{name}/messages", messages),
            web.post("/topics/{name}/produce", produce),
            web.post("/topics/{name}/configs", alter_config),
            web.post("/topics/{name}/partitions", add_partitions),
            web.post("/topics/{name}/delete", delete_topic),
            web.get("/groups", groups),
            web.get("/groups/{group}", group),
            web.get("/groups/{group}/lag", group_lag),
            web.get("/acls", acls),
            web.post("/acls", create_acl),
            web.post("/acls/delete", delete_acl),
            web.get("/size", sizing),
            web.static("/static", STATIC),
        ]
    )
    return app


async def _start(app: web.Application) -> None:
    config: dict[str, Any] = app[CONFIG]
    admin = AIOAdmin(config)
    await admin.start()
    app[ADMIN] = admin
    app[READER] = AIOPartitionReader(admin.client)
    producer = AIOProducer({**config, "linger.ms": 0})
    await producer.start()
    app[PRODUCER] = producer


async def _stop(app: web.Application) -> None:
    await app[PRODUCER].close()
    await app[ADMIN].close()


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A Kafka or input error: back to the page with the message (or a 400 page)."""
    try:
        return await handler(request)
    except (KafkaError, CliError, ValueError) as exc:
        message = str(exc) or type(exc).__name__
        if request.method == "POST":
            back = URL(request.headers.get("Referer") or "/")
            where = views.url(back.path_qs, error=message, notice="")
            raise web.HTTPSeeOther(where) from None
        html = views.page("Error", "", active="", error=message)
        return web.Response(text=html, content_type="text/html", status=400)


def _html(request: web.Request, title: str, body: str, active: str) -> web.Response:
    q = request.query
    html = views.page(
        title, body, active=active, notice=q.get("notice", ""), error=q.get("error", "")
    )
    return web.Response(text=html, content_type="text/html")


def _redirect(path: str, notice: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(views.url(path, notice=notice))


# -- cluster and topics ----------------------------------------------------------------------


async def cluster(request: web.Request) -> web.Response:
    admin = request.app[ADMIN]
    described = await admin.describe_cluster()
    versions = {b.node_id: v for b, v in (await admin.broker_api_versions()).items()}
    return _html(request, "Cluster", views.cluster_page(described, versions), "/")


async def topics(request: web.Request) -> web.Response:
    rows = await data.topics(request.app[ADMIN])
    body = views.topics_page(rows, show_internal=bool(request.query.get("internal")))
    return _html(request, "Topics", body, "/topics")


async def create_topic(request: web.Request) -> web.Response:
    form = await request.post()
    name = str(form.get("name", "")).strip()
    configs = _pairs(str(form.get("configs", "")))
    new = NewTopic(
        name, _int(form.get("partitions"), -1), _int(form.get("replication_factor"), -1), configs
    )
    await request.app[ADMIN].create_topics([new])
    raise _redirect(views.topic_url(name), f"created topic {name}")


async def topic(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    detail = await data.topic_detail(request.app[ADMIN], name)
    return _html(request, f"Topic {name}", views.topic_page(detail), "/topics")


async def alter_config(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await request.post()
    key = str(form.get("name", "")).strip()
    value = str(form.get("value", ""))
    op = (
        AlterConfigOp(key, value, AlterConfigOpType.SET)
        if value
        else AlterConfigOp(key, None, AlterConfigOpType.DELETE)
    )
    resource = ConfigResource(ConfigResourceType.TOPIC, name)
    await request.app[ADMIN].incremental_alter_configs({resource: [op]})
    raise _redirect(views.topic_url(name), f"set {key}" if value else f"reset {key}")


async def add_partitions(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    count = _int((await request.post()).get("count"), 0)
    await request.app[ADMIN].create_partitions({name: count})
    raise _redirect(views.topic_url(name), f"{name} has {count} partitions")


async def delete_topic(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await request.app[ADMIN].delete_topics([name])
    raise _redirect("/topics", f"deleted topic {name}")


async def produce(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    form = await request.post()
    key = str(form.get("key", ""))
    partition = _int(form.get("partition"), -1)
    headers = [(k, v.encode()) for k, v in _pairs(str(form.get("headers", ""))).items()]
    future = await request.app[PRODUCER].send(
        name,
        str(form.get("value", "")).encode(),
        key=key.encode() if key else None,
        partition=partition if partition >= 0 else None,
        headers=headers,
    )
    meta = await future
    where = views.url(
        views.topic_url(name, "/messages"), partition=meta.partition, offset=meta.offset
    )
    raise _redirect(where, f"produced to partition {meta.partition} at offset {meta.offset}")


async def messages(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    admin = request.app[ADMIN]
    q = request.query
    described = (await admin.describe_topics([name]))[name]
    partition = _int(q.get("partition"), 0)
    tp = TopicPartition(name, partition)
    if q.get("timestamp"):
        offset = await data.offset_for_time(admin, tp, _timestamp_ms(q["timestamp"]))
    elif q.get("offset"):
        offset = _int(q.get("offset"), 0)
    else:
        offset = (await admin.list_offsets({tp: -2}))[tp].offset  # the log start
    found = await data.messages(
        request.app[READER], tp, offset, _int(q.get("limit"), 50), q.get("search", "")
    )
    body = views.messages_page(name, len(described.partitions), partition, offset, found, dict(q))
    return _html(request, f"Messages of {name}", body, "/topics")


# -- groups ------------------------------------------------------------------------------------


async def groups(request: web.Request) -> web.Response:
    rows = await data.groups(request.app[ADMIN])
    return _html(request, "Consumer groups", views.groups_page(rows), "/groups")


async def group(request: web.Request) -> web.Response:
    group_id = request.match_info["group"]
    lag = await data.group_lag(request.app[ADMIN], group_id)
    return _html(request, f"Group {group_id}", views.group_page(lag), "/groups")


async def group_lag(request: web.Request) -> web.Response:
    """JSON for the lag plot: the time, the total and each partition's lag."""
    lag = await data.group_lag(request.app[ADMIN], request.match_info["group"])
    partitions = {
        f"{r.topic_partition.topic}-{r.topic_partition.partition}": r.lag
        for r in lag.partitions
        if r.lag is not None
    }
    return web.json_response(
        {
            "time_ms": int(time.time() * 1000),
            "total": sum(partitions.values()),
            "partitions": partitions,
            "state": lag.description.state,
        }
    )


# -- ACLs --------------------------------------------------------------------------------------


async def acls(request: web.Request) -> web.Response:
    q = request.query
    kind = q.get("resource_type", "")
    try:
        bindings = await data.acls(
            request.app[ADMIN],
            q.get("principal", ""),
            q.get("resource", ""),
            resource_type_from_name(kind) if kind else ResourceType.ANY,
        )
    except data.AclsUnavailable as exc:
        return _html(request, "ACLs", views.acls_page(None, {}, str(exc)), "/acls")
    return _html(request, "ACLs", views.acls_page(bindings, dict(q)), "/acls")


async def _posted_acl(request: web.Request) -> AclBinding:
    return data.acl_binding({k: str(v) for k, v in (await request.post()).items()})


async def create_acl(request: web.Request) -> web.Response:
    binding = await _posted_acl(request)
    await data.create_acl(request.app[ADMIN], binding)
    raise _redirect("/acls", f"added {describe_binding(binding)} on {binding.pattern}")


async def delete_acl(request: web.Request) -> web.Response:
    binding = await _posted_acl(request)
    if not await data.delete_acl(request.app[ADMIN], binding):
        raise CliError(f"no ACL {describe_binding(binding)} on {binding.pattern}")
    raise _redirect("/acls", f"deleted {describe_binding(binding)} on {binding.pattern}")


# -- sizing ------------------------------------------------------------------------------------


async def sizing(request: web.Request) -> web.Response:
    q = request.query
    workload = result = None
    error = ""
    if "throughput_mb_s" in q:
        try:
            workload = Workload(
                throughput_mb_s=float(q["throughput_mb_s"]),
                record_bytes=int(q.get("record_bytes", "1024")),
                retention_s=parse_retention(q.get("retention", "7d")),
                replication_factor=int(q.get("replication_factor", "3")),
                consumer_groups=int(q.get("consumer_groups", "1")),
                peak_factor=float(q.get("peak_factor", "1")),
                compression_ratio=float(q.get("compression_ratio", "1")),
            )
            result = size(workload)
        except (CliError, ValueError) as exc:
            workload, error = None, str(exc)
    body = views.size_page(workload, result, dict(q))
    html = views.page("Sizing", body, active="/size", error=error)
    return web.Response(text=html, content_type="text/html")


# -- form values --------------------------------------------------------------------------------


def _int(value: object, default: int) -> int:
    text = str(value).strip() if value is not None else ""
    return int(text) if text else default


def _pairs(text: str) -> dict[str, str]:
    """``a=1, b=2`` -> {"a": "1", "b": "2"}."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"expected key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch, or an ISO 8601 time (UTC unless it says)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)
