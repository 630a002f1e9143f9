"""The `key` group: the passphrases and recovery keys that open the repository."""

from __future__ import annotations

import click

from claude_sync.cli.options import json_option, location_options
from claude_sync.cli.output import err, local_time, out, print_json, table
from claude_sync.errors import ConfigError
from claude_sync.passphrase import read_passphrase
from claude_sync.repository import key_name
from claude_sync.workspace import Locations, open_workspace


@click.group()
def key() -> None:
    """Manage the repository key."""


@key.command("add")
@location_options
@click.option("--label", default="", help="Who or what the key is for (stored encrypted).")
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False))
def key_add(where: Locations, label: str, new_passphrase_file: str | None) -> None:
    """Add a passphrase that opens the repository (one per machine or person)."""
    passphrase = read_passphrase(new_passphrase_file, confirm=True, new=True)
    with open_workspace(where) as ws:
        name, _ = ws.repo.add_key(passphrase, label)
    out.print(f"Added key {name.rsplit('/', 1)[-1]}", markup=False)


@key.command("list")
@location_options
@json_option
def key_list(where: Locations, as_json: bool) -> None:
    """List the repository's keys."""
    with open_workspace(where) as ws:
        keys = ws.repo.list_keys()
    if as_json:
        from claude_sync.catalog import iso

        rows = [
            {"id": key_id, "label": label, "created": iso(created) if created else None}
            for key_id, label, created in keys
        ]
        print_json({"keys": rows})
        return
    listed = table("id", "label", "created")
    for key_id, label, created in keys:
        listed.add_row(key_id, label, local_time(created) if created else "")
    out.print(listed)


@key.command("remove")
@click.argument("key_id")
@click.option("--force", is_flag=True, help="Remove it even if this machine joined with it.")
@location_options
def key_remove(where: Locations, key_id: str, force: bool) -> None:
    """Remove a key: its passphrase no longer opens the repository."""
    with open_workspace(where) as ws:
        own = ws.repo.keys.identity is not None and ws.repo.keys.identity[0] == key_name(key_id)
        if own and not force:
            # Every machine that joined with the same passphrase is cut off with it.
            raise ConfigError(
                f"this machine joined with key {key_id}: removing it cuts off this machine and "
                "every other one that joined with the same passphrase; add another key "
                "(`claude-sync key add`), join with it, or pass --force"
            )
        stale = ws.repo.remove_key(key_id)
    _warn_stale(stale)
    if own:
        err.print(
            "warning: this machine joined with that key: it keeps the current key epoch but "
            "will not receive the next; join again with another key (`claude-sync init --force`)",
            markup=False,
        )
    out.print(
        f"Removed key {key_id}: new data is sealed under a new key epoch it cannot open.",
        markup=False,
    )


def _warn_stale(stale: list[str]) -> None:
    for key_id in stale:
        err.print(
            f"warning: key {key_id} cannot receive the new key epoch and opens no new data "
            "(it predates key epochs, or no current key vouches for it): remove it and "
            "`claude-sync key add` a new one for its owner",
            markup=False,
        )


@key.command("passwd")
@location_options
@click.option("--passphrase-file", type=click.Path(dir_okay=False))
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False))
def key_passwd(
    where: Locations, passphrase_file: str | None, new_passphrase_file: str | None
) -> None:
    """Change a passphrase; the data is not re-encrypted."""
    old = read_passphrase(passphrase_file, confirm=False)
    with open_workspace(where) as ws:
        stale = ws.repo.change_passphrase(
            old, lambda: read_passphrase(new_passphrase_file, confirm=True, new=True)
        )
    _warn_stale(stale)
    out.print(
        "Passphrase changed. Other machines that joined with the old passphrase must join "
        "again with the new one (`claude-sync init --force`)."
    )


@key.command("export")
@location_options
def key_export(where: Locations) -> None:
    """Print a new recovery key that opens the repository without the passphrase."""
    with open_workspace(where) as ws:
        text = ws.repo.add_recovery_key()
    out.print(text, markup=False)
    err.print("Anyone with this key can read your synced data: store it like a password.")


COMMANDS = (key,)
