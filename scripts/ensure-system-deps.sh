#!/usr/bin/env bash
# Installs the real servers the integration tests talk to, from Debian's packages, when missing:
# mosquitto (MQTT broker), victoria-metrics (accepts the InfluxDB v2 write API), chromium (the
# dashboard's browser tests drive it with Playwright) and postgresql (the store's tests run on it
# as well as on SQLite).
set -euo pipefail

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  echo "system deps present: mosquitto, victoria-metrics, chromium, postgresql"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "installing from Debian's packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages ship services; the tests start their own instances on free ports instead.
for svc in mosquitto victoria-metrics postgresql; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "installed: ${missing[*]}"
