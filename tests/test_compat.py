"""The compatibility fixes the pinned stack needs (gdkd_seg.compat) and SyncBN conversion (gdkd_seg.distributed)."""
import os
import pickle
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import gdkd_seg
from conftest import REPO_ROOT
from gdkd_seg.checkpoint_allow_list import mmengine_checkpoint_globals
from gdkd_seg.distributed import syncbn_to_bn
from gdkd_seg.models import load_teacher_weights
from mmengine.logging import HistoryBuffer


def test_torchvision_imports_but_compiled_ops_fail_loudly():
    import torchvision
    from torchvision.ops import box_iou
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
    assert box_iou(boxes, boxes)[0, 1] == pytest.approx(1 / 7)
    if not torchvision.extension._has_ops():
        with pytest.raises((RuntimeError, NotImplementedError)):
            torchvision.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5)


def test_mmengine_message_hub_state_loads_with_weights_only(tmp_path):
    buffer = HistoryBuffer()
    buffer.update(np.float64(0.5))
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': {'loss': buffer}, 'meta': {'seed': np.int64(3), 'lr': np.float32(0.1)}}, path)
    loaded = torch.load(path)  # weights_only=True is torch's default
    assert type(loaded['message_hub']['loss']) is HistoryBuffer and loaded['message_hub']['loss'].current() == 0.5
    assert loaded['meta']['seed'] == 3
    # the allow-list maps MMEngine's names to narrow stand-ins: no general-purpose callable is on it
    allowed = [entry for entry, _ in mmengine_checkpoint_globals()]
    assert not {getattr, eval, np.ndarray, np.dtype, HistoryBuffer} & set(allowed)


class Payload:
    """Stands for an arbitrary object a foreign checkpoint might try to smuggle in."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_foreign_pickled_objects_are_refused(tmp_path):
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': {'weight': torch.zeros(1)}, 'payload': Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        torch.load(path)
    with pytest.raises(RuntimeError, match='refused.*weights_only=True'):
        load_teacher_weights(torch.nn.Linear(1, 1), str(path))


def test_syncbn_to_bn_converts_every_nested_norm(caplog):
    model = dict(backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
                 decode_head=[dict(norm_cfg=dict(type='SyncBN')), dict(norm_cfg=dict(type='GN'))])
    assert syncbn_to_bn(model) == 2
    assert model['backbone']['norm_cfg']['type'] == 'BN' and model['decode_head'][0]['norm_cfg']['type'] == 'BN'
    assert model['decode_head'][1]['norm_cfg']['type'] == 'GN'
    assert syncbn_to_bn(model) == 0


def test_no_deprecated_numpy_aliases_on_our_paths():
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)
        mmengine_checkpoint_globals()
    # aliases removed in numpy 1.24/2.0 (np.float, np.int, ...), not the sized types (np.float32)
    deprecated = re.compile(r'\bnp\.(float|int|bool|object|str|unicode)\b(?![\d_])')
    offenders = []
    for folder in ('gdkd_seg', 'tools', 'tests'):
        for root, _, files in os.walk(os.path.join(REPO_ROOT, folder)):
            for name in files:
                if name.endswith('.py') and name != 'test_compat.py':
                    text = open(os.path.join(root, name), encoding='utf-8').read()
                    offenders += [f'{name}: {match.group(0)}' for match in deprecated.finditer(text)]
    assert not offenders


def test_stack_imports_in_a_fresh_interpreter():
    code = 'import gdkd_seg, mmcv.ops, mmseg.models, mmpretrain.models; print(gdkd_seg.__version__)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == gdkd_seg.__version__
