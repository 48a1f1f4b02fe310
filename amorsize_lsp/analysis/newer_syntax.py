"""When CPython's parser rejects a file: newer syntax for libcst, or a syntax error.

The running interpreter may be older than the code it reads (``type X = int``
on 3.11), and libcst parses every version. But libcst's native parser is not
safe on arbitrary broken text: it crashes the process on deep nesting and can
run for minutes on some broken files. So a file that ``ast.parse`` rejects
reaches libcst only statement by statement, and only where the error can be
syntax newer than the interpreter:

- an error of a kind no Python version accepts (bad indentation, too many
  nested parentheses, invalid characters, ...) is reported at once, with
  CPython's message and position;
- any other error must sit next to a construct that some newer Python added
  (a ``type`` statement, ``def f[T]``, an f-string or t-string,
  ``except A, B:``); that statement is then masked with a placeholder of the
  same lines and block structure, and ``ast.parse`` runs again, until the
  file parses (every other statement is then known to be valid) or an error
  that cannot be newer syntax shows up.

The masked statements are bounded in size, bracket depth and operator chain
length before libcst sees them, and the masking rounds in the text they
re-parse; the caller parses each masked statement with libcst on its own.
"""

from __future__ import annotations

import ast
import bisect
import re
import sys
from dataclasses import dataclass

from .model import AnalysisError

#: Most masked statements per file before giving up (each costs one ``ast.parse``).
MAX_MASKS = 64
#: Most characters re-parsed by ``ast.parse`` over all masking rounds of one file.
MAX_REPARSED_CHARS = 20_000_000
#: Largest masked statement (characters) libcst is given.
MAX_MASKED_CHARS = 20_000
#: Longest run of operators between separators in a masked statement: libcst's
#: parse time grows with the square of an expression chain (``a.b.c...``, ``1+1+...``).
MAX_CHAIN = 500
#: CPython's own bracket limit (MAXLEVEL); libcst crashes the process far beyond it.
MAX_BRACKET_DEPTH = 200

#: Error messages no Python version turns into valid code.
_NEVER_NEWER = re.compile(
    r"too many nested parentheses|unexpected indent|unindent does not match"
    r"|too many levels of indentation|invalid character|invalid non-printable character"
    r"|^unmatched '|does not match opening parenthesis|was never closed"
    r"|unexpected EOF|unexpected character after line continuation"
)
_FSTRING = r"(?<![\w'\"])(?:[fF]|[fF][rR]|[rR][fF])['\"]"
_TSTRING = r"(?<![\w'\"])(?:[tT]|[tT][rR]|[rR][tT])['\"]"
#: (first version with the syntax, a pattern that finds it).
_NEWER_CONSTRUCTS: tuple[tuple[tuple[int, int], re.Pattern[str]], ...] = (
    ((3, 11), re.compile(r"\bexcept\s*\*|\[\s*\*")),
    ((3, 12), re.compile(rf"(?m)^\s*type\s+[A-Za-z_]|\b(?:def|class)\s+\w+\s*\[|{_FSTRING}")),
    ((3, 14), re.compile(rf"{_TSTRING}|\bexcept\b[^:(\n]*,")),
)
#: Lines before the error that may hold the construct (a multi-line f-string).
_WINDOW = 20

_SCAN = re.compile(
    r"""\#[^\r\n]*
    | (?<!\w)[rRbBuUfFtT]{0,2}(?:'''(?:[^\\]|\\.)*?(?:'''|\Z)|\"\"\"(?:[^\\]|\\.)*?(?:\"\"\"|\Z))
    | (?<!\w)[rRbBuUfFtT]{0,2}(?:'(?:[^'\\\r\n]|\\.)*'?|"(?:[^"\\\r\n]|\\.)*"?)
    | \\\r?\n
    | \r\n|\r|\n
    | [(\[{]
    | [)\]}]
    """,
    re.VERBOSE | re.DOTALL,
)
_CHAIN_TOKEN = re.compile(
    r"[(){}\[\],;:\n]|\*\*|//|<<|>>|[-+*/%@&|^~<>.]|\b(?:not|and|or|if|lambda|await|in|is)\b"
)
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclass(frozen=True)
class Masked:
    """A file that parses once some statements are masked: the tree, and the masked lines."""

    tree: ast.Module
    lines: frozenset[int]
    #: CPython's error for each masked statement, by its first line.
    errors: dict[int, AnalysisError]

    def error_in(self, first: int, last: int) -> AnalysisError | None:
        """CPython's error for a masked statement within lines ``first``..``last``."""
        return next((e for line, e in self.errors.items() if first <= line <= last), None)


def _syntax_error(path: str, exc: SyntaxError) -> AnalysisError:
    line = exc.lineno or 1
    return AnalysisError(path, f"syntax error: {exc.msg}", line, max((exc.offset or 1) - 1, 0))


def _as_error(path: str, exc: BaseException) -> AnalysisError:
    if isinstance(exc, SyntaxError):
        return _syntax_error(path, exc)
    if isinstance(exc, ValueError):
        return AnalysisError(path, f"cannot parse: {exc}")
    return AnalysisError(path, "source is nested too deeply or too complex to parse")


def _may_be_newer(exc: SyntaxError, lines: list[str]) -> bool:
    """Whether some Python newer than this one might accept the statement at ``exc``."""
    if isinstance(exc, IndentationError) or _NEVER_NEWER.search(exc.msg or ""):
        return False
    first = exc.lineno or 1
    last = max(first, getattr(exc, "end_lineno", None) or first)
    window = "".join(lines[max(first - 1 - _WINDOW, 0) : last])
    return any(
        sys.version_info < version and pattern.search(window)
        for version, pattern in _NEWER_CONSTRUCTS
    )


