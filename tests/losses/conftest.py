"""Fixtures of the loss tests."""
import pytest

from gdkd_seg.losses.kernels import cpu, gpu


@pytest.fixture(params=['kernel', 'pytorch', 'triton'])
def implementation(request):
    """A test using this fixture runs on each of the three implementations of the grouped losses: the fused CPU
    kernel (which must build on the test machine), the PyTorch one, and the Triton kernel that GPUs run (here
    through Triton's interpreter on CPU tensors)."""
    if request.param == 'pytorch':
        with cpu.switched_off():
            yield request.param
    elif request.param == 'triton':
        with gpu.interpreted_on_cpu():
            yield request.param
    else:
        assert cpu.library() is not None, 'the fused CPU kernel did not build (see the warning)'
        yield request.param
