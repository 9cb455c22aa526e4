#!/bin/sh
# The image's install steps, in one place. The Dockerfile runs this script, and CI runs the same script into a
# fresh virtual environment and starts the code server from it (floe_monitoring_tests/integration/
# test_image_install.py): no Docker engine runs in CI, so this is how CI knows the image's install works.
#
# Usage: docker/install.sh VENV [SOURCE]
#   VENV    the virtual environment to create (a fresh one; the image uses /opt/floe/venv)
#   SOURCE  the project tree to install (default: the current directory)
# PYTHON names the interpreter that creates the venv (default python3: the image's /usr/local/bin/python3).
# pip's cache is pip's business: the image's build stage sets PIP_NO_CACHE_DIR=1, CI keeps its cache.
set -eu

venv="${1:?usage: docker/install.sh VENV [SOURCE]}"
src="${2:-.}"
python="${PYTHON:-python3}"

"$python" -m venv "$venv"
# One pip for the image and CI (the resolver's choices depend on it).
"$venv/bin/python" -m pip install --quiet --upgrade "pip==26.3"
# The package with its `otel` extra (OTLP + Prometheus exporters). Not editable: the image has no source tree.
"$venv/bin/python" -m pip install --quiet "${src}[otel]"
# A resolution that left a dependency unmet must fail the build, not the first run.
"$venv/bin/python" -m pip check
