"""Turning measurements into the Markdown report: machine, tables, goals."""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
PEERS = ("restic", "rclone")
SCENARIOS = ("initial push", "no-op push", "append 64 KiB + push", "fresh pull", "no-op status")


@dataclass
class Row:
    """One tool in one scenario on one backend."""

    backend: str
    scenario: str
    tool: str
    wall: float
    peak_rss: int
    uploaded: int | None
    downloaded: int | None
    stored: int
    requests: int | None = None
    reported_up: int | None = None  # claude-sync --json uploaded_bytes
    reported_down: int | None = None
    failed: str = ""  # the error, when the command failed


def size(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    if n < MIB:
        return f"{n / 1024:.1f} KiB"
    if n < 1024 * MIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / MIB / 1024:.2f} GiB"


def _first_line(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def _ram() -> str:
    text = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.M)
    return f"{int(match.group(1)) / 1024 / 1024:.1f} GiB" if match else "unknown"


def machine(weed: str | None) -> list[tuple[str, str]]:
    cs = _first_line([sys.executable, "-m", "claude_sync", "--version"])
    return [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("RAM", _ram()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("claude-sync", cs),
        ("restic", _first_line(["restic", "version"])),
        ("rclone", _first_line(["rclone", "version"])),
        ("SeaweedFS", _first_line([weed, "version"]) if weed else "not used"),
    ]


def table(rows: list[Row], backend: str) -> str:
    head = (
        "| scenario | tool | wall s | claude-sync ÷ tool | uploaded | downloaded | stored "
        "| requests | peak RSS |\n|---|---|--:|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]
    for scenario in SCENARIOS:
        group = [r for r in rows if r.backend == backend and r.scenario == scenario]
        cs = next((r for r in group if r.tool == "claude-sync"), None)
        for r in group:
            mine = cs is not None and not cs.failed and not r.tool.startswith("claude-sync")
            ratio = f"{cs.wall / r.wall:.2f}x" if cs and mine else ""
            up = size(r.uploaded)
            if r.reported_up is not None and r.reported_up != r.uploaded:
                up += f" ({size(r.reported_up)} per --json)"
            down = size(r.downloaded if r.downloaded is not None else r.reported_down)
            wall = f"{r.wall:.2f}" if not r.failed else f"**FAILED** after {r.wall:.2f}: {r.failed}"
            lines.append(
                f"| {scenario} | {r.tool} | {wall} | {ratio} | {up} | {down} "
                f"| {size(r.stored)} | {r.requests if r.requests is not None else '-'} "
                f"| {r.peak_rss / MIB:.0f} MiB |"
            )
    return "\n".join(lines)


def _secs(r: Row) -> str:
    return "FAILED" if r.failed else f"{r.wall:.2f} s"


def _get(rows: list[Row], backend: str, scenario: str, tool: str) -> Row | None:
    for r in rows:
        if (r.backend, r.scenario, r.tool) == (backend, scenario, tool):
            # a failed run counts as infinitely slow
            return dataclasses.replace(r, wall=float("inf")) if r.failed else r
    return None


def goals(rows: list[Row], backend: str) -> list[tuple[str, bool, str]]:
    """(goal, met, the numbers) for one backend; peers missing from the run count as absent."""
    out: list[tuple[str, bool, str]] = []
    noop = _get(rows, backend, "no-op push", "claude-sync")
    peers = [p for p in (_get(rows, backend, "no-op push", t) for t in PEERS) if p]
    if noop:
        ok = noop.wall < 0.5 and all(noop.wall < p.wall for p in peers)
        detail = ", ".join([f"claude-sync {_secs(noop)}"] + [f"{p.tool} {_secs(p)}" for p in peers])
        out.append(("no-op push < 0.5 s and faster than both peers", ok, detail))
    app = _get(rows, backend, "append 64 KiB + push", "claude-sync")
    if app:
        up = app.uploaded if app.uploaded is not None else app.reported_up or 0
        ok = up < MIB and app.wall < 1.0
        out.append(("append 64 KiB: < 1 MiB uploaded and < 1 s", ok, f"{size(up)}, {_secs(app)}"))
    for scenario in ("initial push", "fresh pull"):
        mine = _get(rows, backend, scenario, "claude-sync")
        others = [p for p in (_get(rows, backend, scenario, t) for t in PEERS) if p]
        if mine and others:
            fastest = min(others, key=lambda r: r.wall)
            ok = mine.wall <= fastest.wall
            detail = f"claude-sync {_secs(mine)}, fastest peer {fastest.tool} {_secs(fastest)}"
            out.append((f"{scenario} no slower than the faster peer", ok, detail))
    mine = _get(rows, backend, "initial push", "claude-sync")
    restic = _get(rows, backend, "initial push", "restic")
    if mine and restic:
        ok = mine.stored <= restic.stored
        detail = f"claude-sync {size(mine.stored)}, restic {size(restic.stored)}"
        out.append(("stored bytes ≤ restic's (after the initial push)", ok, detail))
    cs_rows = [r for r in rows if r.backend == backend and r.tool == "claude-sync"]
    if cs_rows:
        worst = max(cs_rows, key=lambda r: r.peak_rss)
        ok = worst.peak_rss < 200 * MIB
        detail = f"max {worst.peak_rss / MIB:.0f} MiB ({worst.scenario})"
        out.append(("peak RSS < 200 MiB in every scenario", ok, detail))
    return out


def goals_md(rows: list[Row], backend: str) -> str:
    lines = ["| goal | met | numbers |", "|---|---|---|"]
    for goal, ok, detail in goals(rows, backend):
        lines.append(f"| {goal} | {'yes' if ok else '**no**'} | {detail} |")
    return "\n".join(lines)


def document(
    rows: list[Row], backends: list[str], facts: list[tuple[str, str]], command: str
) -> str:
    parts = [
        "# claude-sync benchmark results",
        "",
        f"Produced by `{command}`. See bench/README.md for what each scenario runs.",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in facts],
        "",
    ]
    for backend in backends:
        parts += [f"## Backend: {backend}", "", table(rows, backend), "", "### Goals", ""]
        parts += [goals_md(rows, backend), ""]
    parts += [
        "Notes: *wall s* is the whole command (process start, key derivation, everything). "
        "*uploaded* is the repository's growth on the folder backend and the request bodies "
        "seen by the counting proxy on S3; *downloaded* and *requests* are measured on S3 only "
        "(on the folder backend *downloaded* is claude-sync's own `--json` figure). "
        "*stored* is the repository's size after the scenario. claude-sync's fresh pull "
        "includes `init` (joining, with its passphrase KDF); restic derives its key on "
        "every command.",
        "",
    ]
    return "\n".join(parts)
