"""The chunker: a file is cut into pieces that put it back together exactly, and each
repository cuts the same file at its own places (its secret seed), so chunk sizes seen by
the storage cannot be matched against another repository's.

How weak that seed is, and why it is not yet a key-derived gear table, is in SECURITY.md."""

from __future__ import annotations

import hashlib
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync import chunking, crypto
from claude_sync.chunking import SPLIT_HASH_SIZE, Chunker, Digest
from claude_sync.repository import ChunkerParams, Repository


def transcript(size: int) -> bytes:
    """JSONL shaped like a Claude Code session, the data the chunker mostly sees."""
    rnd = random.Random(14)
    words = [
        "".join(rnd.choices("abcdefghijklmnopqrstuvwxyz_", k=rnd.randint(2, 9)))
        for _ in range(3000)
    ]
    lines = []
    total = 0
    while total < size:
        text = " ".join(rnd.choices(words, k=rnd.randint(5, 300)))
        message = {"content": [{"type": "text", "text": text}]}
        line = json.dumps(
            {"type": "assistant", "uuid": f"{rnd.getrandbits(128):032x}", "message": message}
        )
        lines.append(line)
        total += len(line) + 1
    return ("\n".join(lines) + "\n").encode()


def assert_reassembles(data: bytes, digest: Digest, blob_id) -> None:
    _, chunks = digest
    offset = 0
    for chunk_id, start, length in chunks:
        assert start == offset and length > 0
        assert chunk_id == blob_id(memoryview(data)[start : start + length])
        offset += length
    assert offset == len(data)


def test_two_repositories_cut_the_same_file_at_different_places():
    data = transcript(12 * 1024 * 1024)
    cuts = []
    for _ in range(2):
        repo = Repository.create(MemoryStore(), None)
        digest = Chunker(repo.config.chunker).digest_bytes(data, repo.keys.blob_id)
        assert_reassembles(data, digest, repo.keys.blob_id)
        assert len(digest[1]) > 4  # enough cuts for the comparison to mean something
        cuts.append({start for _, start, _ in digest[1]} - {0})
    # Two independent cut sequences could meet by chance at a point, never along the file.
    assert len(cuts[0] & cuts[1]) <= 1


@settings(max_examples=150, deadline=None, print_blob=True)
@given(data=st.binary(max_size=20_000), seed=st.integers(1, 2**63 - 1))
def test_chunks_put_the_file_back_together(tmp_path_factory, data, seed):
    """Read whole or streamed, a file is cut the same, and the chunks a push seals as they
    are cut (keep) are exactly the chunks listed, bytes and all."""
    chunker = Chunker(ChunkerParams(64, 256, 1024, seed))
    blob_id = crypto.KeyRing(b"k" * 32).blob_id
    kept: list[list[tuple[str, bytes]]] = [[], []]
    in_memory = chunker.digest_bytes(data, blob_id, lambda i, b: kept[0].append((i, bytes(b))))
    assert_reassembles(data, in_memory, blob_id)
    path = tmp_path_factory.mktemp("chunks") / "t.jsonl"
    path.write_bytes(data)
    streamed = chunker.digest_file(path, blob_id, keep=lambda i, b: kept[1].append((i, bytes(b))))
    assert streamed == in_memory
    listed = [(i, data[start : start + length]) for i, start, length in in_memory[1]]
    assert kept[0] == kept[1] == listed


def test_a_big_file_is_hashed_aside_and_says_what_it_holds(tmp_path):
    """Past SPLIT_HASH_SIZE a second reader hashes the file while the chunker cuts it: the
    same digest as hashing it in memory, also when only its first bytes count."""
    data = transcript(SPLIT_HASH_SIZE + 300_000)
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    ring = crypto.KeyRing(b"k" * 32)
    ring.keyed_blake3 = True
    chunker = Chunker(ChunkerParams(131072, 524288, 2097152, 7))
    digest = chunker.digest_file(path, ring.blob_id)
    assert digest == chunker.digest_bytes(data, ring.blob_id)
    assert digest[0] == hashlib.sha256(data).hexdigest()
    size = len(data) - 1000
    assert chunker.digest_file(path, ring.blob_id, size=size) == chunker.digest_bytes(
        data[:size], ring.blob_id
    )


