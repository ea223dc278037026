#!/usr/bin/env bash
# Install (into .venv) and run the whole test suite; extra arguments go to pytest.
source "$(dirname "$0")/setup_env.sh" requirements-dev.txt
# The browser tests need Debian's chromium (they skip without it); install it where we can.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing chromium with apt-get for the browser tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
        || echo "Could not install chromium: the browser tests will be skipped."
fi
exec .venv/bin/python -m pytest "$@"
