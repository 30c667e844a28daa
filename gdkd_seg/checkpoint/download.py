"""Fetching a checkpoint URL with a timeout, and an error that names the URL and what to do instead.

Every URL the tools load (``model.teacher_ckpt``, ``load_from``, the CHECKPOINT of ``tools/test.py``, pretrained
backbones behind ``open-mmlab://``, ``torchvision://`` or ``http(s)://``) reaches :func:`download_file` through
:func:`gdkd_seg.checkpoint.loading.load_url`. torch.hub opens URLs without a timeout, so a server that accepts the
connection and never answers would hang the run forever; here every wait on the server (to connect, for the next
bytes) is bounded by ``GDKD_DOWNLOAD_TIMEOUT``.
"""
import os
import shutil
import urllib.error
import urllib.request

from ..utils.errors import ConfigError, UserError
from ..utils.files import atomic_write

DOWNLOAD_TIMEOUT_ENV = 'GDKD_DOWNLOAD_TIMEOUT'
DEFAULT_DOWNLOAD_TIMEOUT = 60.0
# where the user names a checkpoint, by the setting that errors name: how to pass a local file there instead
LOCAL_PATH_HINTS = {
    'model.teacher_ckpt': '--cfg-options model.teacher_ckpt=/path/to/teacher.pth',
    'load_from': '--cfg-options load_from=/path/to/checkpoint.pth',
    'the CHECKPOINT argument': 'tools/test.py CONFIG /path/to/checkpoint.pth',
}
CHUNK_BYTES = 1 << 20


class DownloadError(UserError, RuntimeError):
    """A checkpoint URL that could not be fetched: refused, unreachable, timed out, or an HTTP error."""


def download_timeout() -> float:
    """Seconds a download may wait for the server (to connect, or for the next bytes): the
    ``GDKD_DOWNLOAD_TIMEOUT`` environment variable, default 60.

    Raises:
        ConfigError: the variable is not a number of seconds > 0.
    """
    value = os.environ.get(DOWNLOAD_TIMEOUT_ENV, '')
    try:
        timeout = float(value) if value else DEFAULT_DOWNLOAD_TIMEOUT
    except ValueError:
        raise ConfigError(f'{DOWNLOAD_TIMEOUT_ENV}={value!r} is not a number of seconds') from None
    if not timeout > 0 or timeout == float('inf'):
        raise ConfigError(f'{DOWNLOAD_TIMEOUT_ENV} must be a finite number of seconds > 0, got {value}')
    return timeout


def download_file(url: str, path: str, setting: str) -> None:
    """Fetch ``url`` into ``path`` (written atomically: an interrupted download leaves no partial file there).

    Args:
        url: an ``http(s)://`` URL.
        path: the local file to write.
        setting: where the URL came from (e.g. ``model.teacher_ckpt``), for the error.

    Raises:
        DownloadError: naming the URL, the setting, the reason and the timeout, and how to pass a local file.
    """
    timeout = download_timeout()
    request = urllib.request.Request(url, headers={'User-Agent': 'gdkd_seg'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            atomic_write(path, lambda file: shutil.copyfileobj(response, file, CHUNK_BYTES))
    except (urllib.error.URLError, OSError) as err:  # refused, unreachable, timed out, reset, HTTP 404 ...
        reason = err.reason if type(err) is urllib.error.URLError else err
        hint = next((hint for name, hint in LOCAL_PATH_HINTS.items() if setting.startswith(name)),
                    'where the config names the URL')
        raise DownloadError(
            f'{setting} {url!r} could not be downloaded ({type(reason).__name__}: {reason}; timeout {timeout:g} s, '
            f'set {DOWNLOAD_TIMEOUT_ENV} to change it). Download the file yourself and pass its local path: '
            f'{hint}') from err
