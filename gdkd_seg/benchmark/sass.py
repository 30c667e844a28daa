"""What the GPU loss kernel costs per logit, read from its sm_90 (H100/H200) machine code without a GPU.

The kernel is compiled for sm_90 with the specialisation a launch on those inputs gets (Triton's own argument
binder: integer arguments of 1 become constants, pointers and integers divisible by 16 are marked so), disassembled
with the ``cuobjdump`` Triton ships, and its instructions counted:

* registers and local memory per thread (``cuobjdump -res-usage``) and spill instructions (``STL``/``LDL``);
* the class loops: each backward branch closes a loop; a loop's classes per iteration are its global loads of
  logits over the 2 a class needs (teacher, student), so an unrolled loop is counted per class all the same; a
  loop that stores (the gradient) is the second pass, else the first;
* warp-instructions per logit element: per pass, the instructions per class of its costliest loop (a remainder
  loop of an unrolled one costs more a class) times the classes, plus every instruction outside the loops once
  (set-up, the head's terms, the masses, the program's sums): an upper bound, since some are alternatives,
  over the ``32 × pixels a thread`` pixels of a warp and the C classes: ``instructions / (32·p·C)`` per element of
  one logit tensor. Memory time is the floor the kernel must reach; a figure far below the GPU's issue rate per
  byte (H100 SXM: about 3.7 warp-instructions per fp32 logit at full bandwidth) leaves it bandwidth-bound.
"""
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Sequence, Tuple

import torch

from ..losses.inputs import LabelMap
from ..losses.kernels import gpu

# the shapes read: logits as the distiller gives them to the loss, labels at the crop's size
CASES: Dict[int, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {
    19: ((2, 19, 64, 128), (2, 512, 1024)),
    150: ((2, 150, 64, 64), (2, 512, 512)),
    1000: ((512, 1000), (512,)),
    8000: ((512, 8000), (512,)),
}
SUMMARY_CLASSES = (19, 150, 1000)
LOADS_PER_CLASS = 2
INSTRUCTION = re.compile(r'/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);')


@dataclass
class KernelCost:
    """What one compile of the loss kernel costs."""
    num_classes: int
    registers: int
    local_bytes: int
    spill_instructions: int
    per_class: Tuple[float, float]  # instructions per class of the first and second pass (per thread)
    outside_loops: int
    pixels_per_thread: int

    def instructions_per_element(self) -> float:
        loops = sum(self.per_class) * self.num_classes
        return (loops + self.outside_loops) / (32 * self.pixels_per_thread * self.num_classes)


def compile_for_hopper(kernel, args: tuple, constants: dict):
    """``kernel`` compiled for sm_90 as a launch with ``args`` and ``constants`` would be; needs no GPU (Triton's
    compiler and its bundled ptxas). Returns Triton's compiled kernel.

    Raises:
        RuntimeError: when Triton runs kernels through its interpreter in this process (nothing is compiled).
    """
    import triton  # noqa: PLC0415  (optional: PyTorch's CUDA builds bring it)
    from triton.backends.compiler import GPUTarget  # noqa: PLC0415
    from triton.compiler import ASTSource, make_backend  # noqa: PLC0415
    from triton.runtime.jit import create_function_from_signature  # noqa: PLC0415

    if gpu.interpreter_on():
        raise RuntimeError('the SASS report compiles the kernel: run it without TRITON_INTERPRET=1')
    target = GPUTarget('cuda', 90, 32)
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound_args, specialization, options = binder(*args, **constants)
    options, signature, constexprs, attrs = kernel._pack_args(backend, constants, bound_args, specialization,
                                                              options)
    return triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)


def cuobjdump(cubin: bytes, *flags: str) -> str:
    """The output of Triton's bundled ``cuobjdump`` with ``flags`` on a compiled kernel's cubin."""
    from triton import knobs  # noqa: PLC0415  (optional, see compile_for_hopper)

    with tempfile.TemporaryDirectory(prefix='gdkd_sass_') as folder:
        path = os.path.join(folder, 'kernel.cubin')
        with open(path, 'wb') as file:
            file.write(cubin)
        return subprocess.run([knobs.nvidia.cuobjdump.path, *flags, path], check=True, capture_output=True,
                              text=True).stdout


def instructions(sass: str) -> List[Tuple[int, str, str]]:
    """``(address, opcode, operands)`` of each instruction of a ``cuobjdump -sass`` listing, NOPs left out."""
    found = []
    for match in INSTRUCTION.finditer(sass):
        address, _, opcode, operands = match.groups()
        if opcode != 'NOP':
            found.append((int(address, 16), opcode, operands))
    return found


