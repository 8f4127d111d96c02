"""A workflow published from one ``plait server``'s hub, imported and run on a second, fresh one.

Server A has bigfoot (``examples/bigfoot.py``) registered, as a user registers it; server B has
its own store and blob folder and nothing registered, and no code is written for it: everything
it runs comes from the bundle it imports over A's public hub routes. Both run on SQLite (the
registrations and the launches they make are tested on PostgreSQL by tests/server).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import ServerProcess, bootstrap, store_url
from hub_commands import plait

ROOT = Path(__file__).parents[2]
BIGFOOT = ROOT / "examples" / "bigfoot.py"
PROJECT = "p"


def on(server: ServerProcess, key: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``plait ARGS`` with PLAIT_SERVER and PLAIT_API_KEY set, as a user of ``server`` runs it."""
    return plait(*args, server=server, key=key, ok=ok)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Server A with bigfoot registered in project p (and a viewer, an editor and an outsider
    there), server B fresh with an engine worker and an empty project p; each admin's key."""
    home_a, home_b = tmp_path_factory.mktemp("hub-a"), tmp_path_factory.mktemp("hub-b")
    with store_url("sqlite", home_a) as url_a, store_url("sqlite", home_b) as url_b:
        keys = {"a": bootstrap(url_a, home_a), "b": bootstrap(url_b, home_b)}
        with ServerProcess(url_a, home_a) as a, ServerProcess(url_b, home_b, engines=1,
                                                                  env={"PLAIT_WORKERS": "2"}) as b:
            for server, admin_key in ((a, keys["a"]), (b, keys["b"])):
                with server.client(admin_key) as admin:
                    assert admin.post("/projects", json={"name": PROJECT}).status_code == 201
            with a.client(keys["a"]) as admin:
                for user, role in (("viewer-p", "viewer"), ("editor-p", "editor"), ("outsider", None)):
                    assert admin.post("/users", json={"name": user}).status_code == 201
                    keys[user] = admin.post(f"/users/{user}/keys", json={}).json()["key"]
                    if role:
                        assert admin.put(f"/projects/{PROJECT}/members/{user}", json={"role": role}).status_code == 200
            on(a, keys["a"], "register", str(BIGFOOT), "--project", PROJECT, "--version", "7")
            yield {"a": a, "b": b, "keys": keys}


@pytest.fixture(scope="module")
def published(servers: dict[str, Any]) -> dict[str, Any]:
    """bigfoot's hunt published in A's hub as hunt@1.0.0 with ``plait hub publish``."""
    done = on(servers["a"], servers["keys"]["a"], "hub", "publish", "hunt", "--version", "1.0.0",
                 "--project", PROJECT)
    assert done.stdout == f"published  hunt@1.0.0  to the hub of {servers['a'].url}\n", done.stdout
    return servers


def readme_commands(readme: str, **values: str) -> list[list[str]]:
    """The commands of a bundle README's "Run it" section, its placeholders filled in."""
    section = readme.split("\n## Run it\n", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in section.splitlines() if line.startswith("    plait ")]
    for placeholder, value in values.items():
        commands = [command.replace(placeholder, value) for command in commands]
    return [command.split()[1:] for command in commands]


def test_a_bundle_published_on_one_server_is_imported_and_run_on_a_fresh_one_as_its_readme_says(
        published: dict[str, Any]):
    a, b, keys = published["a"], published["b"], published["keys"]
    readme = httpx.get(a.url + "/api/v1/hub/bundles/hunt/1.0.0").json()["readme"]
    runs = re.findall(r"plait run \S+", readme)
    assert runs and set(runs) == {"plait run --remote"}, "the README runs a file an importer does not have"
    imported, run = readme_commands(readme, HUB=a.url, PROJECT=PROJECT, DOMAIN="production")
    assert imported[:2] == ["hub", "import"] and run[:2] == ["run", "--remote"]
    done = on(b, keys["b"], *imported)
    assert "created    workflow     bigfoot.hunt@1.0.0" in done.stdout
    assert "created    launch_plan  hunt@1.0.0" in done.stdout
    assert f"imported hunt@1.0.0 into {PROJECT}/production: 6 created" in done.stdout

    ran = on(b, keys["b"], *run, "--photos", "300", "--batch-size", "60")
    lines = ran.stdout.splitlines()
    assert lines[1] == "succeeded", ran.stdout
    report = json.loads(lines[2])["o0"]
    assert report["photos"] == 300 and report["planted"] > 0
    assert report["found"] == report["planted"] and report["false_alarms"] == 0
    with b.client(keys["b"]) as api:  # B ran it from the bundle's archive, now in B's own blob store
        workflow = api.get(f"/projects/{PROJECT}/domains/production/entities/workflow/bigfoot.hunt/1.0.0").json()
        assert workflow["body"]["code"]["uri"].startswith("file://" + str(b.home))


def test_importing_a_bundle_again_changes_nothing(published: dict[str, Any]):
    a, b, keys = published["a"], published["b"], published["keys"]
    on(b, keys["b"], "hub", "import", "hunt@1.0.0", "--hub", a.url, "--project", PROJECT)
    again = on(b, keys["b"], "hub", "import", "hunt@1.0.0", "--hub", a.url, "--project", PROJECT)
    assert "created" not in again.stdout
    assert f"unchanged: hunt@1.0.0 was imported into {PROJECT}/development already" in again.stdout


