"""Automatic merges of one file's two versions (issue 5). Pure functions: bytes in, bytes out.

`merge_file` picks a strategy from the file's logical path under ~/.claude:

* ``projects/**.jsonl`` (sessions and sub-agent transcripts): `merge_transcript`, never a conflict.
* ``history.jsonl``: `merge_history`, never a conflict.
* ``*.json`` (settings.json, plugin manifests, ...): `merge_json`, a three-way merge per key.
* `MCP_SERVERS` (the `mcp` type): `merge_json_entries`, per server name, each server whole.
* anything else: `merge_text`, a three-way line merge (diff3).

`None` means a real conflict; `conflict_markers` then writes a git-style file for the user.
When ``local == remote``, `merge_file` returns ``local`` unchanged whatever the path.

Transcripts (`merge_transcript`)
--------------------------------
Lines are split on ``\\n``; a last line without newline is still a line when it is a whole JSON
value or does not start with ``{``, else it is a record still being written: unless one side
is a prefix of the other, only complete lines are merged, the local side's unfinished line is
put back at the end (where its writer finishes it) and the remote side's is left to its own
machine. Empty lines are ignored.
A line's *identity* is ``(uuid, k)`` when it is a JSON object with a string ``uuid``,
else ``(its exact bytes, k)``, where ``k`` counts earlier lines of the same file with the same
uuid / bytes: a line repeated inside one file is kept as often as the file that repeats it most
(union of multisets), never collapsed. Its *key* is ``(timestamp, identity)``: the parsed
ISO-8601 ``timestamp`` in microseconds, and lines without one (``summary``,
``file-history-snapshot``, invalid JSON) sort before all timestamps.

1. Fast-forward: if one side is a byte prefix of the other, the longer side is returned
   byte-identical (this also covers the partial last line of a file being written).
2. Otherwise the output is the greedy merge of the two line sequences (like merge sort's merge
   step): repeatedly emit the smaller key of the two sides' first not-yet-emitted lines. A shared
   prefix is therefore kept as is, each side's own order is kept, lines without a timestamp stay
   right after the line they followed, and every identity of either side appears exactly once.
   When both sides hold the same identity with different bytes, the greater bytes win.
   The output always ends with a newline.

Guarantees (checked by tests/test_merge.py):

* For all inputs whose last lines are complete: no identity is lost (as a multiset);
  commutative (byte-identical);
  idempotent (``merge(x, x) == x``, hence also on results); non-empty results end with a newline
  unless they are a fast-forward to a side that does not.
* Associative and convergent (any pairing order of any number of machines gives the same bytes)
  when the inputs are *realistic*: every line complete (newline-terminated), lines sharing a uuid
  carry the same timestamp, and one of:
  (a) each file is a shared base followed by lines appended on that machine alone (no appended
      line shares its identity with a line of another machine), in any order, ties and lines
      without timestamp included: the result is the base, then the k-way greedy merge of the
      appends, whatever the pairing;
  (b) each file lists its lines in increasing key order, with any overlap between files,
      truncated files included: the result is the key-sorted union, a join semilattice;
  (c) files grown from such a base by rounds of appends (timestamp ties and lines without
      timestamp included) and pairwise merges between machines: checked by a randomized test,
      not proven.
  Outside these (two files ordering the same records differently, one uuid with two
  timestamps, a partial last line that a later merge completes), the result is still
  commutative and loses nothing, but the pairing order can change the order of lines.
* Truncated or rewritten sides: records missing on one side are restored from the other.
  The merge base is ignored: a transcript never loses records through a merge.

History (`merge_history`)
-------------------------
The key-sorted union of distinct non-empty lines, key ``(timestamp in ms, line bytes)``; lines
without a finite numeric ``timestamp`` sort first. Exact duplicate lines appear once. This is a
join semilattice for *all* inputs (commutative, associative, idempotent on its outputs and on
any sorted duplicate-free file, no line lost); an unsorted input file gets sorted.
`merge_file` does not use it when the local side added nothing to the base and the remote
only added lines after it: the remote file is then taken as it is (with the local line
still being written, on a line of its own), so that a line appended out of time order
elsewhere does not come back to it as a change.

JSON (`merge_json`)
-------------------
Three-way per key, recursively into objects present as objects on all sides that have them; a key
added, changed or deleted on one side only takes that side; the same change on both sides is
fine; an array to which both sides only added entries (no entry of the base gone on either side)
becomes local's entries then remote's new ones; other different changes to the same key (arrays
and scalars are otherwise atomic values) are a conflict. A missing base (two machines' first
sync) counts as ``{}``, so keys on one side only are kept. `merge_json_keys` merges all the
same, a conflicting key taking the preferred side's value, and names the conflicting keys.
Invalid JSON on any side is a conflict. The output is re-serialized (2-space indent, UTF-8,
trailing newline), so formatting is normalized; key order follows local, then keys new on
remote in remote's order. ``1``, ``1.0`` and ``true`` differ.

Text (`merge_text`)
-------------------
diff3 over lines (difflib, no autojunk): a region changed on one side only takes that side;
identical changes are fine; overlapping or adjacent different changes are a conflict, as in git.
No base: a conflict unless both sides are equal. Binary content (not UTF-8, or with NUL) gets
only the trivial merges (sides equal, or one side equal to the base).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from difflib import SequenceMatcher
from typing import Any

from claude_sync.json_layout import dump_like

__all__ = [
    "conflict_markers",
    "is_transcript",
    "merge_file",
    "merge_history",
    "merge_json",
    "merge_json_keys",
    "merge_keys",
    "merge_text",
    "merge_transcript",
    "split_unfinished",
]

HISTORY_PATH = "history.jsonl"
#: where mcp.py mirrors the `mcpServers` of Claude Code's ~/.claude.json
MCP_SERVERS = "claude-sync/mcp-servers.json"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# -- dispatch -------------------------------------------------------------------------------------


def merge_file(path: str, base: bytes | None, local: bytes, remote: bytes) -> bytes | None:
    """Three-way merge of one file's versions; None when it is a real conflict the user must settle.

    path is the logical POSIX path relative to ~/.claude (e.g.
    'projects/-home-ann-app/<uuid>.jsonl', 'history.jsonl', 'settings.json', 'agents/x.md').
    base is the common ancestor (None if unknown).
    """
    if local == remote:
        return local
    kind = _kind(path)
    if kind == "transcript":
        return merge_transcript(local, remote)
    if kind == "history":
        done, tail = split_unfinished(local)
        theirs = split_unfinished(remote)[0]
        synced = None if base is None else split_unfinished(base)[0]
        if synced is not None and done == synced and theirs.startswith(synced):
            # Nothing added here, only lines added there since the last sync: the other
            # machine's history as it is (sorted by time here, a line it appended out of
            # order came back as a change), and the prompt being written here still at
            # the end, on a line of its own. (Lines gone there: the union, as always.)
            if tail and theirs and not theirs.endswith(b"\n"):
                theirs += b"\n"
            return theirs + tail
        return merge_history(local, remote)
    if kind == "entries":
        return merge_json_entries(base, local, remote)
    if kind == "json":
        return merge_json(base, local, remote)
    return merge_text(base, local, remote)


def merge_keys(
    path: str, base: bytes | None, local: bytes, remote: bytes, prefer: str
) -> tuple[bytes, list[str]] | None:
    """For a JSON file whose keys conflict (`merge_file` gave None): `merge_json_keys`, the
    merge with `prefer`'s value at those keys, and the keys. None for any other file."""
    if _kind(path) != "json":
        return None
    return merge_json_keys(base, local, remote, prefer)


