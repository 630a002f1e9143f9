#!/usr/bin/env bash
# Install claude-sync for this user and run the first sync: a private virtualenv, `claude-sync`
# linked into ~/.local/bin, then `init --sync` (create or join the repository, then pull and
# push).
#   bash scripts/install.sh            # first machine: the built-in default folder
#   bash scripts/install.sh REMOTE     # next machines: join REMOTE (/path, s3://…, git+ssh://…)
# Further arguments go to `claude-sync init` (e.g. --endpoint-url URL, --create). On a machine
# that is already set up, with no REMOTE, it just syncs. The passphrase comes from
# CLAUDE_SYNC_PASSPHRASE / CLAUDE_SYNC_PASSPHRASE_FILE, or a prompt when there is a terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${XDG_DATA_HOME:-$HOME/.local/share}/claude-sync"
venv="$data/venv"
bin="$HOME/.local/bin"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check .
mkdir -p "$bin"
ln -sf "$venv/bin/claude-sync" "$bin/claude-sync"
echo "Installed $bin/claude-sync ($("$venv/bin/claude-sync" --version))"
case ":$PATH:" in *":$bin:"*) ;; *) echo "Add $bin to your PATH to run claude-sync directly." ;; esac

if [ $# -eq 0 ] && "$venv/bin/claude-sync" status >/dev/null 2>&1; then
  echo "This machine is already set up: syncing."
  exec "$venv/bin/claude-sync" sync
fi
# `init REMOTE` with the REMOTE this machine already uses only syncs; another REMOTE is
# refused (it names `--force`), so nothing surprising happens to a machine that is set up.
exec "$venv/bin/claude-sync" init --sync "$@"
