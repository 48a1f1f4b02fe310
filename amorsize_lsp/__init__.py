"""amorsize-lsp: parallelism tuning for pool-map calls, in the editor and in CI.

Data flows one way: source text -> call sites (analysis) -> workloads and
recommendations (engine) -> findings (rules) -> presentation (lsp, lint).
"""

__version__ = "0.1.0"
