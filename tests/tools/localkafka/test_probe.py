from __future__ import annotations

import struct

import pytest

from smsdispatch.tools.localkafka._probe import ProtocolError, decode_metadata_response, encode_metadata_request


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(text)) + text.encode()


def _metadata_v4_response(leader: int, topic_error: int = 0) -> bytes:
    body = struct.pack(">ii", 7, 0)  # correlation id, throttle time
    body += struct.pack(">i", 1) + struct.pack(">i", 1) + _string("127.0.0.1") + struct.pack(">i", 9092)
    body += _string(None)  # rack
    body += _string("cluster-id") + struct.pack(">i", 1)  # cluster id, controller id
    body += struct.pack(">i", 1) + struct.pack(">h", topic_error) + _string("smsdispatch.ready") + b"\x00"
    body += struct.pack(">i", 1) + struct.pack(">hii", 0, 0, leader)
    body += struct.pack(">ii", 1, 1) + struct.pack(">ii", 1, 1)  # replicas [1], isr [1]
    return body


def test_metadata_request_is_a_size_prefixed_v4_request_for_the_named_topics() -> None:
    request = encode_metadata_request(["t1"], auto_create=True, correlation_id=7)

    (size,) = struct.unpack(">i", request[:4])
    assert size == len(request) - 4
    api_key, api_version, correlation_id = struct.unpack(">hhi", request[4:12])
    assert (api_key, api_version, correlation_id) == (3, 4, 7)
    assert request.endswith(struct.pack(">i", 1) + _string("t1") + b"\x01")


def test_metadata_response_lists_brokers_and_topic_leaders() -> None:
    metadata = decode_metadata_response(_metadata_v4_response(leader=1))

    assert metadata.brokers == [(1, "127.0.0.1", 9092)]
    assert metadata.controller_id == 1
    assert metadata.topics["smsdispatch.ready"].ready


@pytest.mark.parametrize(("leader", "topic_error"), [(-1, 0), (1, 5)])
def test_topic_without_leader_or_with_error_is_not_ready(leader: int, topic_error: int) -> None:
    metadata = decode_metadata_response(_metadata_v4_response(leader=leader, topic_error=topic_error))

    assert not metadata.topics["smsdispatch.ready"].ready


def test_truncated_response_is_a_protocol_error_not_a_crash() -> None:
    with pytest.raises(ProtocolError):
        decode_metadata_response(_metadata_v4_response(leader=1)[:-6])
