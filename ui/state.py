"""How every widget keeps its value: one rule for all pages.

A widget without a key is identified by its parameters. Feeding the value the user
just chose back in as `value=` or `index=` therefore made it a new widget on the
next run, which threw the next change away: every second change was lost. So:

- every widget that holds a choice has a key and never gets its own value back;
- LINKED widgets keep their value in the URL (Streamlit's bind="query-params"),
  so a copied link reproduces the view, and across page switches; they are drawn
  through ui.links.linked, which checks a link's value before the widget takes it;
- KEPT widgets keep their value across page switches, not in the URL;
- code that changes a widget (a button, a reset) writes st.session_state[key]
  in a callback, or, after the widget is drawn, with set_on_next_run;
- widgets that take turns in one place (SeFa's sliders, GANSpace's) use swap_in and
  shelved, so a group that comes back has the values it left with.

tests/test_widget_rule.py checks the first two points on every page.
"""
import streamlit as st

LINKED = {"bind": "query-params", "persist_state": "session"}
KEPT = {"persist_state": "session"}


def keep_valid(key: str, options, default=None) -> None:
    """Before drawing a choice widget: a remembered or linked value that is no longer one
    of the options (a deleted run, another run's checkpoint) falls back to `default`
    (or the first option), so the widget, the URL and the page agree. For a
    multiselect, the values that are gone are dropped."""
    options = list(options)
    if key not in st.session_state or not options:
        return
    value = st.session_state[key]
    if isinstance(value, list):  # a multiselect keeps what is still there
        if any(v not in options for v in value):
            st.session_state[key] = [v for v in value if v in options] or list(default or [])
    elif value not in options:
        st.session_state[key] = default if default in options else options[0]


def set_values(values: dict) -> None:
    """Callback: set several widgets at once (reset buttons, picking a seed)."""
    shelf = st.session_state.get(SHELF, {})
    for key, value in values.items():
        st.session_state[key] = value
        if key in shelf:
            shelf[key] = value


SHELF = "_shelf"  # key -> the value a swapped-out widget had when last drawn
SHOWN = "_shown"  # place -> which group of widgets it showed last


def swap_in(place: str, group: str, keys: list[str]) -> None:
    """Before drawing a group of widgets that takes the place of another (SeFa's sliders and
    GANSpace's): when the group comes back, set its widgets to the values they had when
    last drawn. Streamlit drops a hidden widget's state on some reruns (fragment reruns),
    persist_state or not; draw each of them with `shelved`."""
    shown, shelf = st.session_state.setdefault(SHOWN, {}), st.session_state.setdefault(SHELF, {})
    if shown.get(place) != group:
        for key in keys:
            if key in shelf:
                st.session_state[key] = shelf[key]
        shown[place] = group


def shelved(draw, key: str, **kwargs):
    """draw(key=key, **kwargs), remembering the value for swap_in; returns the value."""
    st.session_state.setdefault(SHELF, {})[key] = value = draw(key=key, **kwargs)
    return value


def shelf_keys() -> list[str]:
    return list(st.session_state.get(SHELF, {}))


PENDING = "_set-on-next-run"


def set_on_next_run(values: dict) -> None:
    """Set widgets that are already drawn in this run (Streamlit forbids that), at the start of
    the next run; pages call apply_pending() first thing. Then st.rerun() or switch pages."""
    st.session_state.setdefault(PENDING, {}).update(values)


def apply_pending() -> None:
    for key, value in st.session_state.pop(PENDING, {}).items():
        st.session_state[key] = value


def follow_default(key: str, default) -> None:
    """Keep a keyed widget on its suggested default (which may change: a run name with
    the time, the recipe's batch size, the newest training step) until the user edits it."""
    shadow = f"{key}-default"
    if key not in st.session_state or st.session_state[key] == st.session_state.get(shadow):
        st.session_state[key] = default
    st.session_state[shadow] = default
