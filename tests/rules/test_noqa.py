import pytest

from amorsize_lsp.analysis.model import Span
from amorsize_lsp.rules.model import Finding
from amorsize_lsp.rules.noqa import filter_suppressed, parse_noqa, suppression_edit


def finding(code, line):
    return Finding(code, "x", "m", "f.py", Span(line, 0, line, 1))


@pytest.mark.parametrize(
    ("comment", "codes"),
    [
        ("# noqa", None),
        ("# NOQA", None),
        ("# noqa: AMZ001", {"AMZ001"}),
        ("# noqa:AMZ001,AMZ002", {"AMZ001", "AMZ002"}),
        ("# noqa: AMZ001 AMZ002", {"AMZ001", "AMZ002"}),
        ("# noqa: E501, amz003", {"E501", "AMZ003"}),
        ("# type: ignore  # noqa: AMZ004", {"AMZ004"}),
    ],
)
def test_parse(comment, codes):
    directives = parse_noqa(f"x = 1  {comment}\n")
    assert directives[1].codes == (None if codes is None else frozenset(codes))


def test_noqa_inside_a_string_is_not_a_directive():
    assert parse_noqa('x = "# noqa"\n') == {}


def test_filter_suppressed():
    source = "a  # noqa: AMZ001\nb  # noqa\nc\n"
    kept, suppressed = filter_suppressed(
        [finding("AMZ001", 1), finding("AMZ002", 1), finding("AMZ003", 2), finding("AMZ001", 3)],
        source,
    )
    assert [(f.code, f.line) for f in kept] == [("AMZ002", 1), ("AMZ001", 3)]
    assert len(suppressed) == 2


def _apply(source, edit):
    from amorsize_lsp.analysis.edits import apply_edits

    return apply_edits(source, [edit])


def test_suppression_edit_appends_a_comment():
    source = "y = pool.imap(f, xs)   \nz = 2\n"
    assert _apply(source, suppression_edit(source, 1, "AMZ001")) == (
        "y = pool.imap(f, xs)  # noqa: AMZ001\nz = 2\n"
    )


def test_suppression_edit_merges_into_an_existing_directive():
    source = "y = pool.imap(f, xs)  # noqa: E501  # why\n"
    new = _apply(source, suppression_edit(source, 1, "AMZ001"))
    assert new == "y = pool.imap(f, xs)  # noqa: E501, AMZ001  # why\n"
    assert suppression_edit(new, 1, "AMZ001") is None


def test_suppression_edit_keeps_crlf_and_other_comments():
    source = "y = g()  # comment\r\n"
    assert _apply(source, suppression_edit(source, 1, "AMZ007")) == (
        "y = g()  # comment  # noqa: AMZ007\r\n"
    )


def test_no_suppression_edit_where_a_comment_cannot_go():
    source = 's = """abc\ndef"""\nt = 1 + \\\n  2\n'
    assert suppression_edit(source, 1, "AMZ001") is None
    assert suppression_edit(source, 3, "AMZ001") is None
    assert suppression_edit(source, 2, "AMZ001") is not None


def test_file_level_exemption():
    findings = [finding("AMZ003", 5), finding("AMZ007", 6)]
    kept, _ = filter_suppressed(findings, "# amorsize: noqa: AMZ003\n")
    assert [f.code for f in kept] == ["AMZ007"]
    kept, _ = filter_suppressed(findings, "x = 1\n# Amorsize: NOQA\n")
    assert kept == []
    # Not on its own line, or inside a string: no exemption.
    assert len(filter_suppressed(findings, "x = 1  # amorsize: noqa\n")[0]) == 2
    assert len(filter_suppressed(findings, 's = """\n# amorsize: noqa\n"""\n')[0]) == 2
