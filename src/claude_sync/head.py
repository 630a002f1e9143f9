"""The head: the newest snapshot as this machine accepts it (one that does not continue
what it saw is a rollback or a fork, refused unless asked for), what it has seen of the
history, and the snapshots its pushes write, recorded with a journal so that one written
by a push killed before recording it is still taken for this machine's own."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from claude_sync import chain, kept_head, memory
from claude_sync.config import write_private
from claude_sync.errors import HistoryError, ObjectNotFoundError
from claude_sync.planner import LocalFile, Plan
from claude_sync.planner import sha as _sha
from claude_sync.repository import ChangedFiles, FileEntry, Snapshot, SnapshotRoot
from claude_sync.session_policy import is_main_transcript

if TYPE_CHECKING:
    from claude_sync.engine import Engine, Result

#: in the config dir: why the last look at the remote history was refused. Kept until a look
#: passes, so what a hook could only log reaches the user (next command, `doctor`).
HISTORY_ALARM = "history-alarm"
#: in the state: the selection (types, globs) of the last complete pull, or ANY_SELECTION
#: while the head holds nothing but this machine's pushes
PULLED_SELECTION = "pulled_selection"
ANY_SELECTION = "*"


class Head:
    """The engine's head."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read_last: Snapshot | None = None

    def root(self) -> SnapshotRoot | None:
        """The newest snapshot's authenticated root. One that does not continue the history
        this machine has seen (an older one: rollback; one whose chain misses the snapshot
        seen last: fork) is refused unless allow_rollback; the refusal is kept for `doctor`
        and the next command, since hooks only log it. Only an authenticated root is
        remembered: a junk name in the listing cannot move what this machine expects."""
        self._finish_killed_push()
        seen = int(self.engine.state.get_meta("seen_seq") or 0)
        seen_id = self.engine.state.get_meta("seen_id")
        root, read = self._newest_root(seen, seen_id)
        problem = None
        if root is None or root.seq < seen:
            if seen:
                problem = (
                    f"the repository's newest snapshot is {root.seq if root else 'none'}, but "
                    f"this machine has already seen snapshot {seen}: the storage is serving "
                    "old data (rollback)"
                )
        elif seen and seen_id and not chain.descends(self.engine.repo, root, seen, seen_id):
            problem = (
                f"the repository's newest snapshot {root.seq} does not continue the history "
                f"this machine has seen (snapshot {seen} is not among its ancestors): the "
                "storage dropped or replaced snapshots (fork)"
            )
        if problem is not None:
            if not self.engine.allow_rollback:
                message = (
                    f"{problem}; nothing was changed here. If the repository is right, "
                    "`claude-sync sync --allow-rollback` keeps this machine's changes and "
                    "merges them into it"
                )
                write_private(self.engine.work_dir / HISTORY_ALARM, message.encode())
                raise HistoryError(message)
            if root is not None:
                self._rebase_on(root, seen, seen_id)
        if root is not None:
            self.remember(root)
        if read is not None:
            kept_head.save(self.engine.state, read)
        (self.engine.work_dir / HISTORY_ALARM).unlink(missing_ok=True)
        return root

    def _newest_root(
        self, seen: int, seen_id: str | None
    ) -> tuple[SnapshotRoot | None, kept_head.KeptHead | None]:
        """The newest snapshot's authenticated root; with its bytes to keep when they were
        read from the store (see kept_head)."""
        kept = kept_head.load(self.engine.state)
        glance = None if kept is None or kept.seq != seen else self.engine.repo.glance(seen)
        if glance is None:
            newest = self.engine.repo.newest(seen)
        else:
            assert kept is not None
            root = kept_head.still_head(self.engine.repo, kept, (seen, seen_id), glance)
            if root is not None:
                return root, None
            # Not the kept head: the store is checked as before (a repository emptied or
            # replaced says so, not "rollback").
            self.engine.repo.connect()
            newest = glance[0]
        if newest is None:
            return None, None
        seq, tag = newest
        sealed = self.engine.repo.sealed_root(seq)
        read = None if tag is None else kept_head.KeptHead(seq, tag, sealed)
        return self.engine.repo.open_root(seq, sealed), read

    def remember(self, root: SnapshotRoot | Snapshot) -> None:
        """Take this snapshot (and, through its chain, its parent) as seen."""
        if (
            self.engine.state.get_meta("seen_id") == root.id
            and self.engine.state.get_meta(HISTORY_ALARM) is None
        ):
            return
        with self.engine.state.transaction():
            self.engine.state.set_meta("seen_seq", str(root.seq))
            self.engine.state.set_meta("seen_id", root.id)
            self.engine.state.add_known_snapshot(root.seq, root.id)
            if root.parent is not None and root.parent_id is not None:
                self.engine.state.add_known_snapshot(root.parent, root.parent_id)

    def _rebase_on(self, root: SnapshotRoot, seen: int, seen_id: str | None) -> None:
        """Accept a head that does not continue what this machine saw (asked for with
        allow_rollback). What this machine took from snapshots outside the head's history
        must not look synced, or a pull would replace it: its merge base becomes the newest
        common snapshot's version, or none, so it is pushed or merged as a local change."""
        known = self.engine.state.known_snapshots()
        if seen_id:
            known.add((seen, seen_id))
        common = chain.fork_point(self.engine.repo, root, known)
        ancestor: Snapshot | None = None
        if common:
            with contextlib.suppress(ObjectNotFoundError):
                ancestor = self.engine.repo.load_snapshot(common)
        with self.engine.state.transaction():
            stale = self.engine.state.forget_bases_after(common)
            if ancestor is not None:
                for path in stale:
                    if path in ancestor.files:
                        self.engine.state.set_base(path, ancestor.files[path], common)
            self.engine.state.set_meta("pulled_seq", None)

    def snapshot_of(self, root: SnapshotRoot) -> Snapshot:
        """The snapshot of an authenticated root, its file list decoded a group at a time as
        it is asked for (a push that changed one project reads that project's entries). The
        last one read is kept: `status` and a push's rounds ask for the same head again, and
        its file list can hold tens of thousands of entries (a root's id is the hash of its
        sealed bytes)."""
        if self._read_last is None or self._read_last.id != root.id:
            self._read_last = self.engine.repo.snapshot(root, lazy=True)
        return self._read_last

    def entries(self, files: list[LocalFile]) -> dict[str, FileEntry]:
        """What the snapshot lists for each file pushed: a transcript's with its summary."""
        return {
            f.path: self.engine.sessions.with_summary(
                f.path, f.abspath, f.entry(), self.engine.device, f.summary
            )
            for f in files
        }

    def commit(self, plan: Plan, result: Result, entries: dict[str, FileEntry]) -> bool:
        """Write the new snapshot; False when another machine took its sequence number.
        entries: the files' entries (see entries) as far as they are known already."""
        head = plan.head
        seq = head.seq + 1 if head else 1
        if plan.upload or plan.remove:
            changes: dict[str, FileEntry | None] = {}
            for path, f in plan.upload.items():
                self.engine.reporter.action("push", path)
                changes[path] = entries.get(path) or self.entries([f])[path]
            for path in plan.remove:
                self.engine.reporter.action("remove", path)
                changes[path] = None
            snapshot = Snapshot(
                seq,
                head.seq if head else None,
                self.engine.device,
                time.time(),
                # Only the groups these paths are in are decoded and written again.
                ChangedFiles(head.files if head else {}, changes),
                parent_id=head.id if head else None,
                formerly=self.engine.former_names,
            )
            # Recorded before the snapshot is written: a kill between writing it and
            # recording it here must not make the next run take it for another machine's.
            bases = self._new_bases(plan, changes)
            journal = self._push_journal(plan, snapshot)
            memory.give_back()
            self.engine.state.journal_push(
                json.dumps(journal), ((p, _sha(e)) for p, e in bases.items())
            )
            if not self.engine.repo.write_snapshot(snapshot, head):
                with self.engine.state.transaction():
                    self.engine.state.end_push_journal()
                return False
            result.snapshot = seq
            self._record_push(journal, snapshot, bases)
        else:
            bases = self._new_bases(plan, {})
            self._record_push(self._push_journal(plan, None), None, bases)
        result.pushed = sorted(plan.upload) + sorted(plan.remove)
        result.removed = sorted(plan.remove)
        return True

    @staticmethod
    def _new_bases(
        plan: Plan, entries: Mapping[str, FileEntry | None]
    ) -> dict[str, FileEntry | None]:
        """Each path's base once the push's snapshot is written (None: no base); entries:
        those the snapshot lists, when made already (State.set_bases leaves out their
        summaries)."""
        bases: dict[str, FileEntry | None] = {
            p: entries.get(p) or f.entry() for p, f in plan.upload.items()
        }
        bases.update(dict.fromkeys(plan.remove))
        bases.update(plan.adopt)
        return bases

    def _push_journal(self, plan: Plan, snapshot: Snapshot | None) -> dict[str, Any]:
        """What a push records before its snapshot is written, with the content hash of
        each path's new base (see State.journal_push). The entries themselves are in the
        snapshot: a push of thousands of files would write each one twice more in the state."""
        head = plan.head
        return {
            "seq": head.seq + 1 if head else 1,
            "time": snapshot.time if snapshot else None,
            "parent_id": snapshot.parent_id if snapshot else None,
            # On an empty repository there was nothing to pull: this push makes us current.
            "was_current": head is None
            or self.engine.state.get_meta("pulled_seq") == str(head.seq),
        }

    def _record_push(
        self,
        journal: dict[str, Any],
        snapshot: Snapshot | None,
        bases: dict[str, FileEntry | None],
    ) -> None:
        seq = int(journal["seq"])
        with self.engine.state.transaction():
            self.engine.state.set_bases(bases.items(), seq)
            if snapshot is not None:
                self.record_transcripts(snapshot)
            if snapshot is not None and journal["was_current"]:
                self.engine.state.set_meta("pulled_seq", str(seq))
                if snapshot.parent is None:
                    # The first snapshot: nothing in it to pull, whatever is selected. A
                    # push keeps what a pull recorded: it adds only what is here.
                    self.engine.state.set_meta(PULLED_SELECTION, ANY_SELECTION)
            self.engine.state.end_push_journal()
        if snapshot is not None and snapshot.seq > int(self.engine.state.get_meta("seen_seq") or 0):
            self.remember(snapshot)
            tag = self.engine.repo.content_tag(snapshot.sealed) if snapshot.sealed else None
            if tag is not None:
                kept_head.save(
                    self.engine.state, kept_head.KeptHead(snapshot.seq, tag, snapshot.sealed)
                )

    def _finish_killed_push(self) -> None:
        """A push killed after writing its snapshot but before recording it: when the
        snapshot of that number is the one it wrote (this device, same time and parent, the
        files it pushed), record it now; otherwise the push never happened."""
        found = self.engine.state.push_journal()
        if found is None:
            return
        journal, shas = json.loads(found[0]), found[1]
        # Earlier versions journaled the bases in the header, as their whole entries or
        # their hashes.
        for path, base in journal.get("bases", {}).items():
            shas[path] = base["sha256"] if isinstance(base, dict) else base
        written: Snapshot | None = None
        with contextlib.suppress(ObjectNotFoundError):
            root = self.engine.repo.load_root(int(journal["seq"]))
            if (
                root.device == self.engine.device
                and root.time == journal["time"]
                and root.parent_id == journal["parent_id"]
            ):
                snapshot = self.engine.repo.snapshot(root)
                if all(_sha(snapshot.files.get(path)) == sha for path, sha in shas.items()):
                    written = snapshot
        if written is None:
            with self.engine.state.transaction():
                self.engine.state.end_push_journal()
            return
        self._record_push(journal, written, {path: written.files.get(path) for path in shas})

    def record_transcripts(self, snapshot: Snapshot) -> list[str]:
        """Record the snapshot's main transcripts (see RemoteSessions._transcripts); returns
        them. A push's snapshot takes its parent's, when they are recorded, and its own
        changes: the rest of its list need not be decoded."""
        files = snapshot.files
        before = (
            self.engine.state.snapshot_transcripts(snapshot.parent_id)
            if isinstance(files, ChangedFiles) and snapshot.parent_id
            else None
        )
        if before is None:
            paths = [p for p in files if is_main_transcript(p)]
        else:
            kept = [p for p in before if p not in files.changes]
            changed = [p for p, e in files.changes.items() if e and is_main_transcript(p)]
            paths = sorted(kept + changed)
        self.engine.state.set_snapshot_transcripts(snapshot.id, paths)
        return paths
