"""The base of the generated message classes (strom.protocol.generated).

The generator writes plain classes with ``__slots__`` and a straight-line
``__init__`` rather than ``@dataclass``: a dataclass is built at import time
(its ``__init__``, ``__repr__`` and ``__eq__`` are compiled from source by
``exec``), which made importing the codec most of a broker's start. The
generated ``__init__`` is what the dataclass's would be: fields in schema
order, positional or keyword, defaults from the schema, and a fresh list (or
struct) for a field whose default is one, unless a value, even None, is
passed. Equality and repr are dataclass-like and shared here.

A message's structs are module-level classes (``FetchRequest_FetchPartition``) that
the message's class names as attributes (``FetchRequest.FetchPartition``, with that
``__qualname__``): the optional mypyc build (setup.py) compiles no nested class.
``FIELDS`` lists the fields, as ``__slots__`` does, which a compiled class lacks.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Final

from mypy_extensions import mypyc_attr


class Default(enum.Enum):
    """The default of a field whose default is a fresh object (a list or a struct): a
    parameter typed ``list[X] | Default = DEFAULT`` (mypyc checks a default against
    the parameter's type, and an enum's one member narrows by identity)."""

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = Default.DEFAULT


# Compiled in the mypyc build (a compiled message class must derive from a compiled
# base), and derived from by the messages it leaves interpreted.
@mypyc_attr(allow_interpreted_subclasses=True)
class Message:
    """A message or one of its structs: ``FIELDS`` (and ``__slots__``) name the fields
    in schema order."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()
    API_KEY: ClassVar[int] = -1

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]  # mutable, as an unfrozen dataclass

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields(self))
        return f"{type(self).__qualname__}({args})"


def fields(message: Message | type[Message]) -> tuple[str, ...]:
    """The field names of a message class or instance, in schema order."""
    return message.FIELDS


def is_message(value: object) -> bool:
    """Whether ``value`` is a generated message class."""
    return isinstance(value, type) and issubclass(value, Message)
