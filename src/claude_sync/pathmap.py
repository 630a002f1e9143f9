"""Project folder names: what Claude Code derives on this machine <-> one shared logical name.

Claude Code keeps a project's sessions in `projects/<enc>/`, where `enc` is the project's
real path with every character that is not an ASCII letter or digit replaced by `-`. The
encoding works character by character, so a project under the home directory always starts
with the encoded home. We store such folders as `~` + the rest (`-home-ann-code-app` ->
`~-code-app`) and write them back under this machine's encoded home, so `claude --resume`
finds them whatever the home directory is called. User path maps do the same for folders that
live in different places on different machines (`/Users/ann/work` here, `/home/ann/src` there,
both mapped to the label `work` -> `@work-…`).

Names Claude Code truncated (over 200 characters, with a hash suffix of the full path) and
names under no rule keep their name: they are resumable on machines with the same path.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import struct
from abc import ABC, abstractmethod
from pathlib import Path, PurePath
from typing import BinaryIO

from claude_sync.merge import HISTORY_PATH, MCP_SERVERS

MAX_NAME = 200
#: PathMapper.unmapped_label of a project whose folder name here would be over MAX_NAME
TOO_LONG = "…"
#: ... and of another machine's home project whose name here is a folder's beside the home
BESIDE_HOME = "⌂"
#: ... and of a folder's cut name, which it synced under before (see unmapped_label)
CUT_BEFORE = "✂"
PROJECTS = "projects/"
HOME_PROJECTS = PROJECTS + "~"
LABELLED_PROJECTS = PROJECTS + "@"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
LABEL = re.compile(r"[A-Za-z0-9]+")


def encode(path: str) -> str:
    """The folder name Claude Code uses for a project directory (before truncation). Its
    JavaScript replaces each UTF-16 unit: a character beyond the BMP is two `-`."""
    if path.isascii():
        return _NOT_ALNUM.sub("-", path)
    return _NOT_ALNUM.sub(lambda m: "--" if ord(m.group()) > 0xFFFF else "-", path)


def claude_folder(directory: str) -> str:
    """The folder Claude Code keeps a project directory's sessions in: encode(directory), and
    a name over MAX_NAME cut there, with `-` and a hash of the whole path after it (Claude
    Code 2.x's; it also finds such a folder by its first MAX_NAME characters alone)."""
    name = encode(directory)
    if len(name) <= MAX_NAME:
        return name
    units = directory.encode("utf-16-le", "surrogatepass")
    value = 0
    for (unit,) in struct.iter_unpack("<H", units):
        value = (value * 31 + unit) & 0xFFFFFFFF  # Java's String.hashCode, as a 32-bit int
    if value >= 1 << 31:
        value = (1 << 32) - value  # its absolute value
    return f"{name[:MAX_NAME]}-{_base36(value)}"


def _base36(value: int) -> str:
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
        if not value:
            return digits


class PathMapper:
    """Translates project folder names (`projects/-home-ann-code-app`) between this
    machine's form and the logical form stored in snapshots (`projects/~-code-app`), so a
    project under the home or a mapped directory lands in the right folder on every machine."""

    def __init__(
        self,
        home: PurePath | str,
        maps: dict[str, str] | None = None,
        home_aliases: list[str] | None = None,
        moved: dict[str, list[str]] | None = None,
        home_siblings: list[str] | None = None,
        projects: str | None = None,
    ) -> None:
        """home_aliases: other folders that are this user's home too (a WSL user's Windows
        home, None: found by `wsl_windows_homes`). Their projects are stored like home
        projects; pulled ones go under home. moved: session id -> [local folder, logical
        folder] of a session `resume --cwd` placed in another project's folder here: its
        files there are that session's, in its own project. home_siblings: folders beside
        the home whose encoded name starts like a home project's (None: found by
        `home_siblings`): their projects keep their name. projects: Claude Code's projects
        folder here, where folders whose name it cut are found (see find_cut_folders)."""
        self.moved = {sid: (pair[0], pair[1]) for sid, pair in (moved or {}).items()}
        # (encoded local prefix, logical prefix), longest local prefix first.
        places: list[tuple[str, str]] = []  # (directory, logical prefix)
        for directory, label in (maps or {}).items():
            for variant in _variants(os.path.expanduser(directory)):
                places.append((variant, "@" + label))
        home = str(home)
        for variant in _variants(home):
            places.append((variant, "~"))
        self.places = sorted(set(places), key=lambda r: len(r[0]), reverse=True)
        # Read, never written: the other drive-letter case of a Windows home (Claude Code
        # names one project `C--…` or `c--…` depending on what started it), and aliases.
        aliases = wsl_windows_homes(home) if home_aliases is None else home_aliases
        self.read_only = {encode(_swap_drive(home))} - {encode(home)}
        for alias in aliases:
            self.read_only |= {encode(v) for v in _variants(alias) | {_swap_drive(alias)}}
        rules = {(encode(d), p) for d, p in places} | {(n, "~") for n in self.read_only}
        siblings = find_home_siblings(home) if home_siblings is None else home_siblings
        rules |= {(encode(v), encode(v)) for sibling in siblings for v in _variants(sibling)}
        self.rules = sorted(rules, key=lambda r: len(r[0]), reverse=True)
        # Per project folder, not per file: a scan maps every one of thousands of paths.
        self._logical: dict[str, str] = {}
        self._local: dict[str, str] = {}
        self._projects = projects
        # cut folder here <-> logical name, looked for once, when a name needs it
        self._cut: dict[str, str] | None = None
        self._uncut: dict[str, str] = {}

    def folder_to_logical(self, name: str) -> str:
        """The logical name of a project folder here; a name under no rule is its own."""
        if (found := self._logical.get(name)) is None:
            found = self._logical[name] = self._folder_to_logical(name)
        return found

    def _folder_to_logical(self, name: str) -> str:
        if len(name) > MAX_NAME:
            return self._cut_folders().get(name, name)
        return self._by_rules(name) or name

    def _cut_folders(self) -> dict[str, str]:
        """The folders here whose name Claude Code cut, each with the logical name of its
        directory where a rule gives one: sessions started here sync under the project's
        name, which is not cut where the home is shorter."""
        if self._cut is None:
            found = find_cut_folders(self._projects) if self._projects else {}
            self._cut = {}
            for name, directory in found.items():
                logical = self._by_rules(encode(directory))
                if logical is not None:
                    self._cut[name] = logical
                    self._uncut[logical] = name
        return self._cut

    def _by_rules(self, name: str) -> str | None:
        for local, logical in self.rules:
            if _has_prefix(name, local):
                return logical + name[len(local) :]
        return None

    def directory_to_logical(self, directory: str) -> str:
        """The logical name of a project directory's folder, also when the name is too long
        here (Claude Code cuts it: see claude_folder) but not where it was pushed."""
        return self._by_rules(encode(directory)) or claude_folder(directory)

    def too_long_here(self, logical: str) -> bool:
        """Whether a logical project folder with no folder here (folder_to_local) has none
        because its name here would be over MAX_NAME: a longer home than where it was
        pushed. `resume` places its sessions (in the folder Claude Code cuts the name to)."""
        return any(
            _has_prefix(logical, prefix)
            and local not in self.read_only
            and len(local) + len(logical) - len(prefix) > MAX_NAME
            for local, prefix in self.rules
        )

    def folder_to_local(self, logical: str) -> str:
        """The folder name here for a logical project name: the inverse of
        folder_to_logical, and the logical name itself when no rule gives one that maps back."""
        if (found := self._local.get(logical)) is None:
            found = self._local[logical] = self._folder_to_local(logical)
        return found

    def _folder_to_local(self, logical: str) -> str:
        # The first rule whose logical prefix matches is the longest local one.
        for local, prefix in self.rules:
            if _has_prefix(logical, prefix) and local not in self.read_only:
                name = local + logical[len(prefix) :]
                if len(name) <= MAX_NAME and self.folder_to_logical(name) == logical:
                    return name
        self._cut_folders()
        return self._uncut.get(logical, logical)

    def has_label(self, label: str) -> bool:
        """Whether a directory here is mapped to label (`map`)."""
        return any(prefix == "@" + label for _, prefix in self.places)

    def unmapped_label(self, logical: str) -> str | None:
        """The label of a logical path's project (`projects/@work-app/…` -> `work`) when no
        folder here is mapped to it: such a project has no place on this machine. `~` for
        a project stored under the home (`projects/~-work-app/…`) whose folder here is
        mapped to a label now (`map` after it was pushed): its place here holds the
        labelled copy, and the name stored is no folder Claude Code reads. TOO_LONG for
        one whose name here would be too long (see too_long_here), BESIDE_HOME for one whose
        name here would be a folder's beside the home (see find_home_siblings). CUT_BEFORE
        for a folder Claude Code cut here, stored under that name by an older claude-sync:
        the folder syncs under its project's name now (see _cut_folders), and a second
        name for it would write the old copies over the files there."""
        if not logical.startswith((HOME_PROJECTS, LABELLED_PROJECTS)):
            # the usual answer, found without splitting: asked of every path
            end = logical.find("/", len(PROJECTS))
            if end - len(PROJECTS) > MAX_NAME and logical.startswith(PROJECTS):
                return CUT_BEFORE if logical[len(PROJECTS) : end] in self._cut_folders() else None
            return None
        folder, rest = _split(logical)
        if folder is None or self.folder_to_local(folder) != folder:
            return None
        moved = self.moved.get(_session_of(rest)) if self.moved and rest else None
        if moved is not None and moved[1] == folder:
            return None  # placed here by `resume --cwd`: it has a place, and syncs from it
        if self.too_long_here(folder):
            return TOO_LONG
        if folder[0] == "~":
            return BESIDE_HOME if self._beside_home(folder) else "~"
        return folder[1:].partition("-")[0]

    def _beside_home(self, logical: str) -> bool:
        """Whether a home project's name here is that of a folder beside the home (see
        find_home_siblings), which keeps it."""
        for local, prefix in self.rules:
            if prefix == "~" and local not in self.read_only:
                name = local + logical[1:]
                return self.folder_to_logical(name) == name
        return False

    def to_logical(self, rel: str) -> str:
        """The logical path of a path relative to the Claude folder here."""
        return self._translate(rel, to_logical=True)

    def to_local(self, logical: str) -> str:
        """The path relative to the Claude folder here of a logical path."""
        return self._translate(logical, to_logical=False)

    def _translate(self, path: str, to_logical: bool) -> str:
        folder, rest = _split(path)
        if folder is None:
            return path
        moved = self.moved.get(_session_of(rest)) if self.moved else None
        # moved: session id -> (folder here, its project's logical folder)
        here, there = (0, 1) if to_logical else (1, 0)
        if moved is not None and moved[here] == folder:
            return f"{PROJECTS}{moved[there]}{rest}"
        convert = self.folder_to_logical if to_logical else self.folder_to_local
        return f"{PROJECTS}{convert(folder)}{rest}"


def _session_of(rest: str) -> str:
    """`/<id>.jsonl` or `/<id>/…` (the part of a path after its project folder) -> id."""
    first = rest[1:].partition("/")[0]
    return first.removesuffix(".jsonl")


def _variants(path: str) -> set[str]:
    """The path as given and as resolved: Claude Code uses the real path of the project.
    A Windows path seen from another system (tests, a WSL alias) is taken as given."""
    if _WINDOWS_PATH.match(path) and os.name != "nt":
        return {path}
    return {path, os.path.realpath(path)}


def _swap_drive(path: str) -> str:
    """`C:\\Users\\ann` <-> `c:\\Users\\ann`; other paths unchanged."""
    return path[0].swapcase() + path[1:] if _WINDOWS_PATH.match(path) else path


def wsl_windows_homes(home: str) -> list[str]:
    """Under WSL, the Windows home as Linux sees it (`/mnt/c/Users/ann`): Claude Code run
    there on a Windows-side project names its folder `-mnt-c-Users-ann-…`."""
    if not os.environ.get("WSL_DISTRO_NAME"):
        return []
    users = [p for p in glob.glob("/mnt/[a-z]/Users/*") if os.path.isdir(p)]
    name = PurePath(home).name.casefold()
    return [p for p in users if PurePath(p).name.casefold() == name]


def find_cut_folders(projects: str) -> dict[str, str]:
    """The project folders in `projects` whose name Claude Code cut (see claude_folder),
    each with the directory it is for: the `cwd` its transcripts record, when that cut
    gives the folder's name."""
    try:
        names = [n for n in os.listdir(projects) if len(n) > MAX_NAME]
    except OSError:
        return {}
    found = {}
    for name in names:
        directory = _recorded_directory(os.path.join(projects, name), name)
        if directory is not None:
            found[name] = directory
    return found


def _recorded_directory(folder: str, name: str) -> str | None:
    """The `cwd` of the first records of a few transcripts in folder whose cut is name."""
    try:
        transcripts = sorted(glob.glob(os.path.join(glob.escape(folder), "*.jsonl")))[:8]
    except OSError:
        return None
    for transcript in transcripts:
        try:
            with open(transcript, "rb") as fh:
                head = fh.read(64 * 1024)
        except OSError:
            continue
        for line in head.splitlines()[:50]:
            try:
                cwd = json.loads(line).get("cwd")
            except (ValueError, AttributeError, RecursionError):
                continue
            if isinstance(cwd, str) and name in (
                claude_folder(cwd),
                claude_folder(os.path.realpath(cwd)),
            ):
                return cwd
    return None


def find_home_siblings(home: str) -> list[str]:
    """Folders beside the home whose name is the home's and more (`/home/ann-work` beside
    `/home/ann`): Claude Code's name for a project there (`-home-ann-work-x`) is also the
    name of one in the home (`/home/ann/work/x`), so it would be stored and placed as a home
    project on the other machines. A sibling whose rest names a folder in the home
    (`/home/ann/work` exists too) is left out: such names stay the home's, as before."""
    if _WINDOWS_PATH.match(home) and os.name != "nt":
        return []
    parent, name = os.path.split(home.rstrip("/\\"))
    if not name:
        return []
    try:
        with os.scandir(parent or os.sep) as entries:
            beside = [
                e.path
                for e in entries
                if e.name.startswith(name) and _NOT_ALNUM.match(e.name, len(name)) and e.is_dir()
            ]
        inside = {"-" + encode(n) for n in os.listdir(home)} if beside else set()
    except OSError:
        return []
    return [
        path
        for path in beside
        if not any(_has_prefix(encode(os.path.basename(path)[len(name) :]), h) for h in inside)
    ]


def _has_prefix(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + "-")


def _split(rel: str) -> tuple[str | None, str]:
    if not rel.startswith(PROJECTS):
        return None, ""
    folder, sep, rest = rel[len(PROJECTS) :].partition("/")
    return (folder, sep + rest) if folder else (None, "")


HOME_TOKEN = b"${CLAUDE_SYNC_HOME}"
#: one folder name in a path inside JSON text (see HomeFilter)
_SEGMENT = rb'[^"\\/\s&|;<>]+'
#: JSON files holding absolute paths under the home, stored with the home as HOME_TOKEN
HOME_MAPPED = (
    "settings.json",
    "plugins/installed_plugins.json",
    "plugins/known_marketplaces.json",
    MCP_SERVERS,
)


class FileFilter(ABC):
    """A file stored in a machine-independent form: to_logical as it is pushed, to_local
    as it is pulled."""

    @abstractmethod
    def to_logical(self, data: bytes) -> bytes:
        """The file as stored."""

    @abstractmethod
    def to_local(self, data: bytes) -> bytes:
        """The file as written here."""

    def write_local(self, data: bytes, out: BinaryIO) -> None:
        """to_local, written to out (a filter of a big file writes it as it makes it)."""
        out.write(self.to_local(data))


class HomeFilter(FileFilter):
    """settings.json and the other HOME_MAPPED files hold absolute paths (hook commands,
    allowed directories, plugin folders): stored with the home directory as a token and
    `/` between the folders after it, written back with this machine's home and separator.
    A Windows home appears JSON-escaped (`C:\\\\Users\\\\ann`) with either drive-letter
    case; a folder name ends at a quote, a backslash, white space or a shell operator, so that
    a path inside a command line is mapped and the rest of the line is not."""

    def __init__(self, home: PurePath | str) -> None:
        text = str(home)
        self.windows = bool(_WINDOWS_PATH.match(text))
        self.home = text.rstrip("/\\").encode()
        # Only a Windows home has a drive letter to build the pattern from (a home of "/" has
        # no letters at all).
        self._windows_home: re.Pattern[bytes] | None = None
        if self.windows:
            escaped = re.escape(self.home.replace(b"\\", b"\\\\")[1:])
            drive = b"[" + re.escape(self.home[:1].upper() + self.home[:1].lower()) + b"]"
            self._windows_home = re.compile(
                drive
                + escaped
                + rb"(?P<rest>(?:(?:\\\\|/)"
                + _SEGMENT
                + rb")*)(?!"
                + _SEGMENT
                + rb")"
            )
        self._token = re.compile(re.escape(HOME_TOKEN) + rb"(?P<rest>(?:/" + _SEGMENT + rb")*)")

    def to_logical(self, data: bytes) -> bytes:
        """The file as stored: this home replaced by the token."""
        if len(self.home) < 2:
            return data
        if self._windows_home is not None:
            return self._windows_home.sub(
                lambda m: HOME_TOKEN + m["rest"].replace(b"\\\\", b"/"), data
            )
        data = data.replace(self.home + b"/", HOME_TOKEN + b"/")
        return data.replace(b'"' + self.home + b'"', b'"' + HOME_TOKEN + b'"')

    def to_local(self, data: bytes) -> bytes:
        """The file as written here: the token replaced by this home."""
        if len(self.home) < 2:
            return data
        if self.windows:
            home = self.home.replace(b"\\", b"\\\\")
            return self._token.sub(lambda m: home + m["rest"].replace(b"/", b"\\\\"), data)
        return data.replace(HOME_TOKEN, self.home)


_PROJECT = re.compile(rb'("project"\s*:\s*")((?:[^"\\]|\\.)*)(")')
_PROJECT_TOKEN = re.compile(r"\$\{CLAUDE_SYNC_PATH:([~@A-Za-z0-9]+)\}")


class HistoryFilter(FileFilter):
    """history.jsonl records each prompt's project directory: Claude Code's per-project
    prompt history (up-arrow) matches it against the current directory, so it is stored with
    the home directory or a mapped directory as a token, like project folders, and written
    back with this machine's."""

    def __init__(self, mapper: PathMapper) -> None:
        self.paths = mapper.places
        self.local = {}
        for directory, logical in reversed(self.paths):  # the longest variant wins
            self.local[logical] = directory

    def to_logical(self, data: bytes) -> bytes:
        """The file as stored: each record's project directory as a token."""
        return _PROJECT.sub(lambda m: m[1] + self._logical(m[2]) + m[3], data)

    def to_local(self, data: bytes) -> bytes:
        """The file as written here: each token back to this machine's directory."""
        out = io.BytesIO()
        self.write_local(data, out)
        return out.getvalue()

    def write_local(self, data: bytes, out: BinaryIO) -> None:
        """to_local, written to out as it is made: a pull of a history of megabytes held
        it, its pieces and the result at once."""
        view = memoryview(data)
        at = 0
        for match in _PROJECT.finditer(data):
            out.write(view[at : match.start(2)])
            out.write(self._local(match[2]))
            at = match.end(2)
        out.write(view[at:])

    def _logical(self, value: bytes) -> bytes:
        # value is a JSON string's text: a Windows folder's backslashes are doubled there.
        # Matched exactly, case and all: Claude Code tells `c:\\x` and `C:\\x` apart, and a
        # prompt written back in another case would leave its project's history.
        text = value.decode("utf-8", "surrogateescape")
        for directory, logical in self.paths:
            whole, base, sep = _as_in_json(directory)
            rest = text[len(base) :]
            if text == whole or (text.startswith(base) and rest.startswith(sep)):
                token = "${CLAUDE_SYNC_PATH:" + logical + "}"
                return (token + rest.replace(sep, "/")).encode("utf-8", "surrogateescape")
        return value

    def _local(self, value: bytes) -> bytes:
        text = value.decode("utf-8", "surrogateescape")
        found = _PROJECT_TOKEN.match(text)
        if found is None or found[1] not in self.local:
            return value  # a folder this machine does not map: left as stored
        _, local, sep = _as_in_json(self.local[found[1]])
        return (local + text[found.end() :].replace("/", sep)).encode("utf-8", "surrogateescape")


def _as_in_json(directory: str) -> tuple[str, str, str]:
    """A folder as a JSON string holds it, that without a trailing separator, and its
    separator there: a Windows folder's separators are backslashes (its forward slashes
    turned, so that `C:/work` and `C:\\work` are one), escaped."""
    if _WINDOWS_PATH.match(directory):
        whole = directory.replace("/", "\\").replace("\\", "\\\\")
        return whole, whole.rstrip("\\"), "\\\\"
    return directory, directory.rstrip("/"), "/"


def read_logical(path: str | Path, file_filter: FileFilter | None) -> bytes:
    """A file's content as it is stored: read here, and made logical by its filter (if it
    has one)."""
    with open(path, "rb") as fh:
        data = fh.read()
    return data if file_filter is None else file_filter.to_logical(data)


def file_filters(home: PurePath | str, mapper: PathMapper) -> dict[str, FileFilter]:
    """The files stored in a machine-independent form, by logical path."""
    filters: dict[str, FileFilter] = {p: HomeFilter(home) for p in HOME_MAPPED}
    filters[HISTORY_PATH] = HistoryFilter(mapper)
    return filters
