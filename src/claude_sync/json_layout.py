"""JSON written back in the layout its file had: a settings.json someone keeps compact, or
indented by four or by tabs, stays so when claude-sync adds its hooks, merges it or takes
keys out of it, instead of being reindented into a change every machine then syncs."""

from __future__ import annotations

import json
import re
from typing import Any

_INDENT = re.compile(rb"\n([ \t]+)\S")


def dump_like(value: Any, like: bytes) -> bytes:
    """value as JSON text laid out as `like` is: on one line (with or without spaces after
    `,` and `:`) or indented (by what its first indented line uses), with a final newline
    when it has one. An empty or unreadable `like` gives two spaces and a newline."""
    text = like.strip()
    if not text.startswith((b"{", b"[")) or b"\n" in text or len(text) <= 2:
        found = _INDENT.search(text)
        indent: str | int = found.group(1).decode() if found else 2
        dumped = json.dumps(value, indent=indent, ensure_ascii=False)
    else:
        separators = (", ", ": ") if b'": ' in text or b", " in text else (",", ":")
        dumped = json.dumps(value, separators=separators, ensure_ascii=False)
    return (dumped + ("\n" if like.endswith(b"\n") or not text else "")).encode()
