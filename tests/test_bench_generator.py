"""The bench's synthetic ~/.claude compresses like real Claude Code transcripts.

Real transcripts compress ~10x with zstd-3 (NOTES.md); a generator far off that makes the bench
measure the wrong mix of CPU and I/O, as the old one (~3.3x) did.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest
import zstandard

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", BENCH / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_small_set_transcripts_compress_about_10x_with_zstd3(
    generator: ModuleType, tmp_path: Path
) -> None:
    generator.generate(tmp_path, "small", seed=1, workers=1)
    jsonl = sorted((tmp_path / ".claude").rglob("*.jsonl"))
    data = b"".join(p.read_bytes() for p in jsonl)
    ratio = len(data) / len(zstandard.ZstdCompressor(level=3).compress(data))
    assert len(data) > 10 * generator.MIB
    assert 8 <= ratio <= 12, f"zstd-3 ratio {ratio:.2f}x over {len(jsonl)} .jsonl files"


def test_transcript_bytes_depend_only_on_the_seed(generator: ModuleType) -> None:
    # Building the material pools takes seconds: one pool, two fresh writers per seed.
    material = generator.Material(1)

    def transcript(seed: int) -> bytes:
        spec = generator.FileSpec("t.jsonl", "transcript", 200_000, seed, "s", "/home/u/code/a")
        out = io.BytesIO()
        generator.Writer(material, spec).jsonl(out)
        return out.getvalue()

    assert transcript(7) == transcript(7)
    assert transcript(7) != transcript(8)
