"""The errors that are the user's to fix: a missing file, a bad option, a refused checkpoint, a missing extra.

Each is a :class:`UserError` as well as the built-in type it always was (``ValueError``, ``FileNotFoundError``,
...), so callers catching the built-in type keep working. The command-line tools print a ``UserError`` as one
``error:`` message and exit with status 2 (:func:`gdkd_seg.engine.cli.run_tool`); any other exception is a bug or
an unexpected failure and keeps its traceback.
"""
import importlib.util


class UserError(Exception):
    """A mistake in what the user gave; the message names the problem and the fix."""

    def __str__(self) -> str:
        # KeyError's own __str__ quotes its message; a user error reads as written
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigError(UserError, ValueError):
    """A config value or command-line option that cannot work, found before anything is built or trained."""


class MissingExtraError(UserError, ImportError):
    """An optional part was asked for whose dependencies are not installed."""


def require_extra(package: str, extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless ``package`` can be imported.

    Args:
        package: the top-level module, e.g. ``'mmpretrain'``.
        extra: the extra of gdkd_seg that installs it, e.g. ``'cls'``.
        what: what needs it, e.g. ``'ClsDistiller'``.
    """
    if importlib.util.find_spec(package) is None:
        raise MissingExtraError(f"{what} needs {package}, which is not installed: pip install 'gdkd_seg[{extra}]'")
