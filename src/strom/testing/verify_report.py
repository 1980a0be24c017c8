"""The HTML report of a checked run: the checker's figures and problems, the
unavailability windows, the acknowledgements per leader epoch, and a timeline
(inline SVG, no dependency): acknowledged writes per second, the faults as shaded
spans, and each partition's windows without an acknowledgement as red bars.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

from strom.testing.checker import Report
from strom.testing.history import History

WIDTH, LEFT, RIGHT = 960, 70, 20
PLOT_H, LANE_H, TOP = 170, 16, 40
BUCKET_S = 0.5
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222 }
table { border-collapse: collapse; margin: 1em 0 } td, th { border: 1px solid #ccc;
padding: 2px 8px; text-align: right } th { background: #eee } td.l, th.l { text-align: left }
.bad { color: #b00; font-weight: bold } .ok { color: #070; font-weight: bold }
"""


def _x(t: float, end_s: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (t / end_s if end_s > 0 else 0)


def throughput(history: History, bucket_s: float = BUCKET_S) -> list[tuple[float, float]]:
    """(bucket start, acknowledged writes per second) over the run."""
    end = history.produce_ended_s or max((w.sent_s for w in history.writes), default=0.0)
    buckets = [0] * (int(end / bucket_s) + 1)
    for w in history.writes:
        if w.acked_s is not None and w.acked_s <= end:
            buckets[int(w.acked_s / bucket_s)] += 1
    return [(i * bucket_s, n / bucket_s) for i, n in enumerate(buckets)]


def timeline_svg(history: History, report: Report) -> str:
    points = throughput(history)
    events_end = max((e.until_s or e.at_s for e in history.events), default=0.0)
    end = max(history.produce_ended_s or 0.0, events_end, 1.0)
    partitions = sorted({w.partition for w in history.writes})
    lanes_top = TOP + PLOT_H + 30
    height = lanes_top + LANE_H * len(partitions) + 40
    peak = max((rate for _, rate in points), default=1.0) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">']
    out += _faults(history, end, height)
    path = " ".join(
        f"{_x(t, end):.1f},{TOP + PLOT_H - PLOT_H * rate / peak:.1f}" for t, rate in points
    )
    out.append(f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{path}"/>')
    out.append(_text(LEFT - 6, TOP + 4, f"{peak:.0f}/s", anchor="end"))
    out.append(_text(LEFT - 6, TOP + PLOT_H, "0", anchor="end"))
    out.append(_text(LEFT, TOP - 8, "acknowledged writes per second", anchor="start"))
    out.append(_rect(LEFT, TOP, WIDTH - LEFT - RIGHT, PLOT_H, "none", 'stroke="#999"'))
    for i, p in enumerate(partitions):
        y = lanes_top + i * LANE_H
        out.append(_text(LEFT - 6, y + LANE_H - 4, f"p{p}", anchor="end"))
        out.append(_rect(LEFT, y + 2, WIDTH - LEFT - RIGHT, LANE_H - 4, "#e8f5e9"))
        for w in report.windows:
            if w.partition == p:
                width = max(_x(w.end_s, end) - _x(w.start_s, end), 1.0)
                out.append(_rect(_x(w.start_s, end), y + 2, width, LANE_H - 4, "#c62828"))
    out += _ticks(end, height - 20)
    out.append("</svg>")
    return "\n".join(out)


def _faults(history: History, end: float, height: int) -> list[str]:
    out = []
    for i, e in enumerate(history.events):
        x0 = _x(e.at_s, end)
        x1 = _x(e.until_s, end) if e.until_s is not None else x0 + 1
        out.append(
            _rect(x0, TOP, max(x1 - x0, 1.0), height - TOP - 30, "#ffb74d", 'opacity="0.35"')
        )
        out.append(_text(x0 + 2, 12 + 12 * (i % 2), e.what, anchor="start", size=10))
    return out


def _ticks(end: float, y: float) -> list[str]:
    step = max(1, math.ceil(end / 12 / 5) * 5) if end > 12 else 1
    out = []
    t = 0.0
    while t <= end:
        out.append(_text(_x(t, end), y + 12, f"{t:.0f}s", anchor="middle"))
        x = _x(t, end)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 3}" stroke="#666"/>')
        t += step
    return out


def _rect(x: float, y: float, w: float, h: float, fill: str, extra: str = "") -> str:
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" {extra}/>'


def _text(x: float, y: float, text: str, *, anchor: str, size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
        f"{html.escape(text)}</text>"
    )


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(history: History, report: Report, title: str, settings: dict[str, str]) -> str:
    lo, med, hi = report.unavailability()
    verdict = '<p class="ok">OK</p>' if report.ok else '<p class="bad">FAILED</p>'
    figures = [
        *report.counts().items(),
        ("unavailable s (min/median/max)", f"{lo:.2f} / {med:.2f} / {hi:.2f}"),
    ]
    windows = [
        (f"p{w.partition}", f"{w.start_s:.2f}", f"{w.end_s:.2f}", f"{w.length_s:.2f}", w.failures)
        for w in report.windows
    ]
    epochs = [
        (
            f"p{e.partition}",
            e.leader_epoch,
            e.count,
            f"{e.first_offset}-{e.last_offset}",
            f"{e.first_ack_s:.2f}-{e.last_ack_s:.2f}",
        )
        for e in report.epochs
    ]
    events = [
        (f"{e.at_s:.2f}", f"{e.until_s:.2f}" if e.until_s else "", e.what) for e in history.events
    ]
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in report.problems(50))
    return "\n".join(
        [
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
            verdict,
            _table(["setting", "value"], settings.items()),
            timeline_svg(history, report),
            "<h2>Figures</h2>",
            _table(["", "count"], figures),
            "<h2>Faults</h2>",
            _table(["from s", "to s", "fault"], events),
            "<h2>Windows without an acknowledged write</h2>",
            _table(["partition", "from s", "to s", "length s", "failed writes"], windows),
            "<h2>Acknowledged writes per leader epoch</h2>",
            _table(["partition", "leader epoch", "acked", "offsets", "acked from-to s"], epochs),
            f"<h2>Problems</h2><ul>{problems or '<li>none</li>'}</ul>",
            "</body></html>",
        ]
    )
