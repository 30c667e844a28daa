"""How the command-line tools start and fail: a user's mistake (a :class:`~gdkd_seg.utils.errors.UserError`: missing
data, a bad option, a refused key or checkpoint) is printed as one ``error:`` line with its fix and the tool exits
with status 2, as argparse does for a bad flag; ``--debug`` shows its traceback. Any other exception is unexpected
and keeps its traceback."""
import argparse
import sys
from typing import Callable, NoReturn, Optional

from ..utils.errors import UserError

USER_ERROR_STATUS = 2


class ArgumentParser(argparse.ArgumentParser):
    """The tools' parser: argparse's, with ``--debug`` (a user error's traceback)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument('--debug', action='store_true',
                          help="on a user's mistake (missing data, bad option or checkpoint), show the traceback too")


def exit_with(error: UserError) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with :data:`USER_ERROR_STATUS`."""
    print(f'error: {error}', file=sys.stderr, flush=True)
    sys.exit(USER_ERROR_STATUS)


def run_tool(main: Callable[[], Optional[int]]) -> None:
    """Run a tool's ``main``; a :class:`UserError` exits as :func:`exit_with` does, unless ``--debug`` is given.

    ``main``'s return value, when an int, is the exit status. Output that a terminal's encoding cannot show (a file
    name that is not UTF-8, which Python holds as surrogate escapes) is printed escaped (``\\xff``) instead of
    failing the tool where MMEngine prints a path.
    """
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, 'reconfigure'):
            stream.reconfigure(errors='backslashreplace')
    try:
        status = main()
    except UserError as error:
        if '--debug' in sys.argv[1:]:
            raise
        exit_with(error)
    if isinstance(status, int):
        sys.exit(status)
