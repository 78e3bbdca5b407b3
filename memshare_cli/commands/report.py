"""``memshare report``: placeholder until it lands (issue 6)."""
import typer


def report() -> None:
    """Not implemented yet."""
    raise typer.Exit(2)
