"""What produced a result: the code (git commit, whether the tree had changes), the command
line, the versions, the device, the date and the settings, as one JSON record that a results
folder carries as `provenance.json`.

    state = provenance.code_state()          # GitState of the rexjax source this process runs
    record = provenance.record(config={...}, study="rex_compare")
    provenance.write(folder, record)          # folder/provenance.json, replaced atomically
    provenance.read(folder)                   # {} when the folder has none

A record holds
    commit      the full git commit of the rexjax source tree; null when that tree is not a git
                checkout (an installed package) or git is missing
    dirty       whether the tree had changes (tracked or untracked files, results folders
                excepted); null without git
    changed     the changed paths (at most MAX_CHANGED of them, then "... N more")
    command     the process's full command line (`sys.orig_argv`)
    versions    rexjax, jax, jaxlib, python
    device      platform, device kind and count of the local devices, and the process count
    date        UTC, ISO 8601 to the second
    config      the settings (when given), then any other facts the caller names

Git is asked once per process (`code_state`): the code a process runs is the code it imported
when it started, whatever is committed while it runs. Results folders (`RESULT_DIRS`) are
outputs, not code, so their changes never make the tree dirty. This module imports nothing
from rexjax (it sits beside `rexjax.errors` in the lowest layer).
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple, Optional

FILE = "provenance.json"
SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the folder that holds the rexjax package
RESULT_DIRS = ("experiments/results", "benchmarks/results")  # written by runs, not code
MAX_CHANGED = 20
GIT_TIMEOUT_S = 30


class GitState(NamedTuple):
    """A source tree's commit (None: not a git checkout), whether it had changes (None: not
    known) and the changed paths (relative to the tree's top)."""

    commit: Optional[str]
    dirty: Optional[bool]
    changed: tuple[str, ...] = ()

    @property
    def code_id(self) -> str:
        """`<commit>`, `<commit>+dirty`, or "" without a commit: the code a row came from."""
        if self.commit is None:
            return ""
        return self.commit + ("+dirty" if self.dirty else "")


NO_GIT = GitState(None, None)


def _git(root: Path, *args: str) -> Optional[str]:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return done.stdout.decode("utf-8", "surrogateescape") if done.returncode == 0 else None


def git_state(root: str | os.PathLike = SOURCE_ROOT, exclude: tuple[str, ...] = RESULT_DIRS) -> GitState:
    """The git state of the tree whose top is `root`, read now. NO_GIT when git is missing or
    `root` is not the top of a work tree (a package installed inside some other repository
    must not report that repository's commit). Paths under `exclude` do not count as changes."""
    root = Path(root).resolve()
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root:
        return NO_GIT
    commit = _git(root, "rev-parse", "--verify", "HEAD")
    status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".",
                  *(f":(exclude){p}" for p in exclude))
    if commit is None or status is None:  # a repository without a commit yet
        return NO_GIT
    changed = _changed_paths(status)
    return GitState(commit.strip(), bool(changed), changed)


def _changed_paths(status: str) -> tuple[str, ...]:
    """The paths of `git status --porcelain=v1 -z`: entries `XY PATH`, a rename or copy
    followed by its source path as an entry of its own."""
    entries, out = iter(status.split("\0")), set()
    for entry in entries:
        if len(entry) > 3:
            out.add(entry[3:])
            if entry[0] in "RC":
                out.add(next(entries, ""))
    out.discard("")
    return tuple(sorted(out))


@functools.lru_cache(maxsize=1)
def code_state() -> GitState:
    """`git_state()` of the rexjax source, asked once per process (module doc)."""
    return git_state()


def command_line() -> str:
    """This process's full command line, shell-quoted, the interpreter's options included and
    the interpreter itself written `python` (its path is this machine's, not the command's;
    `versions` names the Python)."""
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    return shlex.join(["python", *argv[1:]])


def _version(package: str) -> Optional[str]:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Optional[str]]:
    """The versions that decide what rexjax computes."""
    return {"rexjax": _version("rexjax"), "jax": _version("jax"), "jaxlib": _version("jaxlib"),
            "python": platform.python_version()}


def device() -> dict[str, Any]:
    """The platform and kind of this process's default device, the local device count and the
    process count."""
    import jax

    d = jax.local_devices()[0]
    return {"platform": d.platform, "kind": d.device_kind, "local_devices": jax.local_device_count(),
            "processes": jax.process_count()}


def record(*, config: Optional[dict] = None, command: Optional[str] = None, state: Optional[GitState] = None,
           **facts) -> dict[str, Any]:
    """This process's provenance (module doc): `state` defaults to `code_state()`, `command`
    to `command_line()`; `facts` follow (a `versions` fact extends the versions)."""
    state = code_state() if state is None else state
    changed = list(state.changed[:MAX_CHANGED])
    if len(state.changed) > MAX_CHANGED:
        changed.append(f"... {len(state.changed) - MAX_CHANGED} more")
    out: dict[str, Any] = {
        "commit": state.commit, "dirty": state.dirty, "changed": changed,
        "command": command_line() if command is None else command,
        "versions": {**versions(), **facts.pop("versions", {})}, "device": device(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if config is not None:
        out["config"] = config
    out.update(facts)
    return out


def write(folder: str | os.PathLike, rec: dict) -> Path:
    """Writes `rec` to `folder/provenance.json` (a temporary file renamed into place, so a
    reader never sees half a record); returns its path."""
    path = Path(folder) / FILE
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec, indent=1, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read(folder: str | os.PathLike) -> dict:
    """The record in `folder/provenance.json`; {} when there is none. ValueError naming the
    file when it is not a JSON object."""
    path = Path(folder) / FILE
    if not path.is_file():
        return {}
    try:
        rec = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(path)!r} is not valid JSON ({err})") from err
    if not isinstance(rec, dict):
        raise ValueError(f"{str(path)!r} does not hold a JSON object")
    return rec
