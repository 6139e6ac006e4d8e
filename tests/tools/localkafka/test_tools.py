from __future__ import annotations

from pathlib import Path

import pytest

from smsdispatch.tools.localkafka import MissingToolError
from smsdispatch.tools.localkafka._tools import find_java, find_maven, parse_java_major


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "11.0.22" 2024-01-16 LTS', 11),
        ("no version here", None),
    ],
)
def test_java_major_version_is_read_from_java_version_output(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def _fake_java(directory: Path, version: str) -> Path:
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    return java


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(MissingToolError) as raised:
        find_java()

    message = str(raised.value)
    assert "Java 17 or newer" in message
    assert "apt-get install openjdk-17-jre-headless" in message
    assert message.count(". ") == 0  # one sentence


def test_java_older_than_17_is_refused_with_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake_java(tmp_path, "11.0.22")

    with pytest.raises(MissingToolError, match=r"is Java 11, but Kafka 4 needs Java 17 or newer"):
        find_java()


def test_java_home_takes_precedence_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "home" / "bin").mkdir(parents=True)
    (tmp_path / "path").mkdir()
    home_java = _fake_java(tmp_path / "home" / "bin", "21.0.1")
    _fake_java(tmp_path / "path", "11.0.22")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))

    assert find_java() == home_java


def test_missing_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(MissingToolError, match=r"Maven was not found.*apt-get install maven"):
        find_maven()
