# Sourced by start.sh and test.sh: make .venv and install a requirements file
# into it, skipping pip when that file has not changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REQ="$1"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
STAMP=".venv/.installed-$(basename "$REQ")"
WANT="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "Installing $REQ into .venv (first time takes a few minutes: torch is large)..."
    .venv/bin/python -m pip install --disable-pip-version-check -q -r "$REQ"
    echo "$WANT" > "$STAMP"
fi
