"""MkDocs hook: the command-line reference is written from the parser itself at build time
(``<!-- cli-reference -->`` in a page becomes every command's ``--help``), so it cannot drift
from the code."""

import argparse
import os

MARKER = "<!-- cli-reference -->"


def _helps() -> list[tuple[str, str]]:
    from actbench_ulp.cli.parser import parser as build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal's width: fix it
    parser = build_parser()
    helps = [("actbench", parser.format_help())]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps += [(f"actbench {name}", sub.format_help()) for name, sub in action.choices.items()]
    return helps


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    text = "\n\n".join(f"## `{name}`\n\n```text\n{help_text.rstrip()}\n```"
                       for name, help_text in _helps())
    return markdown.replace(MARKER, text)
