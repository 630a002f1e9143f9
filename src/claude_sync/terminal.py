"""Text made safe to print. Text from the repository (paths, device names and messages that
quote them) never carries terminal control sequences (escape sequences could rewrite the
screen, set the window title, forge hyperlinks or hide text); remote URLs never carry
credentials."""

from __future__ import annotations

import re

# C0 controls but newline, DEL, C1 controls, and the Unicode bidi overrides that reorder
# what the user reads.
# Lone surrogates too: valid in JSON (a JS string cut mid-emoji), they cannot be printed.
_CONTROL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_LINE_BREAKS = re.compile("[\n\r\u2028\u2029]")
# Up to the last @ before the host: a password may hold an unescaped @.
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s?#\"']*@", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"([?&][^=&\s]*(?:token|key|secret|signature|password|credential|sig|auth)[^=&\s]*=)"
    r"[^&\s\"']*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Text safe to print: user names, passwords and tokens in URLs (user information and
    query parameters such as X-Amz-Signature or access_token) are cut out, wherever in the
    text a URL appears."""
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1", text))


def clean(text: str) -> str:
    """Text with every control character shown as `?`; line breaks kept (messages of ours
    have several lines)."""
    return _CONTROL.sub("?", text)


def clean_value(text: str) -> str:
    """One value (a device name, a path) on one line: line breaks are replaced too."""
    return clean(_LINE_BREAKS.sub("?", text))
