"""A Git repository as the object store: `git+ssh://`, `git+https://`, `git+file://`, `git+git://`.

Objects are files of one branch, committed and pushed with the `git` command-line client so
that the user's credential helpers, `url.insteadOf` rules and ssh agent keep working. The
machine keeps a bare clone in the cache folder and builds commits with plumbing commands
against a private index file, so nothing is ever checked out twice.

Compare-and-swap is Git's own: a push that is not a fast-forward is rejected. Pack and index
objects are only staged locally (in that index file, which survives a crash) and travel with the
next snapshot, config or key object, which are pushed at once; after a rejected push the clone
is fast-forwarded, the staged objects are laid on top again and the push is retried, unless the
name being created was taken meanwhile. History is never rewritten: each push adds one commit
with the new objects, whose author, date and message are fixed so that they reveal nothing.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from claude_sync.errors import BackendError, ConfigError, ObjectNotFoundError
from claude_sync.store.base import ObjectInfo, ObjectStore
from claude_sync.store.handle import Handle, ObjectKind
from claude_sync.terminal import redact

if TYPE_CHECKING:
    from claude_sync.store import RemoteOptions

SCHEMES = ("ssh", "https", "http", "file", "git")
DEFAULT_BRANCH = "main"
PUSH_ATTEMPTS = 10
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# Objects only ever read by a machine that found them through a snapshot: they can wait for one.
STAGED_PREFIXES = tuple(k.prefix for k in (ObjectKind.PACK, ObjectKind.INDEX, ObjectKind.MANIFEST))
SNAPSHOTS_PREFIX = ObjectKind.SNAPSHOT.prefix
# A snapshot listing older than this is fetched again; the compare-and-swap push keeps even an
# older one safe, so this only spares `sync` a second fetch between its pull and its push.
FRESH_SECONDS = 2.0
BRANCH_KEY = "claude-sync.branch"
FETCHED_REF = "refs/claude-sync/fetched"
# Snapshot, index and manifest names grow by one a push; fan-out folders keep every commit's
# new tree objects small instead of rewriting one folder listing every snapshot ever made.
# kind -> how many leading characters of a name (after the kind's prefix) name its folder
_FANNED_OUT = {ObjectKind.SNAPSHOT: 8, ObjectKind.INDEX: 2, ObjectKind.MANIFEST: 2}

# The user's global config must not sign, hook or slow down our commits; everything else of it
# (credentials, insteadOf, proxies, core.sshCommand) still applies.
_CONFIG = {
    "core.hooksPath": "/dev/null",
    "commit.gpgSign": "false",
    "push.gpgSign": "false",
    "core.fsmonitor": "false",
    "fetch.recurseSubmodules": "false",
    "push.recurseSubmodules": "no",
    "gc.autoDetach": "false",
    # Objects are encrypted: zlib and delta search only cost time.
    "core.compression": "0",
    "core.bigFileThreshold": "1m",
}
# Variables that would point git at another repository (set when run from inside a git hook).
_SCRUB = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_REPLACE_REF_BASE",
    "LANGUAGE",
)
_IDENTITY = {
    "GIT_AUTHOR_NAME": "claude-sync",
    "GIT_AUTHOR_EMAIL": "claude-sync@localhost",
    "GIT_AUTHOR_DATE": "946684800 +0000",
    "GIT_COMMITTER_NAME": "claude-sync",
    "GIT_COMMITTER_EMAIL": "claude-sync@localhost",
    "GIT_COMMITTER_DATE": "946684800 +0000",
}
_AUTH_HINTS = (
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "access denied",
    "error: 401",
    "error: 403",
    "invalid username or password",
)
_GENERIC_LINES = (
    "could not read from remote repository.",
    "please make sure you have the correct access rights",
    "and the repository exists.",
)


def normalize(remote: str) -> str:
    if not remote.startswith("git+"):
        raise ConfigError(f"not a git remote: {redact(remote)}")
    url = remote[len("git+") :]
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"unsupported git remote {redact(remote)}: use git+ssh://, git+https://, "
            "git+http://, git+file:// or git+git://"
        )
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(f"git+file remotes need an absolute path: {redact(remote)}")
    elif not parts.hostname:
        raise ConfigError(f"git remote without a host: {redact(remote)}")
    if parts.path.strip("/") == "":
        raise ConfigError(f"git remote without a repository path: {redact(remote)}")
    return "git+" + url.rstrip("/")


def open_remote(remote: str, options: RemoteOptions) -> GitStore:
    url = normalize(remote)[len("git+") :]
    return GitStore(url, options.git_branch, options.cache_dir)


def to_path(name: str) -> str:
    """Where an object lives in the tree."""
    handle = Handle.parse(name)
    if handle is None or handle.kind not in _FANNED_OUT:
        return name
    return f"{handle.kind.prefix}{handle.ident[: _FANNED_OUT[handle.kind]]}/{handle.ident}"


def to_name(path: str) -> str:
    """The object at a path of the tree (to_path's inverse)."""
    for kind, width in _FANNED_OUT.items():
        if path.startswith(kind.prefix):
            fan, folder, ident = path[len(kind.prefix) :].partition("/")
            name = kind.prefix + ident
            if folder and fan == ident[:width] and Handle.parse_as(kind, name):
                return name
    return path


def _is_staged_kind(path: str) -> bool:
    return path.startswith(STAGED_PREFIXES)


# A hung server must not hang claude-sync (or a Claude Code hook) forever.
TIMEOUT_ENV = "CLAUDE_SYNC_GIT_TIMEOUT"


class GitStore(ObjectStore):
    # One clone, one git index: writes must not race each other.
    parallel_safe = False

    def __init__(self, url: str, branch: str | None, cache_dir: Path | None) -> None:
        self.url = url
        self.display = redact("git+" + url)
        self._wanted = branch
        self._tmp: Path | None = None
        if cache_dir is None:
            self._tmp = cache_dir = Path(tempfile.mkdtemp(prefix="claude-sync-git-"))
        self.git_dir = cache_dir / "git" / hashlib.sha256(url.encode()).hexdigest()
        self.branch = ""  # resolved on first use: that needs the network
        self._index = self.git_dir / "claude-sync.index"
        self._ready = False
        self._fetched_at = 0.0
        self._tree_cache: dict[str, str] | None = None
        self._last_reject = ""

    # -- running git ----------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env.update(_IDENTITY)
        env["GIT_DIR"] = str(self.git_dir)
        env["GIT_INDEX_FILE"] = str(self._index)
        env["LC_ALL"] = "C"  # messages we parse, in one language
        if not sys.stdin or not sys.stdin.isatty():
            env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password nobody can type
        return env

    def _git(
        self,
        *args: str,
        data: bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        cmd = ["git"]
        for key, value in _CONFIG.items():
            cmd += ["-c", f"{key}={value}"]
        try:
            proc = subprocess.run(
                [*cmd, *args],
                input=data,
                stdin=None if data is not None else subprocess.DEVNULL,
                capture_output=True,
                env=self._env(),
                timeout=timeout,
            )
        except FileNotFoundError:
            raise ConfigError("the git backend needs the `git` command; install git") from None
        except subprocess.TimeoutExpired:
            raise BackendError(
                f"git {args[0]} to {self.display} gave no answer within {timeout:g} s "
                f"(set {TIMEOUT_ENV} to wait longer)"
            ) from None
        if check and proc.returncode != 0:
            raise BackendError(
                f"git {args[0]} failed in the cache of {self.display}: {_tail(proc)}"
            )
        return proc

    def _out(self, *args: str, data: bytes | None = None) -> str:
        return self._git(*args, data=data).stdout.decode().strip()

    def _network(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """A command that talks to the remote: failures become one clear line."""
        timeout = float(os.environ.get(TIMEOUT_ENV, "300"))
        proc = self._git(*args, check=False, timeout=timeout)
        if proc.returncode != 0 and not (args[0] == "push" and b"\n!" in b"\n" + proc.stdout):
            raise self._network_error(proc)
        return proc

    def _network_error(self, proc: subprocess.CompletedProcess[bytes]) -> BackendError:
        detail = _tail(proc)
        if any(hint in detail.lower() for hint in _AUTH_HINTS):
            return BackendError(f"authentication to {self.display} failed: {detail}")
        return BackendError(f"cannot reach {self.display}: {detail}")

    # -- the clone ------------------------------------------------------------------------

    @property
    def _tracking_ref(self) -> str:
        return f"refs/remotes/origin/{self.branch}"

    def _ensure(self) -> None:
        """First use: make the clone, pick the branch and catch up with the remote."""
        if self._ready:
            return
        self._init_clone()
        # Always rebuilt: it also drops a snapshot a dead process staged but never pushed.
        self._advance(self._resolve_branch())
        self._ready = True

    def _init_clone(self) -> None:
        if not (self.git_dir / "HEAD").exists():
            self.git_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # An empty template: no sample hooks, nothing from the user's init.templateDir.
            self._git("init", "-q", "--bare", "--template=", str(self.git_dir))
        self._git("config", "remote.origin.url", self.url)

    def _resolve_branch(self) -> str | None:
        """Choose the branch; return its remote tip, fetched (None: no commit there yet)."""
        if self._wanted:
            if self._git("check-ref-format", f"refs/heads/{self._wanted}", check=False).returncode:
                raise ConfigError(f"invalid git branch name {self._wanted!r}")
            self.branch = self._wanted
            return self._fetch()
        # The branch found last time costs one fetch, not a look-up and a fetch.
        cached = self._git("config", "--get", BRANCH_KEY, check=False).stdout.decode().strip()
        if cached:
            self.branch = cached
            tip = self._fetch()
            if tip is not None:
                return tip
        tip = self._detect_branch()
        if tip is None:
            return None
        self._git("config", BRANCH_KEY, self.branch)
        return tip if tip == self._tracking() else self._fetch()

    def _detect_branch(self) -> str | None:
        """The remote's default branch (main when it has none yet) and its tip."""
        main = f"refs/heads/{DEFAULT_BRANCH}"
        out = self._network("ls-remote", "--symref", "origin", "HEAD", main)
        head_target = head_tip = main_tip = None
        for line in out.stdout.decode().splitlines():
            left, _, ref = line.partition("\t")
            if ref == "HEAD" and left.startswith("ref: refs/heads/"):
                head_target = left[len("ref: refs/heads/") :]
            elif ref == "HEAD":
                head_tip = left
            elif ref == main:
                main_tip = left
        # HEAD names the default branch once it has a commit. An empty remote gets main, and
        # so does one whose HEAD still points at an unborn branch while the data is on main.
        if head_target and head_tip:
            self.branch = head_target
            return head_tip
        self.branch = DEFAULT_BRANCH
        return main_tip

    def _tracking(self) -> str | None:
        proc = self._git("rev-parse", "--verify", "-q", self._tracking_ref, check=False)
        return proc.stdout.decode().strip() or None

    def _fetch(self) -> str | None:
        """Download the remote branch; its tip, or None when the branch does not exist."""
        refspec = f"+refs/heads/{self.branch}:{FETCHED_REF}"
        proc = self._git(
            "fetch", "-q", "--no-tags", "--no-write-fetch-head", "origin", refspec, check=False
        )
        if proc.returncode != 0:
            if b"couldn't find remote ref" in proc.stderr:
                return None
            raise self._network_error(proc)
        self._fetched_at = time.monotonic()
        return self._out("rev-parse", "--verify", FETCHED_REF)

    def _sync(self) -> None:
        self._advance(self._fetch())

    def _advance(self, tip: str | None) -> None:
        """Move the tracking ref to tip; rebuild the index as its tree + what is staged."""
        old = self._tracking()
        staged = self._staged(old)
        if staged and tip != old and self._config_blob(old) != self._config_blob(tip):
            # The remote now holds another repository (wiped and made again): what was staged
            # for the old one is sealed with the old key and must not go there.
            staged = {}
        if tip is None:
            self._git("update-ref", "-d", self._tracking_ref)
            self._git("read-tree", "--empty")
        else:
            self._git("update-ref", self._tracking_ref, tip)
            self._git("read-tree", tip)
        self._tree_cache = None
        tree = self._tree()
        self._apply({p: blob for p, blob in staged.items() if p not in tree})

    def _config_blob(self, commit: str | None) -> str | None:
        if commit is None:
            return None
        proc = self._git("rev-parse", "--verify", "-q", f"{commit}:config", check=False)
        return proc.stdout.decode().strip() or None

    # -- the index: the remote tree plus staged objects -------------------------------------

    def _staged(self, base: str | None) -> dict[str, str]:
        """Pack and index objects in the index that the commit `base` lacks."""
        out = self._git(
            "diff-index", "--cached", "--no-renames", "--diff-filter=A", "-z", base or EMPTY_TREE
        ).stdout.decode()
        fields = out.split("\0")
        staged = {}
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            if meta and _is_staged_kind(path):
                staged[path] = meta.split()[3]
        return staged

    def _apply(self, changes: Mapping[str, str | None]) -> None:
        """Add (blob id) or remove (None) index entries."""
        if not changes:
            return
        lines = []
        for path, blob in changes.items():
            if blob is None:
                lines.append(f"0 {'0' * 40}\t{path}\0")
            else:
                lines.append(f"100644 {blob}\t{path}\0")
        self._git("update-index", "-z", "--index-info", data="".join(lines).encode())
        if self._tree_cache is not None:
            for path, blob in changes.items():
                if blob is None:
                    self._tree_cache.pop(path, None)
                else:
                    self._tree_cache[path] = blob

    def _tree(self) -> dict[str, str]:
        """Path -> blob id of every entry in the index."""
        if self._tree_cache is None:
            out = self._git("ls-files", "-s", "-z").stdout.decode()
            tree = {}
            for entry in out.split("\0"):
                if entry:
                    meta, _, path = entry.partition("\t")
                    tree[path] = meta.split()[1]
            self._tree_cache = tree
        return self._tree_cache

    # -- publishing -----------------------------------------------------------------------

    def _publish(self, changes: Mapping[str, str | None], create: str | None) -> bool:
        """Commit the index and push it; False when `create` (a path) was taken meanwhile.

        `changes` are the index edits this call is about: they are laid again on top of the
        remote's newer tree after a rejected push, as are the staged pack and index objects.
        """
        for attempt in range(PUSH_ATTEMPTS):
            base = self._tracking()
            tree = self._out("write-tree")
            if tree == (self._out("rev-parse", f"{base}^{{tree}}") if base else EMPTY_TREE):
                return True
            parents = ["-p", base] if base else []
            commit = self._out("commit-tree", "--no-gpg-sign", "-m", "claude-sync", *parents, tree)
            if self._push(commit):
                self._git("update-ref", self._tracking_ref, commit)
                self._fetched_at = time.monotonic()  # the remote was at our commit just now
                return True
            self._sync()
            if self._tracking() == base:
                raise BackendError(f"{self.display} refused the push: {self._last_reject}")
            if create is not None and create in self._tree():
                return False
            self._apply(changes)
            # Other machines are pushing right now: step aside a little, differently each time.
            time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))
        raise BackendError(
            f"pushing to {self.display} failed: retries exhausted (other machines kept pushing)"
        )

    def _push(self, commit: str) -> bool:
        """True when the remote took the commit; False when it refused it (maybe CAS)."""
        proc = self._network("push", "--porcelain", "origin", f"{commit}:refs/heads/{self.branch}")
        if proc.returncode == 0:
            return True
        lines = [line for line in proc.stdout.decode().splitlines() if line.startswith("!")]
        self._last_reject = lines[0].split("\t")[-1] if lines else _tail(proc)
        return False

    # -- ObjectStore ------------------------------------------------------------------------

    write_probe = "git: checked by each push (fetch works); non-fast-forward pushes are refused"

    def probe_writes(self) -> bool:
        # A probe would add two commits to the history forever; push access is proven by
        # every push, and a non-fast-forward push is always refused (Git's compare-and-swap).
        self._ensure()
        return True

    def prepare(self, create: bool) -> None:
        # Reachability and read access: the first push (the config object) proves write access.
        self._ensure()

    def get(self, name: str) -> bytes:
        self._ensure()
        blob = self._tree().get(to_path(name))
        if blob is None:
            raise ObjectNotFoundError(f"object {name} is missing from {self.display}")
        return self._git("cat-file", "blob", blob).stdout

    def put_if_absent(self, name: str, data: bytes) -> bool:
        self._ensure()
        path = to_path(name)
        if path in self._tree():
            return False
        blob = self._out("hash-object", "-w", "--no-filters", "--stdin", data=data)
        self._apply({path: blob})
        if _is_staged_kind(path):
            return True
        try:
            return self._publish({path: blob}, create=path)
        except BaseException:
            self._advance(self._tracking())  # un-stage what was not pushed
            raise

    def _list(self, prefix: str, start_after: str) -> list[str]:
        if not self._ready:
            self._ensure()
        elif prefix == SNAPSHOTS_PREFIX and time.monotonic() - self._fetched_at > FRESH_SECONDS:
            self._sync()
        names = (to_name(path) for path in self._tree())
        return [name for name in names if name.startswith(prefix)]

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        # Git keeps no time it can vouch for: commit dates are fixed (they would reveal when
        # the user worked) and any pusher could set them anyway.
        self._list(prefix, "")
        paths = {to_name(p): p for p in self._tree()}
        names = [name for name in paths if name.startswith(prefix)]
        if not names:
            return []
        blobs = "".join(self._tree()[paths[n]] + "\n" for n in names).encode()
        sizes = self._out("cat-file", "--batch-check=%(objectsize)", data=blobs).split()
        return [ObjectInfo(n, int(size), None) for n, size in zip(names, sizes, strict=True)]

    def delete(self, name: str) -> None:
        self.delete_many([name])

    def delete_many(self, names: list[str]) -> None:
        """One commit and one push for all of them."""
        self._ensure()
        tree = self._tree()
        changes: dict[str, str | None] = {p: None for p in map(to_path, names) if p in tree}
        if not changes:
            return
        self._apply(changes)
        try:
            self._publish(changes, create=None)
        except BaseException:
            self._advance(self._tracking())
            raise

    def close(self) -> None:
        try:
            # Staged packs are pushed even when no snapshot followed them (a file changed
            # while being pushed, or the engine failed): the local state counts them as sent.
            if self._ready and self._staged(self._tracking()):
                self._publish({}, create=None)
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None


def _tail(proc: subprocess.CompletedProcess[bytes]) -> str:
    """git's own explanation, on one line and without credentials."""
    lines = []
    for raw in proc.stderr.decode(errors="replace").splitlines():
        line = raw.strip()
        for prefix in ("fatal: ", "error: ", "remote: "):
            line = line.removeprefix(prefix)
        if line and not line.lower().startswith(_GENERIC_LINES):
            lines.append(line)
    text = "; ".join(lines) or f"git exited with status {proc.returncode}"
    return redact(text)[:300]
