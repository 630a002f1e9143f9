"""The `key` commands: add, list, passwd, remove, export. `key remove` and `key passwd`
revoke: a new key epoch that the old key, its machine's cached keys and a restored copy of
its key object cannot open."""

from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Machine
from git_servers import git, git_server
from scenarios import populate

from claude_sync import config, crypto
from claude_sync.errors import RevokedError, SyncError
from claude_sync.repository import (
    EPOCH_FORMAT,
    REPO_FORMAT,
    Repository,
    Snapshot,
    snapshot_name,
)
from claude_sync.store import RemoteOptions, open_store
from claude_sync.store.folder import FolderStore

if TYPE_CHECKING:
    from cloud_servers import Server

# The session fixture moto_server (a real S3 endpoint on 127.0.0.1).
pytest_plugins = ["cloud_servers"]
LAPTOP_PASSPHRASE = "the laptop's own passphrase"


def held_keys(m: Machine) -> crypto.KeyRing:
    """Everything the machine keeps in its config folder: master key, identity, epochs."""
    settings = config.load_settings(m.config_dir)
    master = config.load_master_key(m.config_dir, settings.repo_id)
    return crypto.KeyRing.from_held(master, config.load_held_keys(m.config_dir))


def key_id_labelled(m: Machine, label: str) -> str:
    listing = m.run("key", "list").stdout
    return next(line.split()[0] for line in listing.splitlines() if label in line)


def objects(repo_dir: Path) -> set[str]:
    return {p.relative_to(repo_dir).as_posix() for p in repo_dir.rglob("*") if p.is_file()}


def readable_by(keys: crypto.KeyRing, repo_dir: Path, name: str) -> bool:
    """Whether these keys open a sealed object (for packs: their header)."""
    data = (repo_dir / name).read_bytes()
    try:
        if name.startswith("data/"):
            (size,) = struct.unpack("<I", data[-4:])
            keys.open("pack-header", data[-4 - size : -4])
        else:
            keys.open(name, data)
    except SyncError:
        return False
    return True


def forge_snapshot(keys: crypto.KeyRing, repo_dir: Path, repo_config: object) -> int:
    """What a removed machine running a hostile client can still do with its cached keys:
    continue the chain (a parent's id is the hash of its stored bytes) with a snapshot that
    deletes every file, sealed under the epoch it knew."""
    store = FolderStore(repo_dir)
    repo = Repository(store, keys, Repository.deferred(lambda: store, keys, repo_config).config)
    head = repo.snapshot_seqs()[-1]
    head_id = hashlib.sha256((repo_dir / snapshot_name(head)).read_bytes()).hexdigest()
    forged = Snapshot(head + 1, head, "laptop", time.time(), {}, parent_id=head_id)
    assert repo.write_snapshot(forged)
    return head + 1


@pytest.fixture
def three(make_machine, repo_dir):
    """a and b joined with the first passphrase, the laptop with a key of its own."""
    a, b, laptop = make_machine("a"), make_machine("b"), make_machine("laptop")
    populate(a)
    a.run("init", str(repo_dir))
    a.run("push")
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = LAPTOP_PASSPHRASE
    a.run("key", "add", "--label", "laptop")
    b.run("init", str(repo_dir))
    b.run("pull")
    laptop.run("init", str(repo_dir), passphrase=LAPTOP_PASSPHRASE)
    laptop.run("pull", passphrase=None)
    return a, b, laptop


