"""Signing in to the console, what a session may do, and signing out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from console_harness import Console, assert_accessible, shot, sign_in


def test_a_signed_out_browser_is_sent_to_sign_in_and_back_where_it_was_going(browser: Any, console: Console) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(console.url + "/projects")
    assert page.url.startswith(console.url + "/login?next=")
    assert_accessible(page)
    shot(page, "signin")

    page.get_by_label("API key").fill("plait_nope_wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "That key is not valid" in page.get_by_role("alert").inner_text()

    page.get_by_label("API key").fill(console.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(console.url + "/projects")
    assert page.get_by_role("row", name="default").is_visible()
    assert_accessible(page)
    shot(page, "projects")
    context.close()


def test_the_session_cookie_is_a_fresh_key_kept_from_scripts(page: Any, console: Console) -> None:
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["plait_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert session["value"] != console.admin_key  # a session key, not the key typed in
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    with console.api() as api:
        keys = api.get("/users/admin/keys").json()
    assert any(k["description"] == "console session" and k["expires"] for k in keys)


def test_a_change_with_the_session_needs_its_csrf_token(page: Any, console: Console) -> None:
    session = {c["name"]: c["value"] for c in page.context.cookies()}["plait_session"]
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    with httpx.Client(base_url=console.url, cookies={"plait_session": session}) as browserlike:
        assert browserlike.get("/api/v1/me").json()["user"] == "admin"  # reads need no token
        refused = browserlike.post("/api/v1/projects", json={"name": "forged"})
        assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
        made = browserlike.post("/api/v1/projects", json={"name": "made"}, headers={"X-CSRF-Token": token})
        assert made.status_code == 201, made.text
        forged_form = browserlike.post("/logout", data={"csrf_token": "0" * 64})
        assert forged_form.status_code == 403
        assert browserlike.get("/api/v1/me").status_code == 200  # still signed in


def test_signing_out_ends_the_session_everywhere(browser: Any, console: Console) -> None:
    key = console.member("viewer-one", "viewer")
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    sign_in(page, console.url, key)
    session = {c["name"]: c["value"] for c in context.cookies()}["plait_session"]
    assert "viewer-one" in page.locator("header").inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(console.url + "/login")
    with httpx.Client(base_url=console.url, cookies={"plait_session": session}) as stolen:
        assert stolen.get("/api/v1/me").status_code == 401  # the session's key is revoked
    page.goto(console.url + "/projects")
    assert "/login" in page.url
    context.close()


def test_a_user_sees_only_the_projects_it_has_a_role_in(browser: Any, console: Console) -> None:
    with console.api() as api:
        api.post("/projects", json={"name": "secret-team"}).raise_for_status()
    key = console.member("outsider", "viewer")
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    sign_in(page, console.url, key)
    text = page.locator("main").inner_text()
    assert "default" in text and "secret-team" not in text
    context.close()


def test_the_next_address_after_sign_in_stays_on_this_server(browser: Any, console: Console) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console.url + "/login?next=//evil.example/x")
    page.get_by_label("API key").fill(console.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url.startswith(console.url)
    context.close()


def test_pages_run_only_the_servers_own_scripts_and_cannot_be_framed(console: Console) -> None:
    page = httpx.get(console.url + "/login")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text  # no inline script for the policy to refuse
    assert httpx.get(console.url + "/static/vendor/htmx.min.js").status_code == 200
    unlisted = httpx.get(console.url + "/static/vendor/..%2Fpackage.json")
    assert unlisted.status_code == 404


def test_a_missing_browser_library_says_how_to_install_it(monkeypatch: Any, tmp_path: Any) -> None:
    from plait_server.console import assets

    monkeypatch.setattr(assets, "NODE_MODULES", tmp_path / "node_modules")
    with pytest.raises(assets.AssetsMissing, match="htmx.org/dist/htmx.min.js is not installed: run `make venv`"):
        assets.vendor_file("htmx.min.js")


def test_an_error_page_keeps_the_signed_in_users_navigation(page: Any, console: Console) -> None:
    answer = page.goto(console.url + "/executions/no-such-execution")
    assert answer is not None and answer.status == 404
    assert page.get_by_role("button", name="Sign out").is_visible()
    assert page.get_by_role("navigation", name="Main").is_visible()
    assert_accessible(page)


def test_the_browsers_icon_request_is_answered(console: Console) -> None:
    icon = httpx.get(console.url + "/favicon.ico", follow_redirects=True)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")


def test_a_key_that_is_not_valid_is_told_apart_from_no_key(console: Console) -> None:
    missing = httpx.get(console.url + "/api/v1/me")
    wrong = httpx.get(console.url + "/api/v1/me", headers={"Authorization": "Bearer plait_nope_nope"})
    assert missing.status_code == wrong.status_code == 401
    assert "a valid API key is needed" in missing.json()["detail"]
    assert "this API key is not valid" in wrong.json()["detail"]
