# Shared by scripts/quickstart and scripts/test: make .venv and the Debian servers available.
# Sourced, not run. Idempotent: a second run only checks.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

log() { printf '[onsale-obs] %s\n' "$*" >&2; }

apt_install() {
    # Install Debian packages when we are root and apt-get exists; otherwise say what is missing.
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        if [ -z "${_APT_UPDATED:-}" ]; then
            log "apt-get update"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || log "apt-get update failed"
            _APT_UPDATED=1
        fi
        log "installing Debian packages: $*"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
            || log "could not install: $* (tests that need them will fail under CI=true, skip otherwise)"
    else
        log "missing Debian packages: $* (install them as root: apt-get install $*)"
    fi
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv in .venv"
        if ! "$PY" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            apt_install python3-venv
            "$PY" -m venv "$VENV"
        fi
    fi
    # Reinstall only when the declared dependencies change.
    local stamp="$VENV/.onsale-obs-installed" want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing onsale-obs and its dependencies into .venv"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
        echo "$want" >"$stamp"
    fi
}

ensure_servers() {
    local missing=()
    command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
    command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || missing+=(prometheus)
    command -v alertmanager >/dev/null 2>&1 || [ -x /usr/bin/prometheus-alertmanager ] \
        || [ -x /usr/bin/alertmanager ] || missing+=(prometheus-alertmanager)
    # headless Chromium opens the HTML report in tests/test_slo_html.py
    command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}