def is_transcript(path: str) -> bool:
    """Whether path is a session transcript: append-only, merged as a union of records."""
    return _kind(path) == "transcript"


def _kind(path: str) -> str:
    path = path.removeprefix("./")
    if path == HISTORY_PATH:
        return "history"
    if path == MCP_SERVERS:
        return "entries"
    if path.startswith("projects/") and path.endswith(".jsonl"):
        return "transcript"
    if path.endswith(".json"):
        return "json"
    return "text"


# -- lines ----------------------------------------------------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    """Non-empty lines without their newline; a last line without newline counts as a line."""
    return [line for line in data.split(b"\n") if line]


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _parse_object(line: bytes) -> dict[str, Any] | None:
    """The line as a JSON object, or None for anything else (opaque line)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None


# -- transcripts ----------------------------------------------------------------------------------

# Identity of a transcript line: (kind, uuid-or-bytes, occurrence). kind 0 = uuid, 1 = opaque
# line, so both compare in one total order.
_Identity = tuple[int, bytes, int]
# Sort key: (has timestamp, microseconds, identity). Identity makes keys of distinct lines
# distinct, which is what makes the greedy merge symmetric.
_Key = tuple[int, int, _Identity]


@dataclass(frozen=True, slots=True)
class _Record:
    line: bytes
    identity: _Identity
    key: _Key


def merge_transcript(local: bytes, remote: bytes) -> bytes:
    """Union of two versions of a session transcript; see the module docstring for the rules."""
    if remote.startswith(local) or local.startswith(remote):
        return _merge_lines(local, remote)
    # A last line that is not yet a record is a write in progress (Claude Code appends a
    # record in pieces): only complete lines are merged. This machine's unfinished write stays
    # at the end, where its writer finishes it; the other's is left to the machine writing it.
    local, tail = split_unfinished(local)
    remote, _ = split_unfinished(remote)
    return _with_tail(_merge_lines(local, remote), tail)


def _with_tail(merged: bytes, tail: bytes) -> bytes:
    """merged, then this machine's unfinished write, which starts a line of its own (after
    a whole last record that lacks its newline, one is added)."""
    if tail and merged and not merged.endswith(b"\n"):
        merged += b"\n"
    return merged + tail


def restore_records(local: bytes, stored: bytes) -> bytes:
    """local with the records of stored it lacks put back where they belong (Claude Code
    rewrote the file from what it held, without records another machine added). Unlike
    merge_transcript, a record both hold keeps local's line: an edit here (a secret
    replaced) stays. local itself when it lacks none. A record without uuid that was
    edited here lacks its old line, which comes back beside the new one."""
    mine, tail = split_unfinished(local)
    theirs, _ = split_unfinished(stored)
    local_records, stored_records = _records(mine), _records(theirs)
    have = {r.identity for r in local_records}
    if all(r.identity in have for r in stored_records):
        return local
    lines = {r.identity: r.line for r in stored_records} | {
        r.identity: r.line for r in local_records
    }
    return _with_tail(_join(_interleave(local_records, stored_records, lines)), tail)


def _merge_lines(local: bytes, remote: bytes) -> bytes:
    if remote.startswith(local):
        return remote
    if local.startswith(remote):
        return local
    local_records, remote_records = _records(local), _records(remote)
    winners = _winners(local_records, remote_records)
    return _join(_interleave(local_records, remote_records, winners))


def split_unfinished(data: bytes) -> tuple[bytes, bytes]:
    """(complete lines, unfinished last line): a last line without newline that starts a
    JSON object is a record still being written unless it is already whole."""
    cut = data.rfind(b"\n") + 1
    if not data.startswith(b"{", cut):
        return data, b""
    try:
        json.loads(data[cut:])
    except (ValueError, RecursionError):
        return data[:cut], data[cut:]
    return data, b""


def _records(data: bytes) -> list[_Record]:
    seen: dict[tuple[int, bytes], int] = {}
    records = []
    for line in _lines(data):
        record = _parse_object(line)
        uuid = record.get("uuid") if record is not None else None
        # surrogatepass: a JSON string may hold lone surrogates, which plain UTF-8 refuses.
        # A line's CR is its file's line ending, not part of the record (CRLF vs LF copies).
        opaque = (1, line.removesuffix(b"\r"))
        base = (0, uuid.encode("utf-8", "surrogatepass")) if isinstance(uuid, str) else opaque
        occurrence = seen.get(base, 0)
        seen[base] = occurrence + 1
        identity = (*base, occurrence)
        micros = _iso_micros(record.get("timestamp")) if record is not None else None
        key = (0, 0, identity) if micros is None else (1, micros, identity)
        records.append(_Record(line, identity, key))
    return records


def _iso_micros(value: object) -> int | None:
    """An ISO-8601 timestamp as integer microseconds since the epoch (naive = UTC), else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return (moment - _EPOCH) // _MICROSECOND
    except OverflowError:
        return None


