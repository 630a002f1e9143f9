"""Merges: a pull's files changed on both sides (transcripts and history are unions,
JSON merges by key, text by diff3), asked about or settled by the strategy when they do not
merge; and a push's, which merges what merges automatically before it sends (a transcript
rewritten here without records the repository holds gets them back first)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from claude_sync import identity, settings_trust
from claude_sync.identity import NewFileHash
from claude_sync.merge import (
    HISTORY_PATH,
    is_transcript,
    merge_file,
    merge_keys,
    restore_records,
    split_unfinished,
)
from claude_sync.planner import Conflict, LocalFile, LocalView, Merge, Plan, settle_conflict
from claude_sync.planner import conflict as make_conflict
from claude_sync.repository import FileEntry

if TYPE_CHECKING:
    from claude_sync.engine import Engine, Result

#: why a transcript rewritten without records is not pushed this time
REWRITTEN_MEANWHILE = "it changed while its records were being put back; the next push tries again"


def unavailable(plan: Plan, result: Result, path: str, why: str) -> None:
    """A file the pull leaves as it is here because its remote data cannot be had."""
    result.unavailable.append(path)
    result.warnings.append(f"{path} could not be downloaded: {why}")
    plan.skipped.append(path)


def why_lost(lost: dict[str, str], entry: FileEntry) -> str:
    return next((lost[b] for b, _ in entry.chunks if b in lost), "its data is in no index")


def staged_content(staging: Path, entry: FileEntry | None) -> bytes | None:
    """A file's bytes from staged blobs; None when unknown or some blob is not there."""
    if entry is None:
        return None
    try:
        return b"".join((staging / blob).read_bytes() for blob, _ in entry.chunks)
    except FileNotFoundError:
        return None


def synced_id(new_hash: NewFileHash, transcript: bytes) -> str:
    """The identity a scan gives a transcript with these bytes read anew: of its whole
    records, not the one still being written."""
    return identity.of(new_hash, split_unfinished(transcript)[0])


def synced_part(path: str, scanned: LocalFile, data: bytes) -> bytes:
    """What of data, read from the file now, the scan hashed if it did not change since (a
    record still being written at its end is not part of that)."""
    if scanned.unfinished:
        return data[: scanned.entry().size]
    if path == HISTORY_PATH:
        return split_unfinished(data)[0]
    return data


def as_scanned(new_hash: NewFileHash, path: str, scanned: LocalFile, data: bytes) -> bool:
    """Whether data, read from the file now, is what the scan hashed."""
    synced = synced_part(path, scanned, data)
    return identity.of(new_hash, synced, scanned.sha256) == scanned.sha256


