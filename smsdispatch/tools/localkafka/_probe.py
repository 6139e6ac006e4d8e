"""A blocking Kafka Metadata request over a plain socket.

``start`` and ``status`` are synchronous (the CLI, test fixtures and the demo call them outside an event loop),
so the probe speaks the wire protocol directly rather than spinning up an asyncio client. Metadata v4 is the
oldest version Kafka 4 still answers (KIP-896) and needs no flexible-version encoding.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

_METADATA_API_KEY = 3
_METADATA_VERSION = 4
_CLIENT_ID = b"smsdispatch-localkafka"


@dataclass(frozen=True)
class Partition:
    index: int
    error_code: int
    leader: int


@dataclass(frozen=True)
class Topic:
    name: str
    error_code: int
    partitions: list[Partition]

    @property
    def ready(self) -> bool:
        """Created, with a leader for every partition: a produce would succeed now."""
        return (
            self.error_code == 0
            and bool(self.partitions)
            and all(p.error_code == 0 and p.leader >= 0 for p in self.partitions)
        )


@dataclass(frozen=True)
class ClusterMetadata:
    brokers: list[tuple[int, str, int]]
    controller_id: int
    topics: dict[str, Topic] = field(default_factory=dict)


class ProtocolError(Exception):
    """The peer answered something that is not a Kafka Metadata v4 response."""


def encode_metadata_request(topics: list[str], auto_create: bool, correlation_id: int = 1) -> bytes:
    """A size-prefixed Metadata v4 request (request header v1) for ``topics``."""
    client_id = struct.pack(">h", len(_CLIENT_ID)) + _CLIENT_ID
    header = struct.pack(">hhi", _METADATA_API_KEY, _METADATA_VERSION, correlation_id) + client_id
    body = struct.pack(">i", len(topics))
    for topic in topics:
        name = topic.encode()
        body += struct.pack(">h", len(name)) + name
    body += struct.pack(">?", auto_create)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def fetch_metadata(
    host: str, port: int, topics: list[str], *, auto_create: bool = False, timeout: float = 5.0
) -> ClusterMetadata:
    """Ask the broker at ``host:port`` for its brokers and ``topics``. Raises OSError or ProtocolError."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(encode_metadata_request(topics, auto_create))
        (size,) = struct.unpack(">i", _read_exactly(conn, 4))
        if not 0 < size < 64 * 1024 * 1024:
            raise ProtocolError(f"implausible response size {size}")
        return decode_metadata_response(_read_exactly(conn, size))


def decode_metadata_response(payload: bytes) -> ClusterMetadata:
    """Parse a Metadata v4 response (after its size prefix)."""
    reader = _Reader(payload)
    reader.int32()  # correlation id: one request per connection
    reader.int32()  # throttle time
    brokers = []
    for _ in range(reader.int32()):
        node_id, host, port = reader.int32(), reader.string(), reader.int32()
        reader.string()  # rack
        brokers.append((node_id, host or "", port))
    reader.string()  # cluster id
    controller_id = reader.int32()
    topics: dict[str, Topic] = {}
    for _ in range(reader.int32()):
        error_code, name = reader.int16(), reader.string() or ""
        reader.int8()  # is_internal
        partitions = []
        for _ in range(reader.int32()):
            p_error, index, leader = reader.int16(), reader.int32(), reader.int32()
            reader.int32_array()  # replicas
            reader.int32_array()  # in-sync replicas
            partitions.append(Partition(index=index, error_code=p_error, leader=leader))
        topics[name] = Topic(name=name, error_code=error_code, partitions=partitions)
    return ClusterMetadata(brokers=brokers, controller_id=controller_id, topics=topics)


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise ProtocolError("the connection closed mid-response")
        chunks += chunk
    return bytes(chunks)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def _unpack(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self._offset + size > len(self._data):
            raise ProtocolError("the response is shorter than its fields")
        (value,) = struct.unpack_from(fmt, self._data, self._offset)
        self._offset += size
        return int(value)

    def int8(self) -> int:
        return self._unpack(">b")

    def int16(self) -> int:
        return self._unpack(">h")

    def int32(self) -> int:
        return self._unpack(">i")

    def string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        if self._offset + length > len(self._data):
            raise ProtocolError("the response is shorter than its strings")
        text = self._data[self._offset : self._offset + length].decode("utf-8", "replace")
        self._offset += length
        return text

    def int32_array(self) -> list[int]:
        return [self.int32() for _ in range(max(self.int32(), 0))]
