"""A seedable generator of a realistic synthetic Claude Code folder (~/.claude).

Project folders with session transcripts (JSONL records shaped like Claude Code's: uuid,
parentUuid, sessionId, timestamp, cwd, user/assistant messages, tool calls and results),
sub-agent transcripts, tool-result files, project memory, history.jsonl, agents, commands,
skills, CLAUDE.md and settings.json.

Prose is drawn from a Zipf-distributed pseudo-word vocabulary, code from templates. Like a
real session, most tool calls read, grep, test or edit the files of the project's own source
tree (the same for every session of a project), and each result is recorded twice (tool_result
and toolUseResult, with the whole original file for an edit): that repetition makes the
transcripts compress about 10x with zstd-3, as real ones do (~9.5-10x for `small`, seeds 1-3).
A rare tool output is base64 of random bytes (nearly incompressible). The same seed and home
give the same bytes. Files are written by two worker processes, largest first.

    python bench/generate.py DEST_HOME --size small --seed 1
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import multiprocessing
import os
import random
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

MIB = 1024 * 1024


@dataclass(frozen=True)
class Profile:
    """How big a data set is: file count, total bytes, the few very large transcripts."""

    files: int
    total_bytes: int
    projects: int
    big_mib: tuple[int, ...]
    # Every sized file drawn uniformly from this range instead of the log-normal spread: the
    # many-small set, where the cost per file, not per byte, decides.
    small_bytes: tuple[int, int] | None = None


PROFILES = {
    "small": Profile(files=200, total_bytes=20 * MIB, projects=8, big_mib=(6,)),
    "medium": Profile(files=2_000, total_bytes=300 * MIB, projects=40, big_mib=(64, 32)),
    "large": Profile(files=5_000, total_bytes=1024 * MIB, projects=80, big_mib=(200, 100, 64, 50)),
    # 10x large (issue 18, goal 3): ~50,000 files, ~10 GiB, the largest transcript 1 GiB
    "huge": Profile(
        files=50_000,
        total_bytes=10 * 1024 * MIB,
        projects=500,
        big_mib=(1024, 512, 400, 300, 200, 200, 100, 100),
    ),
    "many-small": Profile(
        files=50_000, total_bytes=30 * MIB, projects=500, big_mib=(), small_bytes=(300, 1000)
    ),
}


@dataclass(frozen=True)
class FileSpec:
    """One file to write: where, what kind, how big, and its own seed."""

    rel: str
    kind: str  # transcript | agent | agent-meta | tool-result | memory
    size: int
    seed: int
    session: str
    cwd: str


# -- text material ----------------------------------------------------------------------------

_SYLLABLE_TEXT = (
    "ka to ri en an re de ma st ing er on al ch co pro con ver sy ne ta lo mi se ul ex im "
    "per ra ti ab ge fu da nu or ve cl tr pa li ca mo be di sta fi gra qu ue ar"
)
_COMMON_TEXT = (
    "the a to of and in is that it for this we on with be as you are function file test "
    "should can not if will now let me I the error value return data request need check "
    "update use code path config run build fix issue change add list new call error type"
)
_SYLLABLES = tuple(_SYLLABLE_TEXT.split())
_COMMON = tuple(_COMMON_TEXT.split())
_KEYWORDS = ("def", "class", "return", "if", "for", "while", "import", "from", "with", "await")
_TYPES = ("int", "str", "bytes", "bool", "None", "list[str]", "dict[str, int]", "Path")
# How many source files a project has, and how strongly a session sticks to the first few.
_WORKSPACE_FILES = (10, 40)
_WORKSPACE_FOCUS = 4.0
_MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5")


class Material:
    """Pools of paragraphs and code blocks built once per process from the seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        rng = random.Random(seed)
        words = list(_COMMON)
        while len(words) < 5000:
            words.append("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
        weights = [1.0 / (i + 1) ** 1.05 for i in range(len(words))]
        self.words = words
        self.paragraphs = [self._paragraph(rng, words, weights) for _ in range(6000)]
        self.code = [self._code_block(rng, words) for _ in range(2500)]
        self._workspaces: dict[str, Workspace] = {}

    def workspace(self, cwd: str) -> Workspace:
        """A fresh copy of the project's files (built once per process: many-small has 50,000
        files in 500 projects), for one session to edit."""
        if cwd not in self._workspaces:
            self._workspaces[cwd] = Workspace(self, cwd)
        return self._workspaces[cwd].copy()

    @staticmethod
    def _paragraph(rng: random.Random, words: list[str], weights: list[float]) -> str:
        picked = rng.choices(words, weights, k=rng.randint(12, 220))
        out, start = [], 0
        while start < len(picked):
            n = rng.randint(6, 24)
            sentence = " ".join(picked[start : start + n])
            out.append(sentence[:1].upper() + sentence[1:] + rng.choice((".", ".", ".", "?", ":")))
            start += n
        return " ".join(out)

    @staticmethod
    def _code_block(rng: random.Random, words: list[str]) -> str:
        def ident() -> str:
            return "_".join(rng.choice(words[40:800]) for _ in range(rng.randint(1, 3)))

        lines = [f"{rng.choice(('def', 'async def'))} {ident()}({ident()}: {rng.choice(_TYPES)}):"]
        for _ in range(rng.randint(3, 40)):
            indent = "    " * rng.randint(1, 3)
            kind = rng.randrange(5)
            if kind == 0:
                lines.append(
                    f"{indent}{ident()} = {ident()}.{ident()}({ident()}, {rng.randint(0, 999)})"
                )
            elif kind == 1:
                lines.append(f"{indent}{rng.choice(_KEYWORDS)} {ident()} in {ident()}:")
            elif kind == 2:
                lines.append(f'{indent}raise ValueError(f"{ident()} {{{ident()}!r}} is not valid")')
            elif kind == 3:
                lines.append(f"{indent}# {' '.join(rng.choice(words[:600]) for _ in range(8))}")
            else:
                lines.append(f"{indent}return self.{ident()}[{ident()}] + {rng.random():.4f}")
        return "\n".join(lines)


class Workspace:
    """The source files of one project, the same for every session in it (seeded by its name,
    not its path: the bench's home is a new temporary folder each run, and the data set must
    not change with it; seeded by the path, the .jsonl files compressed 11.6x to 12.1x).

    Sessions keep reading and editing a handful of these files: that repetition, more than the
    prose, is why real transcripts compress about 10x.
    """

    def __init__(self, material: Material, cwd: str) -> None:
        rng = random.Random(f"{material.seed}:{os.path.basename(cwd)}")
        self.paths: list[str] = []
        self.files: dict[str, str] = {}
        self.tests = [
            f"tests/test_{name}.py::test_{name}_{i}"
            for name in rng.sample(material.words[40:400], 12)
            for i in range(rng.randint(1, 12))
        ]
        for _ in range(rng.randint(_WORKSPACE_FILES[0], _WORKSPACE_FILES[1])):
            folder = rng.choice(("src", "src", "tests", "lib", "app"))
            path = f"{cwd}/{folder}/{rng.choice(material.words[40:900])}.py"
            if path not in self.files:
                self.paths.append(path)
                blocks = rng.sample(material.code, rng.randint(2, 10))
                self.files[path] = "\n\n".join(blocks)

    def copy(self) -> Workspace:
        twin = copy.copy(self)
        twin.files = dict(self.files)
        return twin

    def pick(self, rng: random.Random) -> tuple[str, str]:
        """A file, the first few far more often: a session works on a few files at a time."""
        index = min(int(rng.expovariate(1 / _WORKSPACE_FOCUS)), len(self.paths) - 1)
        path = self.paths[index]
        return path, self.files[path]

    def edit(self, rng: random.Random, path: str) -> tuple[str, str]:
        """Replace a few lines of a file with lines from elsewhere; returns (old, new)."""
        lines = self.files[path].split("\n")
        start = rng.randrange(len(lines))
        old = lines[start : start + rng.randint(1, 6)]
        donor = rng.choice(list(self.files.values())).split("\n")
        at = rng.randrange(len(donor))
        new = donor[at : at + rng.randint(1, 6)]
        lines[start : start + len(old)] = new
        self.files[path] = "\n".join(lines)
        return "\n".join(old), "\n".join(new)


class Writer:
    """Makes the content of one file from its spec, deterministically."""

    def __init__(self, material: Material, spec: FileSpec) -> None:
        self.m = material
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.clock = 1_760_000_000.0 + self.rng.random() * 5_000_000
        self.workspace = material.workspace(spec.cwd)

    # small pieces

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def stamp(self) -> str:
        self.clock += self.rng.expovariate(1 / 20)
        t = time.gmtime(self.clock)
        ms = int(self.clock * 1000) % 1000
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms:03d}Z"

    def prose(self, k: int) -> str:
        return "\n\n".join(self.rng.choices(self.m.paragraphs, k=k))

    def remark(self) -> str:
        """What the assistant says around its tool calls: a sentence or a few, rarely more."""
        if self.rng.random() < 0.15:
            return self.prose(1)
        sentences = self.rng.choice(self.m.paragraphs).split(". ")
        return ". ".join(sentences[: self.rng.randint(1, 3)])

    def snippet(self) -> str:
        """A few lines of one of the project's files, as quoted in a diff or an answer."""
        lines = self.workspace.pick(self.rng)[1].split("\n")
        start = self.rng.randrange(len(lines))
        return "\n".join(lines[start : start + self.rng.randint(3, 30)])

    def code(self, k: int) -> str:
        return "\n\n".join(self.rng.choices(self.m.code, k=k))

    def numbered(self, text: str, start: int | None = None) -> str:
        if start is None:
            start = self.rng.randint(1, 400)
        return "\n".join(f"{start + i:6d}\t{line}" for i, line in enumerate(text.split("\n")))

    def b64(self, n: int) -> str:
        return base64.b64encode(self.rng.randbytes(n)).decode()

    def tool_output(self) -> str:
        """A tool's text output with no call attached: for the tool-result files."""
        roll = self.rng.random()
        if roll < 0.5:
            return self.numbered(self.workspace.pick(self.rng)[1])
        if roll < 0.8:
            return self.test_log()
        if roll < 0.99:
            return self.prose(self.rng.randint(1, 4))
        return self.b64(self.rng.randint(2_000, 20_000))

    def test_log(self) -> str:
        """pytest-like output over the project's test files: long runs of near-identical lines."""
        lines = [f"============ test session starts ============\nrootdir: {self.spec.cwd}"]
        tests = self.workspace.tests
        start = self.rng.randrange(len(tests))
        count = self.rng.randint(5, 80)
        for i in range(count):
            result = "PASSED" if self.rng.random() < 0.95 else "FAILED"
            test = tests[(start + i) % len(tests)]
            lines.append(f"{test} {result} [{(i + 1) * 100 // count:3d}%]")
        passed, seconds = self.rng.randint(5, 400), self.rng.random() * 9
        lines.append(f"============ {passed} passed in {seconds:.2f}s ===")
        return "\n".join(lines)

    def tool_call(self) -> tuple[str, dict[str, object], str, dict[str, object]]:
        """One tool call on the project: (name, input, output text, toolUseResult).

        Like a real session, most calls read, grep or edit the project's own files, so the same
        file contents come back again and again (Claude Code also records them twice: in the
        tool_result and in toolUseResult, with the whole original file for an edit).
        """
        roll = self.rng.random()
        if roll < 0.4:
            path, text = self.workspace.pick(self.rng)
            out = self.numbered(text, start=1)
            lines = text.count("\n") + 1
            info = {"filePath": path, "content": text, "numLines": lines, "startLine": 1}
            return "Read", {"file_path": path}, out, {"type": "text", "file": info}
        if roll < 0.55:
            path, text = self.workspace.pick(self.rng)
            old, new = self.workspace.edit(self.rng, path)
            out = f"The file {path} has been updated. Here's the result of running `cat -n`:\n"
            out += self.numbered(new)
            result = {
                "filePath": path,
                "oldString": old,
                "newString": new,
                "originalFile": text,
                "structuredPatch": [
                    {
                        "lines": ["-" + line for line in old.split("\n")]
                        + ["+" + line for line in new.split("\n")]
                    }
                ],
                "userModified": False,
                "replaceAll": False,
            }
            return "Edit", {"file_path": path, "old_string": old, "new_string": new}, out, result
        if roll < 0.65:
            word = self.rng.choice(self.m.words[40:600])
            hits = [self.workspace.pick(self.rng) for _ in range(self.rng.randint(1, 30))]
            out = "\n".join(
                f"{path}:{self.rng.randint(1, 300)}:{self.rng.choice(text.splitlines())}"
                for path, text in hits
            )
            return "Grep", {"pattern": word, "path": self.spec.cwd}, out, {"mode": "content"}
        if roll < 0.87:
            if self.rng.random() < 0.6:
                command, out = "python -m pytest -q", self.test_log()
            else:
                command, out = f"git diff {self.workspace.pick(self.rng)[0]}", self.snippet()
            result = {"stdout": out, "stderr": "", "interrupted": False, "isImage": False}
            return "Bash", {"command": command, "description": "Run it"}, out, result
        if roll < 0.99:
            out = self.prose(self.rng.randint(1, 3))
            url = f"https://docs.example.com/{self.rng.choice(self.m.words[40:900])}"
            return "WebFetch", {"url": url, "prompt": "Summarise"}, out, {"result": out}
        # A rare screenshot or binary dump: nearly incompressible, as in real sessions.
        out = self.b64(self.rng.randint(2_000, 20_000))
        return "Bash", {"command": "base64 shot.png"}, out, {"stdout": out, "stderr": ""}

    # records

    def base(self, parent: str | None, kind: str) -> dict[str, object]:
        return {
            "parentUuid": parent,
            "isSidechain": self.spec.kind == "agent",
            "userType": "external",
            "cwd": self.spec.cwd,
            "sessionId": self.spec.session,
            "version": "2.0.14",
            "gitBranch": "main",
            "type": kind,
            "uuid": self.uid(),
            "timestamp": self.stamp(),
        }

    def user_prompt(self, parent: str | None) -> dict[str, object]:
        rec = self.base(parent, "user")
        rec["message"] = {"role": "user", "content": self.prose(self.rng.randint(1, 2))}
        return rec

    def assistant(
        self, parent: str, call: tuple[str, str, dict[str, object]] | None = None
    ) -> dict[str, object]:
        """An assistant message; call is (tool_use id, tool name, input) when it calls a tool."""
        rec = self.base(parent, "assistant")
        content: list[dict[str, object]] = [{"type": "text", "text": self.remark()}]
        if self.rng.random() < 0.3:
            content.append({"type": "text", "text": "```python\n" + self.snippet() + "\n```"})
        if call:
            tool_id, name, args = call
            content.append({"type": "tool_use", "id": tool_id, "name": name, "input": args})
        rec["message"] = {
            "id": "msg_" + self.b64(18).replace("+", "a").replace("/", "b"),
            "type": "message",
            "role": "assistant",
            "model": self.rng.choice(_MODELS),
            "content": content,
            "stop_reason": "tool_use" if call else "end_turn",
            "usage": {
                "input_tokens": self.rng.randint(3, 40_000),
                "cache_read_input_tokens": self.rng.randint(0, 150_000),
                "output_tokens": self.rng.randint(1, 4_000),
            },
        }
        rec["requestId"] = "req_" + uuid.UUID(int=self.rng.getrandbits(128)).hex
        return rec

    def tool_result(
        self, parent: str, tool_id: str, output: str, result: dict[str, object]
    ) -> dict[str, object]:
        rec = self.base(parent, "user")
        rec["message"] = {
            "role": "user",
            "content": [{"tool_use_id": tool_id, "type": "tool_result", "content": output}],
        }
        rec["toolUseResult"] = result
        return rec

    def records(self) -> Iterator[dict[str, object]]:
        parent: str | None = None
        while True:
            rec = self.user_prompt(parent)
            yield rec
            parent = str(rec["uuid"])
            for _ in range(self.rng.randint(0, 6)):
                tool_id = "toolu_" + uuid.UUID(int=self.rng.getrandbits(128)).hex[:24]
                name, args, output, used = self.tool_call()
                call = self.assistant(parent, (tool_id, name, args))
                yield call
                result = self.tool_result(str(call["uuid"]), tool_id, output, used)
                yield result
                parent = str(result["uuid"])
            answer = self.assistant(parent)
            yield answer
            parent = str(answer["uuid"])
            if self.rng.random() < 0.02:
                yield {"type": "summary", "summary": self.prose(1)[:120], "leafUuid": parent}

    def jsonl(self, fh: object) -> None:
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        written, batch, batch_size = 0, [], 0
        for rec in self.records():
            line = dumps(rec) + "\n"
            batch.append(line)
            batch_size += len(line)
            if batch_size >= MIB or written + batch_size >= self.spec.size:
                data = "".join(batch).encode()
                fh.write(data)  # type: ignore[attr-defined]
                written += len(data)
                batch, batch_size = [], 0
                if written >= self.spec.size:
                    return

    def text_file(self) -> bytes:
        parts, size = [], 0
        while size < self.spec.size:
            part = self.prose(1) if self.rng.random() < 0.2 else self.tool_output()
            parts.append(part)
            size += len(part) + 1
        return "\n".join(parts).encode()[: self.spec.size]


