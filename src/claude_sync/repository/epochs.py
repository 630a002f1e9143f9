"""Key epochs: removing a key (or changing a passphrase) starts a data key the old key
cannot open (docs/FORMAT.md §2, "Key epochs").

Each epoch's data key is random and sealed to the X25519 public key of every key object that
stays, so the machines that joined with those keys follow without their passphrases. An epoch
object is authenticated under the previous epoch's key (the master key for the first), which
a removed key never learns: it can neither read nor forge what comes after its removal. A
holder of an epoch's key finds every earlier one in it, so old data stays readable.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from claude_sync import crypto
from claude_sync.errors import ConfigError, CorruptionError, RevokedError, SyncError
from claude_sync.store.base import ObjectStore
from claude_sync.store.handle import Handle, ObjectKind

FORMAT_VERSION = 1


def epoch_name(number: int) -> str:
    return Handle.numbered(ObjectKind.EPOCH, number).name


@dataclass(frozen=True)
class Recipient:
    """A key object's public key, vouched for by a holder of the epoch key named."""

    public: bytes
    epoch: int
    mac: bytes


def recipient_fields(keys: crypto.KeyRing, name: str, public: bytes) -> dict[str, object]:
    """The public key a new key object carries: authenticated under the current epoch, so
    the storage cannot substitute its own public key and receive the next epoch's key."""
    epoch = keys.epoch
    tag = crypto.mac(keys.epoch_key(epoch), "recipient", name.encode() + public)
    return {"public": crypto.b64(public), "epoch": epoch, "mac": crypto.b64(tag)}


def verified_recipient(
    keys: crypto.KeyRing, name: str, obj: Any, current: frozenset[str]
) -> bytes | None:
    """The key object's public key if a holder of the current epoch vouched for it: it was
    added during the current epoch, or is one of its recipients (`current`). A removed key
    still knows older epoch keys, so a key object vouched for only by those may be one it
    planted after its removal. None for key objects older than key epochs, and for any that
    do not check out."""
    try:
        found = obj["recipient"]
        public = crypto.unb64(found["public"], name)
        epoch = int(found["epoch"])
        tag = crypto.unb64(found["mac"], name)
    except (KeyError, TypeError, ValueError, CorruptionError):
        return None
    if epoch > keys.epoch or (epoch and epoch not in keys.epoch_keys):
        return None
    if epoch != keys.epoch and name not in current:
        return None
    expected = crypto.mac(keys.epoch_key(epoch), "recipient", name.encode() + public)
    return public if hmac.compare_digest(expected, tag) else None


def grant(keys: crypto.KeyRing, name: str, public: bytes) -> dict[str, object] | None:
    """The current epoch's key sealed to a key object added during it (the epoch object,
    written before, does not name it)."""
    if keys.epoch == 0:
        return None
    sealed = crypto.seal_to(public, name + "/grant", keys.epoch_keys[keys.epoch])
    return {"epoch": keys.epoch, "sealed": crypto.b64(sealed)}


def unchanged(store: ObjectStore, keys: crypto.KeyRing) -> bool:
    """Whether the storage lists exactly the key epochs this machine holds (none: none),
    each checked when it was learned: then `refresh` would find nothing to do."""
    return _held(listed_numbers(store), keys)


def _held(numbers: list[int], keys: crypto.KeyRing) -> bool:
    return set(numbers) == set(keys.epoch_keys) and set(numbers) <= set(keys.since)


def listed_numbers(store: ObjectStore) -> list[int]:
    """The key epochs the storage lists."""
    found = (Handle.parse_as(ObjectKind.EPOCH, n) for n in store.list(ObjectKind.EPOCH.prefix))
    return sorted(h.number for h in found if h is not None)


def _load(store: ObjectStore, number: int) -> dict[str, Any]:
    name = epoch_name(number)
    try:
        obj = json.loads(store.get(name))
        if not isinstance(obj, dict) or obj.get("version") != FORMAT_VERSION:
            raise ValueError
        if obj["epoch"] != number or not isinstance(obj["recipients"], dict):
            raise ValueError
        int(obj["since"])
    except (ValueError, KeyError, TypeError):
        raise CorruptionError(f"key epoch object {name} is malformed") from None
    return obj


def _signed_part(obj: dict[str, Any], *without: str) -> bytes:
    return json.dumps({k: v for k, v in obj.items() if k not in without}, sort_keys=True).encode()


def _body_check(key: bytes, obj: dict[str, Any]) -> bytes:
    """Under the epoch's own key: only its holders can vouch for its recipient list."""
    return crypto.mac(key, "epoch-check", _signed_part(obj, "check", "mac"))


def _check_key(obj: dict[str, Any], number: int, key: bytes) -> None:
    """A data key handed to us (by a recipient stanza or a grant) is this epoch's, and the
    epoch object is the one its creator wrote."""
    name = epoch_name(number)
    if not hmac.compare_digest(_body_check(key, obj), crypto.unb64(obj.get("check"), name)):
        raise CorruptionError(f"key epoch object {name} does not match its key")


def current_recipients(store: ObjectStore, keys: crypto.KeyRing) -> frozenset[str]:
    """The key objects the current epoch was sealed to (checked under its key)."""
    if keys.epoch == 0:
        return frozenset()
    obj = _load(store, keys.epoch)
    _check_key(obj, keys.epoch, keys.epoch_keys[keys.epoch])
    return frozenset(obj["recipients"])


