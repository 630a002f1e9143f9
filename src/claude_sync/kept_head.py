"""The head's root as this machine last read it, kept so that a look at the remote that finds
nothing new costs two listings instead of four requests (the config, the key epochs, the
snapshots, the root): what a hook's pull and `status` do many times a day.

A push keeps the root it wrote, under the tag the storage's listing will give it where that
can be told from the bytes (ObjectStore.content_tag); a look that reads a root keeps it with
the tag it was listed under. A kept root stands in for reading it again only while the
storage lists the same newest snapshot under the same tag (ObjectStore.list_tagged: S3's
ETag, GCS's md5Hash), and exactly the key epochs this machine holds. Another object under
that name (a rollback, a repository made anew in the same place) has another tag, and a key
epoch started since (a key removed) is in the listing: either way the store is checked and
the root read as before. The config is not read for such a look (it is as soon as anything
else is needed): a repository upgraded to a format this version cannot read is noticed at the
next new snapshot, or at this machine's next push with changes, not while nothing is new.
The kept bytes are opened and authenticated again each time, with the keys the machine holds
then. A storage that lies about a tag can only show this machine the head it already has,
which it could do anyway by hiding the newer snapshots (SECURITY.md).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from claude_sync.errors import CorruptionError
from claude_sync.model import SnapshotRoot
from claude_sync.repository import Glance, Repository
from claude_sync.state import State

#: in the state: the kept root, {"seq", "tag", "sealed" (base64)}
KEPT_HEAD = "kept_head"


@dataclass(frozen=True)
class KeptHead:
    seq: int
    tag: str
    sealed: bytes


def load(state: State) -> KeptHead | None:
    text = state.get_meta(KEPT_HEAD)
    if text is None:
        return None
    try:
        kept = json.loads(text)
        return KeptHead(int(kept["seq"]), str(kept["tag"]), base64.b64decode(kept["sealed"]))
    except (ValueError, KeyError, TypeError):
        return None  # a state written by hand or damaged: the root is read again


def save(state: State, head: KeptHead) -> None:
    if load(state) != head:
        sealed = base64.b64encode(head.sealed).decode()
        state.set_meta(KEPT_HEAD, json.dumps({"seq": head.seq, "tag": head.tag, "sealed": sealed}))


def still_head(
    repo: Repository, kept: KeptHead, seen: tuple[int, str | None], glance: Glance
) -> SnapshotRoot | None:
    """The kept root, when it is the head this machine saw last (`seen`: number and id) and
    the glance shows the storage unchanged there; else None."""
    listed, epochs_unchanged = glance
    if kept.seq != seen[0] or listed != (kept.seq, kept.tag) or not epochs_unchanged:
        return None
    try:
        root = repo.open_root(kept.seq, kept.sealed)
    except CorruptionError:
        return None  # the keys held now do not open it (joined anew): it is read again
    return root if root.id == seen[1] else None
