"""`resume`: find a conversation in the catalog, bring its files where Claude Code looks for
them on this machine, and start `claude --resume` in its project's directory."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from claude_sync import catalog, durable
from claude_sync.catalog import SessionInfo
from claude_sync.engine import Engine, Result
from claude_sync.errors import ConfigError, SyncError
from claude_sync.merge import restore_records
from claude_sync.pathmap import BESIDE_HOME, PROJECTS, TOO_LONG, claude_folder
from claude_sync.repository import Snapshot
from claude_sync.resources import CONFLICT_MARKER, TMP_MARKER, select
from claude_sync.session_policy import SessionPolicy
from claude_sync.session_summary import summarize

#: candidates named in an error about an ambiguous choice
SHOWN = 10
#: how much of a transcript's end is read for the directory it last ran in
TAIL = 1 << 16


def pick(
    sessions: list[SessionInfo],
    query: str,
    choose: Callable[[list[SessionInfo]], SessionInfo] | None,
) -> SessionInfo:
    """The session an id, a unique id prefix, or title words name. Several candidates are
    handed to choose (a question on a terminal), or are an error naming them."""
    exact = [s for s in sessions if s.id == query]
    by_prefix = exact or [s for s in sessions if query and s.id.startswith(query)]
    words = query.casefold().split()
    candidates = by_prefix or [
        s for s in sessions if words and all(w in s.title.casefold() for w in words)
    ]
    if not candidates:
        raise ConfigError(f"no session matches {query!r} (see `claude-sync sessions`)")
    if len({s.id for s in candidates}) == 1:
        return candidates[0]  # newest first: the copy updated last
    if choose is not None:
        return choose(candidates)
    listed = "; ".join(f"{s.id} {s.title!r} in {s.project}" for s in candidates[:SHOWN])
    more = f" and {len(candidates) - SHOWN} more" if len(candidates) > SHOWN else ""
    raise ConfigError(
        f"{len(candidates)} sessions match {query!r}: {listed}{more}; give more of the id"
    )


def place(
    engine: Engine,
    head: Snapshot,
    info: SessionInfo,
    cwd: Path | None,
    remember_move: Callable[[list[str]], None],
    placed_in: str | None = None,
) -> Path:
    """Bring the session's missing files into the project folder Claude Code reads for the
    directory it will run in, fresh enough for Claude Code's clean-up to keep them; return
    that directory. When that is another project's folder, remember_move gets [local folder,
    logical folder, directory] (kept for the mapper's `moved`) before anything is written:
    the files there stay that session's and sync with it, never as a copy in another
    project; [] when the session goes back to its own. placed_in: the directory an earlier
    `--cwd` placed it in, where it is resumed again (its files are there)."""
    if not info.cwd:  # pushed by an older claude-sync: the transcript says where it ran
        info.cwd = summarize(catalog.transcript_bytes(engine, info), "").cwd
        info.directory = catalog.local_directory(engine, info.folder, info.cwd)
    moved = engine.mapper.moved.get(info.id)
    if (
        cwd is None
        and moved is None
        and info.directory is not None
        and engine.mapper.too_long_here(info.folder)
        and engine.mapper.folder_to_local(info.folder) == info.folder
    ):
        # Its folder's name here is too long for the mapper: placed in the one Claude Code
        # cuts it to, as in another project's folder (remembered, and synced from there).
        cwd = info.directory
    if cwd is None and moved is not None:
        if placed_in is None:
            # Moved by a claude-sync that did not remember the directory: Claude Code's own
            # records there say where it went on.
            placed_in = _ran_in(engine.local_path(info.path), moved[0])
            if placed_in is not None:
                remember_move([*moved, placed_in])
        if placed_in is None or claude_folder(os.path.realpath(placed_in)) != moved[0]:
            raise SyncError(
                f"session {info.id} was placed in another project's folder here by `resume "
                "--cwd`: give --cwd with that directory again"
            )
        if not os.path.isdir(placed_in):
            raise SyncError(
                f"session {info.id} was placed for {placed_in} by `resume --cwd`, which is "
                "gone: give --cwd DIR (its project's directory, or another) to go on there"
            )
        cwd = Path(placed_in)
    if cwd is not None:
        if not cwd.is_dir():
            raise ConfigError(f"--cwd {cwd} is not a directory")
        directory = Path(os.path.realpath(cwd))
        local_folder = claude_folder(str(directory))
        was = engine.local_path(info.path).parent
        if engine.mapper.folder_to_logical(local_folder) != info.folder:
            remember_move([local_folder, info.folder, str(directory)])
            engine.mapper.moved[info.id] = (local_folder, info.folder)
        elif engine.mapper.moved.pop(info.id, None) is not None:
            remember_move([])  # back in its own project's folder: no move to remember
        now = engine.local_path(info.path).parent
        try:
            _move_session(was, now, info.id)
        except OSError as exc:
            raise SyncError(
                f"the files of session {info.id} could not all be moved from {was} to {now} "
                f"({exc.strerror or exc}): move what is left there by hand, then resume again"
            ) from None
    elif info.directory is None:
        label = engine.mapper.unmapped_label(f"{PROJECTS}{info.folder}/")
        if label == BESIDE_HOME:
            raise SyncError(
                f"session {info.id} is in a project of another machine's home whose folder "
                "name here Claude Code also gives a folder beside your home: give --cwd DIR "
                "to resume it (DIR: where that project is on this machine)"
            )
        if label not in (None, "~", TOO_LONG):
            raise SyncError(
                f"session {info.id} is in project {info.folder}, whose label {label!r} no "
                f"folder here is mapped to: `claude-sync map DIR {label}` (DIR: where those "
                "projects are on this machine), or give --cwd DIR to resume it elsewhere"
            )
        here = catalog.expected_directory(engine, info.folder, info.cwd)
        raise SyncError(
            f"the project directory of session {info.id} ({here}) does not exist on this "
            "machine; create it, or give --cwd DIR to resume it elsewhere"
        )
    else:
        directory = info.directory
    folder = engine.local_path(info.path).parent
    if folder.is_dir() and not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        # (Left another user's by a `sudo claude`, typically.)
        raise SyncError(
            f"session {info.id} goes in {folder}, which this user cannot read or write: "
            "give it back (`sudo chown -R $USER` it), or give --cwd DIR to resume it elsewhere"
        )
    files = info.files
    engine.sessions = SessionPolicy(window=None, cleanup=0.0)  # every placed file: now
    here = [path for path in files if engine.local_path(path).exists()]
    engine.fetch(head, files, Result())
    if here:
        # A copy here may be behind the repository (continued on another machine since):
        # a pull of just its files brings it up to date, merged with what was added here,
        # so Claude Code goes on from the newest records.
        only = tuple(engine.mapper.to_local(path) for path in files)
        engine.pull(replace(select(["sessions"], {}), only=only), "local", complete=False)
    for path in files:
        target = engine.local_path(path)
        if target.is_file():
            os.utime(target)  # files that were here already may be as old
    return directory


def _move_session(old: Path, new: Path, session: str) -> None:
    """The session's files here (a pull put them in its project's folder `old`, or an
    earlier `--cwd` another) go to the folder `new` it is resumed from: left behind, a copy
    would be the same session under a second name, and what it got would never sync. All of
    them, those no push took yet too: `<id>.jsonl` and everything under `<id>/`. A file
    already there (a copy an older claude-sync left) keeps every record of both; another
    file that differs keeps this one beside it as a conflict copy, which never syncs. The
    folders of its own this empties go; the project's folder stays."""
    if old == new:
        return
    files = [old / f"{session}.jsonl"] if (old / f"{session}.jsonl").is_file() else []
    own = old / session
    if own.is_dir():
        files += sorted(p for p in own.rglob("*") if p.is_file() and not p.is_symlink())
    for source in files:
        target = new / source.relative_to(old)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.replace(source, target)
            continue
        mine, theirs = source.read_bytes(), target.read_bytes()
        # (A transcript with a record still being written is not merged: that half record
        # would be lost. It stays beside, as any other file that differs.)
        if mine != theirs and target.suffix == ".jsonl" and mine.endswith(b"\n"):
            merged = restore_records(theirs, mine)
            durable.write_atomically(target, merged, prefix=f"{TMP_MARKER}-")
        elif mine != theirs:
            os.replace(source, target.with_name(f"{target.name}{CONFLICT_MARKER}-resume"))
            continue
        source.unlink()
    for folder in sorted((p for p in own.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # emptied, unless something else is there
    with contextlib.suppress(OSError):
        own.rmdir()


def command(directory: Path, session: str) -> str:
    """The shell command that resumes session in directory, quoted for copying."""
    return f"cd {shlex.quote(str(directory))} && claude --resume {shlex.quote(session)}"


def run_claude(directory: Path, session: str) -> None:
    """Replace this process with Claude Code resuming the session in directory."""
    os.chdir(directory)
    try:
        os.execvp("claude", ["claude", "--resume", session])
    except OSError as exc:
        raise SyncError(
            f"cannot start Claude Code ({exc.strerror}); run: {command(directory, session)}"
        ) from None


def _ran_in(transcript: Path, local_folder: str) -> str | None:
    """The directory whose project folder is local_folder that the transcript's last
    records ran in (their `cwd`), if it is still here."""
    try:
        with transcript.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - TAIL))
            tail = fh.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            cwd = json.loads(line).get("cwd")
        except (ValueError, AttributeError):
            continue  # the cut first line, or a record that is not an object
        if isinstance(cwd, str) and claude_folder(os.path.realpath(cwd)) == local_folder:
            return cwd if os.path.isdir(cwd) else None
    return None
