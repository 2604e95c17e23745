#!/usr/bin/env bash
# The whole test suite: installs what it needs on a fresh Debian machine, then builds and tests.
#
#   ./scripts/test.sh                 # install what is missing, build everything, run every test
#   ./scripts/test.sh -- clients      # arguments after `--` go to the test binaries (a name filter)
#   SENTRY_TEST_SETUP_ONLY=1 ./scripts/test.sh    # only install, print the env to run cargo yourself
#
# Installs, each step only when missing (a second run does no network I/O):
#   - apt: a C compiler, python3 + venv, PostgreSQL server binaries (for the throwaway databases
#     the tests start), redis-server (the throwaway Redis of the tests of several nodes),
#     ngircd (the IRC server of the notification tests), prosody (their XMPP
#     server), nginx, openssl and systemd-analyze (the tests of dist/), chromium and
#     chromium-driver (the dashboard tests drive headless Chromium), curl (only to fetch rustup
#     when cargo is missing);
#   - Rust through rustup, when there is no cargo, and its clippy component when missing;
#   - .venv     the real Python clients, pinned in scripts/requirements-test.txt;
#   - .venv-br  sentry-sdk with `brotli` (scripts/requirements-test-brotli.txt), for the `br` body test;
#   - .venv-peers  the notification tests' peers (scripts/requirements-peers.txt): Synapse, the
#     Matrix homeserver, and `gntp`, the GNTP receiver's parser (apart: Synapse pins its own
#     dependencies);
#   - apt: nodejs and npm, and tests/oidc/node_modules: the OpenID provider (oidc-provider, pinned
#     in tests/oidc/package-lock.json) that the single sign-on tests start on loopback, and
#     tests/js-client/node_modules: the real JavaScript SDK (@sentry/node, pinned in
#     tests/js-client/package-lock.json);
#     tests/sourcemaps/node_modules: esbuild and @sentry/node (pinned in its package-lock.json)
#     for the source map tests;
# Then `cargo build --workspace --all-targets` (the tests need the `sentry` and `rust-client`
# binaries), `cargo clippy --workspace --all-targets -- -D warnings`, and `cargo test --workspace`,
# with the env vars the tests read:
#   SENTRY_TEST_PYTHON, SENTRY_TEST_PYTHON_BROTLI, SENTRY_TEST_PYTHON_PEERS, SENTRY_TEST_PG_BIN.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

say() { printf '\n==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root to run: $*" >&2; exit 1
  fi
}

# The directory holding initdb, pg_ctl and postgres (Debian keeps them off PATH).
find_pg_bin() {
  if [ -n "${SENTRY_TEST_PG_BIN:-}" ] && [ -x "$SENTRY_TEST_PG_BIN/initdb" ]; then echo "$SENTRY_TEST_PG_BIN"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return; fi
  done
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; fi
}

# --- 1. system packages -----------------------------------------------------------------------
export HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
command -v cargo >/dev/null || PATH="$HOME/.cargo/bin:$PATH"   # rustup's default, maybe not on PATH
apt_missing=()
command -v cc >/dev/null || apt_missing+=(build-essential)
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_missing+=(python3 python3-venv)
[ -n "$(find_pg_bin)" ] || apt_missing+=(postgresql)
# ngircd: the IRC server the IRC notification tests start on a free port.
command -v ngircd >/dev/null || [ -x /usr/sbin/ngircd ] || apt_missing+=(ngircd)
# redis-server: the Redis the tests of several nodes start on a free port.
command -v redis-server >/dev/null || apt_missing+=(redis-server)
# prosody: the XMPP server the XMPP notification tests start on a free port.
command -v prosody >/dev/null || apt_missing+=(prosody)
# nginx, openssl and systemd-analyze: the tests of dist/ (the reverse-proxy example is started
# with a throwaway certificate; the systemd unit is checked by `systemd-analyze verify`).
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_missing+=(nginx)
command -v openssl >/dev/null || apt_missing+=(openssl)
command -v systemd-analyze >/dev/null || apt_missing+=(systemd)
command -v chromium >/dev/null || apt_missing+=(chromium)
command -v chromedriver >/dev/null || apt_missing+=(chromium-driver)
command -v node >/dev/null || apt_missing+=(nodejs)
command -v npm >/dev/null || apt_missing+=(npm)
if ! command -v cargo >/dev/null; then
  command -v curl >/dev/null || apt_missing+=(curl)
  apt_missing+=(ca-certificates)
fi
if [ "${#apt_missing[@]}" -gt 0 ]; then
  say "apt: installing ${apt_missing[*]}"
  if [[ " ${apt_missing[*]} " == *" postgresql "* ]]; then
    # Only the binaries are wanted: the tests start their own servers. Don't create (and start)
    # the system-wide cluster on port 5432.
    as_root mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' | as_root tee /etc/postgresql-common/createcluster.d/sentry-tests.conf >/dev/null
  fi
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # Don't let the packages start their system services (ngircd on port 6667, prosody on 5222, redis on 6379): the tests start
  # their own, on free ports.
  no_services=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    no_services=1
  fi
  as_root apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  [ -z "$no_services" ] || as_root rm -f /usr/sbin/policy-rc.d
