"""``apiary _sealed``: the child a bee starts for a query it must be able to kill (internal)."""

from __future__ import annotations

import click


@click.command("_sealed", hidden=True)
def sealed() -> None:
    """Run one plan from stdin and stream its result to stdout (started by a bee)."""
    from apiary.runtime.sealed import main

    main()
