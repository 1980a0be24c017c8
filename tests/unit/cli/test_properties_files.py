"""The CLI's --command-config files and server.properties use one Java .properties parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.cli.common import CliError, load_properties_file
from strom.common.config import parse_properties


def test_command_config_files_are_read_as_java_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "client.properties"
    path.write_text(
        "# client settings\n"
        "request.timeout.ms = \\\n"
        "    1000\n"
        "client.id  my\\ tool\\:1\n"
        "sasl.jaas.config=a\\u003db\n"
    )
    assert load_properties_file(str(path)) == {
        "request.timeout.ms": "1000",
        "client.id": "my tool:1",
        "sasl.jaas.config": "a=b",
    }


def test_a_bad_escape_or_a_missing_file_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.properties"
    path.write_text("k=\\u12\n")
    with pytest.raises(CliError, match=r"bad\.properties: Malformed \\uxxxx encoding\."):
        load_properties_file(str(path))
    with pytest.raises(CliError, match="cannot read"):
        load_properties_file(str(tmp_path / "missing.properties"))


def test_server_properties_parser_is_the_same() -> None:
    assert parse_properties("log.dirs=/a\\tb\nlisteners : PLAINTEXT://:9092") == {
        "log.dirs": "/a\tb",
        "listeners": "PLAINTEXT://:9092",
    }
