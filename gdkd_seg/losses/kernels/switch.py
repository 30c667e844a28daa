"""A process-wide flag that a ``with`` block holds on for its duration: how tests and benchmarks choose which
implementation of the grouped losses runs (``cpu.switched_off()``, ``gpu.interpreted_on_cpu()``)."""
from contextlib import contextmanager
from typing import Iterator


class Switch:
    """Off unless inside :meth:`held`; nested blocks restore what was there before."""

    def __init__(self) -> None:
        self.on = False

    @contextmanager
    def held(self) -> Iterator[None]:
        previous, self.on = self.on, True
        try:
            yield
        finally:
            self.on = previous
