#!/usr/bin/env bash
# The image's build steps, runnable outside Docker too (`make image-steps`):
#   build.sh wheels DIR        build wheels for every dependency into DIR (the build stage)
#   build.sh install DIR VENV  make a virtualenv at VENV from those wheels alone, offline (the runtime stage)
# The gateway itself is not installed: it runs from its source directory (PYTHONPATH), where its
# templates and static files are. WHEEL_NO_DEPS=1 builds the project's own wheel only (a quick check).
set -euo pipefail

SRC="${SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PYTHON="${PYTHON:-python3}"

step="${1:-}"
case "$step" in
  wheels)
    dest="${2:?usage: build.sh wheels DIR}"
    mkdir -p "$dest"
    extra=()
    if [ "${WHEEL_NO_DEPS:-0}" = "1" ]; then
      extra+=(--no-deps)
    fi
    "$PYTHON" -m pip wheel --quiet --no-cache-dir "${extra[@]}" --wheel-dir "$dest" "$SRC"
    ls "$dest"/*.whl >/dev/null
    ;;
  install)
    wheels="${2:?usage: build.sh install DIR VENV}"
    venv="${3:?usage: build.sh install DIR VENV}"
    "$PYTHON" -m venv "$venv"
    deps=()
    for wheel in "$wheels"/*.whl; do
      case "${wheel##*/}" in
        newapi_django-*) ;;  # the project runs from source
        *) deps+=("$wheel") ;;
      esac
    done
    if [ ${#deps[@]} -gt 0 ]; then
      "$venv/bin/pip" install --quiet --no-cache-dir --no-index --find-links "$wheels" "${deps[@]}"
    fi
    ;;
  *)
    echo "usage: build.sh wheels DIR | install DIR VENV" >&2
    exit 2
    ;;
esac