fi
PG_BIN="$(find_pg_bin)"
[ -n "$PG_BIN" ] || { echo "PostgreSQL binaries (initdb, pg_ctl, postgres) not found" >&2; exit 1; }
export PATH="$PG_BIN:$PATH"

# --- 2. Rust ----------------------------------------------------------------------------------
if ! command -v cargo >/dev/null; then
  say "rustup: installing the stable Rust toolchain (minimal profile)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --no-modify-path
  PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo clippy --version >/dev/null 2>&1; then
  say "rustup: adding clippy"
  rustup component add clippy
fi

# --- 3. Python venvs with the real clients ----------------------------------------------------
# venv DIR REQUIREMENTS: (re)creates DIR when broken, pip-installs when the requirements changed.
venv() {
  local dir="$1" req="$2" stamp want
  stamp="$dir/.requirements.sha256"
  want="$(cat "$req" | sha256sum | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c '' 2>/dev/null && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  if ! { [ -x "$dir/bin/python" ] && "$dir/bin/python" -c '' 2>/dev/null; }; then
    say "python: creating $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
  fi
  say "pip: installing $(grep -v '^\s*#' "$req" | grep -v '^\s*$' | tr '\n' ' ')into $dir"
  "$dir/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req"
  echo "$want" >"$stamp"
}
venv "$ROOT/.venv" scripts/requirements-test.txt
venv "$ROOT/.venv-br" scripts/requirements-test-brotli.txt
venv "$ROOT/.venv-peers" scripts/requirements-peers.txt

# --- 4. the OpenID provider of the single sign-on tests --------------------------------------
oidc_want="$(sha256sum tests/oidc/package-lock.json | cut -d' ' -f1) $(node --version)"
if [ "$(cat tests/oidc/node_modules/.lock.sha256 2>/dev/null)" != "$oidc_want" ]; then
  say "npm: installing oidc-provider into tests/oidc/node_modules"
  npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
  echo "$oidc_want" >tests/oidc/node_modules/.lock.sha256
fi

# --- 5. the real JavaScript SDK (@sentry/node) as a test client -------------------------------
js_want="$(sha256sum tests/js-client/package-lock.json | cut -d' ' -f1) $(node --version)"
if [ "$(cat tests/js-client/node_modules/.lock.sha256 2>/dev/null)" != "$js_want" ]; then
  say "npm: installing @sentry/node into tests/js-client/node_modules"
  npm ci --prefix tests/js-client --no-audit --no-fund --loglevel=error
  echo "$js_want" >tests/js-client/node_modules/.lock.sha256
fi

# --- 6. esbuild and @sentry/node for the source map tests -----------------------------------
maps_want="$(sha256sum tests/sourcemaps/package-lock.json | cut -d' ' -f1) $(node --version)"
if [ "$(cat tests/sourcemaps/node_modules/.lock.sha256 2>/dev/null)" != "$maps_want" ]; then
  say "npm: installing esbuild and @sentry/node into tests/sourcemaps/node_modules"
  npm ci --prefix tests/sourcemaps --no-audit --no-fund --loglevel=error
  echo "$maps_want" >tests/sourcemaps/node_modules/.lock.sha256
fi

export SENTRY_TEST_PYTHON="$ROOT/.venv/bin/python"
export SENTRY_TEST_PYTHON_BROTLI="$ROOT/.venv-br/bin/python"
export SENTRY_TEST_PYTHON_PEERS="$ROOT/.venv-peers/bin/python"
export SENTRY_TEST_PG_BIN="$PG_BIN"

if [ -n "${SENTRY_TEST_SETUP_ONLY:-}" ]; then
  say "setup done; to run the tests yourself:"
  echo "export SENTRY_TEST_PYTHON=$SENTRY_TEST_PYTHON SENTRY_TEST_PYTHON_BROTLI=$SENTRY_TEST_PYTHON_BROTLI SENTRY_TEST_PYTHON_PEERS=$SENTRY_TEST_PYTHON_PEERS SENTRY_TEST_PG_BIN=$SENTRY_TEST_PG_BIN"
  echo "cargo build --workspace --all-targets && cargo clippy --workspace --all-targets -- -D warnings && cargo test --workspace"
  exit 0
fi

# --- 6. build and test ------------------------------------------------------------------------
say "cargo $(cargo --version | cut -d' ' -f2): building the workspace (all targets)"
cargo build --workspace --all-targets

say "cargo clippy: the workspace must have no warnings"
cargo clippy --workspace --all-targets -- -D warnings

say "cargo test --workspace $*"
cargo test --workspace "$@"
