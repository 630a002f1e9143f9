"""A push: the scan (with its chunks streamed to the packs), the planner's decisions,
merges of what changed on both sides, the upload and the snapshot; planned again while
another machine wins the race for the snapshot number."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from claude_sync import memory
from claude_sync.errors import SyncError
from claude_sync.merging import REWRITTEN_MEANWHILE
from claude_sync.outcome import Result
from claude_sync.planner import LocalView, Plan, shape_clashes
from claude_sync.repository import BlobLocation, FileEntry, PackWriter
from claude_sync.resources import Selection
from claude_sync.state import WHOLE_TREE
from claude_sync.uploads import NewChunks

if TYPE_CHECKING:
    from claude_sync.engine import Engine

MAX_PUSH_ATTEMPTS = 16
PUSH_BACKOFF_CAP = 2.0


class Pusher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def push(self, sel: Selection, dry_run: bool = False) -> Result:
        """Send what changed here as the next snapshot. Changes made on both sides are not
        pushed over: they merge first when they merge cleanly, else stay conflicts for a
        pull; a lost race with another machine plans again."""
        engine = self.engine
        result = Result()
        sent_before = engine.repo.uploaded_bytes  # the scan sends packs already
        writers: list[PackWriter] = []  # made when the scan meets a changed file

        def stream() -> NewChunks:
            writers.append(PackWriter(engine.repo))
            return NewChunks(writers[0], engine.known_blobs)

        try:
            walked = engine.scanner.walk(sel, result.warnings, "mirror" if dry_run else "sync")
            if not sel.only:
                engine.refuse_a_vanished_folder(sel, walked)
            # Units as the last push with nothing to send left them need no look (see
            # clean_tree.py).
            recording = not (dry_run or sel.only)
            clean = engine.state.clean_units() if recording else {}
            whole = clean.pop(WHOLE_TREE, None)
            if engine.mapper.moved:
                clean = {}  # a moved session's files are in another project's unit
            changed = engine.clean_record.to_look_at(walked, clean, whole)
            if changed is not None and not changed:
                engine.scanner.report_skipped(walked, result)
                engine.repo.check_place()
                engine.record_success("push")
                return result
            if changed is not None:
                sel = replace(sel, only=tuple(sorted(changed)))
                walked = walked.narrowed(changed)
            else:
                clean, changed = {}, set(walked.units)  # a full look: no record relied on
            local = engine.scanner.scan(
                sel, result.warnings, not dry_run, None if dry_run else stream, walked
            )
            result.skipped = local.skipped()
            if not dry_run and not engine.has_local_changes(sel, local):
                # What the scan sealed is left out: nothing is sent, no snapshot written.
                if recording:
                    engine.clean_record.record(sel, local, walked, clean, changed, settled=True)
                engine.repo.check_place()
                engine.record_success("push")
                return result
            # The scan read the indexes if it streamed chunks (NewChunks.learn).
            index_read = bool(writers)
            if not writers:
                writers.append(PackWriter(engine.repo))
            memory.give_back()  # what the scan's readers freed, before the commit's peak
            result = self._rounds(sel, local, writers[0], result, dry_run, index_read)
            if not dry_run:
                result.uploaded_bytes = engine.repo.uploaded_bytes - sent_before
                if recording:
                    engine.clean_record.record(sel, local, walked, clean, changed)
        finally:
            for writer in writers:
                writer.close()
        if not dry_run:
            engine.record_success("push")
        return result

    def _rounds(
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
        engine = self.engine
        written_indexes: dict[str, dict[str, BlobLocation]] = {}  # indexes this push wrote
        pruned = False
        for attempt in range(MAX_PUSH_ATTEMPTS):
            if attempt:
                # Another machine won the race for this snapshot number. Waiting a random,
                # growing while spreads out machines that keep colliding.
                time.sleep(random.uniform(0, min(PUSH_BACKOFF_CAP, 0.05 * 2**attempt)))
            plan = engine.plan_push(sel, local, engine.head())
            if not dry_run:
                wrote, checked, unmerged = engine.merges.before_push(plan, local, result)
                if wrote:
                    local = engine.scanner.scan(sel, result.warnings, summaries=True)
                    plan = engine.plan_push(sel, local, plan.head)
                    # Planned again from a new scan: a transcript rewritten without records
                    # since the first one (or again since they were put back) waits for the
                    # next push, which puts them back; only one checked here goes.
                    for path in engine.merges.rewritten_transcripts(plan):
                        if not engine.identities.names(local.files[path], checked.get(path)):
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
            engine.conflict_log.name_authors(plan.conflicts, plan.head)
            result.conflicts = engine.conflict_log.as_recorded(plan.conflicts)
            if not dry_run:
                engine.conflict_log.record_new(result.conflicts)
            if dry_run:
                self.report_dry(plan, result)
                return result
            entries: dict[str, FileEntry] = {}
            if plan.upload:
                if attempt or not index_read:
                    engine.downloads.refresh_index()
                with ThreadPoolExecutor(max_workers=1) as aside:
                    # Transcripts' summaries are read while the chunks are compressed and
                    # sealed, which free the interpreter: on a first push they cost ~3 s per
                    # GiB of one core.
                    summarized = aside.submit(
                        engine.remote_head.entries, list(plan.upload.values())
                    )
                    engine.uploads.upload(plan, writer, result.warnings)
                    entries = summarized.result()
            written = writer.finish()
            written_indexes.update(written)
            with engine.state.transaction():
                for name, locations in written.items():
                    engine.state.add_index(name, locations)
            pruned = not engine.uploads.data_still_there(plan, writer, written_indexes, written)
            if pruned:
                continue  # a prune got to some of it meanwhile: upload that again
            if engine.remote_head.commit(plan, result, entries):
                return result
        if pruned:
            raise SyncError(
                "data this push relies on kept being marked for deletion or going missing "
                "from the repository (a prune on another machine with a --grace shorter than "
                "this push takes?); try again"
            )
        raise SyncError("another machine kept pushing at the same time; try again")

    def report_dry(self, plan: Plan, result: Result) -> None:
        """What the push planned would send. A transcript left empty where the repository
        has records gets them back from there first (see Merges.rewritten_transcripts), and
        nothing of it is sent: it will merge. (One rewritten otherwise may hold records of
        its own, or only edited ones: what the push sends is known once both are read.)"""
        engine = self.engine
        rewritten = engine.merges.rewritten_transcripts(plan).items()
        emptied = {p: m.remote for p, m in rewritten if not m.local.entry().size}
        upload = sorted(p for p in plan.upload if p not in emptied)
        result.merged = sorted({*result.merged, *emptied})
        result.pushed = upload + sorted(plan.remove)
        result.removed = sorted(plan.remove)
        # At most this much: compression and data already stored make it less.
        result.uploaded_bytes = sum(plan.upload[p].entry().size for p in upload)
        result.downloaded_bytes += sum(stored.size for stored in emptied.values())
