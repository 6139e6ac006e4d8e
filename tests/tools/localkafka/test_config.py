from __future__ import annotations

import base64
from pathlib import Path

import pytest

from smsdispatch.tools.localkafka import default_data_dir
from smsdispatch.tools.localkafka._config import BrokerConfig, new_cluster_id, render_server_properties


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {pair[0]: pair[1] for pair in pairs}


def test_server_properties_describe_one_kraft_node_on_loopback(tmp_path: Path) -> None:
    props = _properties(render_server_properties(BrokerConfig(port=19092, controller_port=19093, data_dir=tmp_path)))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "kraft")


def test_every_replication_setting_is_one_because_there_is_one_node(tmp_path: Path) -> None:
    props = _properties(render_server_properties(BrokerConfig(port=9092, controller_port=9093, data_dir=tmp_path)))

    replication = {k: v for k, v in props.items() if k.endswith((".replication.factor", ".min.isr"))}
    assert set(replication) >= {
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    }
    assert set(replication.values()) == {"1"}


def test_cluster_id_is_16_random_bytes_in_unpadded_urlsafe_base64() -> None:
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_default_data_dir_is_per_port_under_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))

    assert default_data_dir(9092) == tmp_path / "smsdispatch" / "kafka-9092"
    assert default_data_dir(29092) == tmp_path / "smsdispatch" / "kafka-29092"


def test_default_data_dir_falls_back_to_local_state_in_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert default_data_dir(9092) == tmp_path / ".local" / "state" / "smsdispatch" / "kafka-9092"
