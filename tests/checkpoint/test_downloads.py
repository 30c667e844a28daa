"""Checkpoint URLs: every URL the tools load (teacher, ``load_from``, ``tools/test.py``'s CHECKPOINT, a pretrained
backbone) gives up on a server that never answers after ``GDKD_DOWNLOAD_TIMEOUT`` and names the URL, the setting and
how to pass a local file; a refused connection and an HTTP error are named the same way; a served file downloads."""
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS

from gdkd_seg.checkpoint.download import DownloadError, download_timeout
from gdkd_seg.checkpoint.loading import loading_for
from gdkd_seg.engine.distributed import syncbn_to_bn
from gdkd_seg.models import load_teacher_weights
from gdkd_seg.utils.errors import ConfigError
from tests.support import (
    cfg_options,
    config_path,
    fails_within,
    free_port,
    load_tool,
    serving,
    silent_server,
    tiny_data_options,
    toy_runner,
)

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')
TIMED_OUT = r'could not be downloaded \((TimeoutError|timeout): .*timeout 1 s, set GDKD_DOWNLOAD_TIMEOUT to change it\)'
pytestmark = pytest.mark.usefixtures('mmseg_scope', 'local_only_downloads')


def test_a_teacher_url_that_never_answers_times_out(toy_teacher_ckpt):
    cfg = Config.fromfile(TOY_CONFIG)
    syncbn_to_bn(cfg.model)
    with silent_server() as server, fails_within(20):
        cfg.model.teacher_ckpt = f'{server}/teacher.pth'
        with pytest.raises(DownloadError, match=rf"^model\.teacher_ckpt '{server}/teacher\.pth' {TIMED_OUT}\. "
                                                r'Download the file yourself and pass its local path: '
                                                r'--cfg-options model\.teacher_ckpt=/path/to/teacher\.pth$'):
            MODELS.build(cfg.model)


def test_a_load_from_url_that_never_answers_times_out(toy_data_root, toy_teacher_ckpt, tmp_path):
    with silent_server() as server, fails_within(20):
        runner = toy_runner(toy_data_root, toy_teacher_ckpt, str(tmp_path / 'run'), max_iters=1,
                            load_from=f'{server}/student.pth')
        with pytest.raises(DownloadError, match=rf"^load_from '{server}/student\.pth' {TIMED_OUT}.*--cfg-options "
                                                r'load_from=/path/to/checkpoint\.pth$'):
            runner.load_or_resume()


def test_a_pretrained_backbone_url_that_never_answers_times_out():
    with silent_server() as server, fails_within(20):
        backbone = MODELS.build(dict(type='ResNetV1c', depth=18, init_cfg=dict(type='Pretrained',
                                                                               checkpoint=f'{server}/r18.pth')))
        with pytest.raises(DownloadError, match=rf"^checkpoint '{server}/r18\.pth' {TIMED_OUT}.*pass its local path: "
                                                'where the config names the URL$'):
            backbone.init_weights()


def test_the_test_tool_gives_up_on_a_checkpoint_url_that_never_answers(toy_data_root, tmp_path, monkeypatch):
    with silent_server() as server, fails_within(30):
        monkeypatch.setattr(sys, 'argv', ['test.py', TOY_CONFIG, f'{server}/student.pth', '--work-dir', str(tmp_path),
                                          *cfg_options(tiny_data_options(toy_data_root))])
        with pytest.raises(DownloadError, match=rf"^the CHECKPOINT argument \(load_from\) '{server}/student\.pth' "
                                                rf'{TIMED_OUT}.*: tools/test\.py CONFIG /path/to/checkpoint\.pth$'):
            load_tool('test.py').main()


def test_a_refused_connection_and_an_http_error_are_named(tmp_path):
    closed = f'http://127.0.0.1:{free_port()}/teacher.pth'
    with pytest.raises(DownloadError, match=rf"^model\.teacher_ckpt '{closed}' could not be downloaded "
                                            r'\(ConnectionRefusedError: .*Download the file yourself'):
        load_teacher_weights(torch.nn.Linear(1, 1), closed)
    with serving(str(tmp_path)) as address, loading_for('load_from'):
        with pytest.raises(DownloadError, match=rf"^load_from '{address}/missing\.pth' could not be downloaded "
                                                r'\(HTTPError: HTTP Error 404'):
            CheckpointLoader.load_checkpoint(f'{address}/missing.pth')
    assert not os.listdir(osp.join(os.environ['TORCH_HOME'], 'hub', 'checkpoints'))  # nothing half-written


def test_a_served_checkpoint_downloads_once_and_loads(tmp_path):
    torch.save({'state_dict': {'weight': torch.arange(3.0)}}, str(tmp_path / 'weights.pth'))
    with serving(str(tmp_path)) as address:
        first = CheckpointLoader.load_checkpoint(f'{address}/weights.pth')
    # the server is gone: the second load reads torch.hub's cache
    second = CheckpointLoader.load_checkpoint(f'{address}/weights.pth')
    assert torch.equal(first['state_dict']['weight'], torch.arange(3.0))
    assert torch.equal(second['state_dict']['weight'], torch.arange(3.0))


@pytest.mark.parametrize('value', ['0', '-1', 'inf', 'nan', 'soon'])
def test_a_bad_download_timeout_is_refused(value, monkeypatch):
    monkeypatch.setenv('GDKD_DOWNLOAD_TIMEOUT', value)
    with pytest.raises(ConfigError, match='GDKD_DOWNLOAD_TIMEOUT'):
        download_timeout()
