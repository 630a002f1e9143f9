"""The repository format's vocabulary (docs/FORMAT.md): versions, object names, the config
object, the JSON encoding of sealed bodies, and how a snapshot's file list is grouped and
split into manifest pieces."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _string  # json.dumps's own, in C
from typing import Any

from claude_sync import compression
from claude_sync.chunking import ChunkerParams
from claude_sync.errors import ConfigError, CorruptionError
from claude_sync.model import FileEntry
from claude_sync.resources import LATER_TYPES_FORMAT
from claude_sync.store.handle import Handle, ObjectKind

#: the version of index, prune mark and history record objects
FORMAT_VERSION = 1
#: the repository format, in the config: 1 (formats "1" and "2" of claude-sync, which differ
#: only in snapshot versions) or 3, whose snapshots must all be chained (docs/FORMAT.md §10).
#: claude-sync before 3 refuses a format 3 config, so it cannot add unchained snapshots.
CHAINED_FORMAT = 3
#: format 3 with key epochs: written when the first epoch starts, so that claude-sync
#: before 0.4, which cannot open epoch-sealed objects, refuses the repository by its config
EPOCH_FORMAT = 4
#: format 4 whose snapshots may split a big manifest group into pieces (snapshot version 3):
#: claude-sync before it refuses the config instead of failing on such a snapshot
SPLIT_FORMAT = 5
#: format 5 whose new blobs are named by keyed BLAKE3 instead of HMAC-SHA256 (a third of the
#: cost): claude-sync before it would take such blobs for damaged ones
BLAKE3_FORMAT = 6
#: format 6 whose big files' entries name chunk lists (manifest objects of their own)
#: instead of listing every chunk: claude-sync before it would take them for malformed
LISTS_FORMAT = 7
#: format 7 whose writers name file versions by keyed BLAKE3 (`b3:` ids, identity.py) instead
#: of SHA-256: claude-sync before it would take such entries for malformed
IDENTITY_FORMAT = 8
#: format 8 whose snapshots may list the files of a type older claude-sync does not know
#: (resources.LATER_TYPES_FORMAT): it would refuse such a snapshot as planted
TYPES_FORMAT = LATER_TYPES_FORMAT
REPO_FORMAT = TYPES_FORMAT
REPO_FORMATS = (
    1,
    CHAINED_FORMAT,
    EPOCH_FORMAT,
    SPLIT_FORMAT,
    BLAKE3_FORMAT,
    LISTS_FORMAT,
    IDENTITY_FORMAT,
    TYPES_FORMAT,
)
UPGRADE_NAME = ObjectKind.CONFIG_UPGRADE.prefix
#: 1: the file list inside the snapshot; 2: in manifest parts; 3: a group may be split into
#: pieces, each in its own part. Readers take all three.
SNAPSHOT_VERSION = 2
SPLIT_SNAPSHOT_VERSION = 3
SNAPSHOT_VERSIONS = (1, SNAPSHOT_VERSION, SPLIT_SNAPSHOT_VERSION)
#: the versions a manifest part's body may have (its layout did not change with version 3)
PART_VERSIONS = (1, SNAPSHOT_VERSION)
#: files per piece of a split manifest group: a push that changes one file of a project
#: rewrites about this many entries, however many sessions the project holds
PIECE_FILES = 32
#: chunks per chunk list (format 7): an entry names a list for each LIST_CHUNKS of its
#: chunks (never its last one) and lists the rest itself, so appending to a 1 GiB transcript
#: (2,000 chunks) rewrites at most this many chunk ids, not all of them
LIST_CHUNKS = 128
#: the version of a chunk list's body
LIST_VERSION = 1
#: entries per manifest part a push writes (whole pieces, so a part may hold a few more):
#: a later push that needs one group of a first push's 50,000 files parses a part this
#: size, not all of them
PART_FILES = 2048
# The names and prefixes callers list or name objects by (store/handle.py spells them).
CONFIG_NAME = ObjectKind.CONFIG.prefix
KEYS_PREFIX = ObjectKind.KEY.prefix
DATA_PREFIX = ObjectKind.PACK.prefix
INDEX_PREFIX = ObjectKind.INDEX.prefix
SNAPSHOTS_PREFIX = ObjectKind.SNAPSHOT.prefix
PRUNE_PREFIX = ObjectKind.PRUNE_MARK.prefix
MANIFEST_PREFIX = ObjectKind.MANIFEST.prefix
FORGOTTEN_PREFIX = ObjectKind.FORGOTTEN.prefix


def snapshot_name(seq: int) -> str:
    return Handle.numbered(ObjectKind.SNAPSHOT, seq).name


def pack_name(digest: str) -> str:
    return Handle.pack(digest).name


def key_name(key_id: str) -> str:
    """The key object of an id as `key list` shows it."""
    return Handle(ObjectKind.KEY, key_id).name


def key_id_of(name: str) -> str:
    """The id `key list` shows for a key object."""
    return name[len(KEYS_PREFIX) :]


def snapshot_id(sealed: bytes) -> str:
    return hashlib.sha256(sealed).hexdigest()


@dataclass(frozen=True)
class RepoConfig:
    repo_id: str
    chunker: ChunkerParams
    created: str
    version: int = REPO_FORMAT


def config_body(config: RepoConfig) -> dict[str, Any]:
    return {
        "version": config.version,
        "repo_id": config.repo_id,
        "created": config.created,
        "chunker": dict(config.chunker.__dict__),
    }


def parse_config(obj: Any) -> RepoConfig:
    try:
        if obj["version"] not in REPO_FORMATS:
            raise ConfigError(
                f"this repository uses format version {obj['version']}; "
                f"this claude-sync reads versions {REPO_FORMATS}: upgrade claude-sync"
            )
        chunker = obj["chunker"]
        params = ChunkerParams(
            min_size=int(chunker["min_size"]),
            avg_size=int(chunker["avg_size"]),
            max_size=int(chunker["max_size"]),
            seed=int(chunker["seed"]),
        )
        if not (64 <= params.min_size <= params.avg_size <= params.max_size <= 16 * 1024 * 1024):
            raise CorruptionError("the config object has invalid chunker parameters")
        if not 1 <= params.seed < 2**63:
            raise CorruptionError("the config object has invalid chunker parameters")
        return RepoConfig(
            repo_id=str(obj["repo_id"]),
            chunker=params,
            created=str(obj["created"]),
            version=int(obj["version"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CorruptionError("the config object is malformed") from None


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def encode_json(obj: Any) -> bytes:
    return compression.pack(_dump(obj).encode(), padded=True)


def encode_manifest(groups: dict[str, dict[str, FileEntry]]) -> bytes:
    """encode_json of a manifest part listing these groups' entries, built a group at a time:
    the same bytes without every entry of a first push held as a dict at once."""
    pieces = [b'{"groups":{']
    for n, group in enumerate(sorted(groups)):
        entries = groups[group]
        listing = ",".join(
            [f"{_string(p)}:{entries[p].json_text(lists=True)}" for p in sorted(entries)]
        )
        pieces.append(f"{',' if n else ''}{_dump(group)}:{{{listing}}}".encode())
    pieces.append(f'}},"version":{SNAPSHOT_VERSION}}}'.encode())
    return compression.pack(b"".join(pieces), padded=True)


def encode_chunk_list(chunks: tuple[tuple[str, int], ...]) -> bytes:
    """encode_json of a chunk list (docs/FORMAT.md §6)."""
    return encode_json({"version": LIST_VERSION, "chunks": [list(c) for c in chunks]})


def decode_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(compression.unpack(data, what))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CorruptionError(f"{what} is not valid JSON") from None


def manifest_group(path: str) -> str:
    """The manifest group of a path: its folder cut to two levels (a project's folder,
    `agents`, `skills/<name>`), or "" for the files at the top."""
    return "/".join(path.split("/")[:-1][:2])


def grouped(files: dict[str, FileEntry]) -> dict[str, dict[str, FileEntry]]:
    groups: dict[str, dict[str, FileEntry]] = {}
    for path, entry in files.items():
        groups.setdefault(manifest_group(path), {})[path] = entry
    return groups


def piece_of(path: str, pieces: int) -> int:
    """Which of a group's pieces lists a path: a stable hash, so a path stays in its piece
    from push to push and a change rewrites only that piece."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") % pieces


