#!/usr/bin/env bash
# Installs what a fresh Debian (bookworm) machine lacks to build and test sift:
# Bazel and the system libraries //third_party wraps. Only missing packages
# are installed, so this is quick when everything is there.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap      # Bazel 4.2.3 (pulls in Java)
  g++
  libzmq3-dev cppzmq-dev
  libprotobuf-dev protobuf-compiler
  libabsl-dev
  libtomlplusplus-dev
  nlohmann-json3-dev   # JSON payload filters and conversion (header-only)
  liblua5.4-dev        # Lua script plugins
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libdeflate-dev       # CRC-32 of stream log records (broker/store)
  python3              # tools/test_summary.py
  python3-zmq python3-protobuf  # clients/python (the sift Python client)
  python3-django python3-django-channels python3-msgpack  # sift.channels (Django Channels layer)
  daphne python3-daphne python3-websockets  # examples/django_notify and its end-to-end test
  python3-celery python3-kombu  # clients/python: the Celery transport (sift.kombu_transport)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
