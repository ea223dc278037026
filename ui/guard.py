"""The app serves this machine only, unless its user opts in.

Anyone who can reach the app can read any folder its user can (a training source is a
path), and start, stop and delete runs. `.streamlit/config.toml` binds it to 127.0.0.1;
started with another --server.address (or without the config, which means every
interface), each page refuses to work unless GANSCOPE_ALLOW_REMOTE=1 says the user
means it.
"""
import ipaddress
import os

import streamlit as st

OPT_IN = "GANSCOPE_ALLOW_REMOTE"


def is_loopback(address: str | None) -> bool:
    if address in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except (TypeError, ValueError):  # None or "" (every interface) or a host name
        return False


def local_only() -> None:
    """Call first on every page: stop here when the app listens beyond this machine uninvited."""
    address = st.get_option("server.address")
    if is_loopback(address) or os.environ.get(OPT_IN) == "1":
        return
    st.error(f"GANscope is listening on {address or 'every network interface'}, not only on this machine. "
             f"Anyone who can reach it could read your folders and start or delete runs, so it is "
             f"refusing to work. Start it with `bash scripts/start.sh` (127.0.0.1 only), or set "
             f"{OPT_IN}=1 if you really mean to share it on a network you trust (and list the names it is "
             f"reached by in --server.allowedHosts).")
    st.stop()
