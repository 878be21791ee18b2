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

pip_install() {
    # pip with one line per package collected (progress without the noise); errors stay visible
    "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" 2>&1 \
        | { grep -E --line-buffered '^(Collecting|Installing collected|Successfully installed|ERROR|error)' || true; } \
        | sed -u 's/^/    /' >&2
    return "${PIPESTATUS[0]}"
}

ensure_venv() {
    # ensure_venv [EXTRA]: the project with the extra "dev" (default: everything CI needs) or
    # "examples" (the runtime and what the demo runs: scripts/quickstart).
    local extra="${1:-dev}"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv in .venv"
        if ! "$PY" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            apt_install python3-venv
            "$PY" -m venv "$VENV"
        fi
    fi
    # Reinstall only when the declared dependencies change. The dev stamp (everything) also
    # stands for the smaller examples set.
    local dev_stamp="$VENV/.onsale-obs-installed" stamp want
    stamp="$dev_stamp"
    [ "$extra" = "dev" ] || stamp="$VENV/.onsale-obs-installed-$extra"
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ -f "$dev_stamp" ] && [ "$(cat "$dev_stamp")" = "$want" ]; then
        return
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        if [ "$extra" = "dev" ]; then
            log "installing onsale-obs with everything the tests need into .venv"
            "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
            "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
        else
            log "installing onsale-obs and its runtime dependencies (plus: $extra) into .venv"
            pip_install -e "$ROOT[$extra]"
        fi
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
    # a real terminal (tmux capture-pane) for the table layout tests in tests/test_cli_tables.py
    command -v tmux >/dev/null 2>&1 || [ -x /usr/bin/tmux ] || missing+=(tmux)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}