def test_removed_key_reads_nothing_new_and_its_pushes_are_refused(three, repo_dir, make_machine):
    a, b, laptop = three
    laptop_id = key_id_labelled(a, "laptop")
    stolen_key_object = (repo_dir / "keys" / laptop_id).read_bytes()
    before = objects(repo_dir)

    removed = a.run("key", "remove", laptop_id, passphrase=None)
    assert "new key epoch" in removed.stdout
    a.write("agents/secret.md", "written after the laptop was stolen\n")
    a.run("push", passphrase=None)

    # The remaining machines follow without their passphrases.
    b.run("pull", passphrase=None)
    assert (b.claude / "agents/secret.md").read_text() == "written after the laptop was stolen\n"
    b.write("agents/from-b.md", "b still pushes\n")
    b.run("push", passphrase=None)
    a.run("pull", passphrase=None)
    assert (a.claude / "agents/from-b.md").read_text() == "b still pushes\n"

    # The laptop, cached key and all, reads none of it: not through the CLI...
    pulled = laptop.run("pull", passphrase=None, check=False)
    assert pulled.returncode != 0
    assert pulled.stderr.startswith("error:") and "no longer opens" in pulled.stderr
    assert "Traceback" not in pulled.stderr
    assert not (laptop.claude / "agents/secret.md").exists()
    # ...nor by opening the new objects with everything its config folder holds.
    stolen = held_keys(laptop)
    new = sorted(
        n
        for n in objects(repo_dir) - before
        if n.startswith(("snapshots/", "index/", "manifest/", "data/"))
    )
    assert any(n.startswith("data/") for n in new) and any(n.startswith("snapshots/") for n in new)
    assert not [n for n in new if readable_by(stolen, repo_dir, n)]
    # What it could read before stays readable to it (said in SECURITY.md).
    assert all(readable_by(stolen, repo_dir, n) for n in before if n.startswith("snapshots/"))

    # Its pushes: the CLI refuses to push, and a hostile client's snapshot, chained onto
    # the head with the keys it still holds, is refused by the others.
    laptop.write("agents/evil.md", "from the stolen laptop\n")
    pushed = laptop.run("push", passphrase=None, check=False)
    assert pushed.returncode != 0 and "no longer opens" in pushed.stderr
    repo_config = config.load_repo_config(laptop.config_dir)
    seq = forge_snapshot(stolen, repo_dir, repo_config)
    for m in (a, b):
        refused = m.run("pull", passphrase=None, check=False)
        assert refused.returncode != 0, refused.stdout
        assert refused.stderr.startswith("error:")
        assert f"snapshot {seq} is sealed under key epoch 0" in refused.stderr
        assert "key was removed" in refused.stderr
        assert (m.claude / "agents/secret.md").exists()  # nothing was deleted

    # The storage (or a Git history) brings the removed key object back: it opens the
    # master key, but not the new epoch.
    # As the error says, repair removes the forged snapshot.
    repaired = a.run("repair", "--forget-damaged", passphrase=None)
    assert f"Removed damaged snapshots {seq}" in repaired.stdout
    assert not (repo_dir / snapshot_name(seq)).exists()
    (repo_dir / "keys" / laptop_id).write_bytes(stolen_key_object)
    thief = make_machine("thief")
    joined = thief.run("init", str(repo_dir), passphrase=LAPTOP_PASSPHRASE, check=False)
    assert joined.returncode != 0 and "no longer opens" in joined.stderr
    assert not (thief.config_dir / "key").exists()
    rejoined = laptop.run(
        "init", str(repo_dir), "--force", passphrase=LAPTOP_PASSPHRASE, check=False
    )
    assert rejoined.returncode != 0 and "no longer opens" in rejoined.stderr
    # The others keep working with the restored object lying there.
    b.run("pull", passphrase=None)
    a.run("status", passphrase=None)


def test_key_passwd_cannot_be_undone_by_restoring_the_old_key_object(three, repo_dir):
    a, b, laptop = three
    keys_before = {p.name: p.read_bytes() for p in (repo_dir / "keys").iterdir()}
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = "a brand new passphrase"
    changed = a.run("key", "passwd")
    assert "Passphrase changed" in changed.stdout
    a.write("agents/after-passwd.md", "new\n")
    a.run("push", passphrase=None)
    # The old passphrase's key object comes back from the storage: it opens no new data.
    for name, data in keys_before.items():
        (repo_dir / "keys" / name).write_bytes(data)
    b_again = b.run("pull", passphrase=None, check=False)
    assert b_again.returncode != 0 and "init --force" in b_again.stderr
    old = b.run("init", str(repo_dir), "--force", check=False)
    assert old.returncode != 0 and "no longer opens" in old.stderr
    # The new passphrase joins, by the hint's own command (no REMOTE: this machine's, not a
    # new repository in the default folder); the laptop's own key was untouched and follows.
    joined = b.run("init", "--force", passphrase="a brand new passphrase")
    assert "Joined" in joined.stdout and "Created" not in joined.stdout, joined.stdout
    assert str(repo_dir) in b.run("status").stdout
    b.run("pull", passphrase=None)
    assert (b.claude / "agents/after-passwd.md").read_text() == "new\n"
    laptop.run("pull", passphrase=None)
    assert (laptop.claude / "agents/after-passwd.md").exists()


