"""``python -m apiary`` is the ``apiary`` command."""

from apiary.cli import main

main()
