"""S3, R2 and GCS backends against real servers on 127.0.0.1, through the real CLI."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from conftest import Machine, snapshot_tree
from fault_proxy import FaultProxy
from processes import free_port
from scenarios import populate, synced_view

from claude_sync.errors import ConfigError
from claude_sync.store import ObjectStore, RemoteOptions, normalize_remote, open_store
from claude_sync.store.s3 import S3Store

if TYPE_CHECKING:
    from cloud_servers import Server

# The session fixtures moto_server, seaweed_server and gcs_server (imported only this way, so
# that pytest can rewrite its asserts).
pytest_plugins = ["cloud_servers"]

BACKENDS = ["moto", "seaweed", "r2", "gcs"]


@dataclass
class Cloud:
    """A backend under test: a server plus the URL form used to reach it."""

    name: str
    server: Server

    def remote(self, bucket: str, prefix: str = "") -> str:
        scheme = {"r2": "r2://acct0123/", "gcs": "gs://"}.get(self.name, "s3://")
        return scheme + "/".join(p for p in (bucket, prefix) if p)

    def init(self, m: Machine, bucket: str, prefix: str = "", *extra: str, check: bool = True):
        return m.run(
            "init", self.remote(bucket, prefix), *self.server.init_args(), *extra, check=check
        )

    def machine(self, make_machine: Callable[[str], Machine], name: str) -> Machine:
        m = make_machine(name)
        m.env.update(self.server.env)
        return m


@pytest.fixture(params=BACKENDS)
def cloud(request: pytest.FixtureRequest) -> Cloud:
    # r2:// runs on SeaweedFS: moto insists on a LocationConstraint for CreateBucket signed
    # for a region other than us-east-1, and R2's region is "auto".
    server_fixture = {"moto": "moto_server", "r2": "seaweed_server", "seaweed": "seaweed_server"}
    server = request.getfixturevalue(server_fixture.get(request.param, "gcs_server"))
    return Cloud(request.param, server)


def new_bucket() -> str:
    return "t-" + uuid.uuid4().hex[:16]


def assert_one_error_line(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- the core scenario on every backend -------------------------------------------------------


def test_two_machines_sync_through_the_bucket(cloud: Cloud, make_machine):
    a, b = cloud.machine(make_machine, "a"), cloud.machine(make_machine, "b")
    bucket = new_bucket()
    populate(a)
    cloud.init(a, bucket, "claude", "--create-bucket")  # the bucket does not exist yet
    a.run("push")
    cloud.init(b, bucket, "claude")
    result = b.json("pull")
    assert snapshot_of(b) == synced_view(a)
    assert result["conflicts"] == [] and result["downloaded_bytes"] > 0

    # Nothing changed: the second push writes nothing to the bucket.
    before = cloud.server.objects(bucket)
    assert all(k.startswith("claude/") for k in before) and len(before) > 3
    assert not any(".probe-" in k for k in before)
    again = a.json("push")
    assert again["pushed"] == [] and again["uploaded_bytes"] == 0
    assert cloud.server.objects(bucket) == before

    # A change still travels, and B's pull brings it byte for byte.
    a.write("CLAUDE.md", "Be terse. Really.\n")
    pushed = a.json("push")["pushed"]
    assert "CLAUDE.md" in pushed  # (with agents/link-in.md, a symlink to it)
    assert sorted(b.json("pull")["pulled"]) == sorted(pushed)
    assert snapshot_of(b) == synced_view(a)


def kept_on_moto(
    make_machine, moto_server: Server, endpoint: str | None = None
) -> tuple[Machine, Machine, str]:
    """A machine that pushed to a bucket and one that pulled from it, each keeping its head's
    root (through endpoint, when given); and the bucket."""
    a, b = make_machine("a"), make_machine("b")
    bucket = new_bucket()
    moto_server.make_bucket(bucket)
    for m in (a, b):
        m.env.update(moto_server.env)
    populate(a)
    where = ["--endpoint-url", endpoint or moto_server.endpoint_url or ""]
    a.run("init", f"s3://{bucket}/claude", *where)
    a.run("push")
    b.run("init", f"s3://{bucket}/claude", *where)
    b.run("pull")
    assert "Everything is up to date" in b.run("status").stdout
    return a, b, bucket


def test_a_look_that_finds_nothing_new_lists_twice(make_machine, moto_server: Server):
    """A hook's pull and `status` that find nothing new make two requests (the snapshots and
    the key epochs, listed at once) instead of four: the head's root as last read is kept,
    and stands in for reading it while the storage lists it under the same tag."""
    with FaultProxy(moto_server.endpoint_url or "", seed=0) as proxy:
        a, b, _ = kept_on_moto(make_machine, moto_server, proxy.url)

        def asked(m: Machine, *args: str) -> tuple[str, list[str]]:
            del proxy.seen[:]
            out = m.run(*args).stdout
            return out, list(proxy.seen)

        out, seen = asked(b, "status")
        assert "Everything is up to date" in out
        assert len(seen) == 2 and all("list-type=2" in r for r in seen), seen
        assert len(asked(b, "pull")[1]) == 2
        assert len(asked(a, "status")[1]) == 2  # the head it wrote, kept as written

        # A new head is read as before (its config and root too), and pulled.
        a.write("CLAUDE.md", "Be terse. Really.\n")
        _, seen = asked(a, "push")
        # A push opens the store early and checks the key epochs then, once; its head's
        # root is the one it kept.
        assert sum("epochs%2F" in r for r in seen) == 1, seen
        assert not any(r.startswith("GET") and "/snapshots/" in r for r in seen), seen
        out, seen = asked(b, "pull", "--json")
        assert "CLAUDE.md" in json.loads(out)["pulled"]
        assert len(seen) > 4, seen
        assert len(asked(b, "status")[1]) == 2


def test_an_append_push_lists_the_indexes_once(make_machine, moto_server: Server):
    """A push after an append (what the SessionEnd hook sends after every session) lists
    the indexes once, when its scan streams the new chunks, and reads no prune marks before
    its pack: the transcript's old chunks are those its head lists, stored and safe from
    prune. Its data is then what the other machine pulls."""
    with FaultProxy(moto_server.endpoint_url or "", seed=0) as proxy:
        a, b, _ = kept_on_moto(make_machine, moto_server, proxy.url)
        session = f"projects/-home-u-long/{uuid.uuid4()}.jsonl"
        records = [
            json.dumps({"type": "user", "uuid": str(uuid.uuid4()), "n": i, "text": "x" * 400})
            for i in range(6000)
        ]
        a.write(session, "\n".join(records[:5800]) + "\n")  # ~2.6 MB: several chunks
        a.run("push")
        a.append(session, "\n".join(records[5800:]) + "\n")
        del proxy.seen[:]
        a.run("push")
        seen = list(proxy.seen)
        assert sum("index%2F" in r and "list-type=2" in r for r in seen) == 1, seen
        first_put = next(i for i, r in enumerate(seen) if r.startswith("PUT"))
        assert not any("prune%2F" in r for r in seen[:first_put]), seen
        b.run("pull")
        assert (b.claude / session).read_bytes() == (a.claude / session).read_bytes()


def test_a_head_written_anew_under_its_number_is_read_again(cloud: Cloud, make_machine):
    """The kept root stands in only for the same object: when the storage loses the head and
    another snapshot is written under its number, the tag differs, the new root is read, and
    the fork is seen (a look by name alone would say "up to date")."""
    a, b = cloud.machine(make_machine, "a"), cloud.machine(make_machine, "b")
    bucket = new_bucket()
    populate(a)
    cloud.init(a, bucket, "claude", "--create-bucket")
    a.run("push")
    cloud.init(b, bucket, "claude")
    b.run("pull")
    a.write("CLAUDE.md", "first\n")
    a.run("push")
    b.run("pull")
    assert "Everything is up to date" in b.run("status").stdout

    head = max(k for k in cloud.server.objects(bucket) if k.startswith("claude/snapshots/"))
    delete_object(cloud.server, bucket, head)
    a.write("CLAUDE.md", "second\n")
    a.run("sync", "--allow-rollback")
    assert head in cloud.server.objects(bucket)  # another snapshot, under the same number
    assert_one_error_line(b.run("status", check=False), 1, "does not continue the history")


def test_an_emptied_place_is_no_rollback_for_a_kept_head(make_machine, moto_server: Server):
    """A glance that finds no snapshot at all checks the store as before: the repository
    is gone, which is said as such, and --allow-rollback does not take it for an empty one."""
    _, b, bucket = kept_on_moto(make_machine, moto_server)
    for key in moto_server.objects(bucket):
        delete_object(moto_server, bucket, key)
    assert_one_error_line(b.run("status", check=False), 2, "holds no claude-sync repository")
    assert_one_error_line(b.run("sync", "--allow-rollback", check=False), 2, "holds no")
    assert not (b.config_dir / "history-alarm").exists()


def test_ctrl_c_while_a_look_waits_on_the_server(make_machine, moto_server: Server):
    """Both listings of a glance wait on a server that never answers: Ctrl-C ends the
    command at once, not after the other listing's timeouts and retries."""
    _, b, _ = kept_on_moto(make_machine, moto_server)
    stalled = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(
        target=lambda: held.extend(stalled.accept() for _ in range(8)), daemon=True
    ).start()
    settings = b.config_dir / "config.json"
    body = json.loads(settings.read_text())
    body["endpoint_url"] = f"http://127.0.0.1:{stalled.getsockname()[1]}"
    settings.write_text(json.dumps(body))
    proc = b.start("status")
    try:
        time.sleep(3)
        assert proc.poll() is None and held  # asking, and waiting
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert time.monotonic() - began < 5
        assert err.strip() == "error: interrupted", err
    finally:
        proc.kill()
        stalled.close()


