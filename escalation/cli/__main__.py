"""``python -m escalation.cli``: the ``escalation`` command."""

from escalation.cli.root import main

if __name__ == "__main__":
    main()
