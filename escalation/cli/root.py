"""The root ``escalation`` click group: every command family's commands, added here.

This is the only module that imports the families; nothing imports it back (the package's
``__init__`` re-exports :func:`main` for the ``escalation`` script, ``escalation.cli:main``).
"""

from __future__ import annotations

import click

from escalation.cli.agreements import machine_command, schema_command, validate_command
from escalation.cli.backtest import backtest_command
from escalation.cli.delivery import deliver_command, receive_command
from escalation.cli.disputes import diff_command, timeline_command
from escalation.cli.edges import send_command, tail_command
from escalation.cli.importers import import_group
from escalation.cli.live import run_command, topics_command
from escalation.cli.replay import demo_command, replay_command
from escalation.cli.report import compare_made_sla_command, report_command
from escalation.cli.sli import sli_group


@click.group()
@click.version_option(package_name="escalation")
def main() -> None:
    """Event-driven SLA escalation engine."""


for _command in (
    validate_command, machine_command, schema_command,        # agreement files
    replay_command, demo_command,                             # recorded history
    timeline_command, diff_command,                           # a disputed bill
    import_group, backtest_command,                           # other tools' history, agreement changes
    report_command, compare_made_sla_command,                 # compliance
    run_command, topics_command,                              # the live engine
    deliver_command, receive_command,                         # on-call tools
    send_command, tail_command, sli_group,                    # edges users run
):
    main.add_command(_command)
