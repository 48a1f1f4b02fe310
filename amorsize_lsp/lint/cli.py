"""``amorsize-lint``: check pool-map calls like ruff checks style.

Exit codes follow ruff: 0 no findings, 1 findings (or files that could not be
analysed), 2 usage, configuration or internal error, or when no file could be
analysed at all.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from amorsize_lsp import __version__
from amorsize_lsp.config import Config, ConfigError, resolve_config, validate_selectors
from amorsize_lsp.rules.registry import all_rules, get_rule

from .discovery import Discovery, Missing
from .formats import FORMATS, OutputOptions
from .runner import FileError, FileItem, FileReport, LintResult, Settings, lint

# The other output modules (fixes, show, statistics) are imported when the report
# is written: by then the workers are busy, and the start-up before the first file
# is read stays short.

PROG = "amorsize-lint"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Check Python pool-map calls (multiprocessing, concurrent.futures) for bugs and "
            "slow parallelism: the AMZ rules. Run `amorsize-lint --explain` for the list."
        ),
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or directories (default: .)"
    )
    parser.add_argument(
        "--format", choices=sorted(FORMATS), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="CODES",
        help="comma-separated rule codes or prefixes to enable (replaces the configured selection)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODES",
        help="comma-separated rule codes or prefixes to disable",
    )
    parser.add_argument("--fix", action="store_true", help="apply safe fixes")
    parser.add_argument(
        "--no-store",
        action="store_true",
        help="do not read the amorsize store or .amorsize/profiles.jsonl (no AMZ1xx advice)",
    )
    parser.add_argument(
        "--unsafe-fixes", action="store_true", help="also apply (or offer) unsafe fixes"
    )
    parser.add_argument(
        "--diff",
        action="store_true",
        help="print the fixes as a unified diff instead of writing them",
    )
    parser.add_argument(
        "--add-noqa", action="store_true", help="add `# noqa: CODE` to every line with a finding"
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when there are findings"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="configuration file (pyproject.toml or amorsize.toml)",
    )
    parser.add_argument(
        "--force-exclude",
        action="store_true",
        help="apply excludes to files named on the command line too (for pre-commit)",
    )
    parser.add_argument(
        "--stdin-filename",
        metavar="PATH",
        help="the path of the source read from standard input (PATH `-`), for messages, "
        "configuration and per-file-ignores",
    )
    parser.add_argument(
        "--target-cores",
        type=_positive_int,
        metavar="N",
        help="usable cores of the machine the code runs on (AMZ005 checks worker counts "
        "only when this or `target-cores` in the configuration is set)",
    )
    parser.add_argument(
        "--show-callsites",
        action="store_true",
        help="print every pool-map call site found, instead of findings",
    )
    parser.add_argument(
        "--explain",
        nargs="?",
        const="",
        metavar="CODE",
        help="print a rule's documentation (all rules when no code is given)",
    )
    parser.add_argument(
        "--statistics", action="store_true", help="print the number of findings per rule"
    )
    parser.add_argument(
        "-o",
        "--output-file",
        type=Path,
        metavar="PATH",
        help="write the report to a file instead of stdout",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print findings only, no summary"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR") or os.environ.get("CLICOLOR_FORCE"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _explain(code: str, out: TextIO) -> int:
    if not code:
        for rule in all_rules():
            fix = "[*]" if rule.fix is not None else "   "
            out.write(f"{rule.code} {fix} {rule.name:<26} {rule.summary}\n")
        return 0
    rule = get_rule(code)
    if rule is None:
        known = ", ".join(r.code for r in all_rules())
        print(f"{PROG}: error: unknown rule `{code}`; known rules: {known}", file=sys.stderr)
        return 2
    out.write(rule.explain())
    return 0


def _display(path: Path, cwd: Path) -> str:
    if path.is_absolute():
        try:
            return path.relative_to(cwd).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def _files(
    config: Config, paths: list[Path], force_exclude: bool, selected: frozenset[str]
) -> Iterator[FileItem]:
    """The files to lint as discovery finds them (so analysis starts before the walk
    ends), and an error report for each path that does not exist."""
    cwd = Path.cwd()
    discovery = Discovery(config, force_exclude=force_exclude)
    for item in discovery.files(paths):
        if isinstance(item, Missing):
            display = _display(item.path, cwd)
            yield FileReport(display, error=FileError(display, "no such file or directory"))
            continue
        yield item, _display(item, cwd), selected - config.ignored_for(item)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # exit 2 like ruff, with what a bug report needs
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(
            f"{PROG}: error: internal error: {type(exc).__name__}: {exc}; please report this "
            f"with the traceback above ({PROG} {__version__})",
            file=sys.stderr,
        )
        return 2


def _run(args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.explain is not None:
        return _explain(args.explain, out)
    paths: list[Path] = args.paths or [Path(".")]
    try:
        cli_select = validate_selectors(args.select, "--select")
        cli_ignore = validate_selectors(args.ignore, "--ignore")
        config_start = [Path(args.stdin_filename)] if args.stdin_filename else paths
        config = resolve_config(args.config, config_start)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    selected = config.selected_codes(cli_select, cli_ignore)
    check = config.check_settings(select=cli_select, ignore=cli_ignore)
    if args.target_cores is not None:
        check = replace(check, target_cores=args.target_cores, target_cores_origin="--target-cores")
    settings = Settings(
        check=check,
        fix=args.fix or args.diff,
        unsafe_fixes=args.unsafe_fixes,
        show_callsites=args.show_callsites,
        advice=None if args.no_store else _advice(config),
    )
    stdin: bytes | None = None
    contents: dict[str, bytes] | None = None
    files: Iterator[FileItem]
    if paths == [Path("-")] or (args.stdin_filename and not args.paths):
        stdin = sys.stdin.buffer.read()
        name = Path(args.stdin_filename) if args.stdin_filename else Path("-")
        display = _display(name.absolute(), Path.cwd()) if args.stdin_filename else "-"
        files = iter([(name, display, selected - config.ignored_for(name))])
        contents = {display: stdin}
    else:
        files = _files(config, paths, args.force_exclude, selected)
    encodings: dict[str, str] = {}
    # A directory to walk: read and prefilter in a child while this process starts
    # the analysis (see runner.lint); files named one by one are read here.
    walk = stdin is None and any(p.is_dir() for p in paths)
    result = lint(files, settings, encodings=encodings, contents=contents, background=walk)
    if not result.files_seen:
        print(
            f"{PROG}: warning: no Python files found under {' '.join(map(str, paths))}",
            file=sys.stderr,
        )
        return 0

    sink: TextIO = out
    close_sink = False
    if args.output_file is not None:
        try:
            sink = args.output_file.open("w", encoding="utf-8")
        except OSError as exc:
            print(
                f"{PROG}: error: cannot write {args.output_file}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
        close_sink = True
    try:
        if stdin is not None:
            return _report_stdin(args, result, stdin, sink)
        return _report(args, result, settings, encodings, sink)
    finally:
        if close_sink:
            sink.close()


def _advice(config) -> tuple[str | None, tuple[str, ...]] | None:
    """Where the recommendation rules read advice from (read-only), or None."""
    from amorsize_lsp.advice import StoreAdvice

    db = os.environ.get("AMORSIZE_DB") or None
    roots = (str(config.root),)
    if not StoreAdvice.available(db, [Path(r) for r in roots]):
        return None
    return db, roots


def _report(args, result: LintResult, settings: Settings | None, encodings, sink: TextIO) -> int:
    """Print the report; ``settings`` is None for standard input (nothing to write)."""
    from .fixes import add_noqa, render_diff, write_fixes
    from .show import write_callsites
    from .statistics import write_statistics

    for report in result.reports:
        for note in report.rejected:
            print(f"{PROG}: warning: {note}", file=sys.stderr)
    options = OutputOptions(
        color=args.format in ("text", "concise") and _use_color(sink),
        unsafe_fixes=args.unsafe_fixes,
        fix_mode=args.fix and not args.diff,
        root=Path.cwd(),
    )
    if args.show_callsites:
        write_callsites(result, sink, args.format)
        _errors_to_stderr(result)
        return _nothing_analysed(result) or 0

    if result.nothing_analysed:
        # Machine-readable formats still get their (error-only) report.
        if args.format in ("text", "concise"):
            _errors_to_stderr(result)
        else:
            FORMATS[args.format](result, sink, options)
        return _nothing_analysed(result)

    if args.diff:
        changed = render_diff(result, sink)
        fixed = sum(result.fixed.values())
        noun = "problem" if fixed == 1 else "problems"
        if changed:
            print(f"Would fix {fixed} {noun}.", file=sys.stderr)
        else:
            print("No fixes available.", file=sys.stderr)
        _errors_to_stderr(result)
        return 1 if changed and not args.exit_zero else 0

    if args.fix and settings is not None:
        for problem in write_fixes(result, encodings):
            print(f"{PROG}: error: {problem}", file=sys.stderr)

    if args.add_noqa and settings is not None:
        added, problems = add_noqa(result, encodings)
        for problem in problems:
            print(f"{PROG}: warning: {problem}", file=sys.stderr)
        noun = "directive" if added == 1 else "directives"
        print(f"Added {added} noqa {noun}.", file=sys.stderr)
        return 0

    if args.statistics:
        write_statistics(result, sink, args.format, options)
    elif args.quiet and args.format == "text":
        FORMATS["concise"](result, sink, options)
    else:
        FORMATS[args.format](result, sink, options)

    has_problems = bool(result.findings or result.errors)
    return 1 if has_problems and not args.exit_zero else 0


def _report_stdin(args, result: LintResult, original: bytes, sink: TextIO) -> int:
    """Standard input: with ``--fix``, the (fixed) source goes to stdout, the report to
    stderr, as editors and ruff expect; otherwise the report goes to stdout."""
    if args.fix and not args.diff and not args.show_callsites:
        (report,) = result.reports
        if report.fixed_text is not None:
            sys.stdout.buffer.write(report.fixed_text.encode(report.encoding))
        else:
            sys.stdout.buffer.write(original)
        sys.stdout.flush()
        sink = sys.stderr
    return _report(args, result, None, {}, sink)


def _nothing_analysed(result: LintResult) -> int:
    if not result.nothing_analysed:
        return 0
    print(f"{PROG}: error: no file could be analysed", file=sys.stderr)
    return 2


def _errors_to_stderr(result: LintResult) -> None:
    for error in result.errors:
        print(
            f"{error.path}:{error.line}:{error.column + 1}: E999 {error.message}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    raise SystemExit(main())
