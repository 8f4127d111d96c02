"""A supervised process per attempt on this machine: started once, killed as a tree, its exit code kept."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

from plait.model.settings import without_secrets

LOG_LIMIT = 1 << 20
"""Bytes of stdout/stderr kept per attempt (the end is kept)."""


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


PROCESS_MARKER = "PLAIT_PROCESS"
"""Set in a supervised command's environment; its descendants inherit it, so abort finds
them even when they start sessions of their own (a Jupyter kernel, torchrun's ranks)."""


class LocalProcess:
    """Supervise one command line per attempt, in ``workdir``, as its own process group.

    The files in ``workdir`` (``pid``, ``exit_code``, ``stdout.log``, ``stderr.log``) are the
    state, so another engine process can poll, abort or clean up after a restart. Killing it
    kills its process group and every process that inherited its ``PLAIT_PROCESS`` marker.
    """

    _children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, workdir: Path, argv: list[str], env: dict[str, str] | None = None,
              cwd: str | None = None) -> dict[str, Any]:
        """Start ``argv`` unless this workdir already has a process; return the handle."""
        workdir.mkdir(parents=True, exist_ok=True)
        handle: dict[str, Any] = {"workdir": str(workdir)}
        pid_file = workdir / "pid"
        if pid_file.exists():
            handle["pid"] = int(pid_file.read_text())
            return handle  # attach: the same attempt was started before
        script = (
            '"$@" >"$PLAIT_WORKDIR/stdout.log" 2>"$PLAIT_WORKDIR/stderr.log"; '
            'echo $? >"$PLAIT_WORKDIR/exit_code.tmp"; mv "$PLAIT_WORKDIR/exit_code.tmp" "$PLAIT_WORKDIR/exit_code"'
        )
        # The engine's PLAIT_SECRET_* stay behind: a command gets only what its task declared.
        full_env = {**without_secrets(dict(os.environ)), **(env or {}), "PLAIT_WORKDIR": str(workdir),
                    PROCESS_MARKER: str(workdir)}
        proc = subprocess.Popen(["/bin/sh", "-c", script, "plait-process", *argv], env=full_env,
                                cwd=cwd, start_new_session=True, stdin=subprocess.DEVNULL)
        self._children[str(workdir)] = proc
        tmp = workdir / "pid.tmp"
        tmp.write_text(str(proc.pid))
        os.replace(tmp, pid_file)
        (workdir / "command").write_text(shlex.join(argv))
        handle["pid"] = proc.pid
        return handle

    def exit_code(self, handle: dict[str, Any]) -> int | None:
        """The command's exit code, or None while it runs. -9 if it vanished without one."""
        workdir = Path(handle["workdir"])
        child = self._children.get(str(workdir))
        if child is not None:
            child.poll()  # reap it, so a finished child is not a zombie that looks alive
        code_file = workdir / "exit_code"
        if code_file.exists():
            return int(code_file.read_text().strip() or -1)
        if _alive(handle["pid"]):
            return None
        return -9

    def kill(self, handle: dict[str, Any]) -> None:
        _kill_group(handle.get("pid"))
        kill_marked(handle["workdir"])
        child = self._children.get(handle["workdir"])
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def logs(self, handle: dict[str, Any]) -> tuple[str, str]:
        workdir = Path(handle["workdir"])
        return tuple(_read_tail(workdir / name) for name in ("stdout.log", "stderr.log"))  # type: ignore[return-value]

    def forget(self, handle: dict[str, Any]) -> None:
        self._children.pop(handle["workdir"], None)


def kill_marked(workdir: str) -> None:
    """Kill every process whose environment carries the marker of the command in ``workdir``."""
    needle = f"{PROCESS_MARKER}={workdir}".encode() + b"\0"
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if needle in fh.read():
                    os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def _read_tail(path: Path) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - LOG_LIMIT))
        return fh.read().decode("utf-8", "replace")