def test_recovery_key_follows_epochs_and_can_be_revoked(three, repo_dir, make_machine):
    a, b, _ = three
    recovery = a.run("key", "export", passphrase=None).stdout.strip()
    assert recovery.startswith("csr2-")
    a.run("key", "remove", key_id_labelled(a, "laptop"), passphrase=None)
    a.write("agents/later.md", "later\n")
    a.run("push", passphrase=None)
    # A csr1 key (the master key: before 0.4, or a passphrase-less repository) says why not.
    old_style = crypto.recovery_key(held_keys(a).master, crypto.RECOVERY_PREFIX)
    proc = make_machine("old").run(
        "init", str(repo_dir), "--recovery-key", old_style, passphrase=None, check=False
    )
    assert proc.returncode != 0 and "predates the repository's key epochs" in proc.stderr
    rescuer = make_machine("rescuer")
    rescuer.run("init", str(repo_dir), "--recovery-key", recovery, passphrase=None)
    rescuer.run("pull", passphrase=None)
    assert (rescuer.claude / "agents/later.md").read_text() == "later\n"
    # A recovery key is a key like the others: removing it revokes it.
    a.run("key", "remove", key_id_labelled(a, "recovery key"), passphrase=None)
    late = make_machine("late")
    proc = late.run("init", str(repo_dir), "--recovery-key", recovery, passphrase=None, check=False)
    assert proc.returncode != 0 and proc.stderr.startswith("error:")
    assert rescuer.run("pull", passphrase=None, check=False).returncode != 0
    b.run("pull", passphrase=None)


def test_keys_older_than_epochs_are_reported_and_cut_off(three, repo_dir):
    """A repository made before key epochs: key objects without an identity. It works as
    before until the first `key remove`, which warns about the keys it cannot carry over."""
    a, b, laptop = three
    for path in (repo_dir / "keys").iterdir():
        obj = json.loads(path.read_bytes())
        for field in ("identity", "recipient", "grant", "check"):
            obj.pop(field, None)
        path.write_text(json.dumps(obj))
    for m in (a, b, laptop):  # key files of claude-sync before key epochs
        body = json.loads((m.config_dir / "key").read_text())
        body.pop("held")
        (m.config_dir / "key").write_text(json.dumps(body))
    b.write("agents/legacy.md", "still works\n")
    b.run("push", passphrase=None)
    a.run("pull", passphrase=None)
    laptop_id = key_id_labelled(a, "laptop")
    # No remaining key could receive an epoch: refused, and nothing changed.
    refused = a.run("key", "remove", laptop_id, passphrase=None, check=False)
    assert refused.returncode != 0 and "claude-sync key add" in refused.stderr
    assert Repository.open(FolderStore(repo_dir), held_keys(a)).config.version == REPO_FORMAT
    assert laptop_id in a.run("key", "list", passphrase=None).stdout
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = "a key with an identity"
    a.run("key", "add", "--label", "new")
    removed = a.run("key", "remove", laptop_id, passphrase=None)
    assert "warning: key" in removed.stderr and "cannot receive" in removed.stderr
    # claude-sync before key epochs cannot open what is sealed now: the config says so.
    assert Repository.open(FolderStore(repo_dir), held_keys(a)).config.version >= EPOCH_FORMAT
    # a started the epoch and keeps it; b, whose key file holds no identity, must rejoin.
    a.run("pull", passphrase=None)
    assert b.run("pull", passphrase=None, check=False).returncode != 0
    b.run("init", str(repo_dir), "--force", passphrase="a key with an identity")
    b.run("pull", passphrase=None)
    assert (b.claude / "agents/legacy.md").exists()


def test_revocation_on_s3(moto_server: Server, make_machine):
    remote = f"s3://t-{uuid.uuid4().hex[:16]}/claude"
    a, b, laptop = (make_machine(n) for n in ("a", "b", "laptop"))
    for m in (a, b, laptop):
        m.env.update(moto_server.env)
    populate(a)
    a.run("init", remote, *moto_server.init_args(), "--create-bucket")
    a.run("push")
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = LAPTOP_PASSPHRASE
    a.run("key", "add", "--label", "laptop")
    b.run("init", remote, *moto_server.init_args())
    laptop.run("init", remote, *moto_server.init_args(), passphrase=LAPTOP_PASSPHRASE)
    laptop.run("pull", passphrase=None)
    b.run("pull", passphrase=None)
    a.run("key", "remove", key_id_labelled(a, "laptop"), passphrase=None)
    # Nothing new pushed yet: a look that keeps the head it read last still lists the key
    # epochs, so the laptop learns at once, and b takes up the new epoch.
    told = laptop.run("status", passphrase=None, check=False)
    assert told.returncode != 0 and "no longer opens" in told.stderr
    assert "Everything is up to date" in b.run("status", passphrase=None).stdout
    assert set(held_keys(b).epoch_keys) == {1}
    a.write("agents/secret.md", "after the removal\n")
    a.run("push", passphrase=None)
    b.run("pull", passphrase=None)
    assert (b.claude / "agents/secret.md").read_text() == "after the removal\n"
    refused = laptop.run("pull", passphrase=None, check=False)
    assert refused.returncode != 0 and "no longer opens" in refused.stderr
    assert not (laptop.claude / "agents/secret.md").exists()


