"""``memshare analyze``: placeholder until the analysis lands (issue 3)."""
import typer


def analyze() -> None:
    """Check the paper's premise on a real model (not implemented yet)."""
    raise typer.Exit(2)
