#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs everything the tests need (system
# packages, a virtualenv with the project and its test tools), lints, then runs pytest with
# coverage. Extra arguments go to pytest. Needs no standard input.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f scripts/apt-packages.txt ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  while read -r pkg; do
    [ -n "$pkg" ] && [ "${pkg#\#}" = "$pkg" ] || continue
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done < scripts/apt-packages.txt
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check uv
.venv/bin/python -m uv pip install --python .venv/bin/python -q -e '.[test]'
# The real Claude Code CLI, which judges resumed sessions, plugins and MCP settings offline.
command -v npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
[ -x .cache/claude-cli/node_modules/.bin/claude ] ||
  npm install --silent --no-audit --no-fund --prefix .cache/claude-cli @anthropic-ai/claude-code

.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests

# The tests start the CLI hundreds of times: let Python keep compiled bytecode (an
# environment that forbids it makes every start recompile claude-sync, boto3 and more).
unset PYTHONDONTWRITEBYTECODE
# Property tests draw the same examples on every run here (tests/conftest.py).
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
exec .venv/bin/python -m pytest -n 2 --durations=15 --cov --cov-report=term --cov-fail-under=90 "$@"
