"""docs/contract.md stays in step with the code.

Each test reads one of the page's markdown tables and compares the names in its first column with what the code
defines, as sets: a field, error code, topic, setting, CLI verb or option, dispatch-log column or metric added to
(or removed from) the code without the page changing with it fails here, and so does a name the page invents.
The tables are found by the heading they sit under, so the page's wording around them is free to change.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from smsdispatch.adapters.storage.tables import dispatch_log
from smsdispatch.cli import build_parser
from smsdispatch.contract import (
    ErrorCode,
    ErrorInfo,
    SmsDispatched,
    SmsFailed,
    SmsRequested,
    SmsStatus,
    SuppressionRecord,
    TenantConfig,
    TenantRecord,
    topics,
)
from smsdispatch.contract.settings import Settings
from smsdispatch.core.metrics import DispatchMetrics
from smsdispatch.tools.simulator.formats import sim_message_summary
from smsdispatch.tools.simulator.store import Message

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "contract.md"
EXTERNAL_CONTRACT = ROOT / "docs" / "upstream-contract.md"

# -- a small markdown table parser ---------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_CODE_SPAN = re.compile(r"`([^`]*)`")

Table = list[dict[str, str]]


@dataclass
class Section:
    """The text under one heading, up to the next heading of any level, and the tables in it."""

    title: str
    tables: list[Table] = field(default_factory=list)


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner.removeprefix("|")
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip().replace("\\|", "|") for cell in _UNESCAPED_PIPE.split(inner)]


def _is_separator(line: str) -> bool:
    return all(re.fullmatch(r":?-{3,}:?", cell) for cell in _cells(line))


def _table(lines: list[str]) -> Table:
    """Rows as dicts keyed by the header's cells. The second line must be the ``|---|`` separator."""
    assert len(lines) >= 2, f"a table needs a header and a separator: {lines}"
    assert _is_separator(lines[1]), f"not a markdown table: {lines[:2]}"
    header = _cells(lines[0])
    rows = []
    for line in lines[2:]:
        cells = _cells(line)
        assert len(cells) == len(header), f"row has {len(cells)} cells, header {len(header)}: {line}"
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def parse_sections(text: str) -> list[Section]:
    """Every heading of ``text`` with the tables under it (code fences are skipped)."""
    sections = [Section(title="")]
    pending: list[str] = []
    in_fence = False

    def close_table() -> None:
        if pending:
            sections[-1].tables.append(_table(pending))
            pending.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            close_table()
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        heading = _HEADING.match(line)
        if heading:
            close_table()
            sections.append(Section(title=heading.group(2).replace("`", "").strip()))
        elif line.lstrip().startswith("|"):
            pending.append(line)
        else:
            close_table()
    close_table()
    return sections


def tables_under(title: str, text: str | None = None) -> list[Table]:
    found = [section for section in parse_sections(text or DOC.read_text(encoding="utf-8")) if section.title == title]
    assert len(found) == 1, f"expected exactly one heading {title!r} in docs/contract.md, found {len(found)}"
    return found[0].tables


def only_table(title: str) -> Table:
    tables = tables_under(title)
    assert len(tables) == 1, f"expected one table under {title!r}, found {len(tables)}"
    return tables[0]


def name_of(cell: str) -> str:
    """The name a first-column cell documents: the first code span's first word (``--mps N`` -> ``--mps``)."""
    span = _CODE_SPAN.search(cell)
    text = span.group(1) if span else cell
    return text.split()[0] if text.split() else ""


def names(table: Table, column: str | None = None) -> list[str]:
    column = column or next(iter(table[0]))
    return [name_of(row[column]) for row in table]


def as_set(listed: list[str]) -> set[str]:
    duplicates = sorted({name for name in listed if listed.count(name) > 1})
    assert not duplicates, f"listed twice: {duplicates}"
    return set(listed)


# -- the parser itself ----------------------------------------------------------------------------------------


