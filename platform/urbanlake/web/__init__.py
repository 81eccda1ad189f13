"""The web catalog: server-rendered pages for people (search, datasets, status), made from the
same catalog actions as ``/api/v1`` and served by the same ``urbanlake serve``.

Every page reads without JavaScript; scripts only enhance (charts, maps). No page loads anything
from another host: styles, scripts and the basemap are files of this package.
"""

from __future__ import annotations

from urbanlake.web.app import install

__all__ = ["install"]
