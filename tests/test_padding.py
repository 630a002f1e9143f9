"""Sealed objects are padded (Padmé), so sizes say little about how
well content compressed, and a pack header's size little about how many blobs it lists."""

from __future__ import annotations

import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync import compression, config
from claude_sync.repository import DATA_PREFIX, Repository
from claude_sync.store.folder import FolderStore

ENVELOPE = 1 + 12 + 16  # version byte, nonce, tag


@settings(max_examples=200, deadline=None, print_blob=True)
@given(st.binary(max_size=50000) | st.text(max_size=20000).map(str.encode))
def test_padded_frames_read_back_and_have_padme_lengths(data):
    packed = compression.pack(data, padded=True)
    assert compression.unpack(packed, "x") == data
    assert compression.padme(len(packed)) == len(packed)
    # What every claude-sync reads: the first zstd frame; the padding is a skippable frame.
    assert zstandard.ZstdDecompressor().decompress(packed[1:]) == data
    unpadded = 1 + len(zstandard.ZstdCompressor(level=compression.LEVEL).compress(data))
    assert len(packed) <= unpadded * 1.12 + 16


def test_guesses_that_compress_a_little_better_look_the_same():
    secret = b'{"token": "sk-7f3a9c"}\n'
    sizes = {
        len(compression.pack(secret + guess * 40 + bytes(range(256)) * 200, padded=True))
        for guess in (b'{"token": "sk-7f3a9c"}\n', b'{"token": "sk-000000"}\n')
    }
    assert len(sizes) == 1


def test_every_object_a_push_writes_is_padded(make_machine, repo_dir):
    a = make_machine("a")
    for i in range(30):
        a.write(f"agents/a{i}.md", f"agent {i}\n" * (i + 1))
    a.run("init", str(repo_dir))
    a.run("push")
    settings_ = config.load_settings(a.config_dir)
    repo = Repository.open(
        FolderStore(repo_dir), config.load_master_key(a.config_dir, settings_.repo_id)
    )
    for path in repo_dir.rglob("*"):
        name = path.relative_to(repo_dir).as_posix()
        if path.is_file() and not name.startswith(("keys/", DATA_PREFIX)):
            size = path.stat().st_size - ENVELOPE
            assert compression.padme(size) == size, name
    (index,) = repo.index_names()
    for loc in repo.load_index(index).values():
        assert compression.padme(loc.length - ENVELOPE) == loc.length - ENVELOPE
