"""A pull's guard on settings.json: the keys that run or authorise code (hooks, MCP
servers, permissions; settings_trust.py) arrive only with the user's consent or the
`settings-commands` opt-in. Held back, the file's other keys still arrive; the guarded
change waits as a conflict that `resolve --take remote` applies."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from claude_sync import identity, settings_trust
from claude_sync.merging import staged_content, unavailable, why_lost
from claude_sync.planner import Conflict, LocalView, Plan
from claude_sync.planner import conflict as make_conflict
from claude_sync.planner import sha as _sha
from claude_sync.resources import Selection

if TYPE_CHECKING:
    from claude_sync.engine import Engine, Result


class HeldSettings:
    """The guarded settings change of one pull: held back, or kept waiting."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def keep_waiting(self, sel: Selection, plan: Plan, local: LocalView) -> None:
        """A guarded settings change already waiting stays waiting while neither side moved;
        `--strategy local` settles it for this machine's keys (the next push sends them)."""
        engine = self.engine
        path = settings_trust.PATH
        waiting = engine.state.conflicts().get(path)
        if not waiting or not waiting.get("held") or engine.trust_settings or plan.head is None:
            return
        if not engine.coverage(sel)(path):
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

    def hold_back(self, plan: Plan, local: LocalView, result: Result, ask: bool = True) -> None:
        """Take the guarded keys out of what the pull writes to settings.json, unless the
        user consents (Reporter.trust; not asked for `status` and dry runs, which say what a
        pull without consent would do); they wait as a conflict."""
        engine = self.engine
        path = settings_trust.PATH
        if engine.trust_settings or plan.head is None:
            return
        remote = plan.head.files.get(path)
        if path in plan.merged:
            incoming = plan.merged[path][0]
        elif path in plan.write:
            lost: dict[str, str] = {}
            staging = engine.downloads.fetch_blobs([plan.write[path]], result, lost=lost)
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
                engine.reader.logical_bytes(path, local_file.abspath) if local_file else b"{}"
            )
        except OSError:
            return  # gone meanwhile: the install step notices and keeps it
        changes = settings_trust.changed_keys(local_bytes, incoming)
        device = plan.head.device
        if not changes:
            return
        # Shown as they would be written here (home paths this machine's, not the token).
        here = settings_trust.changed_keys(
            engine.local_bytes(path, local_bytes), engine.local_bytes(path, incoming)
        )
        if ask and engine.reporter.trust(
            path, {k: here.get(k, v) for k, v in changes.items()}, device
        ):
            return
        plan.merged.pop(path, None)
        plan.write.pop(path, None)
        if path in plan.delete:
            plan.delete.remove(path)
        held = settings_trust.blend(incoming, local_bytes)
        local_sha = _sha(local_file)
        if held is not None and held != local_bytes:
            plan.held[path] = held
            local_sha = identity.of(engine.repo.keys.file_hash, held)
        conflict = make_conflict(
            path, local_file, engine.state.bases().get(path), remote, plan.head
        )
        conflict.local_sha256 = local_sha
        conflict.held = sorted(changes)
        conflict.keys = plan.unsettled.pop(path, None)
        plan.conflicts.append(conflict)