def logical_starts(source: str) -> list[int]:
    """1-based numbers of the lines that start a logical line (bracket depth 0).

    An approximation of the tokenizer that survives any text: strings and
    comments are skipped, brackets counted; it only decides what to mask.
    """
    starts = [1]
    line, depth = 1, 0
    for m in _SCAN.finditer(source):
        tok = m.group()
        c = tok[0]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(depth - 1, 0)
        elif c in "\r\n":
            line += 1
            if depth == 0:
                starts.append(line)
        elif c == "\\" or c != "#":  # a continuation, or a string
            line += tok.count("\n") + tok.count("\r") - tok.count("\r\n")
    return starts


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for c in text:
        if c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def _longest_chain(text: str) -> int:
    """Most operators in a row with no bracket, comma or colon between them."""
    longest = run = 0
    for m in _CHAIN_TOKEN.finditer(text):
        if m.group() in "(){}[],;:\n":
            run = 0
        else:
            run += 1
            longest = max(longest, run)
    return longest


def _too_big_for_libcst(statement: str) -> str | None:
    """Why libcst must not see ``statement`` (the bound it breaks), or None."""
    if len(statement) > MAX_MASKED_CHARS:
        return (
            f"in a {len(statement)}-character statement, too large to try as newer syntax;"
            f" limit {MAX_MASKED_CHARS}"
        )
    if _bracket_depth(statement) > MAX_BRACKET_DEPTH:
        return f"brackets nested over {MAX_BRACKET_DEPTH} deep"
    if _longest_chain(statement) > MAX_CHAIN:
        return f"over {MAX_CHAIN} operators in one expression"
    return None


def _placeholder(lines: list[str]) -> list[str]:
    """Lines of the same count and block structure as ``lines``, which CPython parses."""
    first = lines[0]
    indent = first[: len(first) - len(first.lstrip())]
    head = first.lstrip()
    last = re.sub(r"#[^'\"]*$", "", lines[-1].rstrip("\r\n")).rstrip()
    if not last.endswith(":"):
        opening, closing = "(", "0)"
    elif re.match(r"(?:async\s+)?def\b", head):
        opening, closing = "def _(", "):"
    elif head.startswith("class"):
        opening, closing = "class _(", "):"
    elif head.startswith("except"):
        opening, closing = "except (", "Exception):"
    else:
        opening, closing = "if (", "1):"
    ends = [line[len(line.rstrip("\r\n")) :] for line in lines]
    if len(lines) == 1:
        return [indent + opening + closing + ends[0]]
    return [indent + opening + ends[0], *ends[1:-1], closing + ends[-1]]


def mask_newer_syntax(source: str, error: BaseException, path: str) -> Masked:
    """Parse ``source`` that ``ast.parse`` rejected with ``error``, masking newer syntax.

    Raises ``AnalysisError`` with CPython's message and position unless every
    error is next to newer syntax, and each masked statement is small and
    shallow enough for libcst.
    """
    if not isinstance(error, SyntaxError):
        raise _as_error(path, error)
    lines = _LINES.findall(source)
    text_lines = list(lines)
    starts: list[int] | None = None
    masked: dict[int, tuple[int, SyntaxError]] = {}  # first line -> (last line, its error)
    exc: BaseException = error
    reparsed = 0
    for _ in range(MAX_MASKS):
        if not isinstance(exc, SyntaxError):
            raise _as_error(path, exc)
        line = exc.lineno or 1
        if any(first <= line <= last for first, (last, _e) in masked.items()):
            # The placeholder did not help: report the statement's own error.
            owner = next(e for first, (last, e) in masked.items() if first <= line <= last)
            raise _syntax_error(path, owner)
        if not _may_be_newer(exc, lines) or line > len(lines):
            raise _syntax_error(path, exc)
        if starts is None:
            starts = logical_starts(source)
        end_line = max(line, getattr(exc, "end_lineno", None) or line)
        first = starts[bisect.bisect_right(starts, line) - 1]
        after = bisect.bisect_right(starts, end_line)
        last = (starts[after] - 1) if after < len(starts) else len(lines)
        last = min(max(last, end_line), len(lines))
        statement = "".join(lines[first - 1 : last])
        too_big = _too_big_for_libcst(statement)
        if too_big is not None:
            cpython = _syntax_error(path, exc)
            raise AnalysisError(
                path, f"{cpython.message} ({too_big})", cpython.line, cpython.column
            )
        reparsed += len(source)
        if reparsed > MAX_REPARSED_CHARS:
            break
        masked[first] = (last, exc)
        text_lines[first - 1 : last] = _placeholder(lines[first - 1 : last])
        try:
            tree = ast.parse("".join(text_lines))
        except (SyntaxError, ValueError, MemoryError, RecursionError) as again:
            exc = again
            continue
        covered = frozenset(n for f, (la, _e) in masked.items() for n in range(f, la + 1))
        errors = {f: _syntax_error(path, e) for f, (_la, e) in masked.items()}
        return Masked(tree, covered, errors)
    raise _syntax_error(path, error)


def ast_depth(nodes: list[ast.stmt], limit: int) -> int:
    """Depth of the deepest node under ``nodes``, counting stops past ``limit``.

    Level by level (no per-node tuples): it runs on every large statement.
    """
    depth = 0
    level: list[ast.AST] = list(nodes)
    while level:
        depth += 1
        if depth > limit:
            return depth
        below: list[ast.AST] = []
        for node in level:
            for name in node._fields:
                value = getattr(node, name, None)
                if isinstance(value, ast.AST):
                    below.append(value)
                elif isinstance(value, list):
                    below.extend(v for v in value if isinstance(v, ast.AST))
        level = below
    return depth
