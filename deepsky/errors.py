"""The one exception type users see."""


class DeepskyError(Exception):
    """An error the user can fix: bad input, unknown name, missing file.

    The message names the file or object and what to do; the CLI prints it
    as one line and exits with status 2.
    """
