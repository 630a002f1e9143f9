"""Key objects: the master key wrapped for each passphrase or recovery key, each with the
X25519 identity that receives key epochs (docs/FORMAT.md §2; epochs.py for the epochs)."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from claude_sync import crypto
from claude_sync.errors import ConfigError, CorruptionError, ObjectNotFoundError, WrongKeyError
from claude_sync.repository import epochs
from claude_sync.repository.access import StoreAccess
from claude_sync.repository.format import KEYS_PREFIX, key_id_of, key_name
from claude_sync.store.base import ObjectStore
from claude_sync.store.handle import Handle, ObjectKind


def machine_keys(name: str, master: bytes, identity: bytes | None) -> crypto.KeyRing:
    """The keys of a machine that opened key object `name`."""
    return crypto.KeyRing(master, identity=None if identity is None else (name, identity))


class KeyObjects(StoreAccess):
    """The key objects of a repository."""

    @staticmethod
    def _match_key(
        store: ObjectStore, names: list[str], secret: str | bytes
    ) -> tuple[str, bytes, bytes | None] | None:
        """(name, master key, identity) of the first key object the secret opens."""
        for name in names:
            try:
                obj = json.loads(store.get(name))
            except (ValueError, ObjectNotFoundError):
                continue
            if not isinstance(obj, dict):
                continue
            try:
                return name, *crypto.unwrap_master(obj, secret, name)
            except (WrongKeyError, CorruptionError):
                continue
        return None

    def key_opened_by(self, passphrase: str) -> str:
        found = self._match_key(self.store, sorted(self.store.list(KEYS_PREFIX)), passphrase)
        if found is None or found[1] != self.keys.master:
            raise WrongKeyError("that passphrase opens no key of this repository")
        return found[0]

    def add_key(
        self, secret: str | bytes, label: str = "", name: str | None = None
    ) -> tuple[str, bytes]:
        """A key object for a passphrase (or a recovery key's secret); returns its name and
        X25519 identity. It receives the current key epoch and every later one."""
        name = name or Handle.random(ObjectKind.KEY, 16).name
        private, public = crypto.new_identity()
        obj = crypto.wrap_master(self.keys.master, secret, name, private)
        obj["recipient"] = epochs.recipient_fields(self.keys, name, public)
        grant = epochs.grant(self.keys, name, public)
        if grant is not None:
            obj["grant"] = grant
        # The label may name a person or machine: readable only with the master key.
        obj["label"] = crypto.b64(self.keys.seal_master(name + "/label", label.encode()))
        obj["created"] = int(time.time())
        obj["check"] = crypto.b64(_check(self.keys.master, obj))
        if not self._put(name, json.dumps(obj, sort_keys=True).encode()):
            raise ConfigError(f"key {key_id_of(name)} already exists")
        return name, private

    def add_recovery_key(self) -> str:
        """A new recovery key (csr2): the secret of a key object of its own, so it follows
        key epochs and `key remove` revokes it like any other key."""
        secret = crypto.random_key()
        self.add_key(secret, "recovery key", key_name(crypto.recovery_key_name(secret)))
        return crypto.recovery_key(secret)

    def list_keys(self) -> list[tuple[str, str, int]]:
        """(id, label, created) of every key object."""
        keys = []
        for name in sorted(self.store.list(KEYS_PREFIX)):
            try:
                obj = self._checked_key(name)
                sealed = crypto.unb64(obj.get("label", ""), name) if obj.get("label") else b""
                label = self.keys.open(name + "/label", sealed).decode() if sealed else ""
                created = int(obj.get("created", 0))
            except (ValueError, AttributeError, CorruptionError, UnicodeDecodeError):
                label, created = "(damaged key object)", 0
            keys.append((key_id_of(name), label, created))
        return keys

    def damaged_keys(self) -> list[str]:
        """The ids of key objects that are damaged or were changed in the storage: their
        passphrase may no longer open the repository, and nothing else would say so until
        a machine tried it (as a wrong passphrase)."""
        damaged = []
        for name in sorted(self.store.list(KEYS_PREFIX)):
            try:
                obj = self._checked_key(name)
                if obj.get("label"):
                    self.keys.open(name + "/label", crypto.unb64(obj["label"], name))
            except ObjectNotFoundError:
                continue  # removed meanwhile (`key remove` elsewhere)
            except (ValueError, AttributeError, CorruptionError):
                damaged.append(key_id_of(name))
        return damaged

    def _checked_key(self, name: str) -> dict[str, Any]:
        """A key object, with its check (under the master key, over every other field)
        verified when it has one (older key objects have none); CorruptionError if not."""
        obj = json.loads(self._get(name))
        if not isinstance(obj, dict) or obj.get("version") != 1:
            raise CorruptionError(f"key object {name} is malformed")
        if "check" in obj:
            tag = crypto.unb64(obj["check"], name)
            if not hmac.compare_digest(tag, _check(self.keys.master, obj)):
                raise CorruptionError(f"key object {name} failed its check")
        return obj


def _check(master: bytes, obj: dict[str, Any]) -> bytes:
    """The check of a key object: every field but the check itself, under the master key
    (whoever can write a key object holds it anyway)."""
    signed = json.dumps({k: v for k, v in obj.items() if k != "check"}, sort_keys=True)
    return crypto.mac(master, "key-object", signed.encode())
