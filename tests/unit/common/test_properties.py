"""java.util.Properties#load, from the examples of its specification."""

from __future__ import annotations

from pathlib import Path

import pytest

from strom.common.properties import PropertiesError, load, loads


@pytest.mark.parametrize(
    "line", ["Truth = Beauty", "  Truth:Beauty", "Truth                    :Beauty"]
)
def test_the_three_truth_lines(line: str) -> None:
    assert loads(line) == {"Truth": "Beauty"}


def test_continuation_lines_drop_leading_whitespace() -> None:
    text = (
        "fruits                           apple, banana, pear, \\\n"
        "                                 cantaloupe, watermelon, \\\n"
        "                                 kiwi, mango\n"
    )
    assert loads(text) == {"fruits": "apple, banana, pear, cantaloupe, watermelon, kiwi, mango"}


def test_a_key_alone_has_an_empty_value() -> None:
    assert loads("cheeses\n") == {"cheeses": ""}


def test_escaped_separators_belong_to_the_key() -> None:
    assert loads("\\:\\=") == {":=": ""}
    assert loads("a\\ b\\=c\\:d = e") == {"a b=c:d": "e"}


def test_whitespace_separates_key_and_value_and_one_separator_is_eaten() -> None:
    assert loads("key value") == {"key": "value"}
    assert loads("key\tvalue") == {"key": "value"}
    assert loads("key\fvalue") == {"key": "value"}
    assert loads("key = = value") == {"key": "= value"}
    assert loads("key :: value") == {"key": ": value"}
    assert loads("key=value=more") == {"key": "value=more"}


def test_trailing_whitespace_of_a_value_is_kept() -> None:
    assert loads("k = v  ") == {"k": "v  "}


def test_character_escapes() -> None:
    assert loads("k=a\\tb\\nc\\rd\\fe") == {"k": "a\tb\nc\rd\fe"}
    assert loads("k=\\u0041\\u00e9\\u20AC") == {"k": "Aé€"}
    assert loads("k=\\q\\#\\!\\\\") == {"k": "q#!\\"}
    assert loads("k=\\uD83D\\uDE00") == {"k": "\U0001f600"}


@pytest.mark.parametrize("text", ["k=\\u12", "k=\\u12G4", "k\\uXYZW=v"])
def test_a_malformed_unicode_escape_is_an_error(text: str) -> None:
    with pytest.raises(PropertiesError, match=r"Malformed \\uxxxx encoding\."):
        loads(text)


def test_comments_and_blank_lines() -> None:
    text = "# a comment\n! another\n   # indented comment\n\n  \t \na=1\nb=#not a comment\n"
    assert loads(text) == {"a": "1", "b": "#not a comment"}


def test_a_comment_line_never_continues() -> None:
    assert loads("# comment \\\nkey=value") == {"key": "value"}


def test_a_continued_line_may_start_with_a_comment_character() -> None:
    assert loads("key=a\\\n  #b") == {"key": "a#b"}


def test_an_even_number_of_backslashes_does_not_continue() -> None:
    assert loads("a=x\\\\\nb=y") == {"a": "x\\", "b": "y"}
    assert loads("a=x\\\\\\\nb=y") == {"a": "x\\b=y"}


def test_continuation_into_an_empty_line_ends_the_logical_line() -> None:
    assert loads("a=x\\\n\nb=y") == {"a": "x", "b": "y"}


def test_line_terminators_cr_lf_and_crlf() -> None:
    assert loads("a=1\rb=2\r\nc=3\nd=\\\r\n  4") == {"a": "1", "b": "2", "c": "3", "d": "4"}


def test_backslash_at_the_end_of_the_file_is_dropped() -> None:
    assert loads("a=1\\") == {"a": "1"}


def test_the_last_definition_wins() -> None:
    assert loads("a=1\na=2") == {"a": "2"}


def test_escaped_whitespace_in_a_value_and_a_leading_escaped_space() -> None:
    assert loads("k=\\ lead") == {"k": " lead"}
    assert loads("path=C:\\\\dir\\\\file") == {"path": "C:\\dir\\file"}


def test_load_reads_utf8_and_falls_back_to_latin1(tmp_path: Path) -> None:
    utf8 = tmp_path / "a.properties"
    utf8.write_bytes("name=é\n".encode())
    assert load(utf8) == {"name": "é"}
    latin = tmp_path / "b.properties"
    latin.write_bytes("name=é\n".encode("iso-8859-1"))
    assert load(latin) == {"name": "é"}
