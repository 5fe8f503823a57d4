#!/usr/bin/env bash
# Set up keras-clust on a fresh Debian/Ubuntu machine (or any machine with python3):
#   - apt packages when apt-get is usable: Python's venv module, and Debian's
#     dataset-fashion-mnist (the offline Fashion-MNIST used by the experiments);
#   - a virtual environment in .venv (override with VENV=...) holding the package,
#     installed in editable mode, with the test extras when --test is given.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
extras=""
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]" ;;
    *) echo "usage: bash scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

if command -v apt-get >/dev/null 2>&1; then
  need=()
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv python3-pip)
  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need[*]}"
    if ! { as_root apt-get update -q >/dev/null &&
           as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; }; then
      echo "setup: warning: could not apt-get install ${need[*]} (no root?); continuing" >&2
    fi
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
echo "setup: installing keras-clust${extras} into $VENV (TensorFlow is large: first run takes minutes)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".${extras}"
echo "setup: done; the command is $VENV/bin/keras-clust"
