"""The console's HTML: plain server-rendered pages, every value escaped.

Pages are small and complete without JavaScript, except the consumer group page's lag
plot, drawn by static/console.js from /api/groups/GROUP/lag while the page is open.
ACLs show and take Kafka's names (Topic, Read, Allow), as ``strom acls`` prints them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import parse_qsl, quote, urlencode

from strom.cli.console.data import GroupRow, Message, TopicDetail, TopicRow, show_bytes
from strom.cli.sizing import Sizing, Workload
from strom.client.admin_types import ClusterDescription
from strom.client.group_types import ConsumerGroupLag
from strom.common.acl import (
    OPERATION_NAMES,
    PERMISSION_NAMES,
    RESOURCE_TYPE_NAMES,
    AclBinding,
    PatternType,
    ResourceType,
)

NAV = (
    ("/", "Cluster"),
    ("/topics", "Topics"),
    ("/groups", "Consumer groups"),
    ("/acls", "ACLs"),
    ("/size", "Sizing"),
)
# What the ACL form offers: the resource types a client's requests are authorized on.
ACL_RESOURCE_TYPES = (
    ResourceType.TOPIC,
    ResourceType.GROUP,
    ResourceType.CLUSTER,
    ResourceType.TRANSACTIONAL_ID,
)


def e(value: object) -> str:
    return escape(str(value), quote=True)


def url(path: str, **params: object) -> str:
    """``path`` (which may carry a query already) with ``params`` set (empty ones left out)."""
    base, _, query = path.partition("?")
    merged: dict[str, object] = dict(parse_qsl(query))
    merged.update(params)
    encoded = urlencode({k: v for k, v in merged.items() if v not in (None, "")})
    return base + ("?" + encoded if encoded else "")


def topic_url(name: str, rest: str = "") -> str:
    return f"/topics/{quote(name, safe='')}{rest}"


def group_url(group: str, rest: str = "") -> str:
    return f"/groups/{quote(group, safe='')}{rest}"


def page(title: str, body: str, *, active: str, notice: str = "", error: str = "") -> str:
    nav = "".join(
        f'<a href="{href}"{" class=active" if href == active else ""}>{e(label)}</a>'
        for href, label in NAV
    )
    flash = ""
    if notice:
        flash += f'<p class="notice" role="status">{e(notice)}</p>'
    if error:
        flash += f'<p class="error" role="alert">{e(error)}</p>'
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)} - strom console</title>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        '<link rel=icon href="data:,"><link rel=stylesheet href="/static/console.css">'
        '<script src="/static/console.js" defer></script></head>'
        f"<body><header><strong>strom</strong><nav>{nav}</nav></header><main>"
        f"<h1>{e(title)}</h1>{flash}{body}</main></body></html>"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, id: str = "") -> str:
    """``rows`` hold HTML already escaped (cells are built with :func:`e`)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    ident = f' id="{e(id)}"' if id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{n} B"


def when(ms: int) -> str:
    if ms < 0:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(
        timespec="milliseconds"
    )


def ids(nodes: Iterable[int]) -> str:
    return e(",".join(str(n) for n in nodes))


# -- pages ---------------------------------------------------------------------------------


def cluster_page(c: ClusterDescription, versions: dict[int, dict[int, tuple[int, int]]]) -> str:
    from strom.cli.broker_api_versions import api_name

    rows = [
        [e(b.node_id), e(f"{b.host}:{b.port}"), e(b.rack or ""),
         "controller" if b.node_id == c.controller_id else "",
         e(len(versions.get(b.node_id, {})))]
        for b in sorted(c.brokers, key=lambda b: b.node_id)
    ]  # fmt: skip
    body = (
        f'<p>Cluster id <code id="cluster-id">{e(c.cluster_id or "")}</code>, controller '
        f'<strong id="controller">{e(c.controller_id)}</strong>, '
        f"{len(c.brokers)} broker(s).</p>"
        + table(["Broker", "Address", "Rack", "Role", "APIs"], rows, id="brokers")
    )
    for node, apis in sorted(versions.items()):
        lines = [
            [e(f"{api_name(k)} ({k})"), e(f"{lo} to {hi}")] for k, (lo, hi) in sorted(apis.items())
        ]
        body += (
            f"<details><summary>API versions of broker {e(node)}</summary>"
            + table(["API", "Versions"], lines)
            + "</details>"
        )
    return body


