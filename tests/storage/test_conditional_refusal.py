"""A storage root whose conditional create silently overwrites is refused at start."""

from __future__ import annotations

import pytest

from apiary import Apiary, StorageError
from apiary.storage import open_storage


def test_s3_without_if_none_match_is_refused_with_a_clear_error(fault_proxy) -> None:
    fault_proxy.proxy.drop_request_headers = {"if-none-match"}
    storage = open_storage(fault_proxy.target.uri)
    with pytest.raises(StorageError, match="does not support conditional writes") as info:
        storage.check_conditional_writes()
    assert "apiary doctor" in str(info.value)
    with pytest.raises(StorageError, match="conditional writes"):
        Apiary("test", fault_proxy.target.uri).start()
    assert storage.list("") == []  # the probe leaves nothing behind


def test_the_same_server_with_conditional_writes_is_accepted(fault_proxy) -> None:
    with Apiary("test", fault_proxy.target.uri) as ap:
        ap.create_hive("ok")
        assert ap.list_hives() == ["ok"]
    assert fault_proxy.proxy.count("PUT") >= 3  # probe writes really went through the proxy
