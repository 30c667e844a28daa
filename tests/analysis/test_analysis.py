"""The teacher analysis (gdkd_seg.analysis, tools/analysis_tools/analyze_teacher.py) and the GDKD term maps
(tools/analysis_tools/visualize_distill.py): values against direct computations, bounded memory, the tools end to
end."""
import csv
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from gdkd_seg.analysis import TeacherStatistics, pixel_maps, sorted_probabilities, top_p_set_sizes
from gdkd_seg.analysis.builders import build_split_loader, build_teacher
from gdkd_seg.losses import gdkd_loss, gdkd_pixel_terms
from tests.support import (
    assert_user_error,
    cfg_options,
    config_path,
    run_tool,
    tiny_data_options,
    write_teacher_checkpoint,
)

ANALYZE = 'analysis_tools/analyze_teacher.py'
VISUALIZE = 'analysis_tools/visualize_distill.py'

# a low temperature spreads the tiny untrained teacher's near-uniform logits into varied distributions
SHARP = 0.05


@pytest.fixture(scope='module')
def toy_teacher_outputs(toy_data_root, toy_teacher_ckpt):
    """The demo teacher's logits and labels on the two toy val images, through the real dataset and test step."""
    cfg = Config.fromfile(config_path('demo', 'teacher_toy.py'))
    cfg.merge_from_dict(tiny_data_options(toy_data_root))
    loader = build_split_loader(cfg, 'val', None)
    teacher = build_teacher(cfg, toy_teacher_ckpt)
    with torch.no_grad():
        samples = [sample for data in loader for sample in teacher.test_step(data)]
    return [(sample.seg_logits.data, sample.gt_sem_seg.data) for sample in samples]


def direct_statistics(probs: np.ndarray, top_p: float):
    """Top-1, top-2..5 mass, entropy and top-p set size of one probability vector, by plain loops."""
    ranked = sorted(probs.tolist(), reverse=True)
    mass, size = 0.0, 0
    while mass < top_p:
        mass += ranked[size]
        size += 1
    return ranked[0], sum(ranked[1:5]), -sum(p * np.log(p) for p in ranked if p > 0), size


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def test_per_class_means_equal_a_direct_computation(toy_teacher_outputs):
    statistics = TeacherStatistics(19, temperature=SHARP)
    for logits, labels in toy_teacher_outputs:
        statistics.update(logits[None], labels)
    means = statistics.per_class()

    sums = {}
    for logits, labels in toy_teacher_outputs:
        logits, labels = logits.double().numpy() / SHARP, labels[0].numpy()
        # a few pixels of each class present
        for label in np.unique(labels[labels != 255]):
            rows, cols = np.nonzero(labels == label)
            for row, col in list(zip(rows, cols))[:3]:
                probs = softmax(logits[:, row, col])
                for p in (0.8, 0.9, 0.95):
                    top1, rest, ent, size = direct_statistics(probs, p)
                    ranked = sorted_probabilities(torch.from_numpy(logits[:, row, col])[None])
                    assert float(ranked[0, 0]) == pytest.approx(top1, abs=1e-12)
                    assert float(ranked[0, 1:5].sum()) == pytest.approx(rest, abs=1e-12)
                    assert int(top_p_set_sizes(ranked, p)) == size
                    pixel = pixel_maps(torch.from_numpy(logits[:, row:row + 1, col:col + 1]), k=3)
                    assert float(pixel['entropy']) == pytest.approx(ent, abs=1e-9)
                    assert float(pixel['top_k_mass']) == pytest.approx(sum(sorted(probs)[-3:]), abs=1e-9)
        # every pixel, vectorised independently of the library: the class means
        probs = np.exp(logits - logits.max(0))
        probs = np.sort(probs / probs.sum(0), axis=0)[::-1].reshape(19, -1)
        flat = labels.reshape(-1)
        valid = flat != 255
        cumulative = probs.cumsum(0)
        values = dict(top1=probs[0], top2to5=probs[1:5].sum(0), entropy=-(probs * np.log(probs)).sum(0),
                      **{f'set_size_{p:g}': (cumulative >= p).argmax(0) + 1 for p in (0.8, 0.9, 0.95)})
        for name, value in values.items():
            total = sums.setdefault(name, np.zeros(19))
            np.add.at(total, flat[valid], value[valid])
        np.add.at(sums.setdefault('pixels', np.zeros(19)), flat[valid], 1)
    present = sums['pixels'] > 0
    np.testing.assert_array_equal(means['pixels'].numpy(), sums['pixels'])
    for name in ('top1', 'top2to5', 'entropy', 'set_size_0.8', 'set_size_0.9', 'set_size_0.95'):
        np.testing.assert_allclose(means[name].numpy()[present], sums[name][present] / sums['pixels'][present],
                                   rtol=1e-9, err_msg=name)
        assert np.isnan(means[name].numpy()[~present]).all()
    # the sharpened teacher's sets vary: the test sees more than one set size
    assert len(set(np.round(means['set_size_0.9'].numpy()[present], 3))) > 1