def topics_page(rows: list[TopicRow], show_internal: bool) -> str:
    shown = [r for r in rows if show_internal or not r.internal]
    body = (
        '<form method=post action="/topics" class=inline id="create-topic">'
        "<input name=name placeholder=name required aria-label=name>"
        "<input name=partitions type=number min=1 value=1 aria-label=partitions>"
        "<input name=replication_factor type=number min=1 value=1 aria-label=replication>"
        '<input name=configs placeholder="key=value, ..." aria-label=configs>'
        "<button>Create topic</button></form>"
        f"<p>{len(shown)} topic(s). "
        f'<a href="{url("/topics", internal="" if show_internal else 1)}">'
        f"{'Hide' if show_internal else 'Show'} internal topics</a></p>"
    )
    cells = [
        [f'<a href="{topic_url(r.name)}">{e(r.name)}</a>', e(r.partitions),
         e(r.replication_factor), e(r.under_replicated) if r.under_replicated else "",
         e(human_bytes(r.size_bytes)), "internal" if r.internal else ""]
        for r in shown
    ]  # fmt: skip
    return body + table(
        ["Topic", "Partitions", "Replication", "Under-replicated", "Size", ""], cells, id="topics"
    )


def topic_page(d: TopicDetail) -> str:
    name = d.description.name
    rows = [
        [e(p.partition), e(p.leader), ids(p.replicas), ids(p.isr), e(p.log_start_offset),
         e(p.log_end_offset), e(human_bytes(p.size_bytes)),
         f'<a href="{url(topic_url(name, "/messages"), partition=p.partition)}">browse</a>']
        for p in d.partitions
    ]  # fmt: skip
    configs = [
        [e(c.name), e("(sensitive)" if c.is_sensitive else c.value or ""),
         e(c.source.name.lower() if hasattr(c.source, "name") else c.source),
         "" if c.is_default else "<strong>overridden</strong>"]
        for c in d.configs
    ]  # fmt: skip
    total = sum(p.log_end_offset - p.log_start_offset for p in d.partitions)
    return (
        f"<p>Topic id <code>{e(d.description.topic_id_str)}</code>, "
        f"{len(d.partitions)} partition(s), {total:,} record(s). "
        f'<a href="{topic_url(name, "/messages")}">Browse messages</a></p>'
        + table(
            ["Partition", "Leader", "Replicas", "ISR", "Start", "End", "Size", ""],
            rows,
            id="partitions",
        )
        + "<h2>Produce a test message</h2>"
        + f'<form method=post action="{topic_url(name, "/produce")}" id=produce>'
        "<input name=key placeholder=key aria-label=key>"
        '<textarea name=value placeholder="value" aria-label=value rows=3></textarea>'
        '<input name=headers placeholder="header=value, ..." aria-label=headers>'
        '<input name=partition type=number min=0 placeholder="partition (any)" '
        "aria-label=partition><button>Produce</button></form>"
        + "<h2>Configs</h2>"
        + f'<form method=post action="{topic_url(name, "/configs")}" class=inline id=alter-config>'
        "<input name=name placeholder=config required aria-label=config>"
        '<input name=value placeholder="value (empty: back to the default)" aria-label=value>'
        "<button>Set config</button></form>"
        + table(["Config", "Value", "Source", ""], configs, id="configs")
        + "<h2>Partitions and deletion</h2>"
        + f'<form method=post action="{topic_url(name, "/partitions")}" class=inline '
        "id=add-partitions>"
        f"<input name=count type=number min={len(d.partitions) + 1} "
        f"value={len(d.partitions) + 1} aria-label=count>"
        "<button>Grow to this many partitions</button></form>"
        + f'<form method=post action="{topic_url(name, "/delete")}" class=inline id=delete-topic '
        "onsubmit=\"return confirm('Delete this topic?')\"><button class=danger>Delete topic"
        "</button></form>"
    )


