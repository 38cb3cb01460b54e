"""Build stage, the CPU budget: what a build on the CPU may spend before it starts again on meta."""

from __future__ import annotations

from layerscope import limits
from layerscope.run import devices


class Budget:
    """Bytes put on the device and multiply-accumulates run so far; past devices' CPU budgets, OverBudget.

    On a CPU asked for by name (`--device cpu`) nothing starts again on meta, so there the bytes
    are held to limits.CPU_BYTES instead, checked before they are allocated."""

    def __init__(self, budgeted: bool = False, on_cpu: bool = False):
        self.budgeted = budgeted  # False: count only, as on meta or an explicit --device
        self.on_cpu = on_cpu and not budgeted
        self.used_bytes = 0
        self.used_macs = 0

    def charge(self, nbytes: int = 0, macs: int = 0) -> None:
        """Count bytes about to live on the device and work about to be done; past a budget, stop."""
        self.used_bytes += nbytes
        self.used_macs += macs
        if self.budgeted and (self.used_bytes > devices.CPU_BUDGET_BYTES or self.used_macs > devices.CPU_BUDGET_MACS):
            raise devices.OverBudget
        if self.on_cpu:
            limits.check_cpu_bytes(self.used_bytes)
