"""Compile once per machine: a second `rexjax` process loads every executable the first one
compiled from the persistent cache (counted with JAX's cache events, no timing); the cache
directory's trust walk and entry scan, in process (tampered caches run end to end in
tests/security/test_compile_cache_poisoning.py)."""

import json
import os
import socket
import subprocess
import sys
import time
import zlib

import pytest

from rexjax import compile_cache

# Runs the real CLI entry with a probe command registered (tests/helpers/compile_probe.py).
PROBE = (
    "import sys, rexjax.cli as cli; "
    "cli.COMMANDS['probe'] = ('tests.helpers.compile_probe', 'test probe'); "
    "sys.argv = ['rexjax', 'probe']; cli.run()"
)


def probe(cache_root, switch=None):
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", compile_cache.ENV_SWITCH)}
    env["REXJAX_CACHE_DIR"] = str(cache_root)
    if switch is not None:
        env[compile_cache.ENV_SWITCH] = switch
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env=env, cwd=root)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def entries(cache_root):
    d = cache_root / "xla"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_second_cli_process_compiles_nothing_the_first_compiled(tmp_path):
    first = probe(tmp_path)
    assert first["cache_dir"] == str((tmp_path / "xla").resolve())
    assert first["misses"] >= 2 and first["hits"] == 0
    written = entries(tmp_path)
    assert len(written) >= 2
    second = probe(tmp_path)
    assert second["misses"] == 0 and second["hits"] == first["misses"]
    assert entries(tmp_path) == written


def test_switched_off_by_env(tmp_path):
    out = probe(tmp_path, "off")
    assert out["cache_dir"] is None and out["hits"] == out["misses"] == 0
    assert entries(tmp_path) == []


@pytest.mark.parametrize("value,on", [("0", False), ("OFF", False), (" false ", False), ("no", False), ("1", True), ("", True)])
def test_switch_values(monkeypatch, value, on):
    monkeypatch.setenv(compile_cache.ENV_SWITCH, value)
    assert compile_cache.requested() is on


def test_existing_unwritable_directory_is_refused(monkeypatch):
    """An existing directory that refuses new files (/proc/self, even for root) is not handed
    to JAX (whose cache writes would fail at every compile): one warning, None. Catches a
    check that only creates the directory."""
    import jax

    monkeypatch.delenv(compile_cache.ENV_SWITCH, raising=False)
    before = jax.config.jax_compilation_cache_dir
    if before:
        pytest.skip("a JAX compilation cache directory is set for this process")
    with pytest.warns(UserWarning, match="compilation cache disabled: cannot write to /proc/self"):
        assert compile_cache.enable("/proc/self") is None
    assert jax.config.jax_compilation_cache_dir == before


def private_dir(path):
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def test_group_writable_parent_is_untrusted(tmp_path):
    """A group member could rename a private cache directory away and put their own in its
    place. Catches a check of the cache directory alone."""
    parent = private_dir(tmp_path / "shared")
    xla = private_dir(parent / "xla")
    assert compile_cache.untrusted(xla) is None
    parent.chmod(0o770)
    assert compile_cache.untrusted(xla) == f"{parent} is writable by its group or other users (chmod go-w {parent})"


def test_sticky_directory_is_trusted_above_the_cache_only(tmp_path):
    """A sticky world-writable directory (/tmp) protects the names of others' entries, so a
    private cache inside it is safe; as the cache directory itself it would take anyone's new
    entries. Catches a missing sticky exception (every cache under /tmp refused) and one that
    also covers the cache directory."""
    tmp = private_dir(tmp_path / "tmp")
    tmp.chmod(0o1777)
    assert compile_cache.untrusted(private_dir(tmp / "xla")) is None
    assert "writable by its group or other users" in compile_cache.untrusted(tmp)


