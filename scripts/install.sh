#!/usr/bin/env bash
# Install claude-sync for this user and run the main job on the embedded default backend:
# a private virtualenv, `claude-sync` linked into ~/.local/bin, then `init` (a local folder
# repository, unless this machine is already set up) and `push`.
# The passphrase comes from CLAUDE_SYNC_PASSPHRASE / CLAUDE_SYNC_PASSPHRASE_FILE, or a prompt
# when there is a terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${XDG_DATA_HOME:-$HOME/.local/share}/claude-sync"
venv="$data/venv"
bin="$HOME/.local/bin"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check .
mkdir -p "$bin"
ln -sf "$venv/bin/claude-sync" "$bin/claude-sync"
echo "Installed $bin/claude-sync"
case ":$PATH:" in *":$bin:"*) ;; *) echo "Add $bin to your PATH to run claude-sync directly." ;; esac

if ! "$venv/bin/claude-sync" status >/dev/null 2>&1; then
  "$venv/bin/claude-sync" init "$@"
fi
"$venv/bin/claude-sync" push