def test_state_size_does_not_grow_with_the_images(toy_teacher_outputs):
    statistics = TeacherStatistics(19, temperature=SHARP)
    logits, labels = toy_teacher_outputs[0]
    statistics.update(logits[None], labels)
    sizes = [tensor.numel() for tensor in statistics.state()]
    for _ in range(10):
        statistics.update(logits[None].expand(3, -1, -1, -1), labels.expand(3, -1, -1))
    assert [tensor.numel() for tensor in statistics.state()] == sizes
    assert sum(sizes) < 19 * 19 * 5  # fixed by the class count: no pixel list
    # streamed batches sum up as one: 31 copies of the first image's pixels
    assert float(statistics.count.sum()) == 31 * int((labels != 255).sum())


def test_recommendation_follows_its_rule():
    probs = torch.tensor([0.6, 0.3, 0.06, 0.03, 0.01], dtype=torch.float64)
    statistics = TeacherStatistics(5)
    logits = probs.log().view(1, 5, 1, 1).expand(1, 5, 4, 4)
    statistics.update(logits, torch.zeros(1, 4, 4, dtype=torch.long))
    advice, text = statistics.recommendation()
    # cumulative mass 0.6, 0.9, 0.96: top-3 is the first to reach 0.95; every 0.95 set holds 3 classes
    assert advice['k'] == 3 and advice['k_max'] == 3 and advice['mean_set_size'] == pytest.approx(3)
    assert 'k=3' in text and '0.95' in text

    confident = TeacherStatistics(5)
    confident.update(torch.tensor([9.0, 0, 0, 0, 0]).view(1, 5, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long))
    assert confident.recommendation()[0]['k'] == 2  # k=1 would leave the top group's KL identically 0
    with pytest.raises(ValueError, match='no valid pixel'):
        TeacherStatistics(5).recommendation()


def test_clamp_counts_follow_the_masses():
    """Per pixel and class, whether a GDKD or DKD group mass of the teacher is below float32 eps, against the masses
    computed directly: a confident pixel, a uniform one, and a three-way tie far above two classes."""
    logits = torch.tensor([[30.0, 0, 0, 0, 0], [0.0] * 5, [10.0, 10, 10, -10, -10], [10.0, 10, 10, -10, -10]],
                          dtype=torch.float64)
    labels = torch.tensor([0, 1, 3, 0])

    def direct(head_sets):
        probs = logits.softmax(1)
        clamped = []
        for row, head in zip(probs, head_sets):
            head_mass = sum(float(row[c]) for c in head)
            rest_mass = sum(float(row[c]) for c in range(5) if c not in head)
            clamped.append(head_mass < 1.1920929e-07 or rest_mass < 1.1920929e-07)
        return clamped

    expected = {  # partition -> (GDKD head classes per pixel)
        dict(k=1).__repr__(): [[0], [0], [0], [0]],
        dict(k=3).__repr__(): [[0, 1, 2]] * 4,
        dict(top_p=0.5).__repr__(): [[0], [0, 1, 2], [0, 1], [0, 1]],
    }
    for options in (dict(k=1), dict(k=3), dict(top_p=0.5)):
        statistics = TeacherStatistics(5, **options)
        statistics.update(logits.view(4, 5, 1, 1), labels.view(4, 1, 1))
        gdkd = direct(expected[repr(options)])
        dkd = direct([[int(label)] for label in labels])
        means = statistics.per_class()
        for cls in range(5):
            pixels = [i for i in range(4) if labels[i] == cls]
            if pixels:
                assert float(means['clamped_gdkd'][cls]) == sum(gdkd[i] for i in pixels) / len(pixels), options
                assert float(means['clamped_dkd'][cls]) == sum(dkd[i] for i in pixels) / len(pixels), options
        assert statistics.clamped_shares() == dict(gdkd=sum(gdkd) / 4, dkd=sum(dkd) / 4)
    # the cases tell the partitions apart: k=1 leaves the tie unclamped, k=3 does not
    assert direct(expected[repr(dict(k=1))]) == [True, False, False, False]
    assert direct(expected[repr(dict(k=3))]) == [True, False, True, True]
    assert direct([[int(label)] for label in labels]) == [True, False, True, False]
    report = statistics.clamp_report()  # top_p=0.5: the confident pixel only; DKD: two of four
    assert 'on 25.0% of the valid pixels' in report and 'top_p=0.5' in report and 'on 50.0% its DKD' in report


