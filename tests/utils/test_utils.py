"""The shared helpers: tables, picture colours, config-tree edits and the user-error types."""
import csv

import numpy as np
import pytest

from gdkd_seg.datasets import CITYSCAPES_PALETTE
from gdkd_seg.models.loss_set import UnknownLossTypeError
from gdkd_seg.utils import markdown_row, markdown_table, replace_types, write_csv
from gdkd_seg.utils.errors import MissingExtraError, UserError, require_extra
from gdkd_seg.utils.pictures import colorize


def test_markdown_table_formats_floats_none_and_rows():
    table = markdown_table(['name', 'value', 'note'], [['a', 1.23456, None], ['b', 2, 'x']], digits=2)
    assert table == '| name | value | note |\n|---|---|---|\n| a | 1.23 | - |\n| b | 2 | x |\n'
    assert markdown_row(['c', 0.5]) == '| c | 0.500 |'


def test_csv_writes_none_as_empty(tmp_path):
    write_csv(str(tmp_path / 'table.csv'), ['a', 'b'], [[1, None], ['x', 2.5]])
    with open(tmp_path / 'table.csv', newline='') as file:
        assert list(csv.reader(file)) == [['a', 'b'], ['1', ''], ['x', '2.5']]


def test_replace_types_renames_nested_types_and_drops_keys():
    tree = dict(head=dict(type='A', weight=[1, 2], loss=[dict(type='A'), dict(type='B')]), other=(dict(type='A'),))
    assert replace_types(tree, 'A', 'C', drop=('weight',)) == 3
    assert tree == dict(head=dict(type='C', loss=[dict(type='C'), dict(type='B')]), other=(dict(type='C'),))


def test_colorize_paints_the_palette_in_bgr_and_void_black():
    labels = np.array([[0, 10, 255]], np.uint8)
    assert colorize(labels, CITYSCAPES_PALETTE).tolist() == [[[128, 64, 128], [180, 130, 70], [0, 0, 0]]]


def test_user_errors_keep_their_builtin_type_and_read_as_written():
    error = UnknownLossTypeError("loss type 'X' is not registered")
    assert isinstance(error, KeyError) and isinstance(error, UserError)
    assert str(error) == "loss type 'X' is not registered"  # KeyError's own str would quote it
    require_extra('numpy', 'never', 'this test')
    with pytest.raises(MissingExtraError, match=r"^this test needs no_such_package, which is not installed: pip "
                                                r"install 'gdkd_seg\[extra\]'$"):
        require_extra('no_such_package', 'extra', 'this test')