def messages_page(
    name: str,
    partitions: int,
    partition: int,
    offset: int,
    found: list[Message],
    form: dict[str, str],
) -> str:
    options = "".join(
        f"<option value={p}{' selected' if p == partition else ''}>{p}</option>"
        for p in range(partitions)
    )
    body = (
        f'<p><a href="{topic_url(name)}">{e(name)}</a>, partition {e(partition)} from offset '
        f"{e(offset)}: {len(found)} message(s).</p>"
        f"<form method=get class=inline id=browse>"
        f"<label>Partition <select name=partition>{options}</select></label>"
        "<input name=offset type=number min=0 placeholder=offset "
        f'value="{e(form.get("offset", ""))}" aria-label=offset>'
        f'<input name=timestamp placeholder="or time: 2024-05-01T12:00:00Z / ms" '
        f'value="{e(form.get("timestamp", ""))}" aria-label=timestamp>'
        f'<input name=limit type=number min=1 max=500 value="{e(form.get("limit", "50"))}" '
        "aria-label=limit>"
        f'<input name=search placeholder="search key, value, headers" '
        f'value="{e(form.get("search", ""))}" aria-label=search>'
        "<button>Show</button></form>"
    )
    return body + "".join(_message(m) for m in found)


def _message(m: Message) -> str:
    key_kind, key = show_bytes(m.key)
    value_kind, value = show_bytes(m.value)
    headers = "".join(
        f"<li><code>{e(k)}</code>: <code>{e(show_bytes(v)[1])}</code></li>" for k, v in m.headers
    )
    return (
        f'<article class=message data-offset="{m.offset}">'
        f"<h3>offset {m.offset} <small>partition {m.partition}, {e(when(m.timestamp))}</small></h3>"
        f'<p>key <code class="{key_kind}">{e(key)}</code></p>'
        f'<pre class="value {value_kind}">{e(value)}</pre>'
        + (f"<ul class=headers>{headers}</ul>" if headers else "")
        + "</article>"
    )


def groups_page(rows: list[GroupRow]) -> str:
    cells = [
        [f'<a href="{group_url(r.group_id)}">{e(r.group_id)}</a>', e(r.state),
         e(r.protocol_type or "(offsets only)"), e(r.members), e(f"{r.lag:,}")]
        for r in rows
    ]  # fmt: skip
    return f"<p>{len(rows)} group(s).</p>" + table(
        ["Group", "State", "Protocol", "Members", "Lag"], cells, id="groups"
    )


def group_page(g: ConsumerGroupLag) -> str:
    d = g.description
    members = [
        [e(m.member_id), e(m.client_id), e(m.client_host),
         e(", ".join(f"{tp.topic}-{tp.partition}" for tp in sorted(m.assignment)))]
        for m in d.members
    ]  # fmt: skip
    lag_rows = [
        [e(r.topic_partition.topic), e(r.topic_partition.partition),
         e("-" if r.committed_offset is None else r.committed_offset),
         e("-" if r.log_end_offset is None else r.log_end_offset),
         e("-" if r.lag is None else r.lag), e(r.member_id or "-")]
        for r in sorted(g.partitions, key=lambda r: r.topic_partition)
    ]  # fmt: skip
    total = sum(r.lag or 0 for r in g.partitions)
    return (
        f"<p>State <strong id=state>{e(d.state)}</strong>, protocol "
        f"{e(d.protocol_type or '(offsets only)')} {e(d.partition_assignor)}, coordinator "
        f"{e(d.coordinator.node_id)}, total lag <strong id=total-lag>{total:,}</strong>.</p>"
        "<h2>Lag over time</h2>"
        "<figure><canvas id=lag-plot width=900 height=260 "
        f'data-api="{group_url(d.group_id, "/lag")}"></canvas>'
        "<figcaption id=lag-caption>sampling every 2 s while this page is open"
        "</figcaption></figure>"
        "<h2>Members</h2>"
        + table(["Member", "Client", "Host", "Assignment"], members, id="members")
        + "<h2>Committed offsets and lag</h2>"
        + table(["Topic", "Partition", "Committed", "Log end", "Lag", "Member"], lag_rows, id="lag")
    )


