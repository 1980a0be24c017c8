"""Helpers shared by the CLI tools: properties, errors, client configs."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from strom.common import properties


class CliError(Exception):
    """An expected failure: printed as one ``Error: ...`` line, exit code 1."""


def parse_properties(items: Iterable[str] | None, flag: str) -> dict[str, str]:
    """``["k=v", ...]`` -> dict; the value may itself contain ``=``."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{flag} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def load_properties_file(path: str | None) -> dict[str, str]:
    """A Java .properties file (java.util.Properties#load), {} for None."""
    if path is None:
        return {}
    try:
        return properties.load(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except properties.PropertiesError as exc:
        raise CliError(f"{path}: {exc}") from None


def add_bootstrap(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-server",
        required=True,
        metavar="HOST:PORT",
        help="the server(s) to connect to, comma-separated",
    )


def parse_bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"
