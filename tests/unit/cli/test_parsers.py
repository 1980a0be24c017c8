"""Every option of every ``strom`` tool has help text; ``--version`` works everywhere."""

from __future__ import annotations

import argparse

import pytest

from strom.cli.main import _TOOLS, build_parser, main, version


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every parser: strom's, each tool's, and nested ones (``transactions list``)."""
    found = {"strom": build_parser()}
    pending = [("", found["strom"])]
    while pending:
        prefix, parser = pending.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[prefix + name] = sub
                    pending.append((f"{prefix}{name} ", sub))
    return found


def _without_help(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def test_every_option_of_every_tool_has_help() -> None:
    parsers = _parsers()
    assert set(_TOOLS) <= set(parsers)
    missing = {
        name: m for name, p in parsers.items() if name != "broker" and (m := _without_help(p))
    }
    assert missing == {}


@pytest.mark.parametrize("argv", [["--version"], ["topics", "--version"]])
def test_version(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"strom {version()}\n"


def test_tools_that_talk_to_a_broker_take_a_command_config() -> None:
    for name, parser in _parsers().items():
        # dev-cluster and verify start processes (strom.testing); verify drives the client
        # libraries of the test extra, which take no command config file; size asks nothing
        if name in ("strom", "broker", "dev-cluster", "verify", "dump-log", "size") or " " in name:
            continue
        options = {o for a in parser._actions for o in a.option_strings}
        assert "--command-config" in options, name
