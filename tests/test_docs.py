"""The README cannot drift: every setting and every command-line option is documented."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from indexer import cli as indexer_cli
from screening import cli as screening_cli
from screening.settings import PREFIX, Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((name, name))
                out.extend((f"{name} {opt}", opt) for opt in _flags(sub))
    return out


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [opt for action in parser._actions for opt in action.option_strings
            if opt.startswith("--") and opt != "--help"]


@pytest.mark.parametrize("name", [f.name for f in fields(Settings)])
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{PREFIX}{name.upper()}`" in README


@pytest.mark.parametrize("where,option", _options(indexer_cli._parser()) + _options(screening_cli._parser()))
def test_every_cli_option_is_documented(where: str, option: str) -> None:
    assert option in README, f"{where} is not in the README"


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "screening demo" in first_block and "python -m pytest" in first_block


def test_ci_runs_the_readme_test_command() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    test_command = next(line for line in first_block.splitlines() if "pytest" in line)
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command.strip() in ci.splitlines()
