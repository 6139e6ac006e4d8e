from __future__ import annotations

import re
from pathlib import Path

import pytest

from smsdispatch.tools.localkafka import KAFKA_VERSION, LocalKafkaError, cached_libs, ensure_jars, kafka_home
from smsdispatch.tools.localkafka._jars import jars_fingerprint, packaged_text

# Stands in for Maven: logs each call, then "copies" the broker jar into -DoutputDirectory (or fails).
FAKE_MVN = """#!/bin/sh
echo "$@" >> "{calls}"
[ -f "{fail_flag}" ] && {{ echo "[ERROR] Could not resolve dependencies"; exit 1; }}
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${{arg#-DoutputDirectory=}}";; esac
done
mkdir -p "$out" && touch "$out/kafka_2.13-{version}.jar" "$out/kafka-clients-{version}.jar"
"""


@pytest.fixture
def fake_mvn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Put a fake ``mvn`` first on PATH; returns the file its calls are logged to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "mvn-calls.txt"
    script = FAKE_MVN.format(calls=calls, fail_flag=tmp_path / "fail", version=KAFKA_VERSION)
    (bin_dir / "mvn").write_text(script)
    (bin_dir / "mvn").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return calls


def test_jars_are_fetched_once_then_reused_without_maven(fake_mvn: Path, tmp_path: Path) -> None:
    home = tmp_path / "cache"
    messages: list[str] = []

    libs = ensure_jars(home, progress=messages.append)
    again = ensure_jars(home, progress=messages.append)

    assert libs == again == home / "libs"
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()
    assert len(fake_mvn.read_text().splitlines()) == 1
    assert len(messages) == 1
    assert "Fetching the Apache Kafka" in messages[0]


def test_maven_copies_the_runtime_scope_of_the_shipped_pom(fake_mvn: Path, tmp_path: Path) -> None:
    home = tmp_path / "cache"

    ensure_jars(home)

    arguments = fake_mvn.read_text().split()
    assert "dependency:copy-dependencies" in arguments
    assert "-DincludeScope=runtime" in arguments
    assert f"-Dkafka.version={KAFKA_VERSION}" in arguments
    assert (home / "pom.xml").read_text() == packaged_text("pom.xml")


def test_failed_fetch_points_at_the_maven_log_and_leaves_nothing_marked_complete(
    fake_mvn: Path, tmp_path: Path
) -> None:
    home = tmp_path / "cache"
    (tmp_path / "fail").touch()

    with pytest.raises(LocalKafkaError, match=re.escape(str(home / "mvn.log"))):
        ensure_jars(home)

    assert cached_libs(home) is None
    assert "Could not resolve dependencies" in (home / "mvn.log").read_text()


def test_half_finished_fetch_is_redone(fake_mvn: Path, tmp_path: Path) -> None:
    home = tmp_path / "cache"
    (home / "libs").mkdir(parents=True)
    (home / "libs" / "kafka-clients-partial.jar").touch()  # an interrupted copy: no completion marker

    libs = ensure_jars(home)

    assert len(fake_mvn.read_text().splitlines()) == 1
    assert not (libs / "kafka-clients-partial.jar").exists()
    assert cached_libs(home) == libs


def test_jars_fetched_for_another_pom_are_fetched_again(fake_mvn: Path, tmp_path: Path) -> None:
    home = tmp_path / "cache"
    (home / "libs").mkdir(parents=True)
    (home / "libs" / ".complete").write_text("fingerprint-of-an-older-pom\n")

    assert cached_libs(home) is None
    ensure_jars(home)
    assert (home / "libs" / ".complete").read_text().strip() == jars_fingerprint()


def test_jar_cache_location_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SMSDISPATCH_KAFKA_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kafka_home() == tmp_path / "xdg" / "smsdispatch" / f"kafka-{KAFKA_VERSION}"

    monkeypatch.setenv("SMSDISPATCH_KAFKA_HOME", str(tmp_path / "mine"))
    assert kafka_home() == tmp_path / "mine"


def test_shipped_pom_defaults_to_the_kafka_version_the_code_asks_for() -> None:
    pom = packaged_text("pom.xml")

    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert "<artifactId>log4j-slf4j-impl</artifactId>" in pom  # a logging backend, or the broker logs nothing
