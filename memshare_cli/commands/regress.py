"""``memshare regress``: placeholder until it lands (issue 6)."""
import typer


def regress() -> None:
    """Not implemented yet."""
    raise typer.Exit(2)
