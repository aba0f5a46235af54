"""paho decodes MQTT 5 PUBLISH properties with shared lookup tables
(ecohub.ingest.paho_properties): the properties each message carries stay its own."""

from __future__ import annotations

import struct

import pytest
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import ecohub.ingest.mqtt  # noqa: F401 - the MQTT door shares the tables when imported
from ecohub.ingest.paho_properties import SharedTableProperties, share_property_tables

PUBLISH_QOS1 = 0x32


def _publish(topic: str, mid: int, properties: Properties, payload: bytes) -> bytes:
    """A PUBLISH packet after its fixed header, as paho's decoder receives it."""
    name = topic.encode()
    header = struct.pack("!H", len(name)) + name + struct.pack("!H", mid)
    return header + properties.pack() + payload


def _decode(packet: bytes) -> Properties:
    decoded = _packet.decode_publish(PUBLISH_QOS1, packet, MQTTProtocolVersion.MQTTv5)
    assert decoded.payload == b"{}"
    assert decoded.properties is not None
    return decoded.properties


def test_the_mqtt_door_makes_paho_share_the_tables() -> None:
    assert share_property_tables() is True
    assert _packet.Properties is SharedTableProperties


def test_each_message_keeps_the_properties_it_carries() -> None:
    first = Properties(PacketTypes.PUBLISH)
    first.ContentType = "application/json"
    first.MessageExpiryInterval = 60
    first.UserProperty = [("station", "1001A"), ("unit", "µg/m³")]
    bare = Properties(PacketTypes.PUBLISH)

    decoded = _decode(_publish("ecohub/measurements/P1", 7, first, b"{}"))
    other = _decode(_publish("ecohub/measurements/P2", 8, bare, b"{}"))

    assert isinstance(decoded, SharedTableProperties)
    assert decoded.ContentType == "application/json"
    assert decoded.MessageExpiryInterval == 60
    assert decoded.UserProperty == [("station", "1001A"), ("unit", "µg/m³")]
    # Nothing of the first message shows on the second.
    assert not hasattr(other, "ContentType") and not hasattr(other, "UserProperty")
    assert other.isEmpty()


def test_decoding_leaves_the_shared_tables_as_paho_builds_them() -> None:
    properties = Properties(PacketTypes.PUBLISH)
    properties.ResponseTopic = "ecohub/answers"
    properties.CorrelationData = b"\x01\x02"
    for mid in range(1, 50):
        _decode(_publish("t", mid, properties, b"{}"))
    fresh = Properties(PacketTypes.PUBLISH)
    assert SharedTableProperties._shared == {
        name: value for name, value in vars(fresh).items() if name != "packetType"
    }


def test_a_paho_laid_out_otherwise_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    class Elsewhere:
        pass

    monkeypatch.setattr(_packet, "Properties", Elsewhere)
    assert share_property_tables() is False
    assert _packet.Properties is Elsewhere
