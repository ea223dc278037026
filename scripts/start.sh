#!/usr/bin/env bash
# Install (into .venv) and start GANscope at http://127.0.0.1:8501
source "$(dirname "$0")/setup_env.sh" requirements.txt
exec .venv/bin/python -m streamlit run Home.py "$@"
