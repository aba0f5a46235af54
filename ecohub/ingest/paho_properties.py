"""One set of MQTT 5 property tables for every message paho decodes.

paho-mqtt (the client under aiomqtt) builds a ``Properties`` object for every PUBLISH
it decodes under MQTT 5, and each one builds its own lookup tables: a list of the seven
property types, a dict of the 27 property names and a dict of the 27 properties with
their types and packet kinds, the latter filled by searching the list. The tables never
change after they are built; paho's methods only read them. Building them was a third of
the MQTT door's time (py-spy), and with one small JSON measurement per message the door
received about 29,000 values/s on the pipeline benchmark, 41,000 with the tables shared
(``python -m benchmarks.pipeline --messages 50000 --backends sqlite``).

:func:`share_property_tables` makes paho's packet decoder create its ``Properties``
from one prebuilt set of tables. It changes nothing else: the values a message carries
are still set on each object of its own. It does nothing when paho's decoder is not laid
out as expected (another paho version), so paho then runs as it is.
"""

from __future__ import annotations

from typing import Any, ClassVar

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_TABLES = ("types", "names", "properties")


class SharedTableProperties(Properties):
    """paho's ``Properties``, with the lookup tables of one prebuilt instance."""

    _shared: ClassVar[dict[str, Any]] = {}

    def __init__(self, packetType: int) -> None:  # paho's parameter name
        self.__dict__.update(self._shared)
        self.packetType = packetType


def share_property_tables() -> bool:
    """Let paho's PUBLISH decoder use :class:`SharedTableProperties`; True if it does."""
    try:
        from paho.mqtt import _packet
    except ImportError:
        return False
    if getattr(_packet, "Properties", None) is SharedTableProperties:
        return True
    if getattr(_packet, "Properties", None) is not Properties:
        return False
    template = Properties(PacketTypes.PUBLISH)
    state = dict(vars(template))
    state.pop("packetType", None)
    if set(state) != set(_TABLES):  # a paho that keeps other state: leave it alone
        return False
    SharedTableProperties._shared = state
    setattr(_packet, "Properties", SharedTableProperties)  # noqa: B010 - a module's name
    return True
