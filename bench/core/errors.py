"""Errors that end a command with exit status 2 (bad input), kept free of heavy imports so
that the CLI can catch them without loading pandas."""

__all__ = ["ResultsError"]


class ResultsError(Exception):
    """A result set that cannot be read or compared; the message names the file."""
