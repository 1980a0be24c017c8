"""The broker imports each API's handler on the API's first request, from the module
that HANDLER_MODULES names: the table must name the module that registers it."""

from __future__ import annotations

import importlib

import strom.broker.api  # noqa: F401 - registers every handler
from strom.broker.handlers import HANDLER_MODULES, HANDLERS, handler_for
from strom.protocol.api_versions import BROKER_API_VERSIONS, ApiKey


def test_each_handler_is_in_the_module_the_table_names() -> None:
    named = {key: f"strom.broker.{name}" for name, keys in HANDLER_MODULES.items() for key in keys}
    assert set(HANDLERS) == set(named)
    for key, handler in HANDLERS.items():
        module = importlib.import_module(named[key])
        # (a function compiled with mypyc has no __module__: found by its name instead)
        assert getattr(handler, "__module__", None) in (module.__name__, None), key
        assert getattr(module, handler.__name__, None) is handler, key


def test_every_advertised_api_has_a_handler() -> None:
    assert set(BROKER_API_VERSIONS) == set(HANDLERS)


def test_handler_for() -> None:
    assert handler_for(ApiKey.METADATA) is HANDLERS[ApiKey.METADATA]
    assert handler_for(52) is None  # Vote: a KRaft API strom does not have
