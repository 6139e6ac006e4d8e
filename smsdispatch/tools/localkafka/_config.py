"""The broker's ``server.properties``: one node that is both broker and KRaft controller, on 127.0.0.1."""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 9092


def default_data_dir(port: int) -> Path:
    """``$XDG_STATE_HOME/smsdispatch/kafka-PORT``: outside any work tree, one broker per port."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "smsdispatch" / f"kafka-{port}"


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, as ``kafka-storage.sh``
    ``random-uuid`` prints. Kafka avoids ids that start with ``-`` (they read as command-line options)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class BrokerConfig:
    """Where one local broker listens and keeps its files."""

    port: int
    controller_port: int
    data_dir: Path

    @property
    def log_dirs(self) -> Path:
        """Kafka's own data (topic partitions and the KRaft metadata log)."""
        return self.data_dir / "kraft"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def render_server_properties(config: BrokerConfig) -> str:
    """The broker's configuration. Replication settings are 1 because there is exactly one node."""
    lines = [
        "# Written by smsdispatch.tools.localkafka on every start; edits are overwritten.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{HOST}:{config.controller_port}",
        f"listeners=PLAINTEXT://{HOST}:{config.port},CONTROLLER://{HOST}:{config.controller_port}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{config.port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={config.log_dirs}",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        # Consumers join a new group at once instead of waiting 3 s for more members: tests start faster.
        "group.initial.rebalance.delay.ms=0",
        # The default of 50 partitions takes seconds to create on a small machine and buys nothing on one node.
        "offsets.topic.num.partitions=10",
        "transaction.state.log.num.partitions=10",
        # Kafka's default, stated because the readiness probe relies on it (and Faust topics may too).
        "auto.create.topics.enable=true",
        # The cleaner's 128 MiB default dedupe buffer is sized for production; it shares our 1 GiB heap.
        "log.cleaner.dedupe.buffer.size=33554432",
        "num.network.threads=2",
        "num.io.threads=4",
    ]
    return "\n".join(lines) + "\n"
