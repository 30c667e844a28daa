"""How the tools fail: a user's mistake is one ``error:`` message with the fix and exit status 2, no traceback
(``--debug`` shows it); an unexpected failure keeps its traceback."""
import subprocess
import sys

import pytest

from gdkd_seg.engine.cli import USER_ERROR_STATUS, run_tool
from gdkd_seg.utils.errors import ConfigError
from tests.support import REPO_ROOT, assert_user_error, cfg_options, config_path, run_tool_here, tiny_data_options
from tests.support import run_tool as run_tool_script

REFERENCE = config_path('gdkd', 'deeplabv3_r101_to_r18_cityscapes.py')


def test_a_user_error_exits_2_with_one_message(monkeypatch, capsys):
    def main():
        raise ConfigError('k=25 is larger than the number of classes C=19; use k <= 19')

    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    with pytest.raises(SystemExit) as exit_:
        run_tool(main)
    assert exit_.value.code == USER_ERROR_STATUS == 2
    assert capsys.readouterr().err == 'error: k=25 is larger than the number of classes C=19; use k <= 19\n'
    monkeypatch.setattr(sys, 'argv', ['tool.py', '--debug'])
    with pytest.raises(ConfigError):  # --debug: the traceback
        run_tool(main)


def test_an_unexpected_error_keeps_its_traceback_and_a_status_is_passed_on(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['tool.py'])
    with pytest.raises(ZeroDivisionError):
        run_tool(lambda: 1 / 0)
    with pytest.raises(SystemExit) as exit_:
        run_tool(lambda: 1)
    assert exit_.value.code == 1


def test_train_without_the_dataset_says_where_to_put_it(monkeypatch):
    """Cityscapes is not on this machine: the reference config is refused before anything is built."""
    result = run_tool_here('train.py', REFERENCE, monkeypatch=monkeypatch)
    message = assert_user_error(result, "train_dataloader: data_root 'data/cityscapes/' does not exist",
                                'data/README.md', '--cfg-options train_dataloader.dataset.data_root=PATH')
    assert '\n' not in message
    debug = run_tool_script('train.py', REFERENCE, '--debug', check=False)
    assert debug.returncode == 1 and 'Traceback' in debug.stderr and 'MissingDataError' in debug.stderr


@pytest.mark.parametrize('option, fragments', [
    ('max_iters=5', ['--cfg-options max_iters: nothing in the run reads']),
    ('model.distill_losses.loss_gdkd.k=2.5', ['k must be an integer']),
])
def test_bad_options_are_user_errors(option, fragments, toy_data_root, tmp_path, monkeypatch):
    result = run_tool_here('train.py', config_path('demo', 'gdkd_toy.py'), '--work-dir', str(tmp_path),
                           '--data-check', 'none', *cfg_options(tiny_data_options(toy_data_root)), option,
                           monkeypatch=monkeypatch)
    assert_user_error(result, *fragments)


def test_a_missing_config_and_a_bad_flag_exit_2():
    assert_user_error(run_tool_script('test.py', 'configs/no_such_config.py', 'x.pth', check=False),
                      "config 'configs/no_such_config.py' does not exist")
    result = subprocess.run([sys.executable, 'tools/train.py', REFERENCE, '--no-such-flag'], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 2 and 'error: unrecognized arguments: --no-such-flag' in result.stderr
