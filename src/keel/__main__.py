"""``python -m keel`` is the ``keel`` command."""

from keel.cli import main

main()
