"""Hubs without a server: a plain folder of bundles and a Git repository (a local bare one,
reached through ``git+file://`` by the real ``git`` command), published to and imported from
with the command line and local stores."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

from hub_commands import plait
from plait.model.registered import RegisteredWorkflow
from plait.storage.blobs import BlobStore
from plait.storage.entities import EntityStore
from plait.storage.events import EventStore

ROOT = Path(__file__).parents[2]
BIGFOOT = ROOT / "examples" / "bigfoot.py"


def registered(home: Path, kind: str) -> list[str]:
    """The names ``kind`` is registered under in the local store under ``home``."""
    store = EventStore(f"sqlite:///{home / 'plait.db'}")
    try:
        return EntityStore(store).names("default", "development", kind)
    finally:
        store.close()


def test_a_bundle_made_from_a_module_file_is_the_bundle_made_from_its_registration(tmp_path: Path):
    plait("register", str(BIGFOOT), "--version", "3")
    plait("hub", "publish", "hunt", "--version", "1.0.0", "--to", str(tmp_path / "from-store"))
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", str(tmp_path / "from-file"))
    folder = Path("hunt") / "1.0.0"
    files = sorted(p.name for p in (tmp_path / "from-file" / folder).iterdir())
    assert files == ["README.md", "code.tar.gz", "launch_plan.json", "manifest.json", "tasks.json", "workflow.json"]
    same, different, missing = filecmp.cmpfiles(tmp_path / "from-store" / folder, tmp_path / "from-file" / folder,
                                                 files, shallow=False)
    assert (same, different, missing) == (files, [], [])


def test_a_folder_hub_round_trip_registers_the_bundle_and_its_code_in_another_store(tmp_path: Path):
    hub, home = tmp_path / "hub", tmp_path / "elsewhere"
    assert plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", str(hub)).stdout == \
        f"published  hunt@1.0.0  to the hub folder {hub}\n"
    done = plait("hub", "import", "hunt@1.0.0", "--hub", str(hub), "--project", "default", home=home)
    assert "imported hunt@1.0.0 into default/development: 6 created, 0 unchanged" in done.stdout
    assert registered(home, "launch_plan") == ["hunt"]
    store = EventStore(f"sqlite:///{home / 'plait.db'}")
    try:
        body = EntityStore(store).get("default", "development", "workflow", "bigfoot.hunt", "1.0.0").body
    finally:
        store.close()
    code = RegisteredWorkflow.model_validate(body).code
    assert code is not None and code.uri == BlobStore(str(home / "blobs")).uri("code", f"{code.digest}.tar.gz")
    assert (home / "blobs" / "code" / f"{code.digest}.tar.gz").read_bytes() == \
        (hub / "hunt" / "1.0.0" / "code.tar.gz").read_bytes()


def test_a_git_hub_round_trip_between_publishers_and_a_reader_with_their_own_clones(tmp_path: Path):
    bare = tmp_path / "hub.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    url = f"git+file://{bare}"
    readme = tmp_path / "notes.md"
    readme.write_text("# hunt\n\nThe second release.\n")
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", url, home=tmp_path / "alice")
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.1.0", "--to", url, "--readme", str(readme),
          home=tmp_path / "bob")
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.2.0-rc.1", "--to", url, home=tmp_path / "alice")
    log = subprocess.run(["git", "--git-dir", str(bare), "log", "--format=%s"], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert log[:3] == ["publish hunt@1.2.0-rc.1", "publish hunt@1.1.0", "publish hunt@1.0.0"]
    found = plait("hub", "search", "--hub", url, home=tmp_path / "carol").stdout.splitlines()
    assert found[::2] == ["hunt@1.2.0-rc.1  Hunting bigfoot in trail-camera photos: the fan-out story in one file.",
                          "hunt@1.1.0  The second release.",
                          "hunt@1.0.0  Hunting bigfoot in trail-camera photos: the fan-out story in one file."]
    done = plait("hub", "import", "hunt@1.1.0", "--hub", url, "--project", "default", home=tmp_path / "carol")
    assert "imported hunt@1.1.0 into default/development: 6 created" in done.stdout


def test_importing_a_bundle_again_changes_nothing_and_says_so(tmp_path: Path):
    hub = tmp_path / "hub"
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", str(hub))
    plait("hub", "import", "hunt@1.0.0", "--hub", str(hub), "--project", "default")
    again = plait("hub", "import", "hunt@1.0.0", "--hub", str(hub), "--project", "default").stdout
    assert again.splitlines()[:6] == [f"unchanged  {kind:<11}  {name}@1.0.0" for kind, name in [
        ("task", "bigfoot.detect"), ("task", "bigfoot.report"), ("task", "bigfoot.split"),
        ("task", "bigfoot.take_photos"), ("workflow", "bigfoot.hunt"), ("launch_plan", "hunt")]]
    assert "unchanged: hunt@1.0.0 was imported into default/development already" in again


def test_a_tampered_bundle_is_refused_naming_the_file_and_nothing_is_registered(tmp_path: Path, plait_home: Path):
    hub = tmp_path / "hub"
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", str(hub))
    archive = hub / "hunt" / "1.0.0" / "code.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    done = plait("hub", "import", "hunt@1.0.0", "--hub", str(hub), "--project", "default", ok=False)
    assert "bundle hunt@1.0.0: code.tar.gz does not match its digest in manifest.json" in " ".join(done.stderr.split())
    assert not (plait_home / "plait.db").exists()  # refused before the store was opened: nothing registered
    assert not (plait_home / "blobs").exists()


def test_another_bundle_under_an_imported_version_is_refused_with_a_diff(tmp_path: Path):
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", str(tmp_path / "hub"))
    plait("hub", "import", "hunt@1.0.0", "--hub", str(tmp_path / "hub"), "--project", "default")
    changed = tmp_path / "fork" / "bigfoot.py"
    changed.parent.mkdir()
    shutil.copy(BIGFOOT, changed)
    changed.write_text(changed.read_text().replace("threshold: float = 0.8) -> Report", "threshold: float = 0.9) -> "
                                                                                           "Report"))
    plait("hub", "publish", f"{changed}:hunt", "--version", "1.0.0", "--to", str(tmp_path / "other"))
    done = plait("hub", "import", "hunt@1.0.0", "--hub", str(tmp_path / "other"), "--project", "default", ok=False)
    text = " ".join(done.stderr.split())
    assert "hunt@1.0.0 cannot be imported into default/development: something else is registered there under " \
           "version 1.0.0" in text
    assert '- "threshold": 0.8 + "threshold": 0.9' in text


def test_publishing_other_content_under_a_published_version_of_a_folder_hub_is_refused(tmp_path: Path):
    hub, readme = tmp_path / "hub", tmp_path / "notes.md"
    readme.write_text("# hunt\n\nOther words.\n")
    plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", str(hub))
    done = plait("hub", "publish", f"{BIGFOOT}:hunt", "--version", "1.0.0", "--to", str(hub), "--readme", str(readme),
                 ok=False)
    assert f"hunt@1.0.0 is published in the hub folder {hub} already, with other content (README.md differ)" in \
        " ".join(done.stderr.split())