def test_the_hub_is_read_without_a_key_and_searched_by_the_command_line(published: dict[str, Any]):
    a = published["a"]
    listed = httpx.get(a.url + "/api/v1/hub/bundles").json()
    assert [(m["name"], m["version"], m["workflow"]) for m in listed] == [("hunt", "1.0.0", "bigfoot.hunt")]
    one = httpx.get(a.url + "/api/v1/hub/bundles/hunt/1.0.0").json()
    assert one["readme"].startswith("# hunt\n\nHunting bigfoot in trail-camera photos")
    assert one["signature"] == "(batch_size: int = 100, photos: int = 2000, threshold: float = 0.8) -> Report"
    assert httpx.get(a.url + "/api/v1/hub/bundles/hunt/1.0.0/files/secrets.txt").status_code == 404
    assert httpx.get(a.url + "/api/v1/hub/bundles/hunt/9.9.9").status_code == 404
    found = plait("hub", "search", "BIGFOOT", "--hub", a.url).stdout
    assert found.splitlines() == [
        "hunt@1.0.0  Hunting bigfoot in trail-camera photos: the fan-out story in one file.",
        "    bigfoot.hunt(batch_size: int = 100, photos: int = 2000, threshold: float = 0.8) -> Report"]
    assert found in hub_section(), "the README shows another output of plait hub search"
    assert plait("hub", "search", "spark", "--hub", a.url).stdout == "no bundles matching 'spark'\n"


def test_publishing_needs_the_editor_role_in_the_project_the_workflow_is_registered_in(
        published: dict[str, Any]):
    a, keys = published["a"], published["keys"]
    body = {"workflow": "hunt", "version": "1.0.0"}
    where = f"/projects/{PROJECT}/domains/development/hub/bundles"
    with a.client(keys["viewer-p"]) as viewer:
        refused = viewer.post(where, json=body)
        assert refused.status_code == 403 and "this needs editor" in refused.json()["detail"]
    with a.client(keys["outsider"]) as outsider:
        hidden = outsider.post(where, json=body)
        assert (hidden.status_code, hidden.json()) == (404, {"detail": f"no project '{PROJECT}'"})
    with httpx.Client(base_url=a.url + "/api/v1") as anonymous:
        assert anonymous.post(where, json=body).status_code == 401
    done = on(a, keys["editor-p"], "hub", "publish", "hunt", "--version", "1.0.0", "--project", PROJECT)
    assert done.stdout == f"unchanged  hunt@1.0.0 is in the hub of {a.url} already, with the same content\n"


def test_publishing_other_content_under_a_published_version_is_refused(published: dict[str, Any], tmp_path: Path):
    a, keys = published["a"], published["keys"]
    readme = tmp_path / "README.md"
    readme.write_text("# hunt\n\nAnother text.\n")
    done = on(a, keys["a"], "hub", "publish", "hunt", "--version", "1.0.0", "--project", PROJECT,
                 "--readme", str(readme), ok=False)
    assert "hunt@1.0.0 is published in this server's hub already, with other content (README.md differ)" \
           in " ".join(done.stderr.split())
    assert httpx.get(a.url + "/api/v1/hub/bundles/hunt/1.0.0").json()["readme"].startswith("# hunt\n\nHunting")


def test_a_bad_version_is_refused_before_anything_is_published(published: dict[str, Any]):
    a, keys = published["a"], published["keys"]
    done = on(a, keys["a"], "hub", "publish", "hunt", "--version", "1.0", "--project", PROJECT, ok=False)
    assert "version '1.0' is not a semantic version: give MAJOR.MINOR.PATCH" in done.stderr
    assert [m["version"] for m in httpx.get(a.url + "/api/v1/hub/bundles").json()] == ["1.0.0"]


def test_a_workflow_registered_on_a_server_is_published_to_a_folder_hub_as_in_its_own_hub(
        published: dict[str, Any], tmp_path: Path):
    a, keys = published["a"], published["keys"]
    folder = tmp_path / "hub"
    done = on(a, keys["editor-p"], "hub", "publish", "hunt", "--version", "1.0.0", "--project", PROJECT,
              "--to", str(folder))
    assert done.stdout == f"published  hunt@1.0.0  to the hub folder {folder}\n"
    served = httpx.get(a.url + "/api/v1/hub/bundles/hunt/1.0.0/files/manifest.json").content
    assert (folder / "hunt" / "1.0.0" / "manifest.json").read_bytes() == served
    refused = on(a, keys["viewer-p"], "hub", "publish", "hunt", "--version", "1.0.0", "--project", PROJECT,
                 "--to", str(tmp_path / "other"), ok=False)
    assert "this needs editor" in refused.stderr and not (tmp_path / "other").exists()


def hub_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Hub: ", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_hub_example_imports_and_runs_in_one_project_and_domain():
    lines = [line.split("#")[0].split() for line in hub_section().splitlines() if line.startswith("plait ")]
    imported = next(line for line in lines if line[1:3] == ["hub", "import"] and "--project" in line)
    run = next(line for line in lines if line[1:3] == ["run", "--remote"])

    def tenant(line: list[str]) -> tuple[str, str]:
        assert "--domain" in line, f"{' '.join(line)} leaves the domain to its default"
        return line[line.index("--project") + 1], line[line.index("--domain") + 1]

    assert tenant(imported) == tenant(run) and run[3] == imported[3], (imported, run)
