"""``urbanlake sandbox``: a seeded fictional city served over the real transport protocols.

GTFS Schedule, GTFS-Realtime, GBFS 2.3/3.0 and road-segment speeds on 127.0.0.1, moving with an
injectable clock and with faults to switch on; see docs/sandbox.md.
"""

from urbanlake.sandbox.city import City
from urbanlake.sandbox.server import FAULTS, SandboxServer, parse_faults

__all__ = ["FAULTS", "City", "SandboxServer", "parse_faults"]
