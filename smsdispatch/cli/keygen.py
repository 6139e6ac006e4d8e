"""Print a new encryption key for SMSDISPATCH_ENCRYPTION_KEYS (32 random bytes, URL-safe base64).

The key is the only thing printed, so `export SMSDISPATCH_ENCRYPTION_KEYS="$(smsdispatch keygen)"` works.
To rotate, put the new key first and keep the old one second: "NEW,OLD".
"""

from __future__ import annotations

import argparse

from smsdispatch.adapters.crypto import generate_key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """keygen takes no arguments."""


def run(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0
