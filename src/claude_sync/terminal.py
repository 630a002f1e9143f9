"""Text from the repository made safe to print: paths, device names and messages that quote
them never carry terminal control sequences (escape sequences could rewrite the screen, set
the window title, forge hyperlinks or hide text)."""

from __future__ import annotations

import re

# C0 controls but newline, DEL, C1 controls, and the Unicode bidi overrides that reorder
# what the user reads.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\n\r\u2028\u2029]")


def clean(text: str) -> str:
    """Text with every control character shown as `?`; line breaks kept (messages of ours
    have several lines)."""
    return _CONTROL.sub("?", text)


def clean_value(text: str) -> str:
    """One value (a device name, a path) on one line: line breaks are replaced too."""
    return clean(_LINE_BREAKS.sub("?", text))
