"""code_trust: which parts of an agent, skill or command run code. The properties: words
alone never hold a file back; a part that runs code, added or changed anywhere a reader of
the frontmatter could find it, always does; taking code away does not (but in settings)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_sync import code_trust

#: prose: no backtick (shell lines), no `---` (frontmatter ends), no line starting a key
words = st.text(st.sampled_from("abc xyz.,?\n"), max_size=200)
benign_keys = st.sampled_from(["name", "description", "model", "color", "tools", "memory"])
guarded_keys = st.sampled_from(
    [
        *("hooks", "mcpServers", "permissionMode", "allowed-tools", "allowedTools", "shell"),
        "observer",  # an agent's (Claude Code 2.1.332)
        *("lspServers", "monitors", "settings"),  # a SKILL.md's plugin manifest (2.1.197)
    ]
)
values = st.text(st.sampled_from("abcXYZ-_ ()*:"), min_size=1, max_size=30).map(str.strip)
values = values.filter(bool)


def agent(front: dict[str, str], body: str) -> bytes:
    lines = "".join(f"{k}: {json.dumps(v)}\n" for k, v in front.items())
    return f"---\n{lines}---\n{body}".encode()


@pytest.mark.parametrize(
    ("path", "guarded"),
    [
        ("settings.json", True),
        ("agents/x.md", True),
        ("agents/team/x.md", True),
        ("commands/x.md", True),
        ("commands/x.txt", False),
        ("commands/build/run.sh", True),
        ("skills/x/SKILL.md", True),
        ("skills/x/run.sh", True),
        # a skill's every markdown file: one with a plugin manifest brings commands, agents
        ("skills/x/reference.md", True),
        ("skills/x/commands/deploy.md", True),
        ("workflows/triage.js", True),
        ("workflows/lib/steps.mjs", True),
        ("themes/dusk.json", False),
        ("keybindings.json", True),
        ("rules/x.md", False),
        ("CLAUDE.md", False),
        ("output-styles/x.md", False),
        ("projects/-x/s.jsonl", False),
    ],
)
def test_which_files_are_guarded(path, guarded):
    assert code_trust.guards(path) is guarded
    if guarded and path.startswith(("workflows/", "keybindings")):
        assert code_trust.whole(path)  # a script: byte for byte


@given(front=st.dictionaries(benign_keys, values, max_size=4), body=words, other=words)
def test_words_alone_never_hold_a_file_back(front, body, other):
    before = agent(front, body)
    after = agent({k: v + " more" for k, v in front.items()}, other)
    for path in ("agents/x.md", "commands/x.md", "skills/x/SKILL.md"):
        assert code_trust.changed(path, before, after) == {}
        assert code_trust.changed(path, None, after) == {}


@given(
    front=st.dictionaries(benign_keys, values, max_size=3),
    key=guarded_keys,
    value=values,
    body=words,
    quoted=st.booleans(),
)
def test_a_key_that_runs_code_holds_the_file_back(front, key, value, body, quoted):
    before = agent(front, body)
    name = json.dumps(key) if quoted else key
    after = before.replace(b"---\n", f"---\n{name}: {json.dumps(value)}\n".encode(), 1)
    # (as that key, or in a frontmatter guarded whole: `: *` reads like an alias)
    assert code_trust.changed("agents/x.md", before, after).keys() & {key, code_trust.FRONTMATTER}
    # The same key taken away again is no code arriving.
    assert code_trust.changed("agents/x.md", after, before) == {}


@given(body=words, command=values, block=st.booleans())
def test_a_shell_line_holds_a_command_back(body, command, block):
    line = f"```!\n{command}\n```" if block else f"!`{command}`"
    before = agent({"description": "d"}, body)
    after = agent({"description": "d"}, f"{body}\n{line}\n")
    assert code_trust.changed("commands/x.md", before, after) == {
        code_trust.SHELL_LINES: (None, [command])
    }


@pytest.mark.parametrize(
    "front",
    [
        "&anchor\n",
        "{hooks: x}\n",
        "? hooks\n: x\n",
        "<<: *base\n",
        "  indented: first\n",
    ],
)
def test_a_frontmatter_that_is_no_plain_list_of_keys_is_guarded_whole(front):
    data = f"---\n{front}---\nbody\n".encode()
    assert code_trust.FRONTMATTER in code_trust.changed("agents/x.md", None, data)


def test_a_list_at_the_keys_level_belongs_to_its_key():
    data = b"---\nallowed-tools:\n- Bash(git:*)\n- Read\nname: x\n---\n"
    assert code_trust.guarded("commands/x.md", data) == {
        "allowed-tools": ["allowed-tools:", "- Bash(git:*)", "- Read"]
    }


def test_a_script_is_guarded_whole_and_settings_removals_too():
    assert code_trust.changed("skills/x/run.sh", b"a\n", b"a\n") == {}
    assert code_trust.changed("skills/x/run.sh", b"a\n", b"b\n") == {
        code_trust.SCRIPT: (["a", ""], ["b", ""])
    }
    # byte for byte: what is no text is compared (and shown) by its hash
    elf = code_trust.changed("skills/x/tool", b"\x7fELF\x80\x81", b"\x7fELF\xff\xfe")
    assert elf[code_trust.SCRIPT][1][0].startswith("6 bytes, sha256 ")
    assert code_trust.changed("skills/x/run.sh", b"a\x0cb", b"a\nb") != {}
    assert code_trust.changed("skills/x/run.sh", b"a\n", None) == {}
    deny = json.dumps({"permissions": {"deny": ["Bash"]}}).encode()
    assert "permissions" in code_trust.changed("settings.json", deny, b"{}")
    assert "permissions" in code_trust.changed("settings.json", deny, None)


@pytest.mark.parametrize(
    "front",
    [
        'description: x\n"\\x61llowed-tools": Bash\n',  # an escaped key
        "metadata: &h\n  Stop: x\nhooks: *h\n",  # an anchor and its alias
        "name: x\n\thooks: y\n",  # a tab
    ],
)
def test_what_a_line_reading_cannot_follow_is_guarded_whole(front):
    data = f"---\n{front}---\nbody\n".encode()
    assert code_trust.FRONTMATTER in code_trust.guarded("commands/x.md", data)


def test_javascript_white_space_is_white_space():
    """Claude Code's `\\s` is JavaScript's: a byte-order mark after `---` or before `!`
    made a frontmatter and a shell line only Claude Code saw."""
    data = "---\ufeff\nallowed-tools: Bash\n---\nWeather: \ufeff!`touch x`\n".encode()
    assert code_trust.guarded("commands/x.md", data) == {
        "allowed-tools": ["allowed-tools: Bash"],
        code_trust.SHELL_LINES: ["touch x"],
    }


def test_with_a_permission_mode_an_agents_tools_are_guarded_both_ways():
    mode = "permissionMode: bypassPermissions\n"
    before = f"---\ntools: Read\ndisallowedTools: Bash\n{mode}---\n".encode()
    after = f"---\ntools: Read, Bash\n{mode}---\n".encode()
    assert set(code_trust.changed("agents/x.md", before, after)) == {"tools", "disallowedTools"}
    plain = b"---\ntools: Read\n---\n"
    assert code_trust.changed("agents/x.md", plain, b"---\ntools: Read, Bash\n---\n") == {}


def test_a_backtick_in_a_skills_folder_is_part_of_its_code():
    """Claude Code puts the folder before the skill's text, then runs its shell lines."""
    path = "skills/y !`touch x`/SKILL.md"
    assert code_trust.changed(path, None, b"hi\n") == {code_trust.PATH_PART: (None, path)}
    assert code_trust.changed(path, b"hi\n", b"hello\n") == {}