def _winners(*sides: list[_Record]) -> dict[_Identity, bytes]:
    """The bytes written for each identity: the greatest, so argument order does not matter."""
    winners: dict[_Identity, bytes] = {}
    for side in sides:
        for record in side:
            current = winners.get(record.identity)
            if current is None or record.line > current:
                winners[record.identity] = record.line
    return winners


def _interleave(
    local: list[_Record], remote: list[_Record], winners: dict[_Identity, bytes]
) -> list[bytes]:
    """Merge step of merge sort over the not-yet-emitted heads of both sides.

    Comparing heads only (not sorting everything) keeps each side's own order, so a shared
    prefix stays put and a record without timestamp stays after the record it followed. With
    keys that are distinct for distinct identities, the choice at each step is symmetric.
    """
    out: list[bytes] = []
    emitted: set[_Identity] = set()
    i = j = 0
    while True:
        while i < len(local) and local[i].identity in emitted:
            i += 1
        while j < len(remote) and remote[j].identity in emitted:
            j += 1
        if i == len(local) and j == len(remote):
            return out
        if j == len(remote) or (i < len(local) and local[i].key <= remote[j].key):
            chosen = local[i]
        else:
            chosen = remote[j]
        emitted.add(chosen.identity)
        out.append(winners[chosen.identity])


