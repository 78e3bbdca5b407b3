"""``memshare ablate``: placeholder until it lands (issue 6)."""
import typer


def ablate() -> None:
    """Not implemented yet."""
    raise typer.Exit(2)
