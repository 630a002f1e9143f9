"""The sync engine: scan the Claude directory, plan against the remote head, then apply.

The decisions themselves are the planner's pure functions; the engine gathers their inputs
(scan, merge base, remote head) and carries the plan out (transfer, merge, install).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Container, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from claude_sync import (
    mcp,
    memory,
    resources,
    settings_trust,
)
from claude_sync.clean_tree import UNCLEAN, TreeWalk, unit_of
from claude_sync.downloads import (
    Downloads,
)
from claude_sync.errors import (
    CorruptionError,
    ObjectNotFoundError,
    SyncError,
)
from claude_sync.head import ANY_SELECTION, PULLED_SELECTION, Head
from claude_sync.install import Installer
from claude_sync.merge import (
    merge_file,
)
from claude_sync.merging import REWRITTEN_MEANWHILE, Merges, staged_content, unavailable, why_lost
from claude_sync.pathmap import PathMapper, encode, file_filters
from claude_sync.planner import (
    Conflict,
    LocalView,
    Plan,
    has_local_changes,
    plan_pull,
    plan_push,
    settle_conflict,
    shape_clashes,
)
from claude_sync.planner import conflict as make_conflict
from claude_sync.planner import sha as _sha
from claude_sync.repository import (
    BlobLocation,
    FileEntry,
    PackWriter,
    Repository,
    Snapshot,
    SnapshotRoot,
)
from claude_sync.resources import Selection, is_temporary
from claude_sync.scanner import Scanner
from claude_sync.session_policy import SessionPolicy
from claude_sync.state import WHOLE_TREE, State
from claude_sync.uploads import NewChunks, Uploads

STRATEGIES = ("ask", "local", "remote", "both")
MAX_PUSH_ATTEMPTS = 16
PUSH_BACKOFF_CAP = 2.0
MAX_SYNC_ROUNDS = 3
HISTORY_LOOKBACK = 100
#: in the state: the files the last pull could not download (path -> content hash)
UNAVAILABLE = "unavailable"
#: in the state: the selection this machine was set to sync, as last seen
SYNCED_SELECTION = "synced_selection"
#: in the state: how many sessions a clean status found only in the repository, and for
#: which head and walk
REMOTE_ONLY = "remote_only"
#: at most this many paths a push is narrowed to are named in a query of the state
ROWS_UNDER = 200


class ProjectSessions(NamedTuple):
    """A project directory as `where` sees it."""

    folder: str  # Claude Code's folder name for it under projects/ here
    logical: str  # that folder's logical name
    local: list[str]  # session ids found here
    remote: list[str]  # session ids in the remote head
    older: list[str]  # of those, the ones a pull leaves there (updated before the window)


@dataclass
class Result:
    """What one push, pull or sync did (or, in a dry run, would do), path by path: what the
    CLI prints and `--json` emits."""

    #: every path the push changed remotely; removed: those of them it deleted there
    pushed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: changed on both sides and merged automatically (a dry run: would be)
    merged: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: paths left as they were this time (unreadable, changed meanwhile, not writable)
    skipped: list[str] = field(default_factory=list)
    #: paths not written because their data in the repository is damaged or missing
    unavailable: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    downloaded_bytes: int = 0
    snapshot: int | None = None

    def merge(self, other: Result) -> None:
        """Fold a later operation's result into this one (a sync's pull, then push)."""
        self.pushed += other.pushed
        self.removed += other.removed
        self.pulled += other.pulled
        self.deleted += other.deleted
        self.merged += other.merged
        self.conflicts = other.conflicts  # the later operation saw the newer state
        # A sync scans more than once: each problem is still worth one line.
        self.warnings += [w for w in other.warnings if w not in self.warnings]
        self.skipped = sorted(set(self.skipped) | set(other.skipped))
        self.unavailable = sorted(set(self.unavailable) | set(other.unavailable))
        self.uploaded_bytes += other.uploaded_bytes
        self.downloaded_bytes += other.downloaded_bytes
        self.snapshot = other.snapshot if other.snapshot is not None else self.snapshot

    def to_json(self) -> dict[str, Any]:
        """The `--json` form: lists sorted, keys as documented in docs/CLI.md."""
        return {
            "pushed": sorted(self.pushed),
            "removed": sorted(self.removed),
            "pulled": sorted(self.pulled),
            "deleted": sorted(self.deleted),
            "merged": sorted(self.merged),
            "conflicts": sorted(c.path for c in self.conflicts),
            "conflict_details": [c.to_json() for c in self.conflicts],
            "warnings": self.warnings,
            "skipped": sorted(self.skipped),
            "unavailable": sorted(self.unavailable),
            "uploaded_bytes": self.uploaded_bytes,
            "downloaded_bytes": self.downloaded_bytes,
            "snapshot": self.snapshot,
        }


class Status(NamedTuple):
    """What `status` reports: what pull and push would do, the head's number (None: an
    empty repository), and how many sessions are only in the repository."""

    result: Result
    head: int | None
    remote_only: int


class Reporter:
    """What the engine tells the user as it works; the CLI decides how it looks."""

    def resolve(
        self, conflict: Conflict, local: bytes, remote: bytes, base: bytes | None
    ) -> str | bytes | None:
        """Settle one conflict interactively: "local", "remote", "both", the merged bytes,
        or None to leave it unresolved (the default: nobody to ask)."""
        return None

    def trust(self, path: str, changes: dict[str, tuple[Any, Any]], device: str) -> bool:
        """Whether to apply a change to settings keys that run code; by default (nobody to
        ask) it waits for `resolve`."""
        return False

    def action(self, verb: str, path: str) -> None:
        """One planned or applied action on one path."""

    def progress(self, description: str, total: int) -> Callable[[int], None]:
        """Start a progress display of total units; the returned function advances it."""
        return lambda advance: None


class Engine:
    """Push, pull and sync of one Claude folder with one opened repository: scans the
    files, asks the planner what to do, moves the data and records the new bases. Local
    files are only ever replaced by a verified download, never half-written."""

    def __init__(
        self,
        claude_dir: Path,
        repo: Repository,
        state: State,
        device: str,
        work_dir: Path,
        reporter: Reporter | None = None,
        mapper: PathMapper | None = None,
    ) -> None:
        self.root = claude_dir
        self.mapper = mapper or PathMapper(Path.home())
        self.allow_rollback = False
        #: this device's earlier names (`devices --rename`), named in its snapshots
        self.former_names: tuple[str, ...] = ()
        #: apply guarded settings.json keys from the remote without asking
        self.trust_settings = False
        #: a pull of every session (see want_every_session)
        self.every_session = False
        self.filters = file_filters(Path.home(), self.mapper)
        self.filters[settings_trust.PATH] = settings_trust.SettingsFilter(
            Path.home(), claude_dir / settings_trust.PATH
        )
        self._history: list[Snapshot] | None = None
        self.repo = repo
        self.state = state
        self.device = device
        self.work_dir = work_dir
        self.reporter = reporter or Reporter()
        self._covered: dict[Selection, Callable[[str], bool]] = {}
        self.sessions = SessionPolicy()
        self.scanner = Scanner(self)
        self.installer = Installer(self)
        self.uploads = Uploads(self)
        self.merges = Merges(self)
        self.remote_head = Head(self)
        self.downloads = Downloads(
            repo,
            state,
            self.filters,
            self.reporter,
            work_dir,
            lambda path, mtime_ns: self.sessions.mtime_ns(path, mtime_ns),
        )
        #: this machine's `sessions.window` setting, when sessions came from it (workspace)
        self.window_setting: str | None = None

    # -- scanning ---------------------------------------------------------------------------

    def _known_blobs(self) -> set[str]:
        """Every blob the repository holds as far as its indexes say (read for those other
        machines wrote since)."""
        self.downloads.refresh_index()
        return self.state.blob_ids()

    def local_bytes(self, logical: str, data: bytes) -> bytes:
        return self.filters[logical].to_local(data) if logical in self.filters else data

    def local_path(self, logical: str) -> Path:
        """Where a logical path lives on this machine: through a linked top-level resource
        to its target, so a pull replaces the file in the dotfiles folder, not the link."""
        return Path(self.local_abspath(logical))

    def local_abspath(self, logical: str) -> str:
        """local_path, as a string (a pull keeps one per file it writes)."""
        rel = self.mapper.to_local(logical)
        top, _, rest = rel.partition("/")
        target = self.links.get(top)
        if target is None:
            return os.path.join(self.root, rel)
        return os.path.join(target, rest) if rest else target

    @functools.cached_property
    def links(self) -> dict[str, str]:
        """Top-level resources of the Claude folder that are links, with their targets."""
        return resources.linked_tops(self.root)

    def where(self, directory: Path) -> ProjectSessions:
        """For a project directory: Claude Code's folder here, its logical name, and the
        sessions (ids) found there locally and those a pull places there (a session moved
        here or away by `resume --cwd` counts where it is placed)."""
        folder = encode(os.path.realpath(directory))
        logical = self.mapper.folder_to_logical(folder)
        prefix = f"projects/{folder}/"

        def sessions(paths: Iterable[str]) -> list[str]:
            names = (p[len(prefix) :] for p in paths if p.startswith(prefix))
            return sorted(
                n[: -len(".jsonl")] for n in names if "/" not in n and n.endswith(".jsonl")
            )

        local_dir = self.root / "projects" / folder
        here = (
            [f"{prefix}{p.name}" for p in local_dir.glob("*.jsonl")] if local_dir.is_dir() else []
        )
        head = self.head()
        files = head.files if head else {}
        to_local = self.mapper.to_local
        placed = {local: e for p, e in files.items() if (local := to_local(p)).startswith(prefix)}
        old = (p for p, e in placed.items() if self.sessions.is_old(e))
        return ProjectSessions(folder, logical, sessions(here), sessions(placed), sessions(old))

    # -- remote -----------------------------------------------------------------------------

    def everything(self) -> Selection:
        """Every type, for operations that look at the whole local state."""
        return Selection(resources.TYPES)

    def want_every_session(self) -> None:
        """This run pulls every session (`pull --all`): none is left out by the window, and
        those gone here, which Claude Code cleaned up, come back (their deletion never
        spreads, so the head counts as pulled in full without them)."""
        self.sessions.window = None
        self.every_session = True

    def head(self) -> Snapshot | None:
        """The newest snapshot, as `Head.root` accepts it; None in an empty repository."""
        root = self.remote_head.root()
        return None if root is None else self.remote_head.snapshot_of(root)

    # -- planning ---------------------------------------------------------------------------

    def rows_under(self, sel: Selection) -> tuple[str, ...] | None:
        """The logical paths sel is narrowed to (`only`), for reading just their rows of the
        state; None for all rows (too many to name in a query are not worth naming)."""
        if not sel.only or len(sel.only) > ROWS_UNDER:
            return None
        return tuple(self.mapper.to_logical(o) for o in sel.only)

    def _covers(self, sel: Selection, path: str) -> bool:
        return self.coverage(sel)(path)

    def coverage(self, sel: Selection) -> Callable[[str], bool]:
        """Whether sel covers a path, remembered per path: a push asks for every path of the
        tree more than once (scan, plan), and a selection is too costly to hash for each."""
        covers = self._covered.get(sel)
        if covers is None:
            only = tuple(self.mapper.to_logical(o) for o in sel.only)
            known: dict[str, bool] = {}

            def remembered(path: str) -> bool:
                found = known.get(path)
                if found is None:
                    found = sel.covers(path, only) and self.mapper.unmapped_label(path) is None
                    known[path] = found
                return found

            covers = self._covered[sel] = remembered
        return covers

    def take_selection(self, sel: Selection) -> None:
        """The selection this machine is set to sync (types and globs). A file it takes in
        that the one before left out, and that is gone here, loses its merge base: removed
        while it was left out (its type off: "not on this machine"), it is not a deletion
        to push, and what the repository holds of it comes back. One still here keeps its
        base: an edit here is pushed, a deletion elsewhere arrives."""
        key = _selection_key(sel)
        before = self.state.get_meta(SYNCED_SELECTION)
        if before == key:
            return
        with self.state.transaction():
            if before is not None:
                old = _selection_of_key(before)
                gone = [
                    p
                    for p in self.state.base_shas()
                    if sel.covers(p)
                    and not old.covers(p)
                    and not os.path.lexists(self.local_path(p))
                ]
                self.state.set_bases([(p, None) for p in gone], None)
            self.state.set_meta(SYNCED_SELECTION, key)

    def _pulled_in_full(self, sel: Selection, seq: int) -> bool:
        """Whether the last complete pull left this machine with all of head seq that sel
        and the session window take in: files a pull with another selection left out (a
        type enabled since, a glob cleared) are not pulled."""
        return (
            self.state.get_meta("pulled_seq") == str(seq)
            and self.state.get_meta(PULLED_SELECTION) in (ANY_SELECTION, _selection_key(sel))
            and self.sessions.covered_by(self.state.get_meta("session_window"))
            and not self._labels_mapped_since_pull()
            and not self.state.conflicts()
        )

    def _labels_mapped_since_pull(self) -> bool:
        """Whether a label the last complete pull left in the repository is mapped now: the
        head is then not fully pulled any more."""
        left = (self.state.get_meta("unmapped_labels") or "").split(",")
        return any(label and self.mapper.has_label(label) for label in left)

    def _unmapped_labels(self, head: Snapshot | None) -> list[str]:
        """Labels of projects in the head that no folder here is mapped to: they stay in the
        repository (written here, they would land in a folder Claude Code never reads)."""
        labels = {self.mapper.unmapped_label(p) for p in head.files} if head else set()
        return sorted(label for label in labels if label)

    def plan_push(self, sel: Selection, local: LocalView, head: Snapshot | None) -> Plan:
        """The planner's push decisions for the selection, against this machine's bases."""
        return plan_push(local, self.state.bases(self.rows_under(sel)), head, self.coverage(sel))

    def plan_pull(
        self, sel: Selection, local: LocalView, head: Snapshot | None, strategy: str
    ) -> Plan:
        """The planner's pull decisions, with the session window and the projects that have
        no folder here applied (both left in the repository)."""
        plan = plan_pull(
            local,
            self.state.bases(),
            head,
            self.coverage(sel),
            strategy,
            functools.partial(self._was_synced, head=head),
            restore_gone=self.every_session,
        )
        self.sessions.defer(plan, local.files)
        plan.unmapped = self._unmapped_labels(head)
        return plan

    def _was_synced(self, path: str, sha256: str, head: Snapshot | None) -> bool:
        """Whether this content of path is in an earlier snapshot: with no merge base (a lost
        state database), a local file equal to an old version has simply not been updated."""
        if head is None:
            return False
        if self._history is None:
            seqs = [s for s in self.repo.snapshot_seqs() if s < head.seq][-HISTORY_LOOKBACK:]
            self._history = [self.repo.load_snapshot(s) for s in reversed(seqs)]
        return any(_sha(snap.files.get(path)) == sha256 for snap in self._history)

    def _name_authors(self, conflicts: list[Conflict], head: Snapshot | None) -> None:
        """Each new conflict names the snapshot (device, time) that last changed its path:
        the head's ancestors are followed while they hold the same version, as far as the
        history goes. The newest snapshot's device may never have touched the file."""
        loaded: dict[int, Snapshot | None] = {}

        def load(seq: int) -> Snapshot | None:
            if seq not in loaded:
                try:
                    loaded[seq] = self.repo.load_snapshot(seq)
                except (ObjectNotFoundError, CorruptionError):
                    loaded[seq] = None
            return loaded[seq]

        for c in conflicts:
            if head is None or c.remote_seq != head.seq:
                continue  # one kept from an earlier pull: already named
            author = head
            for _ in range(HISTORY_LOOKBACK):
                parent = None if author.parent is None else load(author.parent)
                if parent is None or _sha(parent.files.get(c.path)) != c.remote_sha256:
                    break
                author = parent
            c.remote_device, c.remote_seq, c.remote_time = author.device, author.seq, author.time

    def _keep_held(self, sel: Selection, plan: Plan, local: LocalView) -> None:
        """A guarded settings change already waiting stays waiting while neither side moved;
        `--strategy local` settles it for this machine's keys (the next push sends them)."""
        path = settings_trust.PATH
        waiting = self.state.conflicts().get(path)
        if not waiting or not waiting.get("held") or self.trust_settings or plan.head is None:
            return
        if not self._covers(sel, path):
            return
        remote = plan.head.files.get(path)
        if plan.strategy == "local":
            plan.adopt[path] = remote
        elif waiting.get("remote_sha256") == _sha(remote) and waiting.get("local_sha256") == _sha(
            local.files.get(path)
        ):
            plan.conflicts.append(Conflict(**waiting))  # type: ignore[arg-type]
        else:
            return
        plan.merges.pop(path, None)
        plan.write.pop(path, None)
        plan.copies.pop(path, None)

    def _hold_back_settings(self, plan: Plan, local: LocalView, result: Result) -> None:
        """settings.json keys that run or authorise code arrive only with the user's consent
        (or the `settings-commands` opt-in). Held back, the file's other keys still arrive;
        the guarded change waits as a conflict that `resolve --take remote` applies."""
        path = settings_trust.PATH
        if self.trust_settings or plan.head is None:
            return
        remote = plan.head.files.get(path)
        if path in plan.merged:
            incoming = plan.merged[path][0]
        elif path in plan.write:
            lost: dict[str, str] = {}
            staging = self.downloads.fetch_blobs([plan.write[path]], result, lost=lost)
            try:
                fetched = staged_content(staging, plan.write[path])
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            if fetched is None:
                unavailable(plan, result, path, why_lost(lost, plan.write.pop(path)))
                return
            incoming = fetched
        elif path in plan.delete:
            incoming = b"{}"
        else:
            return
        local_file = local.files.get(path)
        try:
            local_bytes = (
                self.scanner.logical_bytes(path, local_file.abspath) if local_file else b"{}"
            )
        except OSError:
            return  # gone meanwhile: the install step notices and keeps it
        changes = settings_trust.changed_keys(local_bytes, incoming)
        device = plan.head.device
        if not changes:
            return
        # Shown as they would be written here (home paths this machine's, not the token).
        here = settings_trust.changed_keys(
            self.local_bytes(path, local_bytes), self.local_bytes(path, incoming)
        )
        if self.reporter.trust(path, {k: here.get(k, v) for k, v in changes.items()}, device):
            return
        plan.merged.pop(path, None)
        plan.write.pop(path, None)
        if path in plan.delete:
            plan.delete.remove(path)
        held = settings_trust.blend(incoming, local_bytes)
        local_sha = _sha(local_file)
        if held is not None and held != local_bytes:
            plan.held[path] = held
            local_sha = hashlib.sha256(held).hexdigest()
        conflict = make_conflict(path, local_file, self.state.bases().get(path), remote, plan.head)
        conflict.local_sha256 = local_sha
        conflict.held = sorted(changes)
        conflict.keys = plan.unsettled.pop(path, None)
        plan.conflicts.append(conflict)

    # -- push -------------------------------------------------------------------------------

    def push(self, sel: Selection, dry_run: bool = False) -> Result:
        """Send what changed here as the next snapshot. Changes made on both sides are not
        pushed over: they merge first when they merge cleanly, else stay conflicts for a
        pull; a lost race with another machine plans again."""
        result = Result()
        sent_before = self.repo.uploaded_bytes  # the scan sends packs already
        writers: list[PackWriter] = []  # made when the scan meets a changed file

        def stream() -> NewChunks:
            writers.append(PackWriter(self.repo))
            return NewChunks(writers[0], self._known_blobs)

        try:
            walked = self.scanner.walk(sel, result.warnings, "mirror" if dry_run else "sync")
            if not sel.only:
                self._refuse_a_vanished_folder(sel, walked)
            # Units as the last push with nothing to send left them need no look (see
            # clean_tree.py).
            recording = not (dry_run or sel.only)
            clean = self.state.clean_units() if recording else {}
            whole = clean.pop(WHOLE_TREE, None)
            if self.mapper.moved:
                clean = {}  # a moved session's files are in another project's unit
            changed = self.units_to_look_at(walked, clean, whole)
            if changed is not None and not changed:
                self.scanner.report_skipped(walked, result)
                self.repo.check_place()
                self._record_success("push")
                return result
            if changed is not None:
                sel = replace(sel, only=tuple(sorted(changed)))
                walked = walked.narrowed(changed)
            else:
                clean, changed = {}, set(walked.units)  # a full look: no record relied on
            local = self.scanner.scan(
                sel, result.warnings, not dry_run, None if dry_run else stream, walked
            )
            result.skipped = local.skipped()
            if not dry_run and not self._has_local_changes(sel, local):
                # What the scan sealed is left out: nothing is sent, no snapshot written.
                if recording:
                    self._record_clean(sel, local, walked, clean, changed, settled=True)
                self.repo.check_place()
                self._record_success("push")
                return result
            # The scan read the indexes if it streamed chunks (NewChunks.learn).
            index_read = bool(writers)
            if not writers:
                writers.append(PackWriter(self.repo))
            memory.give_back()  # what the scan's readers freed, before the commit's peak
            result = self._push_rounds(sel, local, writers[0], result, dry_run, index_read)
            if not dry_run:
                result.uploaded_bytes = self.repo.uploaded_bytes - sent_before
                if recording:
                    self._record_clean(sel, local, walked, clean, changed)
        finally:
            for writer in writers:
                writer.close()
        if not dry_run:
            self._record_success("push")
        return result

    def units_to_look_at(
        self, walked: TreeWalk, clean: dict[str, str], whole: str | None
    ) -> set[str] | None:
        """The units a push must look at, given those recorded clean (whole: the whole
        tree's record): none when nothing changed, None for every file."""
        if walked.digest == whole:
            return set()
        changed = walked.changed_units(clean)
        if not clean or len(changed) == len(walked.units.keys() | clean.keys()):
            return None  # no unit is as recorded: the setting may have changed
        # Some unit is as recorded, so the setting is too (every digest holds it).
        return self._with_aliases(changed, walked.units.keys() | clean.keys()) if changed else set()

    def _record_clean(
        self,
        sel: Selection,
        local: LocalView,
        walked: TreeWalk,
        clean: dict[str, str],
        changed: set[str],
        settled: bool = False,
    ) -> None:
        """After a push (clean_tree.py). clean: the units recorded clean that it relied on
        (none: it looked at everything); changed: the units it looked at. The whole tree is
        clean when the files it looked at were read as the walk found them and have nothing
        left to push (settled: known already), and it wrote no row outside them. Else the
        units it relied on and wrote no row of stay clean, and those it looked at or wrote
        keep a place as not clean: one that is gone later is then still looked at."""
        units = walked.units.keys() | clean.keys()
        touched = self._with_aliases(
            {unit_of(self.mapper.to_local(p)) for p in self.state.touched}, units
        )
        if (
            local.tree is not None
            and (not clean or touched <= changed)
            and (settled or not self._has_local_changes(sel, local))
        ):
            self.state.set_clean_units({WHOLE_TREE: walked.digest, **walked.units})
        elif clean:
            kept = {u: d for u, d in clean.items() if u not in changed | touched}
            self.state.set_clean_units({**dict.fromkeys(changed | touched, UNCLEAN), **kept})
        else:
            self.state.set_clean_units({})

    def _with_aliases(self, chosen: set[str], units: Iterable[str]) -> set[str]:
        """chosen, with the other units whose files have the same logical paths (a read-only
        alias of the home's folder, such as `C--Users-ann` beside `c--Users-ann`): a push
        narrowed to one covers the other's logical paths too."""
        logical = {u: self.mapper.to_logical(u) for u in {*units, *chosen}}
        wanted = {logical[u] for u in chosen}
        return chosen | {u for u, name in logical.items() if name in wanted}

    def _record_success(self, direction: str) -> None:
        """`doctor` reports when each direction last completed (local time, seconds)."""
        self.state.set_meta(f"last_{direction}", str(time.time()))

    def _push_rounds(
        self,
        sel: Selection,
        local: LocalView,
        writer: PackWriter,
        result: Result,
        dry_run: bool,
        index_read: bool = False,
    ) -> Result:
        """Plan, send and commit, again while another machine wins the race for the
        snapshot number (or a prune took data this push leaned on). index_read: the scan
        read the indexes already (only what other machines wrote since is missed then, and
        sent again: the first round does not list them a second time)."""
        written_indexes: dict[str, dict[str, BlobLocation]] = {}  # indexes this push wrote
        pruned = False
        for attempt in range(MAX_PUSH_ATTEMPTS):
            if attempt:
                # Another machine won the race for this snapshot number. Waiting a random,
                # growing while spreads out machines that keep colliding.
                time.sleep(random.uniform(0, min(PUSH_BACKOFF_CAP, 0.05 * 2**attempt)))
            plan = self.plan_push(sel, local, self.head())
            if not dry_run:
                wrote, checked, unmerged = self.merges.before_push(plan, local, result)
                if wrote:
                    local = self.scanner.scan(sel, result.warnings, summaries=True)
                    plan = self.plan_push(sel, local, plan.head)
                    # Planned again from a new scan: a transcript rewritten without records
                    # since the first one (or again since they were put back) waits for the
                    # next push, which puts them back; only one checked here goes.
                    for path in self.merges.rewritten_transcripts(plan):
                        if local.files[path].sha256 != checked.get(path):
                            unmerged[path] = REWRITTEN_MEANWHILE
                for path, other in shape_clashes(plan).items():
                    del plan.upload[path]
                    result.skipped.append(path)
                    result.warnings.append(
                        f"{path} is a file here and {other} a file in the repository: one "
                        "cannot be written where the other is; not pushed (rename one of them)"
                    )
                for path in unmerged.keys() & plan.upload.keys():
                    # Pushed as it is, it would take its lost records off every machine.
                    del plan.upload[path]
                    result.skipped.append(path)
                    result.warnings.append(
                        f"{path} lost records here that could not be put back "
                        f"({unmerged[path]}); not pushed"
                    )
            self._name_authors(plan.conflicts, plan.head)
            result.conflicts = self._as_recorded(plan.conflicts)
            if not dry_run:
                self._record_new_conflicts(result.conflicts)
            if dry_run:
                self._report_dry_push(plan, result)
                return result
            entries: dict[str, FileEntry] = {}
            if plan.upload:
                if attempt or not index_read:
                    self.downloads.refresh_index()
                with ThreadPoolExecutor(max_workers=1) as aside:
                    # Transcripts' summaries are read while the chunks are compressed and
                    # sealed, which free the interpreter: on a first push they cost ~3 s per
                    # GiB of one core.
                    summarized = aside.submit(self.remote_head.entries, list(plan.upload.values()))
                    self.uploads.upload(plan, writer, result.warnings)
                    entries = summarized.result()
            written = writer.finish()
            written_indexes.update(written)
            with self.state.transaction():
                for name, locations in written.items():
                    self.state.add_index(name, locations)
            pruned = not self.uploads.data_still_there(plan, writer, written_indexes, written)
            if pruned:
                continue  # a prune got to some of it meanwhile: upload that again
            if self.remote_head.commit(plan, result, entries):
                return result
        if pruned:
            raise SyncError(
                "data this push relies on kept being marked for deletion or going missing "
                "from the repository (a prune on another machine with a --grace shorter than "
                "this push takes?); try again"
            )
        raise SyncError("another machine kept pushing at the same time; try again")

    def _report_dry_push(self, plan: Plan, result: Result) -> None:
        """What the push planned would send. A transcript left empty where the repository
        has records gets them back from there first (see Merges.rewritten_transcripts), and
        nothing of it is sent: it will merge. (One rewritten otherwise may hold records of
        its own, or only edited ones: what the push sends is known once both are read.)"""
        rewritten = self.merges.rewritten_transcripts(plan).items()
        emptied = {p: m.remote for p, m in rewritten if not m.local.entry().size}
        upload = sorted(p for p in plan.upload if p not in emptied)
        result.merged = sorted({*result.merged, *emptied})
        result.pushed = upload + sorted(plan.remove)
        result.removed = sorted(plan.remove)
        # At most this much: compression and data already stored make it less.
        result.uploaded_bytes = sum(plan.upload[p].entry().size for p in upload)
        result.downloaded_bytes += sum(stored.size for stored in emptied.values())

    def _as_recorded(self, conflicts: list[Conflict]) -> list[Conflict]:
        """The pull's record of a conflict over the same remote version says more (the
        keys that conflict, settings held back, the copy beside): a push reports that."""
        recorded = self.state.conflicts()
        return [
            # (A remote deletion has no hash: compared with a missing record's, it matched.)
            Conflict(**recorded[c.path])  # type: ignore[arg-type]
            if c.path in recorded and recorded[c.path].get("remote_sha256") == c.remote_sha256
            else c
            for c in conflicts
        ]

    def _record_new_conflicts(self, conflicts: list[Conflict]) -> None:
        """A push's conflicts that no pull recorded yet, for `conflicts` and `resolve`. Only
        added: a pull, which looks at the remote side too, decides when one is settled."""
        if not conflicts:
            return
        recorded = self.state.conflicts()
        new = [c for c in conflicts if c.path not in recorded]
        if new:
            with self.state.transaction():
                for c in new:
                    self.state.set_conflict(c.path, c.to_json())

    def _refuse_a_vanished_folder(self, sel: Selection, walked: TreeWalk | None) -> None:
        """A Claude folder that is gone or empty, where this machine synced files whose
        deletion spreads, is a folder not there (a drive not mounted on it, another HOME),
        not everything deleted on purpose (Claude Code keeps files of its own there):
        pushed, it would delete them on every machine; pulled, it would be filled with only
        what changed elsewhere, the rest then pushed as deleted. walked: the walk of it, if
        one was made."""
        if walked is not None and (walked.found or walked.skipped):
            return
        with contextlib.suppress(OSError), os.scandir(self.root) as entries:
            if next(entries, None) is not None:
                return  # the last synced files deleted, the folder still there
        synced = [
            p
            for p in self.state.base_shas()
            if self._covers(sel, p) and (t := resources.type_of(p)) and t.propagate_deletes
        ]
        if synced:
            files = f"{len(synced)} file{'s' * (len(synced) != 1)}"
            raise SyncError(
                f"the Claude folder {self.root} is missing or empty, though "
                f"this machine synced {files} there: nothing was changed (not mounted, or "
                "another HOME?). To fill it again from the repository: `claude-sync restore "
                "--snapshot N` (`claude-sync log` lists them)"
            )

    def _has_local_changes(self, sel: Selection, local: LocalView) -> bool:
        return has_local_changes(
            local, self.state.base_shas(self.rows_under(sel)), self.coverage(sel)
        )

    # -- sync -------------------------------------------------------------------------------

    def sync(self, sel: Selection, strategy: str, dry_run: bool, complete: bool) -> Result:
        """Pull, then push; when another machine pushed in between, pull and push again."""
        result = self.pull(sel, strategy, dry_run, complete)
        for _ in range(MAX_SYNC_ROUNDS):
            pull_left_conflicts = bool(result.conflicts)
            result.merge(self.push(sel, dry_run))
            # A conflict the pull did not see means another machine pushed in between.
            if dry_run or not result.conflicts or pull_left_conflicts:
                break
            result.merge(self.pull(sel, strategy, dry_run, complete))
        return result

    # -- pull -------------------------------------------------------------------------------

    def pull(
        self,
        sel: Selection,
        strategy: str = "ask",
        dry_run: bool = False,
        complete: bool = True,
    ) -> Result:
        """Bring remote changes here. `complete` says sel is everything this machine syncs,
        so a clean pull may mark the head as fully pulled."""
        result = Result()
        if not sel.only:
            self._refuse_a_vanished_folder(sel, None)
        root = self.remote_head.root()
        if root is None or (
            complete
            and not dry_run
            and not self.every_session
            and self._pulled_in_full(sel, root.seq)
        ):
            if not dry_run:
                self._record_success("pull")
            return result
        head = self.remote_head.snapshot_of(root)
        with self.state.transaction():
            self.remote_head.record_transcripts(
                head
            )  # the next status need not read the head again
        walked = self.scanner.walk(sel, result.warnings, "mirror" if dry_run else "sync")
        local = self.scanner.scan(sel, result.warnings, walked=walked)
        plan = self.plan_pull(sel, local, head, strategy)
        result.skipped = local.skipped()
        result.warnings += [
            "projects pushed from under the home before their folder was mapped to a label "
            "stay in the repository under their old name: here they sync under the label"
            if label == "~"
            else f"projects labelled {label!r} stay in the repository: no folder here is "
            f"mapped to that label (`claude-sync map DIR {label}`)"
            for label in plan.unmapped
        ]
        self._keep_held(sel, plan, local)
        if dry_run:
            self._report_dry_pull(plan, result)
            return result
        self.merges.for_pull(plan, result)
        self._hold_back_settings(plan, local, result)
        self.merges.keep_unsettled(plan)
        self._name_authors(plan.conflicts, head)
        result.conflicts = plan.conflicts
        self.installer.apply_pull(plan, local, result, partial=True)
        if mcp.TYPE in sel.types:
            result.warnings += mcp.reconcile(self.root, self.work_dir)
        result.skipped = sorted(set(result.skipped) | set(plan.skipped))
        with self.state.transaction():
            unresolved = {c.path for c in plan.conflicts}
            # (A conflict over a temporary name, recorded before those were left out, is
            # over a file nothing syncs any more.)
            selected = {
                p for p in self.state.conflicts() if self._covers(sel, p) or is_temporary(p)
            }
            for path in selected - unresolved:
                self.state.set_conflict(path, None)
            for c in plan.conflicts:
                self.state.set_conflict(c.path, c.to_json())
            # A remote change not applied here keeps the head unpulled: the next pull
            # takes it up again (and merges what changed here meanwhile).
            if complete and not plan.conflicts and not plan.skipped:
                self.state.set_meta("pulled_seq", str(head.seq))
                self.state.set_meta(PULLED_SELECTION, _selection_key(sel))
                self.state.set_meta("session_window", self.sessions.key())
                self.state.set_meta("unmapped_labels", ",".join(plan.unmapped))
        with self.state.transaction():
            # For status: these stay "to pull" until a repair elsewhere brings their data.
            # (A pull of some types only says nothing of the others.)
            before = json.loads(self.state.get_meta(UNAVAILABLE) or "{}")
            lost = {
                p: e for p, e in before.items() if not self._covers(sel, p) and not is_temporary(p)
            }
            lost |= {p: plan.write[p].sha256 for p in result.unavailable if p in plan.write}
            self.state.set_meta(UNAVAILABLE, json.dumps(lost) if lost else None)
        if not result.unavailable:
            self._record_success("pull")
        if (
            settings_trust.PATH in result.pulled + result.merged
            and self._window_widened()
            and not result.unavailable
        ):
            # A first pull brought a longer clean-up period: what it takes in comes now,
            # not with the next pull. (Not after a failure: the pull is run again anyway,
            # and a second pass would read the damaged packs again.)
            result.merge(self.pull(sel, strategy, dry_run, complete))
        return result

    def _window_widened(self) -> bool:
        """Whether settings.json, as pulled, gives this machine a longer session window
        than the one this pull used (which then becomes the one used)."""
        now = SessionPolicy.for_machine(self.window_setting, self.root)
        old = self.sessions.window
        if old is None or (now.window is not None and now.window <= old):
            return False
        self.sessions = now
        return True

    def _report_dry_pull(self, plan: Plan, result: Result) -> None:
        """What the pull would do, merges tried (nobody asked) but nothing written here."""
        if plan.merges:
            lost: dict[str, str] = {}
            with self.merges.inputs(plan.merges, result, lost) as inputs:
                for path, merge, local_bytes, base_bytes, remote_bytes in inputs:
                    if remote_bytes is None:
                        unavailable(plan, result, path, why_lost(lost, merge.remote))
                    elif merge_file(path, base_bytes, local_bytes, remote_bytes) is None:
                        settle_conflict(plan, path, *merge)
                    else:
                        result.merged.append(path)
        self._name_authors(plan.conflicts, plan.head)
        result.conflicts = plan.conflicts
        lost = json.loads(self.state.get_meta(UNAVAILABLE) or "{}")
        result.unavailable += [p for p, e in plan.write.items() if lost.get(p) == e.sha256]
        result.pulled = sorted(plan.write)
        result.deleted = sorted(plan.delete)
        result.downloaded_bytes = sum(plan.write[p].size for p in result.pulled)

    def status(self, sel: Selection) -> Status:
        """What pull and push would do, from one look at the remote head."""
        result = Result()
        walked = self.scanner.walk(sel, result.warnings, "mirror")
        if not sel.only:
            self._refuse_a_vanished_folder(sel, walked)
        root = self.remote_head.root()
        seq = None if root is None else root.seq
        in_step = seq is not None and self._pulled_in_full(sel, seq)
        if in_step and walked.digest == self.state.clean_tree():
            # Nothing to push (see TreeWalk) and nothing new to pull: no file need be read.
            self.scanner.report_skipped(walked, result)
            return Status(result, seq, self._remote_only_in_step(sel, root, walked))
        walked_units = walked.units
        local = self.scanner.scan(sel, result.warnings, walked=walked)
        del walked
        result.skipped = local.skipped()
        clean = not self._has_local_changes(sel, local)
        if clean and local.tree is not None and not sel.only:
            self.state.set_clean_units({WHOLE_TREE: local.tree, **walked_units})
        if not (in_step and clean):  # else nothing either way: the file list need not be read
            head = None if root is None else self.remote_head.snapshot_of(root)
            plan = self.plan_pull(sel, local, head, "ask")
            self._keep_held(sel, plan, local)
            self._report_dry_pull(plan, result)
            self._report_dry_push(self.plan_push(sel, local, head), result)
        return Status(result, seq, self._remote_only(root, local.files, set(result.pulled)))

    def _remote_only_in_step(self, sel: Selection, root: SnapshotRoot, walked: TreeWalk) -> int:
        """_remote_only for a walk that found the tree clean, kept for that head and walk:
        mapping the paths of tens of thousands of files cost a status ~30 ms every time.
        Only while the walk saw every transcript here: not when sessions are not synced,
        or a folder of them was not looked into (a link not followed)."""
        key = f"{root.id} {walked.digest}"
        if resources.TYPES_BY_NAME["sessions"] not in sel.types or any(
            s.folder and f"{s.local_path}/".startswith("projects/") for s in walked.skipped
        ):
            key = ""
        kept, _, count = (self.state.get_meta(REMOTE_ONLY) or "").rpartition(" ")
        if key and kept == key:
            return int(count)
        # Only main transcripts are counted, all at this depth: not a sub-agent's file of
        # each session mapped for nothing.
        to_logical = self.mapper.to_logical
        here = {to_logical(p) for f in walked.found if (p := f.local_path).count("/") == 2}
        found = self._remote_only(root, here, set())
        self.state.set_meta(REMOTE_ONLY, f"{key} {found}" if key else None)
        return found

    def _remote_only(
        self, root: SnapshotRoot | None, here: Container[str], arriving: set[str]
    ) -> int:
        """Sessions a plain pull leaves in the repository that `pull --all` would bring:
        their transcript is not here (here: the logical paths a scan saw, else the disk
        says), nor among the paths the next pull brings, nor an old copy of a project
        that is here under a label now (see PathMapper.unmapped_label)."""
        return sum(
            1
            for path in self._transcripts(root)
            if path not in here
            and path not in arriving
            and self.mapper.unmapped_label(path) != "~"
            and not self.local_path(path).is_file()
        )

    def _transcripts(self, root: SnapshotRoot | None) -> list[str]:
        """The main transcripts of the head, recorded in the state by its id: counting the
        sessions only in the repository must not decode a file list of tens of thousands of
        entries at every `status`."""
        if root is None:
            return []
        paths = self.state.snapshot_transcripts(root.id)
        if paths is None:
            with self.state.transaction():
                paths = self.remote_head.record_transcripts(self.remote_head.snapshot_of(root))
        return paths

    def fetch(self, head: Snapshot, files: dict[str, FileEntry], result: Result) -> None:
        """Place the stored files that are missing here, as a pull would (for `resume`): a
        few blobs of a big pack are read by range (one session among a pack's many)."""
        plan = Plan(head, write={p: e for p, e in files.items() if not self.local_path(p).exists()})
        if plan.write:
            with self.downloads.reading_by_range():
                self.installer.apply_pull(plan, LocalView(), result)


def _selection_key(sel: Selection) -> str:
    """What a complete pull took in, as the state records it."""
    return json.dumps([sorted(t.name for t in sel.types), sel.include, sel.exclude])


def _selection_of_key(key: str) -> Selection:
    """The selection a state recorded (types no longer known are left out)."""
    names, include, exclude = json.loads(key)
    types = tuple(t for t in resources.TYPES if t.name in names)
    return Selection(types, include=tuple(include), exclude=tuple(exclude))
