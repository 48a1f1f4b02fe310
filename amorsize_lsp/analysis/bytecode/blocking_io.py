"""Which names a function loads that block on I/O (files, network, processes, sleep)."""

from __future__ import annotations

import dis
from collections.abc import Mapping

from .opcodes import ATTR_OPS, EXCEPTION_MATCH, NAME_LOADS, TRANSPARENT

#: Modules whose every use blocks on the network, a child process or a device.
IO_MODULES = frozenset(
    {
        "socket",
        "ssl",
        "select",
        "selectors",
        "requests",
        "httpx",
        "urllib",
        "urllib3",
        "http",
        "subprocess",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "telnetlib",
        "sqlite3",
        "psycopg2",
        "pymysql",
        "boto3",
    }
)
#: Individual blocking callables, by canonical dotted name.
IO_FUNCTIONS = frozenset(
    {
        "open",
        "input",
        "sleep",
        "urlopen",
        "time.sleep",
        "os.system",
        "os.popen",
        "os.open",
        "os.read",
        "os.write",
        "os.wait",
        "os.waitpid",
        "os.fsync",
        "io.open",
        "codecs.open",
        "gzip.open",
        "bz2.open",
        "lzma.open",
        "tarfile.open",
        "zipfile.ZipFile",
        "shutil.copy",
        "shutil.copy2",
        "shutil.copyfile",
        "shutil.copytree",
        "shutil.move",
        "shutil.rmtree",
        "builtins.open",
        "builtins.input",
    }
)
#: Blocking methods recognised on any receiver (``pathlib.Path`` file access).
IO_METHODS = frozenset({"read_text", "write_text", "read_bytes", "write_bytes"})


def attribute_chain(ins: list[dis.Instruction], pos: int) -> list[str]:
    """``a.b.c`` for a name load followed by attribute loads, as written."""
    chain = [str(ins[pos].argval)]
    for instr in ins[pos + 1 :]:
        if instr.opname in TRANSPARENT:
            continue
        if instr.opname not in ATTR_OPS:
            break
        chain.append(str(instr.argval))
    return chain


def matches_exception(ins: list[dis.Instruction], pos: int) -> bool:
    """Whether the load at ``pos`` only names an exception in an ``except`` clause."""
    for instr in ins[pos + 1 :]:
        op = instr.opname
        if op in TRANSPARENT or op in ATTR_OPS or op in NAME_LOADS or op == "BUILD_TUPLE":
            continue
        if op.startswith("LOAD_FAST"):
            continue
        return op in EXCEPTION_MATCH
    return False


def note_io(chain: list[str], imports: Mapping[str, str], variable: bool, io: set[str]) -> None:
    """Record ``chain`` if it names blocking I/O; ``imports`` canonicalises its root.

    A local variable (``variable``) is a module only if an import in the function
    bound it; otherwise only its methods are checked (``path.read_text()``), so a
    parameter named ``open`` is not the builtin.
    """
    root = chain[0]
    if root in imports:
        dotted = [*imports[root].split("."), *chain[1:]]
    elif variable:
        if len(chain) > 1 and chain[-1] in IO_METHODS:
            io.add(".".join(chain))
        return
    else:
        dotted = list(chain)
    last = dotted[-1]
    if last.isupper() or last.endswith(("Error", "Exception", "Warning", "Exit")):
        return  # a constant or exception class, not a blocking call
    full = ".".join(dotted)
    for cut in range(len(dotted), 0, -1):
        if ".".join(dotted[:cut]) in IO_FUNCTIONS:
            io.add(".".join(dotted[:cut]))
            return
    if dotted[0] in IO_MODULES or (len(dotted) > 1 and dotted[-1] in IO_METHODS):
        io.add(full)