# -- planning ---------------------------------------------------------------------------------


def encode_project(path: str) -> str:
    """Claude Code's project folder name: every non-alphanumeric character becomes '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


def _sizes(rng: random.Random, count: int, total: int) -> list[int]:
    """Log-normal sizes (most a few KB to a few hundred KB) scaled to sum to about total."""
    raw = [min(rng.lognormvariate(10.2, 1.5), 8e6) for _ in range(count)]
    scale = total / sum(raw)
    return [max(600, int(r * scale)) for r in raw]


def plan(home: Path, profile: Profile, seed: int) -> list[FileSpec]:
    """Every transcript-like file of the data set, with sizes summing to about the profile."""
    rng = random.Random(seed)
    project_paths = [
        f"{home}/code/{rng.choice(('api', 'web', 'infra', 'tools', 'app', 'lib'))}-{i:03d}"
        for i in range(profile.projects)
    ]
    specs: list[FileSpec] = []
    sessions: list[tuple[str, str]] = []
    target_files = profile.files - 40  # leave room for history, settings, agents and so on
    while len(specs) < target_files:
        cwd = rng.choice(project_paths)
        folder = f"projects/{encode_project(cwd)}"
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        sessions.append((session, cwd))
        specs.append(FileSpec(f"{folder}/{session}.jsonl", "transcript", 0, 0, session, cwd))
        if rng.random() < 0.25:
            for _ in range(rng.randint(1, 4)):
                agent = f"{folder}/{session}/subagents/agent-{rng.getrandbits(32):08x}"
                specs.append(FileSpec(agent + ".jsonl", "agent", 0, 0, session, cwd))
                specs.append(FileSpec(agent + ".meta.json", "agent-meta", 0, 0, session, cwd))
        if rng.random() < 0.12:
            for _ in range(rng.randint(1, 3)):
                name = f"{folder}/{session}/tool-results/toolu_{rng.getrandbits(64):016x}.txt"
                specs.append(FileSpec(name, "tool-result", 0, 0, session, cwd))
    for cwd in project_paths[: profile.projects // 3]:
        rel = f"projects/{encode_project(cwd)}/memory/MEMORY.md"
        specs.append(FileSpec(rel, "memory", 0, 0, "", cwd))
    return _assign_sizes(rng, specs, profile)


def _assign_sizes(rng: random.Random, specs: list[FileSpec], profile: Profile) -> list[FileSpec]:
    big = [m * MIB for m in profile.big_mib]
    sized = [s for s in specs if s.kind in ("transcript", "agent", "tool-result")]
    rest_total = profile.total_bytes - sum(big) - 2 * MIB  # history and the small files
    big_rels = [s.rel for s in sized if s.kind == "transcript"][: len(big)]
    others = [s.rel for s in sized if s.rel not in big_rels]
    if profile.small_bytes:
        sizes = [rng.randint(*profile.small_bytes) for _ in others]
    else:
        sizes = _sizes(rng, len(others), rest_total)
    by_rel = dict(zip(others, sizes, strict=True))
    by_rel.update(zip(big_rels, big, strict=True))
    out = []
    for spec in specs:
        size = by_rel.get(spec.rel, 300 if spec.kind == "agent-meta" else 4_000)
        out.append(FileSpec(spec.rel, spec.kind, size, rng.getrandbits(63), spec.session, spec.cwd))
    return out


# -- writing ----------------------------------------------------------------------------------

_material: Material | None = None


def _init_worker(seed: int) -> None:
    global _material
    _material = Material(seed)


def _write_one(args: tuple[str, FileSpec]) -> int:
    claude, spec = args
    assert _material is not None
    path = Path(claude) / spec.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(_material, spec)
    if spec.kind in ("transcript", "agent"):
        with path.open("wb", buffering=0) as fh:
            writer.jsonl(fh)
    elif spec.kind == "agent-meta":
        meta = {"agentType": writer.rng.choice(("general-purpose", "Explore", "reviewer"))}
        path.write_text(json.dumps(meta))
    else:
        path.write_bytes(writer.text_file())
    mtime = writer.clock
    os.utime(path, (mtime, mtime))
    return path.stat().st_size


def _write_config(claude: Path, home: Path, specs: list[FileSpec], seed: int) -> None:
    """history.jsonl, settings.json, CLAUDE.md, agents, commands, skills, plugins."""
    rng = random.Random(seed ^ 0x5EED)
    material = _material or Material(seed)
    w = Writer(material, FileSpec("", "memory", 0, seed, "", str(home)))
    sessions = [(s.session, s.cwd) for s in specs if s.kind == "transcript"]
    lines = []
    for i in range(min(20_000, 6 * len(sessions))):
        session, cwd = rng.choice(sessions)
        entry = {
            "display": material.paragraphs[rng.randrange(len(material.paragraphs))][:300],
            "pastedContents": {},
            "timestamp": 1_760_000_000_000 + i * 61_000,
            "project": cwd,
            "sessionId": session,
        }
        lines.append(json.dumps(entry) + "\n")
    (claude / "history.jsonl").write_text("".join(lines))
    settings = {
        "model": "sonnet",
        "permissions": {"allow": ["Bash(git status)", f"Read({home}/code/**)"], "deny": []},
        "env": {"BASH_DEFAULT_TIMEOUT_MS": "120000"},
        "cleanupPeriodDays": 365,
    }
    (claude / "settings.json").write_text(json.dumps(settings, indent=2))
    (claude / "CLAUDE.md").write_text("# Preferences\n\n" + w.prose(3))
    for folder, count in (("agents", 8), ("commands", 12)):
        (claude / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            body = f"---\nname: {folder[:-1]}-{i}\ndescription: {w.prose(1)[:100]}\n---\n"
            (claude / folder / f"{folder[:-1]}-{i}.md").write_text(body + w.prose(2))
    for i in range(6):
        skill = claude / "skills" / f"skill-{i}"
        skill.mkdir(parents=True, exist_ok=True)
        (skill / "SKILL.md").write_text(f"---\nname: skill-{i}\n---\n" + w.prose(3) + w.code(2))
    (claude / "plugins").mkdir(exist_ok=True)
    (claude / "plugins" / "installed_plugins.json").write_text('{"version": 2, "plugins": {}}')


def generate(home: Path, size: str, seed: int, workers: int = 2) -> tuple[int, int]:
    """Write the data set into home/.claude; returns (file count, total bytes)."""
    profile = PROFILES[size]
    claude = home / ".claude"
    claude.mkdir(parents=True, exist_ok=True)
    specs = plan(home, profile, seed)
    jobs = [(str(claude), s) for s in sorted(specs, key=lambda s: -s.size)]
    _init_worker(seed)  # before the fork: the workers inherit it
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        list(pool.imap_unordered(_write_one, jobs, chunksize=4))
    _write_config(claude, home, specs, seed)
    files = [p for p in claude.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def jsonl_zstd_ratio(claude: Path) -> float:
    """How the set's .jsonl files compress with zstd-3 as one stream (real transcripts: ~10x)."""
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    raw = packed = 0
    for path in sorted(claude.rglob("*.jsonl")):
        with path.open("rb") as fh:
            while block := fh.read(MIB):
                raw += len(block)
                packed += len(compressor.compress(block))
    packed += len(compressor.flush())
    return raw / max(packed, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("home", type=Path, help="HOME to fill: writes HOME/.claude")
    parser.add_argument("--size", choices=sorted(PROFILES), default="small")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    count, total = generate(args.home.resolve(), args.size, args.seed)
    took = time.perf_counter() - start
    ratio = jsonl_zstd_ratio(args.home.resolve() / ".claude")
    print(f"{count} files, {total / MIB:.1f} MiB in {took:.1f} s; .jsonl zstd-3 ratio {ratio:.1f}x")


if __name__ == "__main__":
    main()