def refresh(
    store: ObjectStore,
    keys: crypto.KeyRing,
    own_key: Any = None,
    numbers: list[int] | None = None,
) -> None:
    """Learn the repository's key epochs: open the newest with this machine's identity when
    it does not hold it yet, recover the earlier ones from it, and check each epoch object
    under the key before it. `own_key` is this machine's key object (read when the newest
    epoch does not name it: it may hold a grant); `numbers`: the epochs as the caller just
    listed them."""
    if numbers is None:
        numbers = listed_numbers(store)
    if max(keys.epoch_keys, default=0) > max(numbers, default=0):
        raise CorruptionError(
            f"key epoch {keys.epoch}, which this machine holds, is missing from the storage "
            "(rolled back or damaged)"
        )
    if not numbers or _held(numbers, keys):
        return  # nothing new: what this machine holds was checked when it was learned
    if numbers != list(range(1, numbers[-1] + 1)):
        raise CorruptionError("the repository's key epochs are not numbered 1, 2, ... (damaged)")
    objs = {n: _load(store, n) for n in numbers}
    top = numbers[-1]
    learned = dict(keys.epoch_keys)
    if top not in learned:
        learned[top] = _open_newest(store, keys, objs[top], top, own_key)
    for number in range(top, 1, -1):
        _check_key(objs[number], number, learned[number])
        if number - 1 not in learned:
            sealed = crypto.unb64(objs[number].get("previous"), epoch_name(number))
            learned[number - 1] = crypto.open_sealed(
                crypto.hkdf(learned[number], "epoch-previous"),
                epoch_name(number) + "/previous",
                sealed,
            )
    _check_key(objs[1], 1, learned[1])
    for number in numbers:
        authority = keys.master if number == 1 else learned[number - 1]
        tag = crypto.mac(authority, "epoch", _signed_part(objs[number], "mac"))
        if not hmac.compare_digest(tag, crypto.unb64(objs[number].get("mac"), "key epoch")):
            raise CorruptionError(f"key epoch object {epoch_name(number)} failed authentication")
    for number in numbers:
        keys.add_epoch(number, learned[number])
        keys.since[number] = int(objs[number]["since"])


def _open_newest(
    store: ObjectStore, keys: crypto.KeyRing, obj: dict[str, Any], number: int, own_key: Any
) -> bytes:
    name = epoch_name(number)
    revoked = RevokedError(
        f"this machine's key no longer opens the repository (key epoch {number} started "
        "without it): the key was removed or its passphrase changed; if you still have a "
        "valid passphrase, join again with `claude-sync init --force`"
    )
    if keys.identity is None:
        raise revoked
    key_name, private = keys.identity
    stanza = obj["recipients"].get(key_name)
    where = f"{name}/{key_name}"
    if stanza is None:
        own = own_key if own_key is not None else _key_object(store, key_name)
        found = own.get("grant") if isinstance(own, dict) else None
        if not isinstance(found, dict) or found.get("epoch") != number:
            raise revoked
        stanza, where = found.get("sealed"), key_name + "/grant"
    try:
        return crypto.open_from(private, where, crypto.unb64(stanza, name))
    except CorruptionError:
        raise revoked from None


def _key_object(store: ObjectStore, name: str) -> Any:
    try:
        return json.loads(store.get(name))
    except (ValueError, SyncError):
        return None


def start(
    store: ObjectStore, keys: crypto.KeyRing, recipients: dict[str, bytes], since: int
) -> int:
    """Write the next key epoch, sealed to `recipients` (key object name -> public key);
    new objects are sealed under it from now on. `since` is the newest snapshot number
    stored: later snapshots must be sealed under this epoch or a later one."""
    number = keys.epoch + 1
    name = epoch_name(number)
    data_key = crypto.random_key()
    obj: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "epoch": number,
        "since": since,
        "recipients": {
            key: crypto.b64(crypto.seal_to(public, f"{name}/{key}", data_key))
            for key, public in sorted(recipients.items())
        },
    }
    if number > 1:
        previous = crypto.seal(
            crypto.hkdf(data_key, "epoch-previous"), name + "/previous", keys.epoch_keys[number - 1]
        )
        obj["previous"] = crypto.b64(previous)
    obj["check"] = crypto.b64(_body_check(data_key, obj))
    authority = keys.epoch_key(number - 1)
    obj["mac"] = crypto.b64(crypto.mac(authority, "epoch", _signed_part(obj, "mac")))
    if not store.put_if_absent(name, json.dumps(obj, sort_keys=True).encode()):
        raise ConfigError(
            "another machine changed the repository's keys at the same time: run the command again"
        )
    keys.add_epoch(number, data_key)
    keys.since[number] = since
    return number


def check_snapshot(keys: crypto.KeyRing, seq: int, sealed: bytes) -> None:
    """Refuse a snapshot sealed under an older epoch than the one current when it was
    written: a removed key's machine can still seal under the epoch it knew."""
    required = max((n for n, since in keys.since.items() if since < seq), default=0)
    found = crypto.envelope_epoch(sealed)
    if found < required:
        raise CorruptionError(
            f"snapshot {seq} is sealed under key epoch {found}, but it was written after key "
            f"epoch {required} started: it comes from a machine whose key was removed (or from "
            "claude-sync older than 0.4); `claude-sync repair --forget-damaged` removes it"
        )
