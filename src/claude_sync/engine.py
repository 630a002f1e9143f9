"""The sync engine: scan the Claude directory, plan against the remote head, then apply.

The decisions themselves are the planner's pure functions; the engine gathers their inputs
(scan, merge base, remote head) and carries the plan out (transfer, merge, install).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path

from claude_sync import identity, resources, settings_trust
from claude_sync.clean_record import CleanRecord
from claude_sync.clean_tree import TreeWalk
from claude_sync.conflict_log import HISTORY_LOOKBACK, ConflictLog
from claude_sync.downloads import Downloads
from claude_sync.errors import SyncError
from claude_sync.head import ANY_SELECTION, PULLED_SELECTION, Head
from claude_sync.held_code import HeldCode
from claude_sync.install import Installer
from claude_sync.local_identity import LocalIdentities
from claude_sync.merging import Merges
from claude_sync.outcome import Reporter, Result, Status
from claude_sync.pathmap import PathMapper, file_filters
from claude_sync.planner import (
    LocalView,
    Plan,
    has_local_changes,
    plan_pull,
    plan_push,
)
from claude_sync.pulling import Puller
from claude_sync.pushing import Pusher
from claude_sync.reading import FileReader
from claude_sync.remote_sessions import RemoteSessions
from claude_sync.repository import FileEntry, Repository, Snapshot
from claude_sync.resources import Selection
from claude_sync.scanner import Scanner
from claude_sync.session_policy import SessionPolicy
from claude_sync.state import WHOLE_TREE, State
from claude_sync.uploads import Uploads

STRATEGIES = ("ask", "local", "remote", "both")
MAX_SYNC_ROUNDS = 3
#: in the state: the selection this machine was set to sync, as last seen
SYNCED_SELECTION = "synced_selection"
#: at most this many paths a push is narrowed to are named in a query of the state
ROWS_UNDER = 200


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
        self.trust_code = False
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
        self.reader = FileReader(self)
        self.identities = LocalIdentities(self)
        self.installer = Installer(self)
        self.uploads = Uploads(self)
        self.merges = Merges(self)
        self.remote_head = Head(self)
        self.held_code = HeldCode(self)
        self.conflict_log = ConflictLog(self)
        self.clean_record = CleanRecord(self)
        self.remote_sessions = RemoteSessions(self)
        self.pusher = Pusher(self)
        self.puller = Puller(self)
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

    def known_blobs(self) -> set[str]:
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
        key = sel.key()
        before = self.state.get_meta(SYNCED_SELECTION)
        if before == key:
            return
        with self.state.transaction():
            if before is not None:
                old = Selection.from_key(before)
                gone = [
                    p
                    for p in self.state.base_shas()
                    if sel.covers(p)
                    and not old.covers(p)
                    and not os.path.lexists(self.local_path(p))
                ]
                self.state.set_bases([(p, None) for p in gone], None)
            self.state.set_meta(SYNCED_SELECTION, key)

    def pulled_in_full(self, sel: Selection, seq: int) -> bool:
        """Whether the last complete pull left this machine with all of head seq that sel
        and the session window take in: files a pull with another selection left out (a
        type enabled since, a glob cleared) are not pulled."""
        return (
            self.state.get_meta("pulled_seq") == str(seq)
            and self.state.get_meta(PULLED_SELECTION) in (ANY_SELECTION, sel.key())
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
        bases = self.state.bases(self.rows_under(sel))
        self.identities.align(local, bases, head)
        return plan_push(local, bases, head, self.coverage(sel))

    def plan_pull(
        self, sel: Selection, local: LocalView, head: Snapshot | None, strategy: str
    ) -> Plan:
        """The planner's pull decisions, with the session window and the projects that have
        no folder here applied (both left in the repository)."""
        bases = self.state.bases()
        self.identities.align(local, bases, head, pull=True)
        plan = plan_pull(
            local,
            bases,
            head,
            self.coverage(sel),
            strategy,
            functools.partial(self._was_synced, head=head, local=local),
            restore_gone=self.every_session,
        )
        self.sessions.defer(plan, local.files)
        plan.unmapped = self._unmapped_labels(head)
        return plan

    def _was_synced(
        self, path: str, sha256: str, head: Snapshot | None, local: LocalView | None = None
    ) -> bool:
        """Whether this content of path is in an earlier snapshot: with no merge base (a lost
        state database), a local file equal to an old version has simply not been updated.
        A version stored under an id of the other kind (identity.py) is compared by reading
        the file, when the sizes match."""
        if head is None:
            return False
        if self._history is None:
            seqs = [s for s in self.repo.snapshot_seqs() if s < head.seq][-HISTORY_LOOKBACK:]
            self._history = [self.repo.load_snapshot(s) for s in reversed(seqs)]
        versions = [e for snap in self._history if (e := snap.files.get(path)) is not None]
        if any(e.sha256 == sha256 for e in versions):
            return True
        mine = None if local is None else local.files.get(path)
        if mine is None:
            return False
        size, kind = mine.entry().size, identity.kind_of(sha256)
        others = [
            e.sha256 for e in versions if identity.kind_of(e.sha256) != kind and e.size == size
        ]
        return bool(others) and self.identities.which(path, mine, others) is not None

    # -- push -------------------------------------------------------------------------------

    def push(self, sel: Selection, dry_run: bool = False) -> Result:
        """Send what changed here as the next snapshot (see Pusher.push)."""
        return self.pusher.push(sel, dry_run)

    def record_success(self, direction: str) -> None:
        """`doctor` reports when each direction last completed (local time, seconds)."""
        self.state.set_meta(f"last_{direction}", str(time.time()))

    def refuse_a_vanished_folder(self, sel: Selection, walked: TreeWalk | None) -> None:
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

    def has_local_changes(self, sel: Selection, local: LocalView) -> bool:
        rows, covers = self.rows_under(sel), self.coverage(sel)
        shas = self.state.base_shas(rows)
        if not has_local_changes(local, shas, covers):
            return False
        if not identity.mixed(local.files, shas):
            return True
        # A file read again unchanged, with its base's id of the other kind, is no change
        # (see local_identity.py).
        self.identities.align(local, self.state.bases(rows), None)
        return has_local_changes(local, self.state.base_shas(rows), covers)

    # -- sync -------------------------------------------------------------------------------

    def sync(self, sel: Selection, strategy: str, dry_run: bool, complete: bool) -> Result:
        """Pull, then push; when another machine pushed in between, pull and push again."""
        result = self.pull(sel, strategy, dry_run, complete)
        for _ in range(MAX_SYNC_ROUNDS):
            standing = result.conflicts
            pull_left_conflicts = bool(standing)
            result.merge(self.push(sel, dry_run))
            # The push does not see what the pull held back where nothing changed here (an
            # agent's new hooks): those stand too. (A sync said "up to date" and exit 0.)
            seen = {c.path for c in result.conflicts}
            result.conflicts += [c for c in standing if c.path not in seen]
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
        """Bring remote changes here (see Puller.pull)."""
        return self.puller.pull(sel, strategy, dry_run, complete)

    def status(self, sel: Selection) -> Status:
        """What pull and push would do, from one look at the remote head."""
        result = Result()
        walked = self.scanner.walk(sel, result.warnings, "mirror")
        if not sel.only:
            self.refuse_a_vanished_folder(sel, walked)
        root = self.remote_head.root()
        seq = None if root is None else root.seq
        in_step = seq is not None and self.pulled_in_full(sel, seq)
        if in_step and walked.digest == self.state.clean_tree():
            # Nothing to push (see TreeWalk) and nothing new to pull: no file need be read.
            self.scanner.report_skipped(walked, result)
            return Status(result, seq, self.remote_sessions.count_in_step(sel, root, walked))
        walked_units = walked.units
        local = self.scanner.scan(sel, result.warnings, walked=walked)
        del walked
        result.skipped = local.skipped()
        clean = not self.has_local_changes(sel, local)
        if clean and local.tree is not None and not sel.only:
            self.state.set_clean_units({WHOLE_TREE: local.tree, **walked_units})
        if not (in_step and clean):  # else nothing either way: the file list need not be read
            head = None if root is None else self.remote_head.snapshot_of(root)
            plan = self.plan_pull(sel, local, head, "ask")
            self.held_code.keep_waiting(sel, plan, local)
            self.held_code.hold_back(plan, local, result, ask=False)
            self.puller.report_dry(plan, result)
            self.pusher.report_dry(self.plan_push(sel, local, head), result)
        return Status(
            result, seq, self.remote_sessions.count(root, local.files, set(result.pulled))
        )

    def fetch(self, head: Snapshot, files: dict[str, FileEntry], result: Result) -> None:
        """Place the stored files that are missing here, as a pull would (for `resume`): a
        few blobs of a big pack are read by range (one session among a pack's many)."""
        plan = Plan(head, write={p: e for p, e in files.items() if not self.local_path(p).exists()})
        if plan.write:
            with self.downloads.reading_by_range():
                self.installer.apply_pull(plan, LocalView(), result)