def test_symlinks_are_followed_and_their_directories_checked(tmp_path):
    """Whoever can write the directory holding a symlink can point it elsewhere, and the
    target's own path counts too. Catches resolving the path before the walk (the link's
    directory unchecked) and treating a symlink as the end of the path (target unchecked)."""
    xla = private_dir(private_dir(tmp_path / "private") / "xla")
    safe = private_dir(tmp_path / "safe")
    (safe / "link").symlink_to(xla)
    assert compile_cache.untrusted(safe / "link") is None
    open_dir = private_dir(tmp_path / "open")
    open_dir.chmod(0o777)
    (open_dir / "link").symlink_to(xla)
    assert str(open_dir) in compile_cache.untrusted(open_dir / "link")
    target = private_dir(open_dir / "xla")
    (safe / "out").symlink_to(target)
    assert str(open_dir) in compile_cache.untrusted(safe / "out")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_another_users_directory_or_symlink_is_untrusted(tmp_path):
    """Its owner can change it whatever its mode bits. Catches a walk that checks modes only."""
    theirs = private_dir(tmp_path / "theirs")
    os.chown(theirs, 65534, 65534)
    assert compile_cache.untrusted(theirs) == f"{theirs} belongs to another user (uid 65534)"
    tmp = private_dir(tmp_path / "tmp")
    tmp.chmod(0o1777)
    (tmp / "link").symlink_to(private_dir(tmp_path / "mine"))
    os.chown(tmp / "link", 65534, 65534, follow_symlinks=False)
    assert "is a symlink belonging to another user" in compile_cache.untrusted(tmp / "link")


def test_missing_directories_are_created_private(tmp_path):
    """Under umask 002 `mkdir -p` leaves group-writable parents, which the next run's walk
    refuses. Catches the mode left to the umask."""
    old = os.umask(0o002)
    try:
        compile_cache._make_private_dirs(tmp_path / "a" / "b" / "xla")
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "xla"):
        assert p.stat().st_mode & 0o777 == 0o700, p
    assert compile_cache.untrusted(tmp_path / "a" / "b" / "xla") is None


def test_scan_drops_what_jax_must_not_open(tmp_path):
    """JAX follows symlinks (and writes through a dangling one), blocks on a FIFO, fails on
    a directory or a truncated stream at every run. Everything else is kept: valid entries,
    XLA's own files and folders, other names. Catches a file-type test that follows
    symlinks, a scan of `-cache` names only, and a content check that misses truncation."""
    good = zlib.compress(b"\0\0\0\1" + b"program" * 100)
    (tmp_path / "good-cache").write_bytes(good)
    (tmp_path / "cut-cache").write_bytes(good[: len(good) // 2])
    (tmp_path / "linked-cache").symlink_to(tmp_path / "good-cache")
    (tmp_path / "dangling-cache").symlink_to(tmp_path / "elsewhere")
    os.mkfifo(tmp_path / "fifo-cache")
    os.mkfifo(tmp_path / "fifo-atime")
    (tmp_path / "dir-cache").mkdir()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "sock"))
    (tmp_path / "xla_gpu_per_fusion_autotune_cache_dir").mkdir()
    (tmp_path / "notes.txt").write_text("kept")
    dropped = compile_cache.scan(tmp_path, time.time_ns(), zlib.decompress)
    assert sorted(dropped) == ["directory", "not a regular file", "not a regular file", "not a regular file",
                               "symlink", "symlink", "unreadable"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        compile_cache.STAMP, "good-cache", "notes.txt", "xla_gpu_per_fusion_autotune_cache_dir"]


def test_scan_reads_each_entry_once(tmp_path, monkeypatch):
    """A large cache is not decompressed at every start: an entry is read when its inode
    changed since the last scan began. Catches a scan that ignores its stamp and one that
    never reads an entry again once a stamp exists."""
    monkeypatch.setattr(compile_cache, "_CLOCK_SLACK_NS", 0)
    reads = []

    def decompress(data):
        reads.append(data)
        return zlib.decompress(data)

    good = zlib.compress(b"\0\0\0\1" + b"program" * 100)
    for name in ("a-cache", "b-cache"):
        (tmp_path / name).write_bytes(good)
    time.sleep(0.05)  # past the filesystem's coarse clock tick
    assert compile_cache.scan(tmp_path, compile_cache._fs_now(tmp_path), decompress) == [] and len(reads) == 2
    time.sleep(0.05)
    assert compile_cache.scan(tmp_path, compile_cache._fs_now(tmp_path), decompress) == [] and len(reads) == 2
    (tmp_path / "b-cache").write_bytes(good[:10])
    assert compile_cache.scan(tmp_path, compile_cache._fs_now(tmp_path), decompress) == ["unreadable"]
    assert len(reads) == 3 and not (tmp_path / "b-cache").exists()
