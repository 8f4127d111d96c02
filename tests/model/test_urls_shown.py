"""URLs as plait prints or logs them: a store's or a token backend's password never shows."""

from __future__ import annotations

import pytest
from plait.model.errors import PlaitError
from plait.model.settings import hide_password
from plait.storage.events import EventStore
from plait.tokens.redis import RedisTokenManager


def test_a_urls_password_is_hidden_and_the_rest_kept():
    assert hide_password("postgresql+psycopg://plait:s3cr%40t@db:5432/plait") == "postgresql+psycopg://plait:***@db:5432/plait"
    assert hide_password("redis://:hunter2@cache:6379/0") == "redis://:***@cache:6379/0"
    assert hide_password("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_a_stores_shown_url_hides_its_password():
    from postgres_db import fresh_database

    with fresh_database() as url:  # the test server trusts any password: give one
        with_password = url.replace("postgres@", "postgres:hunter2@", 1)
        store = EventStore(with_password)
        try:
            assert "hunter2" in store.url and "hunter2" not in store.shown_url
            assert store.shown_url == with_password.replace("hunter2", "***")
        finally:
            store.close()


def test_an_unreachable_redis_token_store_is_named_without_its_password():
    manager = RedisTokenManager("redis://:hunter2@127.0.0.1:9/0")  # nothing listens on port 9
    with pytest.raises(PlaitError) as raised:
        manager._call(manager._renew, "warehouse", "attempt-1")
    assert "redis://:***@127.0.0.1:9/0 failed" in str(raised.value) and "hunter2" not in str(raised.value)
