"""The base of strom's small value classes, instead of ``@dataclass``.

A dataclass is built at import time: its ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and, frozen, ``__setattr__`` are compiled from source by ``exec``, about
0.5 ms per class on this project's machine, and a frozen one's ``__init__`` sets each
field through ``object.__setattr__``. The thirty dataclasses a broker imported before it
served were a third of its start (issue 15), and the ones made per partition of every
fetch a share of its cost (issue 17). A value class here is a plain class: ``__slots__``
and ``FIELDS`` name the fields (a class compiled by mypyc has no ``__slots__`` to read),
the ``__init__`` is written out, and equality, hash, repr and :meth:`Value.replace` come
from this base, as they did from the dataclass. Immutability is by convention (and by
mypy, with ``Final`` where it is declared), not enforced at run time.

This departs from the architecture's "frozen slotted dataclasses for values" on the
broker's start and request paths only; code loaded later or elsewhere (the coordinators'
state, the client, the tools, the cleaner) keeps dataclasses.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from mypy_extensions import mypyc_attr

V = TypeVar("V", bound="Value")


# Compiled in the mypyc build (a compiled value class must derive from a compiled base),
# and derived from by the value classes of interpreted modules.
@mypyc_attr(allow_interpreted_subclasses=True)
class Value:
    """A value: equal to another of its class with equal ``FIELDS``; hashable when its
    fields are."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def values(self) -> tuple[Any, ...]:
        """The fields' values, in ``FIELDS`` order."""
        return tuple([getattr(self, name) for name in self.FIELDS])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self.values() == other.values()

    def __hash__(self) -> int:
        return hash(self.values())

    def __repr__(self) -> str:
        args = ", ".join([f"{name}={getattr(self, name)!r}" for name in self.FIELDS])
        return f"{type(self).__qualname__}({args})"

    def replace(self: V, **changes: Any) -> V:
        """A copy with ``changes`` (as ``dataclasses.replace``)."""
        unknown = set(changes).difference(self.FIELDS)
        if unknown:
            raise TypeError(f"{type(self).__qualname__} has no field {sorted(unknown)[0]!r}")
        return type(self)(**{name: changes.get(name, getattr(self, name)) for name in self.FIELDS})