def size_page(w: Workload | None, s: Sizing | None, form: dict[str, str]) -> str:
    def field(name: str, label: str, default: str) -> str:
        return (
            f'<label>{e(label)} <input name={name} value="{e(form.get(name, default))}" '
            f"aria-label={name}></label>"
        )

    body = (
        "<form method=get id=sizing class=grid>"
        + field("throughput_mb_s", "Throughput (MB/s)", "50")
        + field("record_bytes", "Record size (bytes)", "1024")
        + field("retention", "Retention", "7d")
        + field("replication_factor", "Replication factor", "3")
        + field("consumer_groups", "Consumer groups", "1")
        + field("peak_factor", "Peak factor", "1")
        + field("compression_ratio", "Compression ratio", "1")
        + "<button>Size it</button></form>"
    )
    if w is not None and s is not None:
        rows = [[e(r.what), f"<strong>{e(r.value)}</strong>", e(r.how)] for r in s.rows]
        body += table(["What", "Value", "How"], rows, id="sizing-result")
    return body


def _select(name: str, options: Iterable[str], selected: str = "", first: str = "") -> str:
    """A select of ``options`` (values as shown); ``first``: an empty choice, shown so."""
    choices = [f'<option value="">{e(first)}</option>'] if first else []
    choices += [
        f'<option value="{e(o)}"{" selected" if o == selected else ""}>{e(o)}</option>'
        for o in options
    ]
    return f"<select name={name} aria-label={name}>{''.join(choices)}</select>"


def _acl_fields(b: AclBinding) -> dict[str, str]:
    """A binding's fields by form name, in Kafka's words (what the forms send back)."""
    p, entry = b.pattern, b.entry
    return {
        "principal": entry.principal,
        "host": entry.host,
        "operation": OPERATION_NAMES[entry.operation],
        "permission_type": PERMISSION_NAMES[entry.permission_type],
        "resource_type": RESOURCE_TYPE_NAMES[p.resource_type],
        "name": p.name,
        "pattern_type": p.pattern_type.name.lower(),
    }


def _acl_row(b: AclBinding) -> list[str]:
    cells = _acl_fields(b)
    hidden = "".join(f'<input type=hidden name={k} value="{e(v)}">' for k, v in cells.items())
    delete = (
        f"<form method=post action=/acls/delete class=inline "
        f"onsubmit=\"return confirm('Delete this ACL?')\">{hidden}"
        "<button class=danger>Delete</button></form>"
    )
    return [e(v) for v in cells.values()] + [delete]


def acls_page(bindings: list[AclBinding] | None, form: dict[str, str], problem: str = "") -> str:
    """The ACLs and the form to add one; ``problem`` instead when the cluster will not
    show them (no authorizer, or not for the console's principal)."""
    if bindings is None:
        return f'<p class="error" id="acls-unavailable" role="alert">{e(problem)}</p>'
    types = [RESOURCE_TYPE_NAMES[t] for t in ACL_RESOURCE_TYPES]
    operations = list(OPERATION_NAMES.values())
    patterns = [PatternType.LITERAL.name.lower(), PatternType.PREFIXED.name.lower()]
    rows = [_acl_row(b) for b in bindings]
    return (
        "<h2>Add an ACL</h2><form method=post action=/acls class=inline id=add-acl>"
        "<input name=principal placeholder=User:alice required aria-label=principal>"
        "<input name=host value=* required aria-label=host>"
        + _select("operation", operations, "Read")
        + _select("permission_type", PERMISSION_NAMES.values(), "Allow")
        + _select("resource_type", types, "Topic")
        + '<input name=name placeholder="name (cluster: kafka-cluster)" aria-label=name>'
        + _select("pattern_type", patterns, "literal")
        + "<button>Add ACL</button></form>"
        "<h2>Bindings</h2><form method=get class=inline id=acl-filter>"
        f'<input name=principal placeholder=principal value="{e(form.get("principal", ""))}" '
        "aria-label=principal>"
        + _select("resource_type", types, form.get("resource_type", ""), "any resource type")
        + f'<input name=resource placeholder="resource name" '
        f'value="{e(form.get("resource", ""))}" aria-label=resource>'
        "<button>Filter</button></form>"
        f"<p>{len(rows)} ACL binding(s).</p>"
        + table(
            ["Principal", "Host", "Operation", "Permission", "Resource type", "Resource",
             "Pattern", ""],
            rows,
            id="acls",
        )
    )  # fmt: skip
