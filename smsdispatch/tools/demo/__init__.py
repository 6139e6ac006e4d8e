"""The pieces of ``smsdispatch demo``: the whole system on one machine, with sample traffic and a summary.

``accounts`` draws the run's simulated Twilio accounts and tenants, ``stack`` starts and stops the broker,
the simulator and the worker, ``traffic`` builds, publishes and follows the batch, ``summary`` reads the
dispatch log and renders it, ``progress`` is the one-line progress display. ``smsdispatch.cli.demo`` runs them.
"""

from smsdispatch.tools.demo.accounts import DemoAccounts, DemoTenant
from smsdispatch.tools.demo.progress import ProgressLine
from smsdispatch.tools.demo.stack import DemoError, DemoStack
from smsdispatch.tools.demo.summary import LoggedItem, find_problems, receipt_counts, render_summary, wait_for_log
from smsdispatch.tools.demo.traffic import (
    Collected,
    Expected,
    Planned,
    build_batch,
    collect_outcomes,
    publish_batch,
    sms_at_simulator,
)

__all__ = [
    "Collected",
    "DemoAccounts",
    "DemoError",
    "DemoStack",
    "DemoTenant",
    "Expected",
    "LoggedItem",
    "Planned",
    "ProgressLine",
    "build_batch",
    "collect_outcomes",
    "find_problems",
    "publish_batch",
    "receipt_counts",
    "render_summary",
    "sms_at_simulator",
    "wait_for_log",
]
