"""Values that arrive in a link, checked before the widget that shows them is drawn.

LINKED widgets (ui/state.py) take their first value from the URL, and anyone can write a
URL: ?psi=2, ?seed=-1, ?dims=999, ?keys=1,18446744073709551616. So every LINKED widget is
drawn through `linked`, which holds the URL's value against what the widget itself allows:
the min / max, options or `check` it is drawn with, one source for both. A value the
widget cannot take gives way to the widget's default, and the page shows one warning,
WARNING, in the place `notice()` keeps for it under the page's title.

A key is checked once per session, the first time its widget is drawn: that is when
Streamlit seeds the widget from the URL. Later the URL only repeats what the widgets hold.
A widget that first appears in a fragment's own rerun (the Latent Lab's editor) falls
back to its default just the same, but cannot write above the fragment, so it does so
without the warning.
"""
import inspect
import math
import re

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui.state import LINKED, apply_pending, set_on_next_run

WARNING = "This link had values out of range; showing the default view for them."
CHECKED = "_links-checked"  # keys whose link value was checked in this session
PLACE = "_links-place"      # where this run shows the warning
OWED = "_links-owed"        # the warning is still to be shown after a rerun

NUMBERS = {"slider", "number_input"}
CHOICES = {"selectbox", "radio", "select_slider", "multiselect", "tabs", "segmented_control", "pills"}
TEXTS = {"text_input", "text_area"}
WHOLE = re.compile(r"[+-]?\d{1,30}")


def notice() -> None:
    """First thing on a page with LINKED widgets, under its title: values set for this run
    (ui.state.set_on_next_run) take effect, and the link warning gets its place."""
    apply_pending()
    st.session_state[PLACE] = place = st.empty()
    if st.session_state.pop(OWED, False):
        place.warning(WARNING, icon="🔗")


def linked(widget, *args, key: str, check=None, **kwargs):
    """widget(*args, key=key, **kwargs), bound to the URL, once its link value is checked.

    `widget` is a Streamlit widget function (st.slider, columns[0].selectbox, st.tabs...);
    `check` (for text boxes) raises ValueError for a text the page cannot use."""
    kind = widget.__name__
    spec = inspect.signature(widget).bind_partial(*args, **kwargs).arguments
    default, bad = default_value(kind, spec), False
    checked = st.session_state.setdefault(CHECKED, set())
    if key not in checked:
        checked.add(key)
        values = st.query_params.get_all(key)
        if values and not allows(kind, spec, values, check):
            bad = True
            st.session_state[key] = default
            _warn()
    bind = {"bind": "query-params"} if kind == "tabs" else LINKED
    drawn = widget(*args, key=key, **kwargs, **bind)
    if bad and st.session_state.get(key) != default:
        # Streamlit seeded the widget from the URL all the same (a text box takes any text):
        # it shows the default from the next run on, with the warning.
        set_on_next_run({key: default})
        st.session_state[OWED] = True
        st.rerun()
    return drawn


def allows(kind: str, spec: dict, values: list[str], check=None) -> bool:
    """Whether a widget drawn with `spec` (its arguments by name) can hold the URL's `values`."""
    if kind in NUMBERS:
        low, high = spec.get("min_value"), spec.get("max_value")
        whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high) if v is not None)
        for text in values:
            if whole and not WHOLE.fullmatch(text.strip()):
                return False
            try:
                number = int(text) if whole else float(text)
            except (ValueError, OverflowError):
                return False
            if not math.isfinite(number) or (low is not None and number < low) or \
                    (high is not None and number > high):
                return False
        return True
    if kind in CHOICES:
        show = spec.get("format_func", str)
        options = {str(show(o)) for o in spec.get("tabs" if kind == "tabs" else "options", ())}
        return (len(values) == 1 or kind in ("multiselect", "pills", "segmented_control")) and \
            all(v in options for v in values)
    if kind in TEXTS:
        limit = spec.get("max_chars")
        if limit is not None and len(values[-1]) > limit:
            return False
        try:
            if check is not None:
                check(values[-1])
        except ValueError:
            return False
        return True
    if kind in ("checkbox", "toggle"):
        return values[-1].lower() in ("true", "false")
    return True


def default_value(kind: str, spec: dict):
    """The value a widget drawn with `spec` shows when nothing else sets it."""
    options = list(spec.get("tabs" if kind == "tabs" else "options", ()))
    if kind in NUMBERS:
        value = spec.get("value")
        return spec.get("min_value", 0) if value is None or value == "min" else value
    if kind in ("selectbox", "radio"):
        index = spec.get("index", 0)
        return None if index is None or not options else options[index]
    if kind == "select_slider":
        return spec.get("value", options[0] if options else None)
    if kind == "multiselect":
        chosen = spec.get("default")
        return [] if chosen is None else list(chosen) if isinstance(chosen, (list, tuple)) else [chosen]
    if kind == "tabs":
        return spec.get("default") or (options[0] if options else None)
    if kind in TEXTS:
        return spec.get("value", "")
    return spec.get("value")


def _warn() -> None:
    place = st.session_state.get(PLACE)
    try:
        (st if place is None else place).warning(WARNING, icon="🔗")
    except StreamlitAPIException:  # a fragment's own rerun cannot write above the fragment
        pass