def test_table_parser_reads_headings_rows_and_escaped_pipes() -> None:
    text = "# A\n\n| x | y |\n|---|---|\n| `a b` | 1 \\| 2 |\n\n## B\n\n```\n| not | a table |\n```\n"

    sections = parse_sections(text)

    assert [section.title for section in sections] == ["", "A", "B"]
    assert sections[1].tables == [[{"x": "`a b`", "y": "1 | 2"}]]
    assert sections[2].tables == []
    assert name_of("`--account SID:TOKEN[:FROM,…]`") == "--account"


# -- message values -------------------------------------------------------------------------------------------


def model_fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


MESSAGE_TABLES: dict[str, set[str]] = {
    "SmsRequested": model_fields(SmsRequested),
    "SmsDispatched": model_fields(SmsDispatched),
    "SmsFailed": model_fields(SmsFailed) | {f"error.{name}" for name in ErrorInfo.model_fields},
    "SmsStatus": model_fields(SmsStatus),
    "TenantRecord": model_fields(TenantRecord),
    "Decrypted tenant configuration": model_fields(TenantConfig),
    "SuppressionRecord": model_fields(SuppressionRecord),
}


@pytest.mark.parametrize("heading", list(MESSAGE_TABLES))
def test_each_message_table_lists_exactly_the_models_fields(heading: str) -> None:
    documented = as_set(names(only_table(heading), "field"))

    assert documented == MESSAGE_TABLES[heading]


def test_smsrequested_fields_documented_as_required_are_the_models_required_fields() -> None:
    rows = only_table("SmsRequested")
    documented = {name_of(row["field"]) for row in rows if row["rule"].startswith("required")}

    assert documented == {name for name, info in SmsRequested.model_fields.items() if info.is_required()}


def test_error_code_table_lists_exactly_the_error_codes() -> None:
    documented = as_set(names(only_table("Error codes"), "code"))

    assert documented == {code.value for code in ErrorCode}


# -- topics ---------------------------------------------------------------------------------------------------


def code_topic_names() -> set[str]:
    declared = {value for name, value in vars(topics).items() if name.isupper() and isinstance(value, str)}
    return declared | {spec.name for spec in topics.CONTRACT_TOPICS}


def test_topics_table_lists_exactly_the_topics_of_the_code() -> None:
    documented = as_set(names(only_table("Topics"), "topic"))

    assert documented == code_topic_names()


def test_topics_table_shows_each_topics_cleanup_policy() -> None:
    documented = {name_of(row["topic"]): row["cleanup"].strip("`") for row in only_table("Topics")}

    assert documented == {spec.name: spec.config.get("cleanup.policy", "delete") for spec in topics.CONTRACT_TOPICS}


# -- environment ----------------------------------------------------------------------------------------------


