"""Java ``.properties`` files, read as ``java.util.Properties.load`` reads them.

The format (java.util.Properties#load(Reader)):

- A *natural line* ends at ``\\n``, ``\\r`` or ``\\r\\n``. A *logical line* is one
  natural line, or several when a natural line ends in an odd number of
  backslashes: that backslash and the line terminator are dropped, and so is
  the leading whitespace (space, ``\\t``, ``\\f``) of the next natural line.
- Leading whitespace is skipped. A line that is then empty, or whose first
  character is ``#`` or ``!``, is ignored; a comment line never continues.
- The key runs to the first unescaped ``=``, ``:`` or whitespace. Whitespace
  after the key, then at most one ``=`` or ``:``, then whitespace, are skipped;
  the rest of the line is the value (trailing whitespace kept).
- In keys and values ``\\t \\n \\r \\f`` and ``\\uXXXX`` are escapes; a backslash
  before any other character stands for that character (``\\=``, ``\\:``,
  ``\\ ``, ``\\#``, ``\\\\``). A malformed ``\\uXXXX`` is an error.
- A later key replaces an earlier one.

Files are decoded as UTF-8 (``load(InputStream)`` in Java uses ISO-8859-1;
ASCII files, the usual case, read the same), falling back to ISO-8859-1 for
bytes that are not UTF-8.
"""

from __future__ import annotations

import re
from pathlib import Path

_WHITESPACE = " \t\f"
_NATURAL_LINES = re.compile(r"\r\n|\r|\n")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesError(ValueError):
    """A malformed ``\\uXXXX`` escape (Java's IllegalArgumentException)."""


def _ends_in_escape(line: str) -> bool:
    """True when ``line`` ends in an odd number of backslashes."""
    count = len(line) - len(line.rstrip("\\"))
    return count % 2 == 1


def logical_lines(text: str) -> list[str]:
    """The logical lines of ``text``: comments and blank lines dropped, continued
    lines joined, escapes still in place."""
    out: list[str] = []
    pending: str | None = None  # a logical line waiting for its continuation
    for natural in _NATURAL_LINES.split(text):
        line = natural.lstrip(_WHITESPACE)
        if pending is None:
            if not line or line[0] in "#!":
                continue
        else:
            line = pending + line
        if _ends_in_escape(line):
            pending = line[:-1]
            continue
        pending = None
        out.append(line)
    if pending:  # a backslash at the end of the file: dropped, as Java does
        out.append(pending)
    return out


def split_key_value(line: str) -> tuple[str, str]:
    """One logical line -> (key, value), still escaped (Properties.load0)."""
    key_end = len(line)
    value_start = len(line)
    has_separator = False
    backslash = False
    for i, c in enumerate(line):
        if not backslash and c in "=:":
            key_end, value_start, has_separator = i, i + 1, True
            break
        if not backslash and c in _WHITESPACE:
            key_end, value_start = i, i + 1
            break
        backslash = c == "\\" and not backslash
    while value_start < len(line):
        c = line[value_start]
        if c not in _WHITESPACE:
            if has_separator or c not in "=:":
                break
            has_separator = True
        value_start += 1
    return line[:key_end], line[value_start:]


def unescape(text: str) -> str:
    """Resolve the escapes of a key or value (Properties.loadConvert)."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c != "\\" or i >= len(text):
            out.append(c)
            continue
        c = text[i]
        i += 1
        if c == "u":
            digits = text[i : i + 4]
            if len(digits) < 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise PropertiesError("Malformed \\uxxxx encoding.")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append(_ESCAPES.get(c, c))
    joined = "".join(out)
    # \uD83D\uDE00 (a UTF-16 surrogate pair, as Java writes non-BMP characters) -> one character
    return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def loads(text: str) -> dict[str, str]:
    """Parse the text of a .properties file; keys in file order, the last one wins."""
    out: dict[str, str] = {}
    for line in logical_lines(text):
        key, value = split_key_value(line)
        out[unescape(key)] = unescape(value)
    return out


def load(path: str | Path) -> dict[str, str]:
    """Read and parse a .properties file (UTF-8, else ISO-8859-1); OSError propagates."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("iso-8859-1")
    return loads(text)


parse_properties = loads  # the name strom.common.config has always exported
