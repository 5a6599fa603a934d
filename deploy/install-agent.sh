#!/usr/bin/env bash
# Install or update the Ladewache cabinet agent on Raspberry Pi OS (Debian bookworm).
# Idempotent: run it again to update the code, config or password.
#
#   sudo deploy/install-agent.sh --config agent.toml --env agent.env --ca ca.pem
#   sudo deploy/install-agent.sh --dry-run ...      # print what would be done, change nothing
#
# agent.toml / agent.env come from `cabinet-server provision add` (docs/deploy.md); ca.pem is
# the CA that signed the broker's certificate.
set -euo pipefail

PREFIX=/opt/ladewache
ETC=/etc/ladewache
UNIT_DIR=/etc/systemd/system
SERVICE_USER=ladewache
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="" ENV_FILE="" CA_FILE="" DRY_RUN=0 START=1

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    echo "options: --config FILE --env FILE [--ca FILE] [--src DIR] [--prefix DIR] [--etc DIR]"
    echo "         [--no-start] [--dry-run]"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --config) CONFIG="$2"; shift 2 ;;
        --env) ENV_FILE="$2"; shift 2 ;;
        --ca) CA_FILE="$2"; shift 2 ;;
        --src) SRC="$2"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        --etc) ETC="$2"; shift 2 ;;
        --no-start) START=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install-agent: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

run() {  # every change goes through here, so --dry-run shows it all
    if [ "$DRY_RUN" = 1 ]; then
        printf 'would run:'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

fail() { echo "install-agent: $*" >&2; exit 1; }

[ -f "$SRC/pyproject.toml" ] || fail "no project at $SRC (use --src)"
[ -z "$CONFIG" ] || [ -f "$CONFIG" ] || fail "config $CONFIG not found"
[ -z "$ENV_FILE" ] || [ -f "$ENV_FILE" ] || fail "env file $ENV_FILE not found"
[ -z "$CA_FILE" ] || [ -f "$CA_FILE" ] || fail "CA file $CA_FILE not found"
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then fail "run as root (sudo), or with --dry-run"; fi

# 1. System packages: Python with venv. Nothing else; the agent's wheels are pure or prebuilt.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    run apt-get install -y --no-install-recommends python3-venv
fi

# 2. The service user: no login, no home, in dialout for the RS-485 adapter.
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$SERVICE_USER"
fi
if ! id -nG "$SERVICE_USER" 2>/dev/null | tr ' ' '\n' | grep -qx dialout; then
    run usermod -a -G dialout "$SERVICE_USER"
fi

# 3. Code: a venv under $PREFIX, the project installed into it (again on every run: updates).
run install -d -m 0755 "$PREFIX"
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    run python3 -m venv "$PREFIX/venv"
fi
run "$PREFIX/venv/bin/pip" install --disable-pip-version-check -q --upgrade "$SRC"
run install -d -m 0755 "$PREFIX/docs"
run install -m 0644 "$SRC/docs/deploy.md" "$PREFIX/docs/deploy.md"

# 4. Config: readable by the service's group, secrets readable by root only.
run install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"
if [ -n "$CONFIG" ]; then
    run install -m 0640 -o root -g "$SERVICE_USER" "$CONFIG" "$ETC/agent.toml"
fi
if [ -n "$ENV_FILE" ]; then
    run install -m 0600 -o root -g root "$ENV_FILE" "$ETC/agent.env"
fi
if [ -n "$CA_FILE" ]; then
    run install -m 0644 -o root -g root "$CA_FILE" "$ETC/ca.pem"
fi
if [ "$DRY_RUN" = 0 ] && [ ! -f "$ETC/agent.toml" ]; then
    fail "no $ETC/agent.toml: pass --config (from cabinet-server provision add)"
fi
if [ "$DRY_RUN" = 0 ]; then
    # The agent's own loader, with the password from the env file, as the service will see it.
    # shellcheck source=/dev/null
    (set -a; [ -f "$ETC/agent.env" ] && . "$ETC/agent.env"; set +a
     "$PREFIX/venv/bin/cabinet-agent" check-config --config "$ETC/agent.toml") \
        || fail "$ETC/agent.toml does not load; nothing was started"
fi

# 5. The unit, enabled; restarted so that new code and config take effect.
run install -m 0644 "$SRC/deploy/systemd/cabinet-agent.service" "$UNIT_DIR/cabinet-agent.service"
run systemctl daemon-reload
run systemctl enable cabinet-agent.service
if [ "$START" = 1 ]; then
    run systemctl restart cabinet-agent.service
    [ "$DRY_RUN" = 1 ] || echo "cabinet-agent (re)started: journalctl -u cabinet-agent -f"
else
    echo "cabinet-agent enabled, not started (--no-start)"
fi
