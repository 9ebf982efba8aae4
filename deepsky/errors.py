"""The one exception type users see."""


class DeepskyError(Exception):
    """An error the user can fix: bad input, unknown name, missing file.

    The message names the file or object and what to do; the CLI prints it
    as one line and exits with status 2.
    """


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