def delete_object(server: Server, bucket: str, key: str) -> None:
    if server.kind == "s3":
        server.s3().delete_object(Bucket=bucket, Key=key)
    else:
        server.gcs().bucket(bucket).blob(key).delete()


def snapshot_of(m: Machine) -> dict[str, tuple[bytes, int]]:
    return snapshot_tree(m.claude)


def test_two_repositories_share_a_bucket_under_prefixes(cloud: Cloud, make_machine):
    a, b, c = (cloud.machine(make_machine, n) for n in "abc")
    bucket = new_bucket()
    cloud.server.make_bucket(bucket)
    a.write("CLAUDE.md", "repository one\n")
    c.write("CLAUDE.md", "repository two\n")
    cloud.init(a, bucket, "team/one")
    a.run("push")
    # "team/one" is taken, but "team/two" beside it is an empty place of its own.
    cloud.init(c, bucket, "team/two")
    c.run("push")
    cloud.init(b, bucket, "team/one")
    b.run("pull")
    assert (b.claude / "CLAUDE.md").read_text() == "repository one\n"
    keys = cloud.server.objects(bucket)
    assert {k.split("/")[1] for k in keys} == {"one", "two"}
    assert all(k.startswith("team/") for k in keys)


# -- create-only writes -----------------------------------------------------------------------


