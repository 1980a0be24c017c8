"""Turning a Fetch response's record data into records (sans-IO).

A fetch may return a batch that starts before the requested offset (the
broker sends whole batches) and may end with a truncated batch; control
batches (transaction markers) are skipped but move the position on.
"""

from __future__ import annotations

from dataclasses import dataclass

from strom.protocol.records import Record, decode_batch, iter_batches
from strom.protocol.wire import Records


@dataclass(frozen=True, slots=True)
class FetchedRecords:
    records: list[Record]
    next_offset: int  # the position to fetch from next
    high_watermark: int = -1
    log_start_offset: int = -1
    last_stable_offset: int = -1
    error_code: int = 0  # non-zero: nothing was read; next_offset is the requested one


def parse_records(
    data: Records | None, fetch_offset: int, *, max_records: int | None = None
) -> tuple[list[Record], int]:
    """Records at or after ``fetch_offset`` and the next offset to fetch."""
    if data is None:
        return [], fetch_offset
    raw = data if isinstance(data, (bytes, bytearray, memoryview)) else bytes(data)
    out: list[Record] = []
    position = fetch_offset
    for header, batch in iter_batches(raw):
        if header.last_offset < position:
            continue
        if header.is_control:
            position = header.next_offset
            continue
        _, records = decode_batch(batch)
        for record in records:
            if record.offset < position:
                continue
            if max_records is not None and len(out) >= max_records:
                return out, position
            out.append(record)
            position = record.offset + 1
        position = max(position, header.next_offset)
    return out, position
