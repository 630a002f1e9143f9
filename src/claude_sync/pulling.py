"""A pull: the head's changes planned against what is here, merged, held back where
settings need consent, then downloaded, verified and moved into place."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

from claude_sync import mcp, settings_trust
from claude_sync.errors import SyncError
from claude_sync.head import PULLED_SELECTION
from claude_sync.merge import merge_file
from claude_sync.merging import unavailable, why_lost
from claude_sync.outcome import Result
from claude_sync.pathmap import BESIDE_HOME, CUT_BEFORE, MAX_NAME, TOO_LONG
from claude_sync.planner import Conflict, LocalView, Plan, settle_conflict, sha
from claude_sync.resources import Selection, is_temporary
from claude_sync.session_policy import DAY, SessionPolicy, cleanup_days_in

if TYPE_CHECKING:
    from claude_sync.engine import Engine
    from claude_sync.repository import Snapshot

#: in the state: the files the last pull could not download (path -> content hash)
UNAVAILABLE = "unavailable"


class Puller:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pull(
        self,
        sel: Selection,
        strategy: str = "ask",
        dry_run: bool = False,
        complete: bool = True,
    ) -> Result:
        """Bring remote changes here. `complete` says sel is everything this machine syncs,
        so a clean pull may mark the head as fully pulled."""
        # (The packs the code guard reads whole are read again for the rest, also by a
        # second pass that a longer clean-up period brings.)
        with self.engine.downloads.packs_kept():
            return self._pull(sel, strategy, dry_run, complete)

    def _pull(self, sel: Selection, strategy: str, dry_run: bool, complete: bool) -> Result:
        engine = self.engine
        covers = engine.coverage(sel)
        result = Result()
        if not sel.only:
            engine.refuse_a_vanished_folder(sel, None)
        root = engine.remote_head.root()
        if root is None or (
            complete
            and not dry_run
            and not engine.every_session
            and engine.pulled_in_full(sel, root.seq)
        ):
            if not dry_run:
                engine.record_success("pull")
            return result
        if not dry_run and not engine.state.known_indexes():
            # A first pull reads every index: before the file list is in memory, not on
            # top of it (~12 MiB of a 50,000-file pull's peak).
            engine.downloads.refresh_index()
        head = engine.remote_head.snapshot_of(root)
        with engine.state.transaction():
            # the next status need not read the head again
            engine.remote_head.record_transcripts(head)
        walked = engine.scanner.walk(sel, result.warnings, "mirror" if dry_run else "sync")
        local = engine.scanner.scan(sel, result.warnings, walked=walked)
        if covers(settings_trust.PATH):
            self._take_incoming_window(head, local, result)
        plan = engine.plan_pull(sel, local, head, strategy)
        result.skipped = local.skipped()
        result.warnings += [_unmapped_warning(label) for label in plan.unmapped]
        engine.held_code.keep_waiting(sel, plan, local)
        if dry_run:
            engine.held_code.hold_back(plan, local, result, ask=False)
            self.report_dry(plan, result)
            return result
        engine.merges.for_pull(plan, result)
        engine.held_code.hold_back(plan, local, result)
        engine.merges.keep_unsettled(plan)
        engine.conflict_log.name_authors(plan.conflicts, head)
        result.conflicts = plan.conflicts
        # A pull of some paths (resolve, resume) wants a few files of packs that a push
        # made for many: each pack's blobs are read by range where they are a small part.
        with engine.downloads.reading_by_range() if sel.only else contextlib.nullcontext():
            engine.installer.apply_pull(plan, local, result, partial=True)
        if mcp.TYPE in sel.types:
            result.warnings += mcp.reconcile(engine.root, engine.work_dir)
        result.skipped = sorted(set(result.skipped) | set(plan.skipped))
        with engine.state.transaction():
            # What could not be written (its data damaged, or the file changed meanwhile)
            # settles nothing: its conflict, and the copies beside it, stay, as conflicts of
            # this pull (a sync pulls no second round over them with its strategy).
            waiting = engine.state.conflicts()
            unresolved = {c.path for c in plan.conflicts}
            kept = sorted(({*result.unavailable, *plan.skipped} & waiting.keys()) - unresolved)
            result.conflicts = [*plan.conflicts, *(Conflict.from_json(waiting[p]) for p in kept)]
            unresolved |= {*result.unavailable, *plan.skipped}
            # (A conflict over a temporary name, recorded before those were left out, or
            # over a file this machine no longer syncs (`types --exclude`, seen by a pull of
            # all it syncs), is over a file nothing here syncs any more.)
            everything = complete and not sel.only
            selected = {p for p in waiting if everything or covers(p) or is_temporary(p)}
            for path in selected - unresolved:
                engine.state.set_conflict(path, None)
                if plan.strategy in ("local", "remote"):
                    engine.conflict_log.remove_copies(path)
            for c in plan.conflicts:
                engine.state.set_conflict(c.path, c.to_json())
            # A remote change not applied here keeps the head unpulled: the next pull
            # takes it up again (and merges what changed here meanwhile).
            if complete and not plan.conflicts and not plan.skipped:
                engine.state.set_meta("pulled_seq", str(head.seq))
                engine.state.set_meta(PULLED_SELECTION, sel.key())
                engine.state.set_meta("session_window", engine.sessions.key())
                engine.state.set_meta("unmapped_labels", ",".join(plan.unmapped))
        with engine.state.transaction():
            # For status: these stay "to pull" until a repair elsewhere brings their data.
            # (A pull of some types only says nothing of the others.)
            before = json.loads(engine.state.get_meta(UNAVAILABLE) or "{}")
            lost = {p: e for p, e in before.items() if not covers(p) and not is_temporary(p)}
            lost |= {p: plan.write[p].sha256 for p in result.unavailable if p in plan.write}
            engine.state.set_meta(UNAVAILABLE, json.dumps(lost) if lost else None)
        if not result.unavailable:
            engine.record_success("pull")
        if (
            settings_trust.PATH in result.pulled + result.merged
            and self._window_widened()
            and not result.unavailable
        ):
            # A longer clean-up period arrived (raised elsewhere since; a pull takes it
            # before planning where the incoming file tells it, see _take_incoming_window):
            # what it takes in comes now, not with the next pull.
            # (Not after a failure: the pull is run again anyway, and a second pass would
            # read the damaged packs again.)
            result.merge(self.pull(sel, strategy, dry_run, complete))
        return result

    def _take_incoming_window(self, head: Snapshot, local: LocalView, result: Result) -> None:
        """A pull whose settings.json brings a longer clean-up period takes the sessions it
        adds now: a second pass, once settings.json was in place, read again the packs the
        first had read (one small read here instead, when settings.json changed elsewhere).
        The second pass stays for what this cannot tell (a merge of both sides' values)."""
        engine = self.engine
        incoming = head.files.get(settings_trust.PATH)
        here = local.files.get(settings_trust.PATH)
        window = engine.sessions.window
        if engine.window_setting is not None or window is None or incoming is None:
            return
        base = engine.state.base_shas((settings_trust.PATH,)).get(settings_trust.PATH)
        if incoming.sha256 in (base, here and sha(here)):
            return  # not changed elsewhere: this machine's window is already its value
        try:
            with engine.downloads.reading_by_range():
                data = engine.downloads.file_bytes(incoming, result)
        except SyncError:
            return  # (its pull says so; the second pass stays the way)
        longer = cleanup_days_in(data) * DAY
        if longer > window:
            engine.sessions = SessionPolicy(longer, longer)

    def _window_widened(self) -> bool:
        """Whether settings.json, as pulled, gives this machine a longer session window
        than the one this pull used (which then becomes the one used)."""
        engine = self.engine
        now = SessionPolicy.for_machine(engine.window_setting, engine.root)
        old = engine.sessions.window
        if old is None or (now.window is not None and now.window <= old):
            return False
        engine.sessions = now
        return True

    def report_dry(self, plan: Plan, result: Result) -> None:
        """What the pull would do, merges tried (nobody asked) but nothing written here."""
        engine = self.engine
        if plan.merges:
            lost: dict[str, str] = {}
            with engine.merges.inputs(plan.merges, result, lost) as inputs:
                for path, merge, local_bytes, base_bytes, remote_bytes in inputs:
                    if remote_bytes is None:
                        unavailable(plan, result, path, why_lost(lost, merge.remote))
                    elif merge_file(path, base_bytes, local_bytes, remote_bytes) is None:
                        settle_conflict(plan, path, *merge)
                    else:
                        result.merged.append(path)
        engine.conflict_log.name_authors(plan.conflicts, plan.head)
        result.conflicts = plan.conflicts
        lost = json.loads(engine.state.get_meta(UNAVAILABLE) or "{}")
        result.unavailable += [p for p, e in plan.write.items() if lost.get(p) == e.sha256]
        result.pulled = sorted(plan.write)
        result.deleted = sorted(plan.delete)
        result.downloaded_bytes = sum(plan.write[p].size for p in result.pulled)


def _unmapped_warning(label: str) -> str:
    """What a pull says of the projects PathMapper.unmapped_label gave label."""
    if label == "~":
        return (
            "projects pushed from under the home before their folder was mapped to a label "
            "stay in the repository under their old name: here they sync under the label"
        )
    if label == CUT_BEFORE:
        return (
            "sessions an older claude-sync pushed under a project folder name Claude Code "
            "shortened here sync under their project's own name now; the old copies stay in "
            "the repository"
        )
    if label == BESIDE_HOME:
        return (
            "projects from another machine's home whose folder name here Claude Code also "
            "gives a folder beside your home (~/work/x and ~-work/x are one name to it) stay "
            "in the repository: `claude-sync resume ID --cwd DIR` places a session of theirs"
        )
    if label == TOO_LONG:
        return (
            f"projects whose folder name would be over {MAX_NAME} characters here (a longer "
            "home than where they were pushed) stay in the repository: `claude-sync resume "
            "ID` places a session of theirs where Claude Code looks for it"
        )
    return (
        f"projects labelled {label!r} stay in the repository: no folder here is mapped to "
        f"that label (`claude-sync map DIR {label}`)"
    )
