"""The ``smsdispatch`` console script.

Each verb lives in its own module under ``smsdispatch.cli`` exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their verb runs, so ``--help`` and small verbs stay fast.
Exit codes (docs/contract.md): 0 success, 1 operational failure, 2 bad usage. Errors are one sentence on stderr:
verbs raise :class:`CliError` and this module prints it; anything unexpected is reported the same way,
without a traceback, and never with a secret in it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaConnectionError

from smsdispatch.cli._common import CliError, broker_for_messages, unreachable_kafka

VERBS: dict[str, tuple[str, str]] = {
    "worker": ("smsdispatch.cli.worker", "run the Faust worker: dispatcher, log sink, status polling, webhooks"),
    "tenants": ("smsdispatch.cli.tenants", "register, verify, list and remove tenants"),
    "suppressions": ("smsdispatch.cli.suppressions", "list, add and remove opted-out numbers"),
    "keygen": ("smsdispatch.cli.keygen", "print a new encryption key"),
    "send": ("smsdispatch.cli.send", "publish one SMS request"),
    "tail": ("smsdispatch.cli.tail", "print outcomes as they arrive"),
    "replay": ("smsdispatch.cli.replay", "re-publish failed or requested messages"),
    "simulator": ("smsdispatch.cli.simulator", "run the Twilio-compatible simulator"),
    "kafka": ("smsdispatch.cli.kafka", "run a local single-node Apache Kafka (KRaft), no Docker needed"),
    "demo": ("smsdispatch.cli.demo", "run the whole system locally, with sample traffic and a summary"),
    "schemas": ("smsdispatch.cli.schemas", "write the JSON Schemas of every topic value"),
}


def _available_verbs() -> dict[str, tuple[str, str]]:
    return {verb: spec for verb, spec in VERBS.items() if importlib.util.find_spec(spec[0]) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smsdispatch", description="Kafka-driven multi-tenant SMS dispatch through Twilio."
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, (module_name, summary) in _available_verbs().items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(verb, help=summary, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb != "worker":
        # aiokafka logs each failed connection attempt; a command line says it once, in its own sentence.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        code: int = args._run(args)
    except CliError as exc:
        print(f"smsdispatch {args.verb}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KafkaConnectionError:
        unreachable = unreachable_kafka(broker_for_messages())
        print(f"smsdispatch {args.verb}: {unreachable}", file=sys.stderr)
        return unreachable.exit_code
    except KeyboardInterrupt:
        print(f"smsdispatch {args.verb}: interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: still one sentence, and never its text
        # (an exception's message may quote a URL with a password or a rejected secret).
        print(f"smsdispatch {args.verb}: failed unexpectedly ({type(exc).__name__}).", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