def test_put_if_absent_has_exactly_one_winner(cloud: Cloud, monkeypatch):
    for name, value in cloud.server.env.items():
        monkeypatch.setenv(name, value)
    store = open_store(
        cloud.remote(new_bucket(), "race"),
        RemoteOptions(endpoint_url=cloud.server.endpoint_url, create_bucket=True, transfers=16),
    )
    try:
        store.prepare(create=True)
        assert store.list("") == []  # the probe of prepare() left nothing behind
        for round_ in range(3):
            name = f"snapshots/{round_:010d}"
            results = contend(store, name, writers=12)
            winners = [i for i, won in results.items() if won]
            assert len(results) == 12 and len(winners) == 1, results
            assert store.get(name) == f"writer {winners[0]}".encode()
        assert sorted(store.list("snapshots/")) == [f"snapshots/{i:010d}" for i in range(3)]
        after_first = store.list("snapshots/", start_after="snapshots/0000000000")
        assert sorted(after_first) == ["snapshots/0000000001", "snapshots/0000000002"]
        store.delete("snapshots/0000000000")
        store.delete("snapshots/0000000000")  # deleting a missing object is fine
        assert len(store.list("")) == 2
    finally:
        store.close()


def contend(store: ObjectStore, name: str, writers: int) -> dict[int, bool]:
    """Many threads write different bytes under one name at the same moment."""
    results: dict[int, bool] = {}
    barrier = threading.Barrier(writers)

    def write(i: int) -> None:
        barrier.wait()
        results[i] = store.put_if_absent(name, f"writer {i}".encode())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_list_pages_through_many_objects(moto_server: Server, monkeypatch):
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    bucket = new_bucket()
    moto_server.make_bucket(bucket)
    # Written into the server's own memory (it runs in this process): 1,106 requests took
    # ~25 s of the suite; the listing, which is what is tested, goes over HTTP.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for i in range(1105):  # more than one page of 1000
        backend.put_object(bucket, f"p/index/{i:05d}", b"x")
    backend.put_object(bucket, "p2/index/elsewhere", b"x")
    store = open_store(f"s3://{bucket}/p", RemoteOptions(endpoint_url=moto_server.endpoint_url))
    names = store.list("index/")
    assert len(names) == 1105 and names[0].startswith("index/")
    assert store.list("nothing-here/") == []