def test_content_in_memory_keeps_old_chunks_only_from_its_start_and_back_to_back():
    """The state's record of a file's chunks only says where to look: an old chunk after a
    gap (a damaged record) is not kept, and what is kept tiles the content from its start."""
    chunker = Chunker(ChunkerParams(64, 256, 1024, 11))
    blob_id = crypto.KeyRing(b"k" * 32).blob_id
    data = transcript(20_000)
    sha, chunks = chunker.digest_bytes(data, blob_id)
    assert len(chunks) > 4
    gap = (sha, (chunks[0], *chunks[2:]))
    assert chunker.digest_bytes(data, blob_id, previous=gap) == (sha, chunks)
    late = (sha, tuple((i, at + 1, n) for i, at, n in chunks))
    assert chunker.digest_bytes(data, blob_id, previous=late) == (sha, chunks)
    grown = data + transcript(3000)
    kept = chunker.digest_bytes(grown, blob_id, previous=gap)[1]
    assert kept[0] == chunks[0] and kept[1][1] == chunks[1][1]
    assert_reassembles(grown, (sha, kept), blob_id)


@settings(max_examples=100, deadline=None, print_blob=True)
@given(
    data=st.binary(max_size=5000),
    size=st.integers(0, 6000),
    block=st.integers(1, 700),
    skip=st.integers(0, 100),
)
def test_a_run_read_ahead_is_hashed_whole_and_in_order(tmp_path_factory, data, size, block, skip):
    """hash_blocks hands every hash the size bytes after the file's position, in order,
    once each, whether read a block ahead or not, and says how many there were (fewer
    when the file ends first); the file is left just past them."""
    path = tmp_path_factory.mktemp("ahead") / "f"
    path.write_bytes(data)
    want = data[skip : skip + size]
    for ahead_from in (1, 1 << 30):
        seen = [hashlib.sha256(), hashlib.sha256()]
        saved = chunking.READ_AHEAD_FROM, chunking.READ_AHEAD_BLOCK
        chunking.READ_AHEAD_FROM, chunking.READ_AHEAD_BLOCK = ahead_from, block
        try:
            with path.open("rb", buffering=0) as fh:
                fh.seek(skip)
                got = chunking.hash_blocks(fh, size, seen)
                assert fh.tell() == min(len(data), skip + size) or not want
        finally:
            chunking.READ_AHEAD_FROM, chunking.READ_AHEAD_BLOCK = saved
        assert got == len(want)
        assert [h.hexdigest() for h in seen] == [hashlib.sha256(want).hexdigest()] * 2


class _Dribble:
    """A stream that hands out at most the next of `sizes` bytes per read (then 7)."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        self.data, self.at, self.sizes = data, 0, list(sizes)

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self.sizes.pop(0) if self.sizes else 7, len(self.data) - self.at)
        buffer[:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


@settings(max_examples=200, deadline=None, print_blob=True)
@given(
    # Random bytes too: hypothesis's lean towards runs of zeros, which are cut only at the
    # largest chunk size, where a window's end cuts them too.
    data=st.one_of(
        st.binary(max_size=12_000),
        st.builds(
            lambda n, s: random.Random(s).randbytes(n), st.integers(0, 12_000), st.integers()
        ),
    ),
    sizes=st.lists(st.integers(1, 3000), max_size=20),
    seed=st.integers(1, 2**63 - 1),
)
def test_a_stream_is_cut_as_the_whole_is_whatever_its_reads(data, sizes, seed):
    """Read in pieces of any size into a window of twice the largest chunk, reused from
    file to file, a stream is cut exactly where its whole bytes are, each chunk holding
    its own bytes."""
    chunker = Chunker(ChunkerParams(64, 256, 1024, seed))
    blob_id = crypto.KeyRing(b"k" * 32).blob_id
    whole = chunker.digest_bytes(data, blob_id)
    for _ in range(2):  # the second time in a window the first left full of other bytes
        streamed = chunker._chunks(_Dribble(data, sizes), blob_id, lambda _d, _o: None, None)
        assert streamed == whole[1]
