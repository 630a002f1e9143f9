"""A few blobs of a big pack are read by range, the rest of it left on the store; most of a
pack is downloaded whole and checked against its name (so a full pull notices a flipped
byte anywhere). Either way every blob is authenticated."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync.errors import CorruptionError
from claude_sync.repository import BlobLocation, PackWriter, Repository, group_by_pack, packs

MIB = 1024 * 1024


def _add_random_blobs(
    repo: Repository, writer: PackWriter, count: int, size: int
) -> dict[str, bytes]:
    """count incompressible blobs of size bytes added to writer, by id."""
    contents = {}
    for _ in range(count):
        data = os.urandom(size)
        contents[repo.keys.blob_id(data)] = data
        writer.add(repo.keys.blob_id(data), data)
    return contents


@dataclass
class OnePack:
    """A repository holding one pack of twelve incompressible half-MiB blobs."""

    repo: Repository
    store: MemoryStore
    contents: dict[str, bytes]
    pack: str
    locations: dict[str, BlobLocation]

    def read(self, ids: list[str]) -> dict[str, bytes]:
        wanted = {b: loc for b, loc in self.locations.items() if b in ids}
        got: dict[str, bytes] = {}
        extent = max(loc.offset + loc.length for loc in self.locations.values())
        self.repo.read_packs({self.pack: wanted}, got.__setitem__, extents={self.pack: extent})
        return got

    def flip(self, offset: int) -> None:
        data = bytearray(self.store.objects[self.pack])
        data[offset] ^= 1
        self.store.objects[self.pack] = bytes(data)


@pytest.fixture
def one() -> OnePack:
    store = MemoryStore()
    repo = Repository.create(store, None)
    writer = PackWriter(repo)
    contents = _add_random_blobs(repo, writer, 12, MIB // 2)
    ((_, locations),) = writer.finish().items()
    (pack,) = {loc.pack for loc in locations.values()}
    return OnePack(repo, store, contents, pack, locations)


def test_one_blob_of_a_big_pack_costs_about_its_own_size(one: OnePack) -> None:
    wanted = list(one.contents)[5]
    before = one.repo.downloaded_bytes
    assert one.read([wanted]) == {wanted: one.contents[wanted]}
    assert one.repo.downloaded_bytes - before < len(one.store.objects[one.pack]) // 8


def test_most_of_a_pack_is_read_whole_and_checked_against_its_name(one: OnePack) -> None:
    before = one.repo.downloaded_bytes
    assert one.read(list(one.contents)) == one.contents
    assert one.repo.downloaded_bytes - before == len(one.store.objects[one.pack])
    # A byte flipped in a blob nobody asks for: a whole read still notices.
    first = min(one.locations.values(), key=lambda loc: loc.offset)
    one.flip(first.offset + 10)
    with pytest.raises(CorruptionError, match="does not match its name"):
        one.read([b for b, loc in one.locations.items() if loc != first])


def test_a_blob_read_by_range_is_still_authenticated(one: OnePack) -> None:
    wanted, neighbour = list(one.contents)[3], list(one.contents)[7]
    one.flip(one.locations[wanted].offset + 100)
    with pytest.raises(CorruptionError):
        one.read([wanted])
    assert one.read([neighbour]) == {neighbour: one.contents[neighbour]}


def test_a_long_push_indexes_its_packs_as_it_goes() -> None:
    """Every few packs (or every 30 s) the writer indexes those whose upload is done, so a
    push cut off leaves them named; finish indexes the rest. Each pack is in exactly one
    index, which places every blob where it is."""
    store = MemoryStore()
    repo = Repository.create(store, None)
    writer = PackWriter(repo)
    contents = _add_random_blobs(repo, writer, 80, MIB)
    indexes = writer.finish()
    writer.close()
    assert len(indexes) >= 2
    assert set(indexes) == set(repo.index_names())
    per_index = [{loc.pack for loc in locations.values()} for locations in indexes.values()]
    assert sum(map(len, per_index)) == len(set().union(*per_index))  # a pack in one index
    placed = {b: loc for locations in indexes.values() for b, loc in locations.items()}
    assert placed.keys() == contents.keys()
    for name, locations in indexes.items():
        assert repo.load_index(name) == locations
    for pack, wanted in group_by_pack(placed.items()).items():
        got: dict[str, bytes] = {}
        repo.read_packs({pack: wanted}, got.__setitem__)
        assert all(got[b] == contents[b] for b in wanted)


class PiecesStore(MemoryStore):
    """Reads an object in pieces of a given size, as the folder and S3 stores do."""

    def __init__(self) -> None:
        super().__init__()
        self.piece = 1

    def get_pieces(self, name: str) -> Iterator[bytes]:
        data = self.get(name)
        for start in range(0, len(data), self.piece):
            yield data[start : start + self.piece]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
    piece=st.integers(1, 5000),
    picks=st.lists(st.booleans(), min_size=12, max_size=12),
    flip=st.one_of(st.none(), st.floats(0, 1, exclude_max=True)),
    cut=st.booleans(),
)
def test_a_pack_read_in_pieces_gives_each_blob_holding_little(
    sizes: list[int], piece: int, picks: list[bool], flip: float | None, cut: bool
) -> None:
    """Whatever the pieces a store reads a pack in: every wanted blob is what was packed,
    the reader never holds much more than one piece and one blob, and a pack damaged
    anywhere (a byte flipped, even in a blob not wanted or the header; cut short) fails."""
    store = PiecesStore()
    repo = Repository.create(store, None)
    writer = PackWriter(repo)
    contents = {}
    for size in sizes:
        data = os.urandom(size)  # incompressible: a sealed blob is as long as its data
        contents[repo.keys.blob_id(data)] = data
        writer.add(repo.keys.blob_id(data), data)
    ((_, locations),) = writer.finish().items()
    (pack,) = {loc.pack for loc in locations.values()}
    wanted = {b: loc for (b, loc), pick in zip(locations.items(), picks, strict=False) if pick}
    if not wanted:
        wanted = dict(list(locations.items())[:1])
    store.piece = piece
    held: list[int] = []
    read_more = packs._WholePack._read_more

    def watched(self: packs._WholePack) -> bool:
        more = read_more(self)
        held.append(len(self._held))
        return more

    got: dict[str, bytes] = {}
    if flip is None and not cut:
        with mock.patch.object(packs._WholePack, "_read_more", watched):
            repo.read_packs({pack: wanted}, got.__setitem__)
        assert got == {b: contents[b] for b in wanted}
        assert max(held) <= piece + max(loc.length for loc in wanted.values())
        return
    data = bytearray(store.objects[pack])
    if flip is not None:
        data[int(flip * len(data))] ^= 0x40
    if cut:
        del data[-1:]
    store.objects[pack] = bytes(data)
    with pytest.raises(CorruptionError):
        repo.read_packs({pack: wanted}, got.__setitem__)


@pytest.mark.parametrize(
    ("sizes", "at_once", "ahead"),
    [
        ([600] * 6, [], 6),
        ([64 * 1024] * 6, [packs.PACKS_IN_MEMORY], 0),
        ([600, 64 * 1024] * 3, [packs.PACKS_IN_MEMORY], 3),
    ],
)
def test_packs_of_small_blobs_are_read_one_at_a_time(
    tmp_path, sizes: list[int], at_once: list[int], ahead: int
) -> None:
    """Thousands of small files: a thread per pack would only pass the interpreter's lock
    around (see SMALL_BLOBS); their packs are opened one at a time, each read while the one
    before is opened. Packs of big blobs keep the parallel reads, also in a pull of both.
    Either way every blob arrives."""
    repo, contents, wanted = _small_packs(tmp_path, sizes)
    seen: list[int] = []
    each = Repository._each

    def spy(self, fn, items, most=1 << 16):  # type: ignore[no-untyped-def]
        seen.append(most)
        return each(self, fn, items, most)

    read_ahead: list[str] = []
    start = packs._ReadAhead.__init__

    def counted(self, read, names):  # type: ignore[no-untyped-def]
        read_ahead.extend(names)
        start(self, read, names)

    got: dict[str, bytes] = {}
    with (
        mock.patch.object(Repository, "_each", spy),
        mock.patch.object(packs._ReadAhead, "__init__", counted),
    ):
        repo.read_packs(wanted, got.__setitem__)
    assert seen == at_once
    assert len(read_ahead) == ahead
    assert got == contents


def _small_packs(
    tmp_path, sizes: list[int]
) -> tuple[Repository, dict[str, bytes], dict[str, dict[str, BlobLocation]]]:
    """A folder repository with a pack of four random blobs of each size: its blobs by id,
    and every blob wanted, by pack."""
    from claude_sync.store.folder import FolderStore

    repo = Repository.create(FolderStore(tmp_path), None)
    contents: dict[str, bytes] = {}
    locations: dict[str, BlobLocation] = {}
    for size in sizes:
        writer = PackWriter(repo)
        contents |= _add_random_blobs(repo, writer, 4, size)
        for found in writer.finish().values():
            locations.update(found)
    wanted = group_by_pack(locations.items())
    assert len(wanted) == len(sizes)
    return repo, contents, wanted


@pytest.mark.parametrize("ahead", [1 << 20, 100])
def test_packs_read_ahead_stay_in_step_when_some_cannot_be_read(tmp_path, ahead: int) -> None:
    """A pack damaged in its middle (its reading stops at the bad blob, the rest of its
    bytes unread) and a missing pack are reported, each as itself, and every other pack's
    blobs arrive whole: the next pack never starts with what was left of the one before.
    (ahead: how many bytes may wait; 100 holds one piece at a time.)"""
    repo, contents, wanted = _small_packs(tmp_path, [30_000] * 6)
    names = list(wanted)
    bad, gone = names[2], names[4]
    path = tmp_path / bad
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    path.write_bytes(bytes(damaged))
    (tmp_path / gone).unlink()
    got: dict[str, bytes] = {}
    reported: dict[str, type] = {}
    with (
        mock.patch.object(packs, "READ_AHEAD", ahead),
        mock.patch("claude_sync.store.folder.PIECE_SIZE", 4096),
    ):
        repo.read_packs(wanted, got.__setitem__, lambda p, e: reported.update({p: type(e)}))
    assert set(reported) == {bad, gone}
    assert reported[gone].__name__ == "ObjectNotFoundError"
    fine = {b for p in names if p not in (bad, gone) for b in wanted[p]}
    assert {b: got[b] for b in fine} == {b: contents[b] for b in fine}
    assert all(got[b] == contents[b] for b in got)


def test_a_pack_writer_asks_nothing_of_the_store_until_its_first_pack(monkeypatch) -> None:
    """A push's scan makes its writer before it reads the first changed file: the writer
    must not wait for the store to open (importing a cloud SDK, a first request), which
    then overlaps the hashing. How many packs go at once is asked at the first pack."""
    repo = Repository.create(MemoryStore(), None)
    asked: list[int] = []

    def parallel(_self: Repository) -> int:
        asked.append(1)
        return 3

    monkeypatch.setattr(Repository, "parallel", property(parallel))
    writer = PackWriter(repo)
    assert not asked
    contents = _add_random_blobs(repo, writer, 40, MIB)
    indexes = writer.finish()
    writer.close()
    assert asked == [1]
    placed = {b: loc for locations in indexes.values() for b, loc in locations.items()}
    assert placed.keys() == contents.keys()
    got: dict[str, bytes] = {}
    repo.read_packs(group_by_pack(placed.items()), got.__setitem__)
    assert got == contents


def test_a_pack_read_whole_while_kept_is_read_from_the_disk_after(one: OnePack, tmp_path) -> None:
    """A pull's code guard reads a pack whole; the install's reading of it costs nothing
    more from the store, and the copy is checked as the pack itself would be."""
    ids = list(one.contents)
    size = len(one.store.objects[one.pack])
    with one.repo.packs_kept(tmp_path / "kept"):
        before = one.repo.downloaded_bytes
        with one.repo.keeping_packs():
            assert one.read(ids[:6]) == {b: one.contents[b] for b in ids[:6]}
        assert one.repo.downloaded_bytes - before == size
        assert one.read(ids) == one.contents  # whole, from the copy
        assert one.read(ids[3:4]) == {ids[3]: one.contents[ids[3]]}  # by range, from it
        assert one.repo.downloaded_bytes - before == size
        # A copy damaged meanwhile is noticed as the pack's damage would be.
        (kept,) = (tmp_path / "kept").iterdir()
        data = bytearray(kept.read_bytes())
        data[one.locations[ids[7]].offset + 20] ^= 1
        kept.write_bytes(bytes(data))
        with pytest.raises(CorruptionError):
            one.read(ids)
    assert not (tmp_path / "kept").exists()
    # Outside the block, the store again.
    before = one.repo.downloaded_bytes
    assert one.read(ids) == one.contents
    assert one.repo.downloaded_bytes - before == size


def test_packs_are_kept_only_when_read_whole_and_where_the_disk_takes_them(
    one: OnePack, tmp_path
) -> None:
    ids = list(one.contents)
    with one.repo.packs_kept(tmp_path / "kept"), one.repo.keeping_packs():
        one.read(ids[:1])  # by range: not a pack to keep
        assert not (tmp_path / "kept").exists()
    (tmp_path / "file").write_text("in the way")
    with one.repo.packs_kept(tmp_path / "file" / "kept"), one.repo.keeping_packs():
        assert one.read(ids) == one.contents  # nowhere to keep it: read all the same
    # A link planted in its place is taken away, not written through (nor what it leads to
    # read as kept packs).
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / one.pack.rsplit("/", 1)[-1]).write_bytes(b"planted")
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    with one.repo.packs_kept(tmp_path / "linked"):
        assert one.read(ids) == one.contents
        with one.repo.keeping_packs():
            assert one.read(ids) == one.contents
        assert (tmp_path / "linked").is_dir() and not (tmp_path / "linked").is_symlink()
    assert [p.name for p in (tmp_path / "elsewhere").iterdir()] == [one.pack.rsplit("/", 1)[-1]]
    # A disk with little room left keeps nothing: the pull's own files come first.
    with one.repo.packs_kept(tmp_path / "low"), one.repo.keeping_packs():
        with mock.patch("shutil.disk_usage", return_value=mock.Mock(free=MIB)):
            assert one.read(ids) == one.contents
        assert list((tmp_path / "low").iterdir()) == []
    # Kept packs give their room back when the pull needs it; then the store again.
    with one.repo.packs_kept(tmp_path / "kept"):
        with one.repo.keeping_packs():
            one.read(ids)
        assert one.repo.drop_kept_packs() and not (tmp_path / "kept").exists()
        assert not one.repo.drop_kept_packs()
        before = one.repo.downloaded_bytes
        assert one.read(ids) == one.contents
        assert one.repo.downloaded_bytes - before == len(one.store.objects[one.pack])
    failing = mock.mock_open()
    failing.return_value.write.side_effect = OSError(28, "No space left on device")
    with one.repo.packs_kept(tmp_path / "full"), one.repo.keeping_packs():
        with mock.patch("claude_sync.repository.kept_packs.open", failing, create=True):
            assert one.read(ids) == one.contents
        assert list((tmp_path / "full").iterdir()) == []
    failing.return_value.write.side_effect = None
    failing.return_value.close.side_effect = OSError(28, "No space left on device")
    with one.repo.packs_kept(tmp_path / "full"), one.repo.keeping_packs():
        with mock.patch("claude_sync.repository.kept_packs.open", failing, create=True):
            assert one.read(ids) == one.contents
        assert list((tmp_path / "full").iterdir()) == []