def loop_costs(listing: Sequence[Tuple[int, str, str]]) -> Tuple[Tuple[float, float], int]:
    """Per pass, the instructions a class costs in the loops, and the instructions outside every loop.

    Returns:
        ``((first pass per class, second pass per class), outside loops)``.
    """
    loops = []
    for address, opcode, operands in listing:
        if opcode.startswith('BRA'):
            target = int(re.search(r'0x([0-9a-f]+)', operands).group(1), 16)
            if target < address:
                loops.append((target, address))
            elif target == address:  # the trap loop after EXIT
                loops.append((address, address))
    in_loops = set()
    per_class = {False: 0.0, True: 0.0}  # the costliest class loop of each pass: first (no store), second
    for start, end in loops:
        body = [(address, opcode) for address, opcode, _ in listing if start <= address <= end]
        in_loops.update(address for address, _ in body)
        loads = sum(opcode.startswith('LDG') for _, opcode in body)
        if loads == 0:
            continue
        second = any(opcode.startswith('STG') for _, opcode in body)
        per_class[second] = max(per_class[second], len(body) / max(loads // LOADS_PER_CLASS, 1))
    outside = sum(address not in in_loops for address, _, _ in listing)
    return (per_class[False], per_class[True]), outside


def kernel_cost(num_classes: int) -> KernelCost:
    """The loss kernel's cost at one of :data:`CASES` (GDKD k=3 with labels, float32, with the gradient)."""
    logits_shape, label_shape = CASES[num_classes]
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(logits_shape, generator=generator)
    teacher = torch.randn(logits_shape, generator=generator)
    labels = LabelMap(torch.randint(0, num_classes, label_shape, generator=generator), student, 255)
    _, args, constants, _, _ = gpu.kernel_arguments(student, teacher, labels, (1.0, 2.0), 1.0, 1.0, top_k=3,
                                                    rank_groups=(0, 0, 0), pixels=gpu.LAUNCH['pixels'])
    compiled = compile_for_hopper(gpu.kernels().grouped_kl_kernel, args, constants)
    cubin = compiled.asm['cubin']
    usage = cuobjdump(cubin, '-res-usage')
    registers = int(re.search(r'REG:(\d+)', usage).group(1))
    local_bytes = int(re.search(r'LOCAL:(\d+)', usage).group(1))
    listing = instructions(cuobjdump(cubin, '-sass'))
    per_class, outside = loop_costs(listing)
    spills = sum(opcode.startswith(('STL', 'LDL')) for _, opcode, _ in listing)
    return KernelCost(num_classes, registers, local_bytes, spills, per_class, outside,
                      constants['BLOCK_P'] // (32 * constants['num_warps']))


def sass_report(class_counts: Sequence[int] = tuple(CASES)) -> Iterator[str]:
    """The report of ``benchmark_losses.py --sass``, line by line, ending with the one-line summary."""
    yield '# The GPU loss kernel from its sm_90 compile (no GPU needed)'
    yield ''
    yield ('- GDKD k=3, float32 logits, labels at the crop size resized in the kernel, with the gradient; compiled '
           'by Triton for sm_90 with the specialisation of a launch on these shapes, disassembled by cuobjdump')
    yield ('- instr/elem: warp-instructions per logit element, the class loops per class plus everything outside '
           'them once (see gdkd_seg/benchmark/sass.py)')
    yield ''
    yield '| C | logits | registers | local bytes | spill instr | pass 1 instr/class | pass 2 instr/class | ' \
          'outside loops | pixels/thread | instr/elem |'
    yield '|---|---|---|---|---|---|---|---|---|---|'
    costs = []
    for num_classes in class_counts:
        cost = kernel_cost(num_classes)
        costs.append(cost)
        yield (f'| {num_classes} | {CASES[num_classes][0]} | {cost.registers} | {cost.local_bytes} | '
               f'{cost.spill_instructions} | {cost.per_class[0]:.1f} | {cost.per_class[1]:.1f} | {cost.outside_loops} '
               f'| {cost.pixels_per_thread} | {cost.instructions_per_element():.2f} |')
    yield ''
    yield 'sass: ' + ', '.join(f'C={cost.num_classes} {cost.instructions_per_element():.2f} instr/elem'
                               for cost in costs if cost.num_classes in SUMMARY_CLASSES)