def test_a_server_ignoring_conditional_writes_is_refused(moto_server: Server, monkeypatch):
    """No server here ignores If-None-Match, so the check is shown with the put made blind."""
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    bucket = new_bucket()
    moto_server.make_bucket(bucket)
    store = open_store(f"s3://{bucket}/x", RemoteOptions(endpoint_url=moto_server.endpoint_url))
    assert isinstance(store, S3Store)

    def blind_put(name: str, data: bytes) -> bool:
        store._client.put_object(Bucket=bucket, Key=store._key(name), Body=data)
        return True

    monkeypatch.setattr(store, "put_if_absent", blind_put)
    with pytest.raises(ConfigError, match="overwrite each other's snapshots"):
        store.prepare(create=False)
    assert moto_server.objects(bucket) == {}  # the probe was deleted


# -- errors, through the CLI ------------------------------------------------------------------


def test_missing_bucket_needs_create_bucket(cloud: Cloud, make_machine):
    a = cloud.machine(make_machine, "a")
    bucket = new_bucket()
    proc = cloud.init(a, bucket, check=False)
    assert_one_error_line(proc, 2, bucket, "does not exist", "--create-bucket")
    assert not a.config_dir.joinpath("settings.json").exists()
    cloud.init(a, bucket, "", "--create-bucket")  # and with the flag it works
    a.run("push")
    # `--create` (creating a repository is deliberate) also makes a missing bucket.
    b = cloud.machine(make_machine, "b")
    other = new_bucket()
    cloud.init(b, other, "claude", "--create")
    b.run("push")


def test_unreachable_endpoint_fails_fast(make_machine, moto_server: Server):
    a = make_machine("a")
    a.env.update(moto_server.env)
    port = free_port()  # nothing listens there
    for remote in ("s3://bucket-x/p", "r2://acct/bucket-x"):
        started = time.monotonic()
        proc = a.run("init", remote, "--endpoint-url", f"http://127.0.0.1:{port}", check=False)
        elapsed = time.monotonic() - started
        assert_one_error_line(proc, 1, "cannot reach", f"127.0.0.1:{port}")
        assert elapsed < 15, elapsed


