"""Turning an exception into the one line a user reads (commands, the study runner)."""


def first_line(err: BaseException) -> str:
    """The first non-empty line of `str(err)`, or the exception's type name when it has none."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
