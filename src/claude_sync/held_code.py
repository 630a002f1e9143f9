"""A pull's guard on what runs code (code_trust.py): a change to settings.json's guarded
keys, to an agent's, skill's or command's code, or to a skill's script, arrives only with
the user's consent or the `settings-commands` opt-in. Held back, the change waits as a
conflict that `resolve --take remote` applies: settings.json's other keys still arrive, an
agent, skill or command stays as it is here (or is not created)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, NamedTuple

from claude_sync import code_trust, identity, settings_trust
from claude_sync.merging import staged_content, unavailable, why_lost
from claude_sync.planner import Conflict, LocalFile, LocalView, Plan
from claude_sync.planner import conflict as make_conflict
from claude_sync.planner import sha as _sha
from claude_sync.repository import FileEntry
from claude_sync.resources import Selection

if TYPE_CHECKING:
    from claude_sync.engine import Engine, Result


class HeldCode:
    """The changes of one pull that run code: held back, or kept waiting."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: held changes the user took (`resolve --take remote`): path -> the content hash
        #: of the version held, the only one that arrives unasked
        self.consent: dict[str, str | None] = {}

    def keep_waiting(self, sel: Selection, plan: Plan, local: LocalView) -> None:
        """A held change already waiting stays waiting while neither side moved;
        `--strategy local` settles it for this machine's version (the next push sends it)."""
        engine = self.engine
        if engine.trust_code or plan.head is None:
            return
        covers = engine.coverage(sel)
        for path, waiting in engine.state.conflicts().items():
            if not waiting.get("held") or not covers(path) or path in self.consent:
                continue
            remote = plan.head.files.get(path)
            if plan.strategy == "local":
                plan.adopt[path] = remote
            elif waiting.get("remote_sha256") == _sha(remote) and waiting.get(
                "local_sha256"
            ) == _sha(local.files.get(path)):
                plan.conflicts.append(Conflict.from_json(waiting))
            else:
                continue
            plan.merges.pop(path, None)
            plan.write.pop(path, None)
            plan.copies.pop(path, None)

    def hold_back(self, plan: Plan, local: LocalView, result: Result, ask: bool = True) -> None:
        """Take the changes that run code out of what the pull writes, unless the user
        consents (Reporter.trust; not asked for `status` and dry runs, which say what a
        pull without consent would do); they wait as conflicts."""
        engine = self.engine
        if engine.trust_code or plan.head is None:
            return
        head = plan.head

        def guarded(path: str) -> bool:
            # What the user took is that version only: one pushed since is asked about.
            taken = path in self.consent and self.consent[path] == _sha(head.files.get(path))
            return not taken and code_trust.guards(path)

        coming = [p for p in plan.write if p not in plan.merged and guarded(p)]
        # A big asset of a skill changes what runs as a whole: held by its size and hash,
        # it is not downloaded twice (here, then by the pull) to be shown.
        big = {
            p: plan.write[p]
            for p in coming
            if code_trust.whole(p) and plan.write[p].size > code_trust.SHOWN_BYTES
        }
        wanted = {p: plan.write[p] for p in coming if p not in big}
        incoming, missing = self._fetched(wanted, result)
        for path, why in missing.items():
            unavailable(plan, result, path, why)
            plan.write.pop(path)
        incoming |= {p: data for p, (data, _) in plan.merged.items() if guarded(p)}
        if settings_trust.PATH in plan.delete and guarded(settings_trust.PATH):
            incoming[settings_trust.PATH] = None
        changes: list[_Change] = []
        for path in sorted(incoming.keys() | big.keys()):
            if path in big:
                was = local.files.get(path)
                seen = {code_trust.SCRIPT: (_described(was), _described(big[path]))}
                change = _Change(path, None, None, seen, seen)
            else:
                change = self._change(path, incoming[path], local)
            if change is not None:
                changes.append(change)
        # One question for all of them: a first pull may bring dozens.
        asked = {c.path: c.shown for c in changes}
        if changes and ask and engine.reporter.trust(asked, plan.head.device, plan.head.seq):
            return
        for change in changes:
            self._keep(change, plan, local)

    def changing_code(self, files: dict[str, FileEntry], result: Result) -> list[str]:
        """Of these stored versions (a restore's), those that would change the code of the
        file here, or whose data cannot be had to tell."""
        engine = self.engine
        if engine.trust_code:
            return []
        contents, missing = self._fetched(
            {p: e for p, e in files.items() if code_trust.guards(p)}, result
        )
        changing = list(missing)
        for path, data in contents.items():
            try:
                here = engine.reader.logical_bytes(path, engine.local_abspath(path))
            except OSError:
                here = None
            if code_trust.changed(path, here, data):
                changing.append(path)
        return sorted(changing)

    def _fetched(
        self, entries: dict[str, FileEntry], result: Result
    ) -> tuple[dict[str, bytes | None], dict[str, str]]:
        """The contents of these stored versions by path, and why the others' data cannot
        be had."""
        if not entries:
            return {}, {}
        lost: dict[str, str] = {}
        # (Read by range, each blob checked, where they are a small part of their packs;
        # a pack read whole is kept for the pull, which wants it for the rest.)
        with self.engine.repo.keeping_packs():
            staging = self.engine.downloads.fetch_blobs(list(entries.values()), result, lost=lost)
        try:
            found = {p: staged_content(staging, e) for p, e in entries.items()}
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        missing = {p: why_lost(lost, entries[p]) for p, data in found.items() if data is None}
        return {p: data for p, data in found.items() if data is not None}, missing

    def _change(self, path: str, incoming: bytes | None, local: LocalView) -> _Change | None:
        """What the pull would change of path's code; None when nothing."""
        engine = self.engine
        local_file = local.files.get(path)
        try:
            local_bytes = (
                engine.reader.logical_bytes(path, local_file.abspath) if local_file else None
            )
        except OSError:
            return None  # gone meanwhile: the install step notices and keeps it
        changes = code_trust.changed(path, local_bytes, incoming)
        if not changes:
            return None
        # Shown as they would be written here (home paths this machine's, not the token).
        here = code_trust.changed(
            path,
            None if local_bytes is None else engine.local_bytes(path, local_bytes),
            None if incoming is None else engine.local_bytes(path, incoming),
        )
        shown = {k: here.get(k, v) for k, v in changes.items()}
        return _Change(path, incoming, local_bytes, changes, shown)

    def _keep(self, change: _Change, plan: Plan, local: LocalView) -> None:
        """The change held back: this machine's version stays (settings.json: with the
        incoming ordinary keys), and a conflict waits."""
        engine = self.engine
        assert plan.head is not None
        path = change.path
        local_file = local.files.get(path)
        plan.merged.pop(path, None)
        plan.write.pop(path, None)
        if path in plan.delete:
            plan.delete.remove(path)
        local_sha = _sha(local_file)
        if path == settings_trust.PATH:
            mine = change.local_bytes or b"{}"
            held = settings_trust.blend(change.incoming or b"{}", mine)
            if held is not None and held != mine:
                plan.held[path] = held
                local_sha = identity.of(engine.repo.keys.file_hash, held)
        conflict = make_conflict(
            path, local_file, engine.state.bases().get(path), plan.head.files.get(path), plan.head
        )
        conflict.local_sha256 = local_sha
        conflict.held = sorted(change.changes)
        conflict.keys = plan.unsettled.pop(path, None)
        plan.conflicts.append(conflict)


class _Change(NamedTuple):
    """A change to a file's code a pull would make: its parts (name -> here, incoming), as
    compared and as shown (home paths this machine's)."""

    path: str
    incoming: bytes | None
    local_bytes: bytes | None
    changes: dict[str, tuple[Any, Any]]
    shown: dict[str, tuple[Any, Any]]


def _described(version: FileEntry | LocalFile | None) -> str | None:
    """A file version as a held change shows it without its contents."""
    if version is None:
        return None
    size = version.entry().size if isinstance(version, LocalFile) else version.size
    return f"{size} bytes, content hash {version.sha256}"
