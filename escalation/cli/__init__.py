"""The ``escalation`` command (DESIGN.md §8): one click group, one module per command family.

Layout (imports go one way, top to bottom, so there is no cycle):

- :mod:`escalation.cli.root`: the ``main`` group; it imports every family and adds its commands;
- one module per family: :mod:`~escalation.cli.agreements` (validate, machine, schema),
  :mod:`~escalation.cli.replay` (replay, demo), :mod:`~escalation.cli.disputes` (timeline, diff),
  :mod:`~escalation.cli.backtest`, :mod:`~escalation.cli.report` (report, compare-made-sla),
  :mod:`~escalation.cli.importers` (import servicenow), :mod:`~escalation.cli.live` (run, topics),
  :mod:`~escalation.cli.delivery` (deliver, receive), :mod:`~escalation.cli.edges` (send, tail),
  :mod:`~escalation.cli.sli` (sli prometheus);
- :mod:`escalation.cli.common`: what several families share.

A family imports only ``common`` and library code (never the root or another family); the logic
a command runs lives in the library (replay, backtest, reports, live, delivery, edges,
importers); a command only parses options, reads and writes files and prints.
"""

from escalation.cli.root import main

__all__ = ["main"]
