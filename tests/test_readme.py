"""Every output README.md shows is produced here, so that it cannot go stale: its Python
examples run as doctests, its backend-in-a-terminal session is replayed into a backend, its
command is run; `...` in what it shows stands for anything."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qibo_core.client import close_shared
from qibo_core.client.discovery import find_backend

README = Path(__file__).parent.parent / "README.md"
BIN = Path(sys.executable).parent


def section(title: str) -> str:
    return README.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def transcript(title: str) -> tuple[str, list[str]]:
    """The command and the lines after it in the section's first block of a session."""
    block = re.search(r"```\n\$ (.*?)\n(.*?)```", section(title), re.S)
    assert block, f"README's '{title}' shows no session"
    return block.group(1), block.group(2).rstrip("\n").split("\n")


def matches(shown: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in shown.rstrip().split("..."))
    return re.fullmatch(pattern, actual.rstrip()) is not None


@pytest.mark.backends("qulacs")
def test_the_python_examples_give_what_they_show() -> None:
    pytest.importorskip("qibo")
    failures, tried = doctest.testfile(str(README), module_relative=False, verbose=False,
                                       optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    close_shared()
    assert tried > 20 and failures == 0


def test_the_session_with_a_backend_in_a_terminal_gives_what_it_shows() -> None:
    command, lines = transcript("A backend in a terminal")
    assert command == ".venv/bin/qibo-backend-numpy"
    sent = [line for line in lines if '"method"' in line]
    shown = [line for line in lines if '"method"' not in line]
    run = subprocess.run([find_backend("numpy")], input="\n".join(sent) + "\n",
                         capture_output=True, text=True, timeout=60)
    answers = run.stdout.splitlines()
    assert len(answers) == len(shown), run.stdout
    for expected, actual in zip(shown, answers, strict=True):
        assert matches(expected, actual), f"README shows {expected}; the backend: {actual}"


@pytest.mark.backends("qulacs")
def test_the_command_gives_what_it_shows() -> None:
    command, shown = transcript("The `qibo-core` command")
    program, *arguments = command.split()
    assert program == ".venv/bin/qibo-core"
    run = subprocess.run([str(BIN / "qibo-core"), *arguments], capture_output=True, text=True,
                         timeout=120, cwd=README.parent)
    assert run.returncode == 0, run.stderr
    actual = run.stdout.rstrip("\n").split("\n")
    assert len(actual) == len(shown) and all(map(matches, shown, actual)), run.stdout
