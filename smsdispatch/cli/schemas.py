"""Write the JSON Schema of every topic value (sms.requested, sms.dispatched, sms.failed, sms.status,
sms.tenants, sms.suppressions), one file per value, for producers and consumers in other languages.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from smsdispatch.cli._common import CliError
from smsdispatch.contract.jsonschema import json_schemas, render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=Path("schemas"),
        help="directory to write the *.schema.json files to, created if missing (default: schemas)",
    )


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, schema in json_schemas().items():
            path = out / name
            path.write_text(render(schema), encoding="utf-8")
            print(path)
    except OSError as exc:
        raise CliError(f"Cannot write the schemas to {out}: {exc.strerror or exc}.", 1) from None
    return 0
