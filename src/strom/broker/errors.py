"""Error responses for any request: Kafka's ``getErrorResponse``, done generically.

The response mirrors the request's topics/partitions/resources with the error
code set on every entity that has one, so that a client matching responses
to what it asked finds every entity answered.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from functools import cache
from typing import Any

_NAME_FIELDS = ("name", "topic", "resource_name", "group_id", "key", "transactional_id")
_INDEX_FIELDS = ("partition_index", "index", "partition")


@cache
def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules[cls.__module__]
    return typing.get_type_hints(cls, globalns=vars(module))


def _struct_list_type(cls: type, attr: str) -> type | None:
    hint = _hints(cls).get(attr)
    for arg in typing.get_args(hint) or ():
        if typing.get_origin(arg) is list:
            hint = arg
    if typing.get_origin(hint) is list:
        (elem,) = typing.get_args(hint)
        if dataclasses.is_dataclass(elem):
            return typing.cast(type, elem)
    return None


def _struct_lists(obj_or_cls: Any) -> list[tuple[str, type]]:
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    out = []
    for f in dataclasses.fields(cls):
        elem = _struct_list_type(cls, f.name)
        if elem is not None:
            out.append((f.name, elem))
    return out


def _first_of(req: Any, attrs: tuple[str, ...], kind: type) -> Any:
    for src in attrs:
        value = getattr(req, src, None)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    return None


def _copy_identity(req: Any, resp: Any, names: set[str]) -> None:
    for attr in (*_NAME_FIELDS, "resource_type"):
        if attr in names and hasattr(req, attr):
            setattr(resp, attr, getattr(req, attr))
    index = _first_of(req, _INDEX_FIELDS, int)
    name = _first_of(req, ("name", "topic"), str)
    for attr in names:
        if attr in _INDEX_FIELDS and index is not None:
            setattr(resp, attr, index)
        elif attr in ("name", "topic") and not getattr(resp, attr) and name is not None:
            setattr(resp, attr, name)


def _fill(req: Any, resp: Any, code: int) -> None:
    names = {f.name for f in dataclasses.fields(resp)}
    if "error_code" in names:
        resp.error_code = code
    _copy_identity(req, resp, names)
    if "records" in names:
        resp.records = b""
    req_lists = _struct_lists(req)
    resp_lists = _struct_lists(resp)
    if not req_lists or not resp_lists:
        return
    (req_attr, _), (resp_attr, resp_elem) = req_lists[0], resp_lists[0]
    items = getattr(req, req_attr) or []
    out = []
    for item in items:
        child = resp_elem()
        _fill(item, child, code)
        out.append(child)
    setattr(resp, resp_attr, out)


def error_response(response_cls: type, request: Any, code: int) -> Any:
    resp = response_cls()
    _fill(request, resp, code)
    return resp