@pytest.mark.parametrize('k, temperature, mass_clamp', [(3, 1.0, None), (5, 2.0, None), (3, 1.0, 0.2)])
def test_pixel_terms_average_to_the_gdkd_loss_parts(toy_teacher_outputs, k, temperature, mass_clamp):
    teacher, labels = toy_teacher_outputs[0]
    teacher = teacher[None] / SHARP
    student = teacher.roll(1, dims=1) * 0.5 + torch.randn_like(teacher)
    terms = gdkd_pixel_terms(student, teacher, k, temperature, mass_clamp)
    loss, parts = gdkd_loss(student, teacher, labels, k=k, temperature=temperature, mass_clamp=mass_clamp)
    if mass_clamp:  # the clamp acts on these logits: the maps follow it
        exact = gdkd_pixel_terms(student, teacher, k, temperature)['kl_mass']
        assert not torch.allclose(exact, terms['kl_mass'])
    valid = labels != 255
    for name, value in parts.items():
        assert float(terms[name][valid].mean()) == pytest.approx(float(value), rel=1e-4, abs=1e-6), name
    weighted = terms['kl_mass'] + terms['kl_top'] + 2 * terms['kl_other']
    assert float(weighted[valid].mean()) * temperature ** 2 == pytest.approx(float(loss), rel=1e-4)


def valid_pixels(data_root: str, split: str, count: int = None) -> int:
    paths = sorted(glob.glob(osp.join(data_root, 'gtFine', split, '*', '*_labelTrainIds.png')))[:count]
    return sum(int((cv2.imread(path, cv2.IMREAD_UNCHANGED) != 255).sum()) for path in paths)


def test_analyze_teacher_end_to_end(toy_data_root, toy_teacher_ckpt, tmp_path):
    out = tmp_path / 'analysis'
    result = run_tool(ANALYZE, config_path('demo', 'teacher_toy.py'), toy_teacher_ckpt, '--out', str(out),
                      '--temperature', str(SHARP), *cfg_options(tiny_data_options(toy_data_root)))
    assert 'Recommended GDKDLoss k=' in result.stdout
    with open(out / 'per_class.csv', newline='') as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 19 and rows[0]['class'] == 'road'
    # every valid pixel of the val split was counted once, by its ground-truth class
    assert sum(int(row['pixels']) for row in rows) == valid_pixels(toy_data_root, 'val')
    assert '| road |' in (out / 'per_class.md').read_text()
    recommendation = (out / 'recommendation.txt').read_text()
    assert recommendation.startswith('Recommended GDKDLoss k=') and "Authors' mass clamp" in recommendation
    assert all(0 <= float(row['GDKD mass < eps']) <= 1 for row in rows if int(row['pixels']))
    for plot in ('cumulative_mass.png', 'top_p_set_sizes.png'):
        assert cv2.imread(str(out / plot)) is not None
    pictures = sorted(glob.glob(str(out / 'pictures' / '*.png')))
    assert len(pictures) == 2
    # image | teacher | entropy | top-k mass | wrong, at the toy size
    assert cv2.imread(pictures[0]).shape == (64, 5 * 128, 3)