# -- history --------------------------------------------------------------------------------------


def merge_history(local: bytes, remote: bytes) -> bytes:
    """Union of the lines of two history.jsonl versions, sorted by (timestamp ms, line bytes).
    As in a transcript, a last line Claude Code is still writing is no line yet: this
    machine's stays at the end, where its writer finishes it; another's is left out."""
    local, tail = split_unfinished(local)
    remote, _ = split_unfinished(remote)
    # One line per record whatever its line ending (CRLF vs LF copies): the greater bytes.
    lines: dict[bytes, bytes] = {}
    for line in _lines(local) + _lines(remote):
        record = line.removesuffix(b"\r")
        lines[record] = max(line, lines.get(record, line))
    return _join(sorted(lines.values(), key=_history_key)) + tail


def _history_key(line: bytes) -> tuple[int, float, bytes]:
    record = _parse_object(line)
    stamp = record.get("timestamp") if record is not None else None
    # bool is an int in Python but not a timestamp; NaN/inf would break the total order.
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and math.isfinite(stamp):
        return (1, stamp, line)
    return (0, 0, line)


# -- JSON -----------------------------------------------------------------------------------------


class _Missing:
    """A key absent from one version (deleted or never there)."""


_MISSING: Any = _Missing()


def merge_json(base: bytes | None, local: bytes, remote: bytes) -> bytes | None:
    """Three-way merge of JSON documents key by key; None on a conflict or invalid JSON."""
    try:
        base_value = {} if base is None else json.loads(base)
        local_value = json.loads(local)
        remote_value = json.loads(remote)
    except (ValueError, RecursionError):
        return None
    conflicts: list[str] = []
    merged = _merge_value(base_value, local_value, remote_value, _Merge(conflicts, "local"), ())
    if conflicts or merged is _MISSING:
        return None
    return _written(merged, local, remote, remote_value)


def merge_json_keys(
    base: bytes | None, local: bytes, remote: bytes, prefer: str = "local"
) -> tuple[bytes, list[str]] | None:
    """The key-by-key merge of two JSON objects even when some keys conflict: a conflicting
    key takes `prefer`'s value ("local" or "remote"); the second value names those keys
    (dotted paths, sorted). None when a version is not a JSON object."""
    values = _objects(base, local, remote)
    if values is None:
        return None
    conflicts: list[str] = []
    merged = _merge_value(*values, _Merge(conflicts, prefer), ())
    return _written(merged, local, remote, values[2]), sorted(conflicts)


def _written(merged: Any, local: bytes, remote: bytes, remote_value: Any) -> bytes:
    """A JSON merge as written: the remote text itself when the merge is the remote version
    (its key order and layout are no change to send back: a held settings.json taken with
    `resolve --take remote` was pushed again, its keys reordered), else laid out as local."""
    return remote if merged == remote_value else dump_like(merged, local)


