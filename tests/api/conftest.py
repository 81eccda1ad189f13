"""The API tests share the session's demo city and server (``demo_project``, ``demo_api`` in
tests/conftest.py); the helpers live in tests/servers.py and are importable from here too."""

from __future__ import annotations

from tests.servers import ApiServer, free_port, new_project, sql, start_server

__all__ = ["ApiServer", "free_port", "new_project", "sql", "start_server"]
