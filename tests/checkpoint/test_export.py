"""Exporting a student (gdkd_seg.checkpoint.export, tools/model_converters/export_student.py) into a folder that
already holds an export: refused unless --overwrite, and each file replaced whole or not at all."""
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

from gdkd_seg.checkpoint import export
from gdkd_seg.checkpoint.export import ExportExistsError, export_student
from tests.support import assert_user_error, config_path, run_tool_here

TOY_CONFIG = config_path('demo', 'gdkd_toy.py')


def distiller_checkpoint(path: str, seed: int) -> str:
    """A checkpoint of the demo distiller holding its student's weights, random from ``seed``."""
    student = Config.fromfile(TOY_CONFIG).model.student.to_dict()
    student.pop('pretrained', None)
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmseg'):
        weights = MODELS.build(student).state_dict()
    torch.save({'state_dict': {f'student.{key}': value for key, value in weights.items()}, 'meta': {}}, path)
    return path


@pytest.fixture
def exported(tmp_path):
    """An export of a seed-0 student in ``tmp_path/export``; returns the folder and its files' bytes."""
    out = tmp_path / 'export'
    export_student(TOY_CONFIG, distiller_checkpoint(str(tmp_path / 'seed0.pth'), 0), str(out))
    return out, {name: (out / name).read_bytes() for name in ('student_config.py', 'student.pth')}


def test_an_export_is_not_overwritten_without_overwrite(exported, tmp_path, monkeypatch):
    out, before = exported
    other = distiller_checkpoint(str(tmp_path / 'seed1.pth'), 1)
    result = run_tool_here('model_converters/export_student.py', TOY_CONFIG, other, str(out), monkeypatch=monkeypatch)
    assert_user_error(result, f'{out} already holds an export', str(out / 'student_config.py'),
                      str(out / 'student.pth'), '--overwrite')
    assert {name: (out / name).read_bytes() for name in before} == before and sorted(os.listdir(out)) == sorted(before)

    # one file of the pair is enough: a config of the user's own beside no checkpoint is kept too
    (out / 'student.pth').unlink()
    with pytest.raises(ExportExistsError, match=r'already holds an export \([^,]*student_config\.py\)'):
        export_student(TOY_CONFIG, other, str(out))
    assert (out / 'student_config.py').read_bytes() == before['student_config.py']
    assert not (out / 'student.pth').exists()

    replaced = run_tool_here('model_converters/export_student.py', TOY_CONFIG, other, str(out), '--overwrite',
                             monkeypatch=monkeypatch)
    assert replaced.returncode == 0, replaced.stderr
    assert f'wrote {out / "student.pth"}' in replaced.stdout
    weights = torch.load(str(out / 'student.pth'), weights_only=True)['state_dict']
    expected = torch.load(other, weights_only=True)['state_dict']
    assert all(torch.equal(value, expected[f'student.{key}']) for key, value in weights.items())
    assert sorted(os.listdir(out)) == sorted(before)


def test_an_export_interrupted_while_writing_keeps_the_previous_files(exported, tmp_path, monkeypatch):
    out, before = exported
    other = distiller_checkpoint(str(tmp_path / 'seed1.pth'), 1)

    def dies_half_way(obj, file):
        file.write(before['student.pth'][:100])
        raise OSError('No space left on device')

    monkeypatch.setattr(export.torch, 'save', dies_half_way)
    with pytest.raises(OSError, match='No space left'):
        export_student(TOY_CONFIG, other, str(out), overwrite=True)
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(os.listdir(out)) == sorted(before)  # no temporary file left either
