"""One session as a file (`export` / `import`), e.g. to hand to a colleague.

The archive is a gzip'd tar holding `claude-sync-session.json` and the session's files under
their logical paths (project folders home-relative), so `import` places them where Claude
Code looks on the receiving machine. It is NOT encrypted: it is meant to leave your hands.
"""

from __future__ import annotations

import glob
import io
import json
import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from claude_sync import limits, resources
from claude_sync.durable import write_atomically
from claude_sync.errors import ConfigError, CorruptionError
from claude_sync.pathmap import PathMapper

MANIFEST = "claude-sync-session.json"
MAX_MEMBER = 1 << 31


def _session_files(root: Path, session: str) -> list[str]:
    """Local paths of the session's transcript and its sub-agent folder."""
    found = []
    for transcript in sorted((root / "projects").glob(f"*/{glob.escape(session)}.jsonl")):
        found.append(transcript.relative_to(root).as_posix())
        folder = transcript.with_suffix("")
        if folder.is_dir():
            found += sorted(
                p.relative_to(root).as_posix() for p in folder.rglob("*") if p.is_file()
            )
    return found


def _session_id(root: Path, query: str) -> str:
    """The local session an id or a unique id prefix names (as `resume` takes them)."""
    ids = {t.stem for t in (root / "projects").glob("*/*.jsonl")}
    if query in ids:
        return query
    matches = sorted(i for i in ids if query and i.startswith(query))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(f"{query!r} names several sessions: {', '.join(matches[:5])}")
    raise ConfigError(f"no session {query} under {root / 'projects'}")


def export_session(root: Path, mapper: PathMapper, query: str, target: Path) -> int:
    """Write the session matching query (all its files, logical paths) to target as a
    .tar.gz archive; returns how many files it holds."""
    session = _session_id(root, query)
    files = _session_files(root, session)
    manifest = {"format": 1, "session": session, "files": [mapper.to_logical(f) for f in files]}

    def write(fh: BinaryIO) -> None:
        with tarfile.open(fileobj=fh, mode="w:gz") as tar:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for local, logical in zip(files, manifest["files"], strict=True):
                tar.add(root / local, arcname=logical, recursive=False, filter=_anonymous)

    write_atomically(target, write, prefix=f".{target.name}.tmp-")
    return len(files)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """The archive leaves the user's hands: it names no user or group of theirs."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def import_session(
    root: Path, mapper: PathMapper, sel: resources.Selection, source: Path, force: bool
) -> list[str]:
    """Write the archive's files into place; refuse to change a different existing file.
    Only session files this machine syncs are accepted (the check every incoming path
    passes), within the size limits of a pull."""
    try:
        with tarfile.open(source, mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            manifest = json.loads(_read(tar, members[MANIFEST]))
            logical = [str(p) for p in manifest["files"]]
            for path in logical:
                rtype = resources.type_of(path)
                if rtype is None or rtype.name != "sessions" or not sel.covers(path):
                    raise CorruptionError(
                        f"{source} holds a path that is not a session file: {path}"
                    )
            limits.check_room(((p, members[p].size) for p in logical), root)
            contents = {p: _read(tar, members[p]) for p in logical}
            mtimes = {p: members[p].mtime for p in logical}
    except (OSError, tarfile.TarError, KeyError, ValueError, TypeError, EOFError):
        raise CorruptionError(f"{source} is not a claude-sync session archive") from None
    targets = {p: root / mapper.to_local(p) for p in logical}
    clashes = [
        p for p, dest in targets.items() if dest.exists() and dest.read_bytes() != contents[p]
    ]
    if clashes and not force:
        raise ConfigError(f"{clashes[0]} exists here with other content; use --force")
    for path, dest in targets.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        mtime = mtimes[path]

        def keep_mtime(tmp: Path, mtime: float = mtime) -> bool:
            os.utime(tmp, (mtime, mtime))
            return True

        write_atomically(
            dest,
            contents[path],
            prefix=f".{dest.name}{resources.TMP_MARKER}-",
            before_rename=keep_mtime,
        )
    return [mapper.to_local(p) for p in logical]


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if not member.isfile() or member.size > MAX_MEMBER:
        raise ValueError(member.name)
    fh = tar.extractfile(member)
    if fh is None:
        raise ValueError(member.name)
    return fh.read()
