#!/usr/bin/env bash
# Installs gatewayd on an edge box (Debian 12) as a systemd service.
#
#   sudo bash deploy/install.sh [path/to/gatewayd]
#
# Default binary: target/release/gatewayd (build it with `cargo build --release`).
# Installs the runtime libraries, the binary, a `gatewayd` system user, the
# hardened unit, and /etc/gatewayd/gateway.toml from the reference config if
# none exists (edit it, `gatewayd check -c` it, then `systemctl start gatewayd`).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/gatewayd}

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (sudo bash deploy/install.sh)" >&2
  exit 1
fi
if [ ! -x "$BIN" ]; then
  echo "no gatewayd binary at $BIN: build it first (cargo build --release)" >&2
  exit 1
fi

echo "==> runtime packages"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  libopencv-core406 libopencv-imgproc406 \
  libavformat59 libavcodec59 libswscale6 libavutil57 libavdevice59 libturbojpeg0 \
  ca-certificates

echo "==> binary"
install -m 0755 "$BIN" /usr/local/bin/gatewayd
# Face and plate models and the ONNX Runtime library, where the models were fetched.
if [ -d models/files ]; then
  install -d -m 0755 /usr/local/lib/gatewayd
  cp -rL models/files/. /usr/local/lib/gatewayd/
fi

echo "==> user and folders"
if ! id gatewayd >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/gatewayd --no-create-home --shell /usr/sbin/nologin \
    --groups dialout,video gatewayd
fi
install -d -m 0750 -o root -g gatewayd /etc/gatewayd
if [ ! -f /etc/gatewayd/gateway.toml ]; then
  sed -e 's#^data_dir = .*#data_dir = "/var/lib/gatewayd"#' config/gateway.toml > /etc/gatewayd/gateway.toml
  chmod 0640 /etc/gatewayd/gateway.toml
  chgrp gatewayd /etc/gatewayd/gateway.toml
  echo "    wrote /etc/gatewayd/gateway.toml from the reference: edit it before starting"
fi

echo "==> systemd unit"
install -m 0644 deploy/gatewayd.service /etc/systemd/system/gatewayd.service
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable gatewayd.service
  echo "    enabled; start with: systemctl start gatewayd; logs: journalctl -u gatewayd -f"
else
  echo "    systemd is not running here: the unit is installed but not enabled"
fi
/usr/local/bin/gatewayd check -c /etc/gatewayd/gateway.toml || \
  echo "    fix the config above, then: systemctl start gatewayd"
