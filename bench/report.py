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
SCENARIOS = ("initial push", "no-op push", "append 64 KiB + push", "no-op status", "fresh pull")


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
        # (The build counts: claude-sync's first push took 1.13-1.26x restic's time on
        # Debian's optimized 3.11, 1.44-1.55x on pyenv's.)
        ("Python", f"{platform.python_version()}, {os.path.realpath(sys.executable)}"),
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


#: issue 18: initial push and fresh pull at most this share of restic's time
RESTIC_SHARE = 0.8
#: a push after an append stores at most this many times the appended bytes' zstd size,
#: plus APPEND_SLACK
APPEND_FACTOR = 2
APPEND_SLACK = 16 * 1024
#: no-op push, no-op status and append + push, at any size
QUICK = 0.5


def goals(
    rows: list[Row], backend: str, append_zstd: int | None = None
) -> list[tuple[str, bool, str]]:
    """(goal, met, the numbers) for one backend; peers missing from the run count as absent.
    append_zstd: the zstd-3 size of the bytes the append scenario added."""
    out: list[tuple[str, bool, str]] = []
    for scenario in ("initial push", "fresh pull"):
        mine = _get(rows, backend, scenario, "claude-sync")
        restic = _get(rows, backend, scenario, "restic")
        rclone = _get(rows, backend, scenario, "rclone")
        if mine and (restic or rclone):
            ok = (restic is None or mine.wall <= RESTIC_SHARE * restic.wall) and (
                rclone is None or mine.wall <= rclone.wall
            )
            detail = [f"claude-sync {_secs(mine)}"]
            if restic:
                detail.append(f"restic {_secs(restic)} ({mine.wall / restic.wall:.2f}x)")
            if rclone:
                detail.append(f"rclone {_secs(rclone)} ({mine.wall / rclone.wall:.2f}x)")
            goal = f"{scenario} ≤ {RESTIC_SHARE}x restic's time and ≤ rclone's"
            out.append((goal, ok, ", ".join(detail)))
    app = _get(rows, backend, "append 64 KiB + push", "claude-sync")
    if app and append_zstd is not None:
        up = app.uploaded if app.uploaded is not None else app.reported_up or 0
        limit = APPEND_FACTOR * append_zstd + APPEND_SLACK
        goal = f"append 64 KiB: uploaded ≤ {APPEND_FACTOR}x its zstd size + 16 KiB"
        detail = f"{size(up)}; limit {size(limit)} (zstd of the new bytes: {size(append_zstd)})"
        out.append((goal, up <= limit, detail))
    for scenario in ("no-op push", "append 64 KiB + push"):
        if r := _get(rows, backend, scenario, "claude-sync"):
            out.append((f"{scenario} ≤ {QUICK} s", r.wall <= QUICK, _secs(r)))
    if status := _get(rows, backend, "no-op status", "claude-sync"):
        ok = status.wall <= QUICK
        goal, detail = f"no-op status ≤ {QUICK} s", _secs(status)
        if status.requests is not None:
            ok = ok and status.requests <= 2
            goal, detail = goal + " and ≤ 2 requests", f"{detail}, {status.requests} requests"
        out.append((goal, ok, detail))
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


def goals_md(rows: list[Row], backend: str, append_zstd: int | None = None) -> str:
    lines = ["| goal | met | numbers |", "|---|---|---|"]
    for goal, ok, detail in goals(rows, backend, append_zstd):
        lines.append(f"| {goal} | {'yes' if ok else '**no**'} | {detail} |")
    return "\n".join(lines)


def document(
    rows: list[Row],
    backends: list[str],
    facts: list[tuple[str, str]],
    command: str,
    append_zstd: int | None = None,
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
        parts += [goals_md(rows, backend, append_zstd), ""]
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
