"""A local root is made only by a caller that may write: a reader given a typo gets an error."""

from __future__ import annotations

import pytest

from apiary import Apiary
from apiary.errors import NotFoundError
from apiary.storage import open_storage


def test_open_storage_creates_a_local_root_only_when_asked(tmp_path) -> None:
    typo = tmp_path / "srv" / "apairy"
    with pytest.raises(NotFoundError, match=rf"storage root {typo} does not exist"):
        open_storage(str(typo), create=False)
    assert not typo.parent.exists()
    open_storage(str(typo))  # the default still makes it: writers start on a new root
    assert typo.is_dir()
    open_storage(str(typo), create=False).put("x", b"1")


def test_a_file_is_not_a_root(tmp_path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(NotFoundError, match="is not a directory"):
        open_storage(str(tmp_path / "f"), create=False)


def test_a_reading_client_refuses_a_missing_root(tmp_path) -> None:
    typo = tmp_path / "nope"
    with pytest.raises(NotFoundError, match="does not exist"):
        Apiary("test", str(typo), create_root=False).start()
    assert not typo.exists()
