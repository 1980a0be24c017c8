"""strom.testing.embedded.make_private_dir: the EmbeddedBroker's temporary log directory,
made as tempfile.mkdtemp makes one."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from strom.testing.embedded import make_private_dir


def test_a_new_private_dir_in_the_parent(tmp_path: Path) -> None:
    first, second = make_private_dir(tmp_path), make_private_dir(tmp_path)
    assert first != second
    for made in (first, second):
        assert made.parent == tmp_path and made.is_dir()
        assert made.name.startswith("strom-embedded-")
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
        assert list(made.iterdir()) == []


def test_in_tmpdir_without_a_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert make_private_dir(None).parent == tmp_path


def test_a_name_taken_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = iter([b"\x00" * 6, b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr("os.urandom", lambda n: next(names))
    assert make_private_dir(tmp_path).name == "strom-embedded-000000000000"
    assert make_private_dir(tmp_path).name == "strom-embedded-010101010101"


def test_falls_back_to_tempfile_where_it_cannot_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "missing"))  # mkdir fails: no such parent
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made = make_private_dir(None)
    assert made.parent == tmp_path and made.name.startswith("strom-embedded-")