def test_malformed_endpoint_is_a_usage_error(make_machine, moto_server: Server):
    a = make_machine("a")
    a.env.update(moto_server.env)
    proc = a.run("init", "s3://bucket-x", "--endpoint-url", "not a url", check=False)
    assert_one_error_line(proc, 2, "not a usable endpoint URL")


def test_unreachable_gcs_endpoint_fails_fast(make_machine):
    a = make_machine("a")
    a.env["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    proc = a.run("init", "gs://bucket-x/p", check=False)
    elapsed = time.monotonic() - started
    assert_one_error_line(proc, 1, "cannot reach")
    assert elapsed < 15, elapsed


def test_wrong_secret_is_a_credentials_error(make_machine, seaweed_server: Server):
    a = make_machine("a")
    a.env.update(seaweed_server.env, AWS_SECRET_ACCESS_KEY="not-the-secret")
    proc = a.run("init", "s3://any-bucket", *seaweed_server.init_args(), check=False)
    line = assert_one_error_line(proc, 2, "wrong secret access key")
    assert "not-the-secret" not in proc.stderr + proc.stdout + line


def test_unknown_access_key_is_a_credentials_error(make_machine, seaweed_server: Server):
    a = make_machine("a")
    a.env.update(seaweed_server.env, AWS_ACCESS_KEY_ID="AKIAUNKNOWNUNKNOWN")
    proc = a.run("init", "s3://any-bucket", *seaweed_server.init_args(), check=False)
    assert_one_error_line(proc, 2, "access key id")


def test_read_only_credentials_are_denied(make_machine, seaweed_server: Server):
    bucket = new_bucket()
    seaweed_server.make_bucket(bucket)
    a = make_machine("a")
    a.env.update(seaweed_server.env, **seaweed_server.notes["reader"])
    proc = a.run("init", f"s3://{bucket}/p", *seaweed_server.init_args(), check=False)
    assert_one_error_line(proc, 1, "access denied", bucket)
    assert seaweed_server.objects(bucket) == {}


def test_no_credentials_found(make_machine, moto_server: Server):
    a = make_machine("a")
    a.env.update(
        moto_server.env,
        AWS_ACCESS_KEY_ID="",
        AWS_SECRET_ACCESS_KEY="",
        AWS_SHARED_CREDENTIALS_FILE=str(a.home / "none"),
        AWS_CONFIG_FILE=str(a.home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    proc = a.run("init", "s3://any-bucket", *moto_server.init_args(), check=False)
    assert_one_error_line(proc, 2, "no AWS credentials found")
    proc = a.run("init", "r2://acct/any-bucket", *moto_server.init_args(), check=False)
    assert_one_error_line(proc, 2, "no credentials found for R2")


def test_an_unknown_aws_profile_is_one_line(make_machine, moto_server: Server):
    a = make_machine("a")
    a.env.update(moto_server.env, AWS_PROFILE="no-such-profile")
    a.env.update(
        AWS_CONFIG_FILE=str(a.home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(a.home / "none")
    )
    proc = a.run("init", "s3://any-bucket", *moto_server.init_args(), check=False)
    assert_one_error_line(proc, 2, "no-such-profile")


def test_a_profile_that_assumes_a_role_works(make_machine, moto_server: Server):
    """Credentials the SDK resolves lazily, after the client is made: an STS call first."""
    a = make_machine("a")
    config = a.home / "aws-config"
    config.write_text(
        "[profile base]\n"
        "aws_access_key_id = moto-key\n"
        "aws_secret_access_key = moto-secret\n"
        "[profile syncer]\n"
        "role_arn = arn:aws:iam::123456789012:role/syncer\n"
        "source_profile = base\n"
    )
    a.env.update(moto_server.env, AWS_PROFILE="syncer", AWS_CONFIG_FILE=str(config))
    a.env.update(AWS_ENDPOINT_URL_STS=moto_server.endpoint_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        a.env.pop(name, None)
    bucket = f"role-{uuid.uuid4().hex[:8]}"
    a.run("init", f"s3://{bucket}", *moto_server.init_args(), "--create")
    populate(a)
    a.run("push")
    assert any(name.startswith("snapshots/") for name in moto_server.objects(bucket))


def test_no_google_credentials_found(make_machine):
    a = make_machine("a")
    a.env.update(CLOUDSDK_CONFIG=str(a.home / "gcloud"), NO_GCE_CHECK="True")
    proc = a.run("init", "gs://any-bucket", check=False)
    assert_one_error_line(proc, 2, "no Google Cloud credentials found")


def test_wrong_region_message_names_the_region(moto_server: Server, monkeypatch):
    """moto answers any region, so the mapping is shown on the error S3 itself sends."""
    for name, value in moto_server.env.items():
        monkeypatch.setenv(name, value)
    store = open_store("s3://eu-bucket", RemoteOptions(endpoint_url=moto_server.endpoint_url))
    assert isinstance(store, S3Store)
    error = ClientError(
        {
            "Error": {
                "Code": "AuthorizationHeaderMalformed",
                "Message": "the region 'us-east-1' is wrong; expecting 'eu-west-1'",
                "Region": "eu-west-1",
            }
        },
        "ListObjectsV2",
    )
    message = str(store._error(error, "list"))
    assert "eu-west-1" in message and "AWS_REGION" in message
    redirect = ClientError(
        {
            "Error": {"Code": "PermanentRedirect", "Message": "use the right endpoint"},
            "ResponseMetadata": {"HTTPHeaders": {"x-amz-bucket-region": "ap-south-1"}},
        },
        "GetObject",
    )
    assert "ap-south-1" in str(store._error(redirect, "read from"))


def test_an_existing_repository_elsewhere_in_the_bucket_is_not_taken_over(
    cloud: Cloud, make_machine
):
    a, b = cloud.machine(make_machine, "a"), cloud.machine(make_machine, "b")
    bucket = new_bucket()
    cloud.server.make_bucket(bucket)
    cloud.init(a, bucket, "team/one")
    # The bucket root is not empty (team/one lives there): init refuses it.
    proc = cloud.init(b, bucket, check=False)
    assert_one_error_line(proc, 2, "not empty")


# -- remote URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "canonical"),
    [
        ("s3://my-bucket", "s3://my-bucket"),
        ("s3://my-bucket/", "s3://my-bucket"),
        ("s3://my-bucket/a/b/", "s3://my-bucket/a/b"),
        ("r2://0123abcd/my-bucket/claude", "r2://0123abcd/my-bucket/claude"),
        ("gs://my_bucket/x", "gs://my_bucket/x"),
    ],
)
def test_remote_urls_are_canonical(remote: str, canonical: str):
    assert normalize_remote(remote) == canonical


@pytest.mark.parametrize(
    "remote",
    [
        "s3://",
        "s3:///prefix",
        "s3://bucket//prefix",
        "s3://Bucket",
        "s3://b",
        "s3://bucket/../x",
        "s3://bucket?x=1",
        "r2://acct",
        "r2://acct/",
        "r2:///bucket",
        "gs://",
        "gs://bucket//x",
    ],
)
def test_bad_remote_urls_are_refused(remote: str):
    with pytest.raises(ConfigError):
        normalize_remote(remote)


def test_a_push_with_nothing_to_do_on_s3_loads_no_sdk(make_machine, moto_server: Server):
    """A push with nothing to send makes no request, and imports no cloud SDK either
    (boto3 took 0.1 s and 13 MiB of such a push, run by a hook after every session)."""
    a = make_machine("a")
    a.env.update(moto_server.env)
    bucket = new_bucket()
    moto_server.make_bucket(bucket)
    a.write("agents/x.md", "x\n")
    a.run("init", f"s3://{bucket}", *moto_server.init_args())
    a.run("push")
    loaded = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'boto3', 'botocore'}), file=sys.stderr))\n"
    )
    proc = a.run_after(loaded, "push")
    assert (proc.returncode, proc.stderr) == (0, "[]\n")
    assert "Everything is up to date" in a.run("status").stdout
