"""YAML read by MMEngine once gdkd_seg is imported (gdkd_seg.engine.patches, change 5): configs, their ``_base_``
files and ``mmengine.load`` are plain data; a ``!!python`` tag is refused and nothing in the file runs."""
import io

import mmengine
import pytest
import yaml
from mmengine.config import Config
from mmengine.fileio.handlers.yaml_handler import YamlHandler

from gdkd_seg.engine import patches
from tests.support import assert_user_error, config_path, run_tool_here

# values of every plain kind, and tuples as MMEngine writes them
PLAIN = ("crop_size: !!python/tuple [64, 128]\nlr: 0.01\nsteps: [1, 2]\nname: toy\nflag: true\nnothing: null\n"
         "nested: {a: {b: [x, 1.5e-07]}, pairs: [!!python/tuple [1, 2]]}\n")


def code_running_yaml(marker) -> str:
    return f'model: !!python/object/apply:os.system ["touch {marker}"]\n'


def mmengines_own_reading(text: str):
    """What MMEngine's YamlHandler, unchanged, reads from ``text``."""
    return patches._ORIGINALS[(YamlHandler, 'load_from_fileobj')](YamlHandler(), io.StringIO(text))


READERS = {
    'yaml config': lambda folder, text: Config.fromfile(str(write(folder / 'config.yaml', text))).to_dict(),
    'yaml base of a python config': lambda folder, text: Config.fromfile(str(write(
        folder / 'config.py', f"_base_ = ['{write(folder / 'base.yml', text).name}']\n"))).to_dict(),
    'mmengine.load': lambda folder, text: mmengine.load(str(write(folder / 'data.yaml', text))),
    'mmengine.load, full Loader passed': lambda folder, text: mmengine.load(
        io.StringIO(text), file_format='yaml', Loader=yaml.UnsafeLoader),
}


def write(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize('reader', READERS)
def test_yaml_is_read_as_plain_data_and_no_tag_runs(reader, tmp_path):
    read = READERS[reader]
    assert read(tmp_path, PLAIN) == mmengines_own_reading(PLAIN)
    marker = tmp_path / 'code_ran'
    with pytest.raises(yaml.YAMLError, match='python/object/apply:os.system'):
        read(tmp_path, code_running_yaml(marker))
    assert not marker.exists()


def test_a_yaml_config_mmengine_dumped_reads_back_the_same_through_the_plain_data_loader(tmp_path):
    assert YamlHandler.load_from_fileobj is patches.load_yaml_as_data
    cfg = Config.fromfile(config_path('demo', 'gdkd_toy.py'))
    cfg.dump(str(tmp_path / 'gdkd_toy.yaml'))
    assert '!!python/tuple' in (tmp_path / 'gdkd_toy.yaml').read_text()
    assert Config.fromfile(str(tmp_path / 'gdkd_toy.yaml')).to_dict() == cfg.to_dict()


@pytest.mark.parametrize('layout', ['yaml config', 'yaml base of a python config'])
def test_tools_refuse_a_code_running_yaml_config(layout, tmp_path, monkeypatch):
    marker = tmp_path / 'code_ran'
    write(tmp_path / 'base.yaml', code_running_yaml(marker))
    config = tmp_path / 'base.yaml' if layout == 'yaml config' else write(tmp_path / 'config.py',
                                                                          "_base_ = ['base.yaml']\n")
    result = run_tool_here('test.py', str(config), str(tmp_path / 'none.pth'), '--work-dir', str(tmp_path / 'run'),
                           monkeypatch=monkeypatch)
    assert_user_error(result, f'{config}: cannot read the config or a YAML _base_ of it',
                      'python/object/apply:os.system', 'YAML configs are read as plain data',
                      'tags such as !!python/object are refused and nothing in them runs',
                      'write the value as plain data, or use a Python config')
    assert not marker.exists()
