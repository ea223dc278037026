"""Text from files and users, shown as itself.

Streamlit renders Markdown almost everywhere it shows text: st.markdown, st.caption,
st.error / warning / info / success, st.toast, widget labels, help tooltips, radio
and select-slider options, image captions, progress texts, metric labels and values,
expander labels. A name that comes from a file or a user (file names in data sets and
zips, run, data set, class and direction names, skip reasons, notes, exception messages
that quote them) goes through `plain` before it is put into any of them, so that
"[Archive damaged: click here](https://evil.example/fix)" stays a name and
"![](https://evil.example/b.gif)" loads nothing. Plain-text places (selectbox and
multiselect options, st.dataframe, st.code, st.text) show it as it is.
"""
import re

# CommonMark lets a backslash escape any ASCII punctuation character, and an escaped
# character is always literal text: it cannot open a link or image, an HTML tag or entity,
# emphasis, a heading or list, a LaTeX formula ($) or one of Streamlit's :directives:.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def plain(text) -> str:
    """`text` with every ASCII punctuation character backslash-escaped: it renders as itself."""
    return _PUNCTUATION.sub(r"\\\1", str(text))


def sentence(error) -> str:
    """An exception's message (or any text) as an escaped sentence: capitalised, with a full stop."""
    text = str(error).strip() or "Something went wrong"
    text = text[0].upper() + text[1:]
    return plain(text if text.endswith((".", "!", "?")) else text + ".")