def piece_count(files: int, before: int | None) -> int:
    """How many pieces a group of that many files is split into: a power of two giving
    about PIECE_FILES files each. The count it had before is kept while it is within a
    factor of two of that, so a group growing or shrinking by a file does not move every
    path to another piece."""
    wanted = 1
    while wanted * PIECE_FILES < files:
        wanted *= 2
    if before is not None and wanted // 2 <= before <= wanted * 2:
        return before
    return wanted


def split_pieces(files: dict[str, FileEntry], pieces: int) -> list[dict[str, FileEntry]]:
    split: list[dict[str, FileEntry]] = [{} for _ in range(pieces)]
    for path, entry in files.items():
        split[piece_of(path, pieces)][path] = entry
    return split


def piece_names(names: Any, version: int, what: str) -> tuple[str, ...]:
    """A group's part names in a snapshot root: one name, or (version 3) a list of them,
    one per piece, whose length is a power of two."""
    if isinstance(names, str):
        pieces: tuple[Any, ...] = (names,)
    elif isinstance(names, list) and version >= SPLIT_SNAPSHOT_VERSION:
        pieces = tuple(names)
    else:
        raise CorruptionError(f"{what} names an invalid manifest part")
    if (
        not pieces
        or len(pieces) & (len(pieces) - 1)
        or any(
            not isinstance(n, str) or Handle.parse_as(ObjectKind.MANIFEST, n) is None
            for n in pieces
        )
    ):
        raise CorruptionError(f"{what} names an invalid manifest part")
    return pieces