def _objects(
    base: bytes | None, local: bytes, remote: bytes
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
    """The three versions as JSON objects (no base: an empty one); None when one is not."""
    try:
        values = ({} if base is None else json.loads(base), json.loads(local), json.loads(remote))
    except (ValueError, RecursionError):
        return None
    return values if all(isinstance(v, dict) for v in values) else None


def merge_json_entries(base: bytes | None, local: bytes, remote: bytes) -> bytes | None:
    """Three-way merge of JSON objects entry by entry, each entry's value taken whole (an MCP
    server's settings belong together); None when both sides changed one entry differently."""
    values = _objects(base, local, remote)
    if values is None:
        return None
    merged, conflicts = merge_entries(*values)
    if conflicts:
        return None
    return dump_like(merged, local)


def merge_entries(
    base: dict[str, Any], local: dict[str, Any], remote: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Entry by entry: added, changed or removed on one side is taken; an entry both sides
    changed differently keeps local's version and is named in the second value."""
    merged: dict[str, Any] = {}
    conflicts = []
    keys = list(local) + [key for key in remote if key not in local]
    keys += [key for key in base if key not in local and key not in remote]
    for key in keys:
        at_base, at_local, at_remote = (d.get(key, _MISSING) for d in (base, local, remote))
        value = at_local
        if _same(at_local, at_base) and not _same(at_remote, at_base):
            value = at_remote
        elif not (_same(at_local, at_remote) or _same(at_remote, at_base)):
            conflicts.append(key)
        if value is not _MISSING:
            merged[key] = value
    return merged, conflicts


def _same(a: Any, b: Any) -> bool:
    """JSON equality: unlike ==, 1, 1.0 and true differ; key order does not matter."""
    if a is _MISSING or b is _MISSING:
        return a is b
    return _canonical(a) == _canonical(b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True, slots=True)
class _Merge:
    """Where a merge notes its conflicting keys, and whose value such a key keeps meanwhile."""

    conflicts: list[str]
    prefer: str


def _merge_value(base: Any, local: Any, remote: Any, how: _Merge, at: tuple[str, ...]) -> Any:
    if _same(local, remote) or _same(remote, base):
        return local
    if _same(local, base):
        return remote
    container = type(local) if isinstance(local, dict | list) else None
    if type(remote) is container and (base is _MISSING or type(base) is container):
        if container is dict:
            return _merge_objects({} if base is _MISSING else base, local, remote, how, at)
        added = _union_of_additions([] if base is _MISSING else base, local, remote)
        if added is not None:
            return added
    how.conflicts.append(".".join(at))
    return remote if how.prefer == "remote" else local


def _union_of_additions(base: list[Any], local: list[Any], remote: list[Any]) -> list[Any] | None:
    """Both sides only added entries (permissions.allow rules, ...): local's list, then
    remote's new entries in remote's order. None when an entry of base is gone on a side."""
    kept = {_canonical(v) for v in base}
    seen = {_canonical(v) for v in local}
    if not kept <= seen or not kept <= {_canonical(v) for v in remote}:
        return None
    merged = list(local)
    for value in remote:
        if _canonical(value) not in seen:
            seen.add(_canonical(value))
            merged.append(value)
    return merged


def _merge_objects(
    base: dict[str, Any],
    local: dict[str, Any],
    remote: dict[str, Any],
    how: _Merge,
    at: tuple[str, ...],
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    # Local's order first, then keys only remote has: the user's own file keeps its layout.
    keys = list(local) + [key for key in remote if key not in local]
    keys += [key for key in base if key not in local and key not in remote]
    for key in keys:
        value = _merge_value(
            base.get(key, _MISSING),
            local.get(key, _MISSING),
            remote.get(key, _MISSING),
            how,
            (*at, key),
        )
        if value is not _MISSING:
            merged[key] = value
    return merged


# -- text -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hunk:
    """A stretch of the three versions: stable (all equal) or changed on one or both sides."""

    base: list[bytes]
    local: list[bytes]
    remote: list[bytes]

    def resolved(self) -> list[bytes] | None:
        if self.local == self.remote or self.remote == self.base:
            return self.local
        if self.local == self.base:
            return self.remote
        return None


def merge_text(base: bytes | None, local: bytes, remote: bytes) -> bytes | None:
    """diff3 line merge; None when both sides changed the same lines differently."""
    if local == remote:
        return local
    if base is None:
        return None
    if remote == base:
        return local
    if local == base:
        return remote
    if not all(_is_text(data) for data in (base, local, remote)):
        return None
    out: list[bytes] = []
    for hunk in _diff3(base, local, remote):
        lines = hunk.resolved()
        if lines is None:
            return None
        out.extend(lines)
    return b"".join(out)


def conflict_markers(local: bytes, remote: bytes, base: bytes | None = None) -> bytes:
    """A git-style (diff3) file: clean stretches merged, each conflict between markers.

    Without a base the whole file is one conflict and the ``|||||||`` section is left out.
    """
    if base is None:
        return _marked(_Hunk([], _split_keepends(local), _split_keepends(remote)), with_base=False)
    out: list[bytes] = []
    for hunk in _diff3(base, local, remote):
        lines = hunk.resolved()
        out.append(b"".join(lines) if lines is not None else _marked(hunk, with_base=True))
    return b"".join(out)


def _marked(hunk: _Hunk, *, with_base: bool) -> bytes:
    parts = [b"<<<<<<< local\n", _block(hunk.local)]
    if with_base:
        parts += [b"||||||| base\n", _block(hunk.base)]
    parts += [b"=======\n", _block(hunk.remote), b">>>>>>> remote\n"]
    return b"".join(parts)


def _block(lines: list[bytes]) -> bytes:
    """Lines of one side of a conflict; a missing last newline is added so markers stay alone."""
    data = b"".join(lines)
    return data if not data or data.endswith(b"\n") else data + b"\n"


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in data


def _split_keepends(data: bytes) -> list[bytes]:
    """Lines with their newline (only \\n ends a line, unlike bytes.splitlines)."""
    lines = data.split(b"\n")
    return [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def _diff3(base: bytes, local: bytes, remote: bytes) -> Iterator[_Hunk]:
    """Split the three versions into hunks, between stretches of base unchanged on both sides."""
    whole = _Hunk(_split_keepends(base), _split_keepends(local), _split_keepends(remote))
    regions = _stable_regions(whole.base, whole.local, whole.remote)
    base_at = local_at = remote_at = 0
    for base_lo, base_hi, local_lo, remote_lo in regions:
        if base_at < base_lo or local_at < local_lo or remote_at < remote_lo:
            yield _Hunk(
                whole.base[base_at:base_lo],
                whole.local[local_at:local_lo],
                whole.remote[remote_at:remote_lo],
            )
        length = base_hi - base_lo
        if length:
            stable = whole.base[base_lo:base_hi]
            yield _Hunk(stable, stable, stable)
        base_at, local_at, remote_at = base_hi, local_lo + length, remote_lo + length


def _stable_regions(
    base: list[bytes], local: list[bytes], remote: list[bytes]
) -> Iterator[tuple[int, int, int, int]]:
    """(base_lo, base_hi, local_lo, remote_lo) of base stretches matched in both sides.

    The intersection of the two diffs' matching blocks, as in GNU diff3 and bzr's merge3. Ends
    with an empty region at the ends of all three, so the last changes are yielded too.
    """
    local_blocks = _matching_blocks(base, local)
    remote_blocks = _matching_blocks(base, remote)
    i = j = 0
    while i < len(local_blocks) and j < len(remote_blocks):
        lb, lx, llen = local_blocks[i]
        rb, ry, rlen = remote_blocks[j]
        lo, hi = max(lb, rb), min(lb + llen, rb + rlen)
        if lo < hi:
            yield lo, hi, lx + lo - lb, ry + lo - rb
        # Advance whichever block ends first; the other may still overlap the next one.
        if lb + llen < rb + rlen:
            i += 1
        else:
            j += 1
    yield len(base), len(base), len(local), len(remote)


def _matching_blocks(a: list[bytes], b: list[bytes]) -> list[tuple[int, int, int]]:
    # autojunk off: it would treat frequent lines (blank lines) as noise in files > 200 lines.
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return [(m.a, m.b, m.size) for m in matcher.get_matching_blocks() if m.size]
