"""strom.common.values: the base of the value classes that replaced dataclasses."""

from __future__ import annotations

from typing import ClassVar

import pytest

from strom.common.values import Value


class Point(Value):
    __slots__ = ("x", "y")
    FIELDS: ClassVar[tuple[str, ...]] = ("x", "y")

    def __init__(self, x: int, y: int = 0) -> None:
        self.x = x
        self.y = y


class Other(Value):
    __slots__ = ("x", "y")
    FIELDS: ClassVar[tuple[str, ...]] = ("x", "y")

    def __init__(self, x: int, y: int = 0) -> None:
        self.x = x
        self.y = y


def test_equality_and_hash_follow_the_fields() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert {Point(1, 2), Point(1, 2), Point(2, 1)} == {Point(1, 2), Point(2, 1)}


def test_another_class_with_the_same_fields_is_not_equal() -> None:
    assert Point(1, 2) != Other(1, 2)
    assert Point(1, 2) != (1, 2)


def test_repr_names_the_fields() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert repr(Point(1, None)) == "Point(x=1, y=None)"  # type: ignore[arg-type]


def test_replace_copies_with_changes() -> None:
    p = Point(1, 2)
    q = p.replace(y=5)
    assert q == Point(1, 5) and p == Point(1, 2) and q is not p
    with pytest.raises(TypeError, match="no field 'z'"):
        p.replace(z=1)


def test_no_instance_dict() -> None:
    with pytest.raises(AttributeError):
        Point(1).z = 3  # type: ignore[attr-defined]