class Merges:
    """The engine's merges."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def for_pull(self, plan: Plan, result: Result) -> None:
        """Try the automatic merges; what does not merge cleanly becomes a conflict."""
        if not plan.merges:
            return
        entries = [e for _, base, remote in plan.merges.values() for e in (base, remote) if e]
        lost: dict[str, str] = {}
        staging = self.engine.downloads.fetch_blobs(
            entries, result, allow_missing=True, lost=lost, merges=plan.merges
        )
        try:
            self._staged(plan, staging, result, lost)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _staged(self, plan: Plan, staging: Path, result: Result, lost: dict[str, str]) -> None:
        """Merge each file with the staged remote (and base) versions. A file whose remote
        version could not be had is left as it is here, unpulled: merged with nothing, its
        remote records would be taken for deleted. A missing base only makes the merge
        more cautious."""
        for path, (local_file, base, remote) in plan.merges.items():
            try:
                local_bytes = self.engine.reader.logical_bytes(path, local_file.abspath)
            except OSError:
                plan.skipped.append(path)
                continue
            if not as_scanned(self.engine.repo.keys.file_hash, path, local_file, local_bytes):
                result.warnings.append(
                    f"{path} changed during the pull; it goes with the next sync"
                )
                plan.skipped.append(path)
                continue
            remote_bytes = staged_content(staging, remote)
            if remote_bytes is None:
                unavailable(plan, result, path, why_lost(lost, remote))
                continue
            base_bytes = staged_content(staging, base)
            merged = merge_file(path, base_bytes, local_bytes, remote_bytes)
            if merged is None and plan.strategy == "ask":
                conflict = make_conflict(path, local_file, base, remote, plan.head)
                merged = self._ask(plan, conflict, local_bytes, remote_bytes, base_bytes)
            if merged is None and plan.strategy != "both":
                # A JSON file: only the keys changed on both sides conflict (a strategy
                # settles just those); the rest merges.
                by_key = merge_keys(path, base_bytes, local_bytes, remote_bytes, plan.strategy)
                if by_key is not None:
                    merged, keys = by_key
                    if plan.strategy == "ask":
                        plan.merged[path] = (merged, remote)
                        plan.unsettled[path] = keys
                        continue
            if merged is None:
                settle_conflict(plan, path, local_file, base, remote)
            elif merged == local_bytes:
                plan.adopt[path] = remote
            elif (
                identity.of(self.engine.repo.keys.file_hash, merged, remote.sha256) == remote.sha256
                and path not in self.engine.filters
            ):
                plan.write[path] = remote
            else:
                # A filtered file is written from the merge even when it gives the remote
                # version: the blobs staged for it are gone by the time plan.write is
                # downloaded, and a prompt history's new prompts would come twice. (Not a
                # transcript: installed, it takes the remote's time, which the session
                # window goes by; and a merge of one that gives the remote is rare.)
                plan.merged[path] = (merged, remote)

    def _ask(
        self, plan: Plan, conflict: Conflict, local: bytes, remote: bytes, base: bytes | None
    ) -> bytes | None:
        """The user's decision as merged bytes, or None to fall back to a strategy."""
        by_key = merge_keys(conflict.path, base, local, remote, "local")
        conflict.keys = None if by_key is None else by_key[1]
        answer = self.engine.reporter.resolve(conflict, local, remote, base)
        if isinstance(answer, bytes):
            return answer
        if answer in ("local", "remote"):
            # A JSON file: the answer settles the keys named; the other keys merge.
            settled = merge_keys(conflict.path, base, local, remote, answer)
            if settled is not None:
                return settled[0]
            return local if answer == "local" else remote
        if answer == "both":
            # Keep the local version, the remote one beside it, and count it as settled.
            plan.copies[conflict.path] = plan.merges[conflict.path].remote
            return local
        return None

    def keep_unsettled(self, plan: Plan) -> None:
        """A JSON file merged but for keys changed differently on both sides: the merge is
        written here, the base stays, and those keys wait as a conflict for `resolve`."""
        for path, keys in plan.unsettled.items():
            local_file, base, remote = plan.merges[path]
            data, _ = plan.merged.pop(path)
            conflict = make_conflict(path, local_file, base, remote, plan.head)
            new_hash = self.engine.repo.keys.file_hash
            if identity.of(new_hash, data, local_file.sha256) != local_file.sha256:
                plan.held[path] = data
                conflict.local_sha256 = identity.of(new_hash, data)
            conflict.keys = keys
            plan.conflicts.append(conflict)

    def before_push(
        self, plan: Plan, local: LocalView, result: Result
    ) -> tuple[bool, dict[str, str], dict[str, str]]:
        """Files another machine changed too that merge automatically (a transcript's
        records, history lines, text changed in different places) are merged here first, as
        sync would, so the push sends the merge instead of calling it a conflict. What does
        not merge stays a conflict for `sync`; settings.json waits for a pull, which asks
        before applying keys that run code. Returns whether a merge was written; the
        transcripts merged or found to lack no record, each with the content hash a scan
        sees while it stays so; and the rewritten transcripts (see rewritten_transcripts)
        that could not be merged, with why."""
        head = plan.head
        if head is None:
            return False, {}, {}
        unreadable = (
            "the repository's version cannot be read now: if it is damaged, `claude-sync "
            "repair` on a machine that has it"
        )
        why: dict[str, str] = {}
        read: set[str] = set()  # the files here that could be read for their merge
        rewritten = self.rewritten_transcripts(plan)
        todo = dict(rewritten)
        if plan.conflicts:
            bases = self.engine.state.bases()
            todo |= {
                c.path: Merge(local.files[c.path], bases.get(c.path), head.files[c.path])
                for c in plan.conflicts
                if c.path in local.files and c.path in head.files and c.path != settings_trust.PATH
            }
        if not todo:
            return False, {}, {}
        wrote = False
        checked: dict[str, str] = {}
        new_hash = self.engine.repo.keys.file_hash
        # What cannot be had (a damaged pack) is not merged: it stays a conflict for sync.
        with self.inputs(todo, result, {}) as inputs:
            for path, (local_file, _, remote), local_bytes, base_bytes, remote_bytes in inputs:
                read.add(path)
                if remote_bytes is None:
                    why[path] = unreadable
                    continue
                if not as_scanned(new_hash, path, local_file, local_bytes):
                    continue
                if path in rewritten:
                    merged = restore_records(local_bytes, remote_bytes)
                    if merged == local_bytes:
                        del rewritten[path]  # edited here, no record lost: pushed as it is
                        checked[path] = synced_id(new_hash, local_bytes)
                        continue
                else:
                    merged = merge_file(path, base_bytes, local_bytes, remote_bytes)
                if merged is None:
                    continue
                if merged == local_bytes or self.engine.installer.write_merged(
                    path, merged, local_file, result, remote
                ):
                    with self.engine.state.transaction():
                        self.engine.state.set_base(path, remote, head.seq)
                    wrote = True
                    if is_transcript(path):
                        checked[path] = synced_id(new_hash, merged)
                    if rewritten.pop(path, None) is not None:
                        result.pulled.remove(path)  # nothing new came: records came back
                        result.warnings.append(
                            f"{path} was missing records the repository holds: put back (a "
                            "transcript loses no record through a push; edit one to change it)"
                        )
        unread = "it cannot be read here now"
        return (
            wrote,
            checked,
            {
                path: why.get(path) or (REWRITTEN_MEANWHILE if path in read else unread)
                for path in rewritten
            },
        )

    def rewritten_transcripts(self, plan: Plan) -> dict[str, Merge]:
        """Transcripts to upload whose version here does not begin with the one in the
        repository (which is their base): records were dropped here (Claude Code rewrote
        the file from what it held, without records that arrived meanwhile), and a plain
        push would drop them everywhere. They are merged with the repository's version
        first, as a transcript changed on both sides is: no record is lost."""
        head = plan.head
        rewritten = {}
        for path, mine in plan.upload.items():
            stored = head.files.get(path) if head is not None else None
            if mine.append_only and stored is not None and not self._extends(mine, stored):
                rewritten[path] = Merge(mine, stored, stored)
        return rewritten

    def _extends(self, mine: LocalFile, stored: FileEntry) -> bool:
        """Whether the file here begins with stored's bytes: their chunks but the last
        are its first chunks (an append keeps them), and the bytes where stored's last
        chunk lies have that chunk's id. Reads at most one chunk."""
        if mine.path in self.engine.filters or mine.entry().size < stored.size:
            return False
        if not stored.chunks:
            return True
        located = stored.located_chunks()
        if tuple(mine.cached.chunks[: len(located)]) == located:
            return True  # the scan kept every chunk (an append after a long last chunk)
        *before, (last_id, offset, length) = located
        if tuple(mine.cached.chunks[: len(before)]) != tuple(before):
            return False
        try:
            with open(mine.abspath, "rb") as fh:
                fh.seek(offset)
                data = fh.read(length)
        except OSError:
            return True  # unreadable now: the upload reports it
        return len(data) == length and self.engine.repo.keys.blob_id(data) == last_id

    @contextlib.contextmanager
    def inputs(
        self, merges: dict[str, Merge], result: Result, lost: dict[str, str]
    ) -> Iterator[Iterator[tuple[str, Merge, bytes, bytes | None, bytes | None]]]:
        """The versions each merge needs, staged: (path, merge, local bytes, base bytes,
        remote bytes), base or remote None when not to be had (see lost). A file that
        cannot be read here now is left out."""
        entries = [e for _, base, remote in merges.values() for e in (base, remote) if e]
        staging = self.engine.downloads.fetch_blobs(
            entries, result, allow_missing=True, lost=lost, merges=merges
        )

        def inputs() -> Iterator[tuple[str, Merge, bytes, bytes | None, bytes | None]]:
            for path, merge in merges.items():
                try:
                    local_bytes = self.engine.reader.logical_bytes(path, merge.local.abspath)
                except OSError:
                    continue
                base, remote = (
                    staged_content(staging, merge.base),
                    staged_content(staging, merge.remote),
                )
                yield path, merge, local_bytes, base, remote

        try:
            yield inputs()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
