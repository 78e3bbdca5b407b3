"""Turn expected failures into one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def clean_errors(fn: F) -> F:
    """Wrap a command: UserError / ValueError / missing files become one line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from memshare.errors import UserError

        try:
            return fn(*args, **kwargs)
        except (UserError, ValueError, FileNotFoundError) as exc:
            fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except KeyboardInterrupt:
            fail("interrupted; finished samples are saved and a rerun resumes", 130)

    return wrapper  # type: ignore[return-value]
