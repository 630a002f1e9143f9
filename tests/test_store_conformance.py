"""One conformance suite for every object store: what the repository relies on, checked the
same way against memory, a folder, Git (file:// and git daemon), S3 (moto and SeaweedFS) and
GCS (fake-gcs-server). A new store joins by adding one opener to STORES."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from git_servers import git_server
from memory_store import MemoryStore

from claude_sync.errors import ObjectNotFoundError
from claude_sync.store import ObjectStore, RemoteOptions, open_store
from claude_sync.store.base import PIECE_SIZE
from claude_sync.store.git import GitStore

pytest_plugins = ["cloud_servers"]

# Names shaped like the repository's own: the Git store lays some kinds out in folders.
SNAPSHOT = "snapshots/{:010d}"
PACK = "data/{0:02x}/{0:064x}"
INDEX = "index/{:064x}"

# A store opener: a fresh, prepared, empty store each time it is called; calling it again
# gives a second client of the same place (another machine).
Opener = Callable[[], ObjectStore]


def _cloud(request: pytest.FixtureRequest, fixture: str, scheme: str) -> Opener:
    server = request.getfixturevalue(fixture)
    monkeypatch = request.getfixturevalue("monkeypatch")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    bucket = f"conformance-{uuid.uuid4().hex[:12]}"
    options = RemoteOptions(endpoint_url=server.endpoint_url, create_bucket=True)
    remote = f"{scheme}://{bucket}/prefix"
    first = open_store(remote, options)
    first.prepare(create=True)
    return lambda: open_store(remote, options)


@pytest.fixture(
    params=["memory", "folder", "git-file", "git-daemon", "s3-moto", "s3-seaweedfs", "gcs"]
)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    kind = request.param
    if kind == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif kind == "folder":
        remote = str(tmp_path / "folder")
        open_store(remote).prepare(create=True)
        yield lambda: open_store(remote)
    elif kind.startswith("git-"):
        with git_server(kind.removeprefix("git-"), tmp_path) as server:
            remote = server.create("conformance.git")
            clones = iter(range(1000))
            yield lambda: open_store(
                remote, RemoteOptions(cache_dir=tmp_path / f"clone-{next(clones)}")
            )
    elif kind == "s3-moto":
        yield _cloud(request, "moto_server", "s3")
    elif kind == "s3-seaweedfs":
        yield _cloud(request, "seaweed_server", "s3")
    else:
        yield _cloud(request, "gcs_server", "gs")


@pytest.fixture
def store(opener: Opener) -> Iterator[ObjectStore]:
    s = opener()
    yield s
    s.close()


def test_a_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError):
        store.get(SNAPSHOT.format(1))


def test_part_of_an_object_is_read_by_range(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40
    assert store.put_if_absent("data/ab/range", data)
    assert store.get_range("data/ab/range", 0, 10) == data[:10]
    assert store.get_range("data/ab/range", 1000, 2345) == data[1000:3345]
    assert store.get_range("data/ab/range", len(data) - 5, 100) == data[-5:]
    assert store.get_range("data/ab/range", len(data) + 10, 5) == b""
    with pytest.raises(ObjectNotFoundError):
        store.get_range("data/ab/absent", 0, 10)


def test_create_only_writes_keep_the_first(store: ObjectStore) -> None:
    name = SNAPSHOT.format(1)
    assert store.put_if_absent(name, b"first") is True
    assert store.put_if_absent(name, b"second") is False
    assert store.get(name) == b"first"


def test_empty_and_binary_objects_round_trip(store: ObjectStore) -> None:
    data = bytes(range(256)) * 300
    assert store.put_if_absent(PACK.format(7), data)
    assert store.put_if_absent(INDEX.format(7), b"")
    assert store.get(PACK.format(7)) == data
    assert store.get(INDEX.format(7)) == b""


def test_list_by_prefix_and_after_a_name(store: ObjectStore) -> None:
    for seq in range(1, 6):
        store.put_if_absent(SNAPSHOT.format(seq), b"s")
    store.put_if_absent(PACK.format(1), b"p")
    store.put_if_absent(INDEX.format(1), b"i")
    assert sorted(store.list("snapshots/")) == [SNAPSHOT.format(s) for s in range(1, 6)]
    assert sorted(store.list("snapshots/", start_after=SNAPSHOT.format(3))) == [
        SNAPSHOT.format(4),
        SNAPSHOT.format(5),
    ]
    assert store.list("data/") == [PACK.format(1)]
    assert store.list("nothing-here/") == []


def test_list_info_gives_sizes_and_the_storage_time(store: ObjectStore) -> None:
    """Prune counts bytes and ages its marks from the listing alone."""
    before = time.time()
    store.put_if_absent(PACK.format(1), b"p" * 1000)
    store.put_if_absent(INDEX.format(1), b"")
    store.put_if_absent(SNAPSHOT.format(1), b"s")  # the Git store publishes with a snapshot
    infos = {i.name: i for i in store.list_info("data/") + store.list_info("index/")}
    assert {n: i.size for n, i in infos.items()} == {PACK.format(1): 1000, INDEX.format(1): 0}
    assert store.list_info("nothing-here/") == []
    for info in infos.values():
        # Git keeps no trustworthy time; every other store reports the time of writing (the
        # servers here run on this machine's clock, give or take their rounding).
        if isinstance(store, GitStore):
            assert info.modified is None
        else:
            assert info.modified is not None and before - 2 <= info.modified <= time.time() + 2


def test_a_tag_tells_an_object_written_anew_under_its_name(store: ObjectStore) -> None:
    """list_tagged names what list names; a tagged store's tag changes when the name is
    written again with other content of the same size (a kept root relies on it)."""
    for seq in (1, 2, 3):
        store.put_if_absent(SNAPSHOT.format(seq), b"first")
    tagged = store.list_tagged("snapshots/", start_after=SNAPSHOT.format(1))
    assert sorted(tagged) == sorted(store.list("snapshots/", start_after=SNAPSHOT.format(1)))
    if not store.tagged:
        assert set(tagged.values()) == {None}
        return
    assert all(tagged.values())
    store.delete(SNAPSHOT.format(2))
    store.put_if_absent(SNAPSHOT.format(2), b"other")
    again = store.list_tagged("snapshots/", start_after=SNAPSHOT.format(1))
    assert again[SNAPSHOT.format(2)] != tagged[SNAPSHOT.format(2)]
    assert again[SNAPSHOT.format(3)] == tagged[SNAPSHOT.format(3)]
    # What a store can tell from the bytes it wrote is what its listing gives.
    assert store.content_tag(b"other") in (None, again[SNAPSHOT.format(2)])
    assert store.content_tag(b"first") in (None, again[SNAPSHOT.format(3)])


def test_the_write_probe_passes_and_leaves_nothing(store: ObjectStore) -> None:
    assert store.probe_writes()
    assert store.list("") == []
    assert store.missing() is None


def test_delete_removes_and_a_missing_object_is_no_error(store: ObjectStore) -> None:
    store.put_if_absent(INDEX.format(1), b"a")
    store.put_if_absent(INDEX.format(2), b"b")
    store.put_if_absent(INDEX.format(3), b"c")
    store.delete(INDEX.format(1))
    store.delete(INDEX.format(99))
    store.delete_many([INDEX.format(2), INDEX.format(98)])
    assert store.list("index/") == [INDEX.format(3)]
    with pytest.raises(ObjectNotFoundError):
        store.get(INDEX.format(1))
    # A deleted name is free again: prune may delete a pack that a later push re-creates.
    assert store.put_if_absent(INDEX.format(1), b"again")
    assert store.get(INDEX.format(1)) == b"again"


def test_two_clients_racing_for_a_name_have_one_winner(opener: Opener) -> None:
    """Two machines write the same snapshot number at once: exactly one wins, and both
    then read the winner's bytes."""
    clients = [opener(), opener()]
    name = SNAPSHOT.format(42)
    outcomes: dict[int, bool] = {}
    barrier = threading.Barrier(len(clients))

    def race(i: int) -> None:
        barrier.wait()
        outcomes[i] = clients[i].put_if_absent(name, f"machine {i}".encode())

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes.values()) == [False, True], outcomes
    winner = next(i for i, won in outcomes.items() if won)
    for client in clients:
        assert client.get(name) == f"machine {winner}".encode()
        client.close()


def test_a_second_client_sees_what_a_snapshot_published(opener: Opener) -> None:
    """Another machine sees data once a snapshot that refers to it is written: the Git store
    holds data, indexes and manifests back until then, to make one commit of them."""
    first, second = opener(), opener()
    assert first.put_if_absent(PACK.format(3), b"pack")
    assert first.put_if_absent(SNAPSHOT.format(1), b"snapshot")
    assert second.get(SNAPSHOT.format(1)) == b"snapshot"
    assert second.get(PACK.format(3)) == b"pack"
    assert second.list("data/") == [PACK.format(3)]
    first.close()
    second.close()


def test_an_object_is_read_in_pieces_whole(store: ObjectStore) -> None:
    data = os.urandom(2 * PIECE_SIZE + 12345)
    assert store.put_if_absent("data/ab/pieces", data)
    assert b"".join(store.get_pieces("data/ab/pieces")) == data
    with pytest.raises(ObjectNotFoundError):
        b"".join(store.get_pieces("data/ab/absent"))
