"""Help that goes to a pipe or a file names every option whole (issue 23: ``--help | grep``).

Runs the installed ``memshare`` console script with stdout piped, for the root and every
subcommand the app registers, and looks for every option name each Click command declares.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from memshare_cli.main import app

SCRIPT = Path(sys.executable).with_name("memshare")
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# An option-like token that rich cut short to fit the width.
CUT_OPTION = re.compile(r"(?<![\w-])--?[\w-]*…")


def option_names(command: Any) -> list[str]:
    """Every name of every visible option: ``--model``, ``-m``, ``--no-prefix-caching``, ...

    NOTE: Typer ships its own copy of Click (``typer._click``), so options are told by Click's
    ``param_type_name`` rather than by ``isinstance(p, click.Option)``.
    """
    return [name for p in command.params if p.param_type_name == "option" and not p.hidden
            for name in (*p.opts, *p.secondary_opts)]


def piped_help(args: list[str], columns: str | None) -> str:
    """``memshare ARGS --help`` with stdout piped (no terminal), as ``| less`` or ``| grep`` sees it."""
    assert SCRIPT.exists(), f"no console script at {SCRIPT}: pip install -e . first"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH")}
    if columns is not None:
        env["COLUMNS"] = columns
    res = subprocess.run([str(SCRIPT), *args, "--help"], stdin=subprocess.DEVNULL, capture_output=True, env=env,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return ANSI.sub("", res.stdout)


def whole(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_the_app_has_commands_with_options():
    assert COMMANDS and any(option_names(GROUP.commands[c]) for c in COMMANDS)


@pytest.mark.parametrize("columns", [None, "80"], ids=["COLUMNS-unset", "COLUMNS-80"])
@pytest.mark.parametrize("name", COMMANDS)
def test_piped_help_names_every_option_whole(name, columns):
    out = piped_help([name], columns)
    missing = [opt for opt in option_names(GROUP.commands[name]) if not whole(opt, out)]
    assert not missing, f"'memshare {name} --help' piped lacks {missing}:\n{out}"
    assert not CUT_OPTION.search(out), f"'memshare {name} --help' piped cuts an option name:\n{out}"


@pytest.mark.parametrize("columns", [None, "80"], ids=["COLUMNS-unset", "COLUMNS-80"])
def test_piped_root_help_names_every_command_whole(columns):
    out = piped_help([], columns)
    missing = [c for c in COMMANDS if not whole(c, out)]
    assert not missing, f"'memshare --help' piped lacks {missing}:\n{out}"
    assert not CUT_OPTION.search(out)
