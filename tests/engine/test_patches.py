"""What importing gdkd_seg changes in other libraries (gdkd_seg.engine.patches), and only that; SyncBN conversion
(gdkd_seg.engine.distributed)."""
import os
import pickle
import re
import subprocess
import sys
import warnings

import mmengine.runner.checkpoint
import numpy as np
import pytest
import torch
import torchvision
from mmengine.hooks import CheckpointHook
from mmengine.logging import HistoryBuffer
from mmengine.runner import Runner
from torchvision.ops import box_iou

import gdkd_seg
from gdkd_seg.checkpoint.allow_list import mmengine_checkpoint_globals
from gdkd_seg.checkpoint.loading import load_checkpoint_file
from gdkd_seg.engine import patches
from gdkd_seg.engine.distributed import syncbn_to_bn
from gdkd_seg.models import load_teacher_weights
from tests.support import REPO_ROOT


def test_torchvision_imports_but_compiled_ops_fail_loudly():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
    assert box_iou(boxes, boxes)[0, 1] == pytest.approx(1 / 7)
    if not torchvision.extension._has_ops():
        with pytest.raises((RuntimeError, NotImplementedError)):
            torchvision.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5)


def test_mmengine_message_hub_state_loads_through_the_toolkits_loader_only(tmp_path):
    buffer = HistoryBuffer()
    buffer.update(np.float64(0.5))
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': {'loss': buffer}, 'meta': {'seed': np.int64(3), 'lr': np.float32(0.1)}}, path)
    loaded = load_checkpoint_file(str(path))
    assert type(loaded['message_hub']['loss']) is HistoryBuffer and loaded['message_hub']['loss'].current() == 0.5
    assert loaded['meta']['seed'] == 3
    # torch's own weights_only load is as strict as without gdkd_seg: the allow-list is the toolkit loader's
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        torch.load(path)
    # the allow-list maps MMEngine's names to narrow stand-ins: no general-purpose callable is on it
    allowed = [entry for entry, _ in mmengine_checkpoint_globals()]
    assert not {getattr, eval, np.ndarray, np.dtype, HistoryBuffer} & set(allowed)


TORCH_LOAD_PROBE = """
import pickle, sys
import numpy as np
import torch
if sys.argv[2] == 'with':
    import gdkd_seg  # noqa: F401
arrays = torch.load(sys.argv[1], weights_only=False)
try:
    torch.load(sys.argv[1], weights_only=True)
    strict = 'loaded'
except pickle.UnpicklingError:
    strict = 'refused'
# torch's own modules allow-list their types when imported; the toolkit adds nothing to the process-wide list
ours = [entry for entry in torch.serialization.get_safe_globals()
        if isinstance(entry, tuple) or 'gdkd_seg' in getattr(entry, '__module__', '')]
print(type(arrays['mask']).__module__, type(arrays['mask']).__name__, type(arrays['seed']).__name__, strict, ours)
"""


def test_a_users_own_torch_load_returns_what_it_did_before_the_import(tmp_path):
    """Numpy data in a file loaded by torch.load itself, in a process without and one with gdkd_seg imported."""
    path = str(tmp_path / 'arrays.pth')
    torch.save({'mask': np.eye(2) > 0, 'seed': np.int64(7)}, path)
    outputs = {}
    for imported in ('without', 'with'):
        result = subprocess.run([sys.executable, '-c', TORCH_LOAD_PROBE, path, imported], capture_output=True,
                                text=True, cwd=REPO_ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[imported] = result.stdout.strip().splitlines()[-1]
    assert outputs['without'] == 'numpy ndarray int64 refused []'
    assert outputs['with'] == outputs['without']


def test_patches_are_the_documented_ones_and_idempotent():
    installed = {(owner, name): getattr(owner, name) for owner, name in patches._ORIGINALS}
    assert {(getattr(owner, '__name__', type(owner).__name__), name) for owner, name in installed} == {
        ('mmengine.runner.checkpoint', 'torch'), ('mmengine.runner.checkpoint', 'load_url'),
        ('CheckpointLoader', '_get_checkpoint_loader'), ('Runner', 'resume'), ('Runner', 'load_checkpoint'),
        ('mmengine.runner.checkpoint', 'save_checkpoint'),
        ('mmengine.runner.runner', 'save_checkpoint'), ('mmengine.runner', 'save_checkpoint'),
        ('CheckpointHook', '_save_checkpoint_with_step'), ('YamlHandler', 'load_from_fileobj'),
        *(('mmengine.runner' + module, 'find_latest_checkpoint')
          for module in ('.checkpoint', '.runner', '._flexible_runner', ''))}
    patches.apply()
    assert {key: getattr(*key) for key in installed} == installed
    assert Runner.resume.__wrapped__ is patches._ORIGINALS[(Runner, 'resume')]
    assert CheckpointHook._save_checkpoint_with_step is not patches._ORIGINALS[(CheckpointHook,
                                                                               '_save_checkpoint_with_step')]
    assert mmengine.runner.checkpoint.save_checkpoint.__wrapped__ is patches._ORIGINALS[
        (mmengine.runner.checkpoint, 'save_checkpoint')]


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


def test_syncbn_to_bn_converts_every_nested_norm():
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
                if name.endswith('.py') and name != os.path.basename(__file__):
                    text = open(os.path.join(root, name), encoding='utf-8').read()
                    offenders += [f'{name}: {match.group(0)}' for match in deprecated.finditer(text)]
    assert not offenders


def test_stack_imports_in_a_fresh_interpreter():
    code = 'import gdkd_seg, mmcv.ops, mmseg.models, mmpretrain.models; print(gdkd_seg.__version__)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == gdkd_seg.__version__