def shown_default(value: object) -> str | None:
    """A Settings default as the page writes it: ``600.0`` as ``600``, None as "none"."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def documented_default(cell: str) -> str | None:
    if cell.lower().startswith("none"):
        return None
    span = _CODE_SPAN.search(cell)
    assert span is not None, f"a default must be `value` or start with 'none': {cell!r}"
    return span.group(1)


def test_settings_table_lists_every_settings_field_as_an_smsdispatch_variable() -> None:
    documented = as_set(names(only_table("Service settings"), "variable"))

    assert documented == {f"SMSDISPATCH_{name.upper()}" for name in Settings.model_fields}


def test_settings_table_shows_each_fields_default() -> None:
    documented = {
        name_of(row["variable"]): documented_default(row["default"]) for row in only_table("Service settings")
    }
    expected = {
        f"SMSDISPATCH_{name.upper()}": shown_default(info.get_default(call_default_factory=True))
        for name, info in Settings.model_fields.items()
    }

    assert documented == expected


# -- what the external contract names is marked stable --------------------------------------------------------


def external_names(header: str) -> set[str]:
    """Names in the first column of every table of docs/upstream-contract.md whose first header is ``header``."""
    text = EXTERNAL_CONTRACT.read_text(encoding="utf-8")
    found = set()
    for section in parse_sections(text):
        for table in section.tables:
            if next(iter(table[0])) == header:
                found.update(names(table, header))
    return found


def marked_contract(table: Table, column: str) -> set[str]:
    return {name_of(row[column]) for row in table if row["status"].startswith("contract")}


#: Names the upstream contract's additions of 2026-12-07 bring that the code does not have yet: scheduled sends,
#: cost and retention (issue 26). Each leaves this set with the code that implements it.
NOT_YET_IMPLEMENTED = {"canceled", "SMSDISPATCH_LOG_RETENTION_DAYS", "SMSDISPATCH_LOG_REDACT_DAYS"}


@pytest.mark.parametrize(
    ("heading", "column"),
    [("Topics", "topic"), ("Error codes", "code"), ("Service settings", "variable")],
)
def test_names_marked_contract_are_exactly_those_the_external_contract_lists(heading: str, column: str) -> None:
    assert marked_contract(only_table(heading), column) == external_names(column) - NOT_YET_IMPLEMENTED


# -- command line ---------------------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def positional_choices(parser: argparse.ArgumentParser) -> set[str]:
    return {
        str(choice)
        for action in parser._actions
        if not action.option_strings and action.choices and not isinstance(action, argparse._SubParsersAction)
        for choice in action.choices
    }


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def every_command() -> dict[str, argparse.ArgumentParser]:
    """``smsdispatch VERB`` and ``smsdispatch VERB ACTION`` for every verb and action the parser registers."""
    commands: dict[str, argparse.ArgumentParser] = {}
    for verb, parser in subcommands(build_parser()).items():
        actions = subcommands(parser)
        commands[f"smsdispatch {verb}"] = parser
        commands.update({f"smsdispatch {verb} {action}": sub for action, sub in actions.items()})
    return commands


def test_verbs_table_lists_exactly_the_subcommands_the_parser_registers() -> None:
    documented = as_set(names(only_table("Verbs"), "verb"))

    assert documented == set(subcommands(build_parser()))


@pytest.mark.parametrize("command", sorted(every_command()))
def test_each_command_documents_exactly_its_options(command: str) -> None:
    tables = [table for table in tables_under(command) if next(iter(table[0])) == "option"]
    documented = as_set([name for table in tables for name in names(table, "option")])

    assert documented == flags(every_command()[command])


@pytest.mark.parametrize("command", sorted(every_command()))
def test_each_command_documents_exactly_its_actions(command: str) -> None:
    parser = every_command()[command]
    tables = [table for table in tables_under(command) if next(iter(table[0])) == "action"]
    documented = as_set([name for table in tables for name in names(table, "action")])

    assert documented == set(subcommands(parser)) | positional_choices(parser)


# -- the worker's metrics, the dispatch log, the simulator ----------------------------------------------------


def test_metrics_table_lists_exactly_the_workers_own_metrics() -> None:
    documented = as_set(names(only_table("Metrics"), "metric"))
    families = DispatchMetrics().registry.collect()

    assert documented == {family.name + ("_total" if family.type == "counter" else "") for family in families}


def test_dispatch_log_table_lists_exactly_the_tables_columns() -> None:
    documented = as_set(names(only_table("Dispatch log"), "column"))

    assert documented == {column.name for column in dispatch_log.columns}
    assert dispatch_log.name in DOC.read_text(encoding="utf-8")


def test_sim_messages_keys_table_lists_exactly_the_keys_of_an_entry() -> None:
    message = Message(
        sid="SM" + "0" * 32,
        account_sid="AC" + "0" * 32,
        requested_sender="+15005550006",
        from_number="+15005550006",
        to="+14155552671",
        body="hi",
        service_sid=None,
        segments=1,
        created_mono=0.0,
        created_wall=1_700_000_000.0,
        steps=((0.0, "queued"),),
    )
    tables = [table for table in tables_under("Twilio simulator") if next(iter(table[0])) == "key"]
    assert len(tables) == 1
    documented = as_set(names(tables[0], "key"))

    assert documented == set(sim_message_summary(message, 0.0))
