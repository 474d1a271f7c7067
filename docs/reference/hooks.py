"""MkDocs hook: show the Sphinx roles of zoo's docstrings as plain code in the API reference.

The docstrings write ``:class:`~zoo.prediction.Predictions``` (readable in ``help()`` and
editors); rendered as Markdown that would show the role itself. Here it becomes
``Predictions`` (a leading ``~`` keeps the last dotted part, as Sphinx does).
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    shorten, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if shorten else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    return _ROLE.sub(_plain, html)
