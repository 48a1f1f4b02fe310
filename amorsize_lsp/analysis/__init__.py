"""Pure static analysis with libcst: call sites, bytecode complexity, argument edits. No I/O."""
