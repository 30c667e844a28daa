"""gdkd_seg: Generalized Decoupled Knowledge Distillation for MMSegmentation (and mmpretrain)."""
from setuptools import find_packages, setup

setup(
    name='gdkd_seg',
    version='0.1.0',
    description='GDKD knowledge distillation for semantic segmentation on MMSegmentation',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.8',
    packages=find_packages(include=['gdkd_seg', 'gdkd_seg.*']),
    # the CPU kernel's source, compiled on first use (gdkd_seg/losses/kernels/cpu.py)
    package_data={'gdkd_seg.losses.kernels': ['grouped_kl.c']},
    install_requires=[
        # safe checkpoint loading maps pickled names to narrow stand-ins: add_safe_globals takes such pairs from 2.6
        'torch>=2.6',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmsegmentation>=1.2.0,<1.3.0',
        'numpy',
        'opencv-python',
        # the harness's table files (yaml.safe_load); the charts of the harness, the demo and the teacher analysis
        'pyyaml',
        'matplotlib',
        # the harness's paired t-intervals (mmsegmentation depends on it too)
        'scipy',
        # imported by mmseg.models at import time
        'ftfy',
        'regex',
    ],
    extras_require={
        # ClsDistiller and configs/cls/
        'cls': ['mmpretrain>=1.2.0,<1.3.0'],
        # triton: the losses' GPU kernel (CUDA builds of torch bring it), which the tests run through its
        # interpreter; mpmath: the tests' high-precision reference; ruff: make lint
        'tests': ['pytest', 'triton', 'mpmath', 'ruff'],
    },
)
