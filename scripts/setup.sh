#!/usr/bin/env bash
# One set-up path for `make demo`, `make test` and `make bench`: system packages the
# tests and the demo run for real, then the project's virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers, not mocks: Prometheus and Alertmanager binaries (and the blackbox and SNMP
# exporters `make bench` measures camwatch against), net-snmp, ffmpeg (test
# footage), GStreamer's RTSP server (simulated RTSP cameras), poppler (reading the PDF
# sheet back), a Traditional Chinese font (embedded in the sheet), chromium (landing page
# test), docker-compose (validating the compose file; no engine needed), PostgreSQL
# (the inspection log on a server, tested against a throw-away instance).
SYSTEM_PACKAGES=(
  python3-venv prometheus prometheus-alertmanager prometheus-snmp-exporter
  prometheus-blackbox-exporter snmpd snmp
  ffmpeg poppler-utils fonts-noto-cjk docker-compose chromium strace postgresql
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad gstreamer1.0-libav
)

missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: these system packages are missing: ${missing[*]}" >&2
    echo "setup: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run make again." >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
echo "setup: installing camwatch and its pinned dependencies into .venv"
.venv/bin/python -m pip install -q -e '.[dev]'

# Dashboards are type-checked against Grafana's own schema package (no Grafana server
# exists in any registry we can reach).
if [ -f dashboards/schema-check/package.json ] && command -v npm >/dev/null; then
  (cd dashboards/schema-check && npm install --silent --no-audit --no-fund >/dev/null)
fi
echo "setup: done"
