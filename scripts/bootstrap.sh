#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv with the pinned stack.
# Idempotent: does nothing when .venv already matches pyproject.toml and constraints.txt.
# Set PYTHON310=/path/to/python3.10 to choose the interpreter; VENV_DIR to move the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_DIR="${VENV_DIR:-.venv}"

is_py310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; }

find_python310() {
  local candidates=()
  [ -n "${PYTHON310:-}" ] && candidates+=("$PYTHON310")
  if command -v pyenv >/dev/null 2>&1; then
    local root; root="$(pyenv root 2>/dev/null || true)"
    for p in "$root"/versions/3.10*/bin/python3.10; do candidates+=("$p"); done
  fi
  for p in "$HOME"/.pyenv/versions/3.10*/bin/python3.10; do candidates+=("$p"); done
  candidates+=(python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10 python3 python)
  for c in "${candidates[@]}"; do
    if is_py310 "$c"; then command -v "$c" 2>/dev/null || echo "$c"; return 0; fi
  done
  return 1
}

stamp_of() { cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1; }

want="$(stamp_of)"
if [ -x "$VENV_DIR/bin/python" ] && [ "$(cat "$VENV_DIR/.bootstrap-stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

if ! PY="$(find_python310)"; then
  cat >&2 <<'MSG'
error: Python 3.10 was not found.
  TFX 1.16 supports Python >=3.9,<3.11 and this project pins 3.10.
  Install it (for example `pyenv install 3.10.13`, or your distribution's python3.10
  with its venv module), or point PYTHON310 at the interpreter:
      PYTHON310=/path/to/python3.10 make demo
MSG
  exit 1
fi

echo "==> creating $VENV_DIR with $PY ($("$PY" --version 2>&1))"
if [ ! -x "$VENV_DIR/bin/python" ]; then
  "$PY" -m venv "$VENV_DIR"
fi
log="$VENV_DIR/install.log"
echo "==> installing the pinned stack (about 3.3 GB, a few minutes the first time; log: $log)"
if ! "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
      -c constraints.txt -e ".[dev]" >"$log" 2>&1; then
  grep -v "^WARNING: Location" "$log" | tail -n 30 >&2
  echo "error: pip install failed; full log in $log" >&2
  exit 1
fi
echo "$want" > "$VENV_DIR/.bootstrap-stamp"
echo "==> environment ready: $VENV_DIR"
