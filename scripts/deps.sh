#!/usr/bin/env bash
# Install the Debian packages gatehouse builds and tests with, when any is
# missing. apt-get runs with sudo when we are not root. Idempotent and quiet
# when everything is there.
set -euo pipefail

PKGS=(
  build-essential pkg-config ca-certificates openssl curl
  nginx nginx-dev libpcre2-dev zlib1g-dev libssl-dev
  liblmdb-dev lmdb-utils libsodium-dev libjansson-dev libyaml-dev libjwt-dev
  libglib2.0-dev john-data liboath-dev libqrencode-dev
  python3-jwt python3-cryptography python3-pyotp
  libcmocka-dev python3 python3-pytest python3-requests
  clang libclang-rt-14-dev
  liblasso3-dev libxml2-dev simplesamlphp php-cli php-xml php-mbstring xmlsec1
  python3-lmdb nodejs npm chromium
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "gatehouse: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian starts the packaged nginx service on port 80; gatehouse never uses
# it, and a test machine does not need it listening.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
