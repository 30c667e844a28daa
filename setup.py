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
    # the CPU kernel's source, compiled on first use (gdkd_seg/losses/cpu_kernel.py)
    package_data={'gdkd_seg.losses': ['grouped_kl.c']},
    install_requires=[
        # safe checkpoint loading maps pickled names to narrow stand-ins: add_safe_globals takes such pairs from 2.6
        'torch>=2.6',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmsegmentation>=1.2.0,<1.3.0',
        'numpy',
        'opencv-python',
        # tools/reproduce.py: its table files (yaml.safe_load) and the summary's bar chart
        'pyyaml',
        'matplotlib',
        # imported by mmseg.models at import time
        'ftfy',
        'regex',
    ],
    extras_require={
        'cls': ['mmpretrain>=1.2.0,<1.3.0'],
        # triton: the losses' GPU kernel (CUDA builds of torch bring it); the tests run it through its interpreter
        'tests': ['pytest', 'matplotlib', 'tensorboard', 'triton'],
    },
)