def test_a_skill_run_as_an_agent_is_guarded():
    fork = b"---\nname: y\ncontext: fork\nagent: reviewer\n---\n"
    assert set(code_trust.changed("skills/y/SKILL.md", None, fork)) == {"agent", "context"}


@pytest.mark.parametrize(
    "key",
    # What Claude Code 2.1.332 runs or lets run from settings.json, new since 2.1.197 or
    # missed then (its own list of command keys, the auto mode's rules, the agent the main
    # session runs as).
    [
        "processWrapper",
        "policyHelpers",
        "gcpAuthRefresh",
        "proxyAuthHelper",
        "subagentStatusLine",
        "sshHostCommands",
        "autoMode",
        "useAutoModeDuringPlan",
        "agent",
        "crossSessionInbound",
        "modelProposedGoals",
    ],
)
def test_settings_keys_that_run_code_in_claude_code_2_1_332_are_guarded(key):
    before, after = b'{"model": "x"}', json.dumps({"model": "x", key: "y"}).encode()
    assert set(code_trust.changed("settings.json", before, after)) == {key}


def test_ordinary_settings_keys_are_not_guarded():
    keys = ["model", "theme", "cleanupPeriodDays", "outputStyle", "includeCoAuthoredBy"]
    after = json.dumps(dict.fromkeys(keys, "y")).encode()
    assert code_trust.changed("settings.json", b"{}", after) == {}


def test_a_plugin_manifest_is_read_by_its_own_form():
    """A marketplace named like installed_plugins.json's key ("plugins") is one marketplace
    among others: the others' sources are still read (the form goes by the file)."""
    before = {"plugins": {"source": "x"}, "mkt": {"source": {"repo": "a/b"}}}
    after = {"plugins": {"source": "x"}, "mkt": {"source": {"path": "~/.claude/rules/m"}}}
    changed = code_trust.changed(
        "plugins/known_marketplaces.json", json.dumps(before).encode(), json.dumps(after).encode()
    )
    assert set(changed) == {"mkt source"}
    # installed_plugins.json in another form (its plugins at the top level) is held whole.
    installed = {"version": 2, "plugins": {"foo@m": [{"installPath": "a"}]}}
    other = {"version": 1, "foo@m": {"installPath": "~/.claude/rules/m"}}
    path = "plugins/installed_plugins.json"
    was = json.dumps(installed).encode()
    assert code_trust.changed(path, was, json.dumps(other).encode())
    touched = {"version": 2, "plugins": {"foo@m": [{"installPath": "a", "lastUpdated": "z"}]}}
    assert code_trust.changed(path, was, json.dumps(touched).encode()) == {}
    # Its format number is no code: a new file asks about its plugins' places alone.
    assert set(code_trust.changed(path, None, was)) == {"foo@m installPath"}
    renumbered = json.dumps(installed | {"version": 3}).encode()
    assert code_trust.changed(path, was, renumbered) == {}
    assert code_trust.changed(path, was, json.dumps(installed | {"version": "2"}).encode())
