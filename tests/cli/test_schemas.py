"""`smsdispatch schemas [--out DIR]`: one JSON Schema file per topic value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smsdispatch.cli import main
from smsdispatch.contract.jsonschema import json_schemas, render

EXPECTED = {
    "sms.requested.schema.json",
    "sms.dispatched.schema.json",
    "sms.failed.schema.json",
    "sms.status.schema.json",
    "sms.tenants.schema.json",
    "sms.suppressions.schema.json",
}


def test_schemas_writes_one_file_per_value_into_a_new_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nested" / "dir"
    assert main(["schemas", "--out", str(out)]) == 0
    assert {path.name for path in out.iterdir()} == EXPECTED
    for name, schema in json_schemas().items():
        text = (out / name).read_text(encoding="utf-8")
        assert text == render(schema)
        assert json.loads(text)["$schema"].startswith("https://json-schema.org/")
    assert set(capsys.readouterr().out.splitlines()) == {str(out / name) for name in EXPECTED}


def test_schemas_writes_to_schemas_in_the_working_directory_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["schemas"]) == 0
    assert {path.name for path in (tmp_path / "schemas").iterdir()} == EXPECTED


def test_schemas_run_twice_gives_identical_files(tmp_path: Path) -> None:
    main(["schemas", "--out", str(tmp_path)])
    first = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    main(["schemas", "--out", str(tmp_path)])
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == first


def test_schemas_into_a_path_that_is_a_file_fails_with_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    occupied = tmp_path / "occupied"
    occupied.write_text("not a directory")
    assert main(["schemas", "--out", str(occupied)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"smsdispatch schemas: Cannot write the schemas to {occupied}: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["schemas", "--out"], ["schemas", "--format", "yaml"], ["schemas", "extra"]])
def test_schemas_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: smsdispatch")
    assert "error:" in err
