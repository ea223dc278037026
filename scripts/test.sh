#!/usr/bin/env bash
# Install (into .venv) and run the whole test suite; extra arguments go to pytest.
source "$(dirname "$0")/setup_env.sh" requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
