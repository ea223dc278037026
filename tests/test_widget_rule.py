"""The widget rule of ui/state.py, checked on every page: a widget that holds a choice has a key.

Without one, Streamlit identifies the widget by its parameters, and a page that passes the
user's last choice back as its value loses every second change (issue 13)."""
import ast

from conftest import REPO

STATEFUL = {"selectbox", "multiselect", "slider", "select_slider", "radio", "number_input", "text_input",
            "text_area", "checkbox", "toggle", "file_uploader", "segmented_control", "pills", "color_picker",
            "date_input", "time_input", "data_editor", "tabs"}
SOURCES = [REPO / "Home.py", *sorted((REPO / "pages").glob("*.py")), *sorted((REPO / "ui").glob("*.py"))]


def unkeyed_widgets(source: str) -> list[str]:
    """'line widget' for each stateful widget call without key=, e.g. left.slider(...) or
    linked(st.slider, ...)."""
    def name(func) -> str:
        return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return [f"{node.lineno} {name(node.func)}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and name(node.func) in STATEFUL | {"linked"}
            and not any(k.arg == "key" for k in node.keywords)]


def test_every_stateful_widget_has_a_key():
    missing = [f"{path.relative_to(REPO)}:{w}" for path in SOURCES for w in unkeyed_widgets(path.read_text())]
    assert not missing, "widgets without key= (see ui/state.py):\n" + "\n".join(missing)


def test_the_check_finds_an_unkeyed_widget():
    page = ("import streamlit as st\nleft, = st.columns(1)\nx = left.slider('x', 0, 9, 3)\n"
            "y = st.slider('y', 0, 9, 3, key='y')\ntabs = st.tabs(['a', 'b'])\nz = linked(st.radio, 'z', [1])\n")
    assert unkeyed_widgets(page) == ["3 slider", "5 tabs", "6 linked"]


def test_every_linked_widget_goes_through_the_link_check():
    """A widget bound to the URL takes values anyone can write: ui.links.linked checks them first,
    and a page that draws one reserves the place of the link warning (ui.links.notice)."""
    for path in SOURCES:
        source, where = path.read_text(), str(path.relative_to(REPO))
        if where in ("ui/state.py", "ui/links.py"):  # where LINKED is defined, used
            continue
        assert "**LINKED" not in source and 'bind="query-params"' not in source, \
            f"{where}: draw LINKED widgets with ui.links.linked"
        if where.startswith("pages/") and ("linked(" in source or "pick_" in source):
            assert "notice()" in source, f"{where}: call ui.links.notice() under the title"