def test_analyze_the_teacher_of_a_distillation_config(toy_data_root, toy_teacher_ckpt, tmp_path):
    """No CHECKPOINT: model.teacher_ckpt; the train split, its first 2 images."""
    out = tmp_path / 'analysis'
    options = dict(tiny_data_options(toy_data_root), **{'model.teacher_ckpt': toy_teacher_ckpt})
    run_tool(ANALYZE, config_path('demo', 'gdkd_toy.py'), '--split', 'train', '--max-images', '2',
             '--pictures', '1', '--out', str(out), *cfg_options(options))
    with open(out / 'per_class.csv', newline='') as file:
        assert sum(int(row['pixels']) for row in csv.DictReader(file)) == valid_pixels(toy_data_root, 'train', 2)
    assert len(glob.glob(str(out / 'pictures' / '*.png'))) == 1


def test_analyze_teacher_refuses_another_models_checkpoint(toy_data_root, toy_teacher_ckpt, tmp_path):
    result = run_tool(ANALYZE, config_path('demo', 'plain_toy.py'), toy_teacher_ckpt, '--out',
                      str(tmp_path / 'analysis'), *cfg_options(tiny_data_options(toy_data_root)), check=False)
    assert_user_error(result, 'does not match')


@pytest.fixture(scope='module')
def toy_student_ckpt(tmp_path_factory) -> str:
    """A SegDistiller-style checkpoint of the demo student (its weights under ``student.``)."""
    path = tmp_path_factory.mktemp('student') / 'student.pth'
    write_teacher_checkpoint(Config.fromfile(config_path('demo', 'plain_toy.py')).model, str(path), seed=1)
    checkpoint = torch.load(path)
    checkpoint['state_dict'] = {f'student.{key}': value for key, value in checkpoint['state_dict'].items()}
    torch.save(checkpoint, path)
    return str(path)


def test_visualize_distill_end_to_end(toy_data_root, toy_teacher_ckpt, toy_student_ckpt, tmp_path):
    out = tmp_path / 'terms'
    options = dict(tiny_data_options(toy_data_root), **{'model.teacher_ckpt': toy_teacher_ckpt})
    result = run_tool(VISUALIZE, config_path('demo', 'gdkd_toy.py'), toy_student_ckpt, '--out', str(out),
                      *cfg_options(options))
    table = (out / 'terms.md').read_text()
    means = {line.split('|')[1].strip(): float(line.split('|')[2]) for line in table.splitlines()[2:]}
    assert list(means) == ['mass KL', 'top-k KL', 'rest KL'] and all(value > 0 for value in means.values())
    assert 'k=3, T=1' in result.stdout
    pictures = sorted(glob.glob(str(out / 'pictures' / '*.png')))
    # image | teacher | student | mass KL | top-k KL | rest KL
    assert len(pictures) == 2 and cv2.imread(pictures[0]).shape == (64, 6 * 128, 3)

    wrong = run_tool(VISUALIZE, config_path('demo', 'gdkd_toy.py'), toy_teacher_ckpt, '--out',
                     str(tmp_path / 'wrong'), *cfg_options(options), check=False)
    assert_user_error(wrong, 'holds no student.* weights')
    debug = run_tool(VISUALIZE, config_path('demo', 'gdkd_toy.py'), toy_teacher_ckpt, '--out',
                     str(tmp_path / 'wrong'), '--debug', *cfg_options(options), check=False)
    assert debug.returncode != 0 and 'Traceback' in debug.stderr and 'CheckpointMismatchError' in debug.stderr


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match='temperature=0 must be > 0'):
        TeacherStatistics(5, temperature=0)
    with pytest.raises(ValueError, match=r'top_ps=\(0.9, 1.5\) must lie in \(0, 1\]'):
        TeacherStatistics(5, top_ps=(0.9, 1.5))
    statistics = TeacherStatistics(5)
    with pytest.raises(ValueError, match='do not match'):
        statistics.update(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='outside 0..4'):
        statistics.update(torch.zeros(1, 5, 2, 2), torch.full((1, 2, 2), 7))
