"""Property: whatever keys are added and removed, in any order, exactly the keys present
open the current key epoch; a removed key, even with its key object restored and every key
it ever held, opens nothing sealed after its removal; and a key object its machine plants
afterwards never receives an epoch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync import crypto
from claude_sync.errors import RevokedError
from claude_sync.repository import KEYS_PREFIX, Repository

#: ("add",) or ("remove", which of the present keys)
OPS = st.lists(
    st.one_of(st.just(("add", 0)), st.tuples(st.just("remove"), st.integers(0, 10))),
    max_size=8,
)


@settings(max_examples=40, deadline=None, print_blob=True)
@given(OPS)
def test_only_present_keys_open_the_current_epoch(ops: list[tuple[str, int]]) -> None:
    store = MemoryStore()
    admin = Repository.create(store, None)
    # Recovery keys are key objects like passphrase keys, without Argon2's cost.
    present = [admin.add_recovery_key(), admin.add_recovery_key()]
    removed: list[tuple[str, str, bytes, crypto.KeyRing]] = []
    planted: list[str] = []
    for op, index in ops:
        if op == "add":
            present.append(admin.add_recovery_key())
        elif len(present) > 1:
            text = present.pop(index % len(present))
            name = KEYS_PREFIX + crypto.recovery_key_name(crypto.parse_recovery_key(text)[1])
            held = Repository.recover(store, text).keys  # what its machine holds
            stolen = store.get(name)
            admin.remove_key(name[len(KEYS_PREFIX) :])
            removed.append((text, name, stolen, held))
            # Its machine plants a key object of its own, vouched for with what it holds.
            planted.append(Repository(store, held, admin.config).add_recovery_key())
        sealed = admin.keys.seal("snapshots/0000000001", b"written now")
        for text in present:
            assert Repository.recover(store, text).keys.open("snapshots/0000000001", sealed)
        for text, name, stolen, held in removed:
            try:
                held.open("snapshots/0000000001", sealed)
                raise AssertionError(f"removed key {name} opened a new object")
            except RevokedError:
                pass
            store.objects[name] = stolen  # the storage brings it back
            try:
                Repository.recover(store, text)
                raise AssertionError(f"restored key object {name} opened the current epoch")
            except RevokedError:
                pass
            del store.objects[name]
        for text in planted:
            try:
                Repository.recover(store, text)
                raise AssertionError("a key planted by a removed machine opened the epoch")
            except RevokedError:
                pass
