"""How much work a mapped function does, read from its compiled bytecode.

The module source is compiled with ``compile()`` and never executed. The cost model
uses the figures to guess per-item cost before anything is sampled, and the code
hash keys measurements, so a changed constant (``x*2`` -> ``x*3``) invalidates them.

Only ``dis`` APIs and opcode *names* are used, never opcode numbers, so the analysis
works on every CPython from 3.10 on (3.11 split ``CALL``, 3.12 inlined comprehensions,
3.13 added ``CALL_KW``). A loop is a backward jump (its target offset precedes it)
whose target dominates it in the control-flow graph; see ``loops.find_loops``.

The package is split by concern: ``code_index`` (compile, code objects by
qualname, imports), ``loops`` (control flow), ``blocking_io`` (I/O names),
``codehash``, ``measure`` (the walk that sums it up), ``workspace`` (reading
an imported module) and ``lookup`` (from a call site's callable to a result).
"""

from __future__ import annotations

from .codehash import code_hash
from .complexity import Complexity
from .lookup import complexity_for, function_complexity

__all__ = ["Complexity", "code_hash", "complexity_for", "function_complexity"]