def test_git_history_keeps_the_removed_key_object_but_not_the_new_epoch(make_machine, tmp_path):
    """The Git caveat (SECURITY.md): history keeps the removed key object, and with its
    passphrase it still opens the master key, but not the epoch that removed it."""
    with git_server("file", tmp_path) as srv:
        a, laptop = make_machine("a"), make_machine("laptop")
        for m in (a, laptop):
            m.env.update(srv.env)
        remote = srv.create("sync.git")
        populate(a)
        a.run("init", remote)
        a.run("push")
        a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = LAPTOP_PASSPHRASE
        a.run("key", "add", "--label", "laptop")
        laptop.run("init", remote, passphrase=LAPTOP_PASSPHRASE)
        laptop_id = key_id_labelled(a, "laptop")
        a.run("key", "remove", laptop_id, passphrase=None)
        a.write("agents/secret.md", "after the removal\n")
        a.run("push", passphrase=None)
        bare = srv.path("sync.git")
        name = f"keys/{laptop_id}"
        current = git("--git-dir", bare, "ls-tree", "-r", "--name-only", "main", "keys")
        assert laptop_id not in current  # removed from the tree, but not from history:
        added = git("--git-dir", bare, "log", "--format=%H", "main", "--", name).split()[-1]
        from_history = json.loads(git("--git-dir", bare, "show", f"{added}:{name}"))
        master, identity = crypto.unwrap_master(from_history, LAPTOP_PASSPHRASE, name)
        assert identity is not None
        store = open_store(remote, RemoteOptions(cache_dir=tmp_path / "thief-cache"))
        try:
            with pytest.raises(RevokedError):
                Repository.open(store, crypto.KeyRing(master, identity=(name, identity)))
        finally:
            store.close()
        assert laptop.run("pull", passphrase=None, check=False).returncode != 0


def test_removing_the_key_this_machine_joined_with_needs_force(make_machine, repo_dir):
    """Every machine that joined with a passphrase is cut off with its key: not by accident."""
    a = make_machine("a")
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir), "--device", "laptop")
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = "another passphrase entirely"
    a.run("key", "add", "--label", "spare")
    own = key_id_labelled(a, "laptop")
    refused = a.run("key", "remove", own, passphrase=None, check=False)
    assert refused.returncode == 2 and "--force" in refused.stderr, refused.stderr
    assert own in a.run("key", "list", passphrase=None).stdout
    a.run("key", "remove", own, "--force", passphrase=None)
    assert own not in a.run("key", "list", passphrase=None).stdout


def test_key_add_list_passwd_remove(make_machine, repo_dir):
    a, c = make_machine("a"), make_machine("c")
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir), "--device", "laptop")
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = "second passphrase"
    a.run("key", "add", "--label", "colleague")
    listing = a.run("key", "list").stdout
    assert "laptop" in listing and "colleague" in listing
    assert "colleague" not in "".join(p.read_text() for p in (repo_dir / "keys").iterdir())
    c.run("init", str(repo_dir), passphrase="second passphrase")
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = "third passphrase"
    a.run("key", "passwd")
    d = make_machine("d")
    assert d.run("init", str(repo_dir), check=False).returncode == 1  # the old one is gone
    d.run("init", str(repo_dir), passphrase="third passphrase")
    ids = [line.split()[0] for line in a.run("key", "list").stdout.splitlines()[1:]]
    assert len(ids) == 2
    a.run("key", "remove", ids[0], "--force")  # which of them is a's own does not matter here
    last = a.run("key", "remove", ids[1], "--force", check=False)
    assert last.returncode == 2 and "last key" in last.stderr
    wrong = a.run("key", "passwd", check=False, passphrase="not it")
    assert wrong.returncode == 1


def test_verify_names_a_key_object_damaged_or_changed_in_the_storage(make_machine, repo_dir):
    """A flipped byte in a key object went unnoticed until someone tried its passphrase
    (and was told it was wrong); a key's creation time, which `key list` shows to tell
    keys apart, could be changed by the storage. Both are now caught by its check."""
    a = make_machine("a")
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir), "--device", "laptop")
    a.env["CLAUDE_SYNC_NEW_PASSPHRASE"] = "second passphrase"
    a.run("key", "add", "--label", "colleague")
    assert "No problems found" in a.run("verify").stdout
    spare = key_id_labelled(a, "colleague")
    path = repo_dir / "keys" / spare
    obj = json.loads(path.read_text())
    obj["created"] -= 30 * 86400
    path.write_text(json.dumps(obj, sort_keys=True))
    proc = a.run("verify", check=False)
    assert proc.returncode == 1 and f"key {spare} is damaged" in proc.stderr
    assert f"key remove {spare}" in proc.stderr
    assert "(damaged key object)" in a.run("key", "list").stdout
    a.run("key", "remove", spare)
    assert "No problems found" in a.run("verify").stdout
