"""The amorsize language server (pygls 2.x): thin handlers over the check seam.

Each handler turns a protocol request into calls on the analysis worker (which runs
``check_source``), the incremental reuse of the last snapshot, and the daemon
link, and converts the answer back. Positions go through pygls's position codec,
against the lines of the text that was analysed (never the current buffer), so a
result is never shown at a position of another version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import threading
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lsprotocol import types as t
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from amorsize_lsp import __version__
from amorsize_lsp.analysis.model import Span, TextEdit
from amorsize_lsp.check import CheckSettings
from amorsize_lsp.config import ConfigError, find_config_file, load_config
from amorsize_lsp.lsp import present, wire
from amorsize_lsp.lsp.daemon_link import DaemonLink, SampleCancelled
from amorsize_lsp.lsp.incremental import apply_patch, carried, incremental, split_lines
from amorsize_lsp.lsp.settings import Settings, parse_settings, to_json
from amorsize_lsp.lsp.snapshot import Issue, Patch, Site, Snapshot
from amorsize_lsp.lsp.worker import AnalysisWorker, WorkerFailed

log = logging.getLogger("amorsize.lsp")

SOURCE = "amorsize"
FIX_ALL_KIND = "source.fixAll.amorsize"
#: Where a rule is documented (the project page, as in the SARIF output; the full text is
#: ``amorsize-lint --explain CODE``).
DOCS_URL = "https://pypi.org/project/amorsize-lsp/#{code}"
SAMPLE = "amorsize.sampleCallSite"
RESTART = "amorsize.restartDaemon"
STATUS = "amorsize.showStatus"
_SEVERITY = {
    "error": t.DiagnosticSeverity.Error,
    "warning": t.DiagnosticSeverity.Warning,
    "information": t.DiagnosticSeverity.Information,
}


#: The JSON-RPC id of the request whose handler is being started (see AmorsizeProtocol).
REQUEST_ID: ContextVar[Any] = ContextVar("amorsize_request_id", default=None)


class AmorsizeProtocol(LanguageServerProtocol):
    """Makes ``$/cancelRequest`` reach long commands.

    pygls runs ``workspace/executeCommand`` handlers under a generator, so cancelling
    the request only cancels the reply, and the command would run on (pygls#517). The
    request id is put in a context variable while the handler task is created; a
    command that can be cancelled registers its task under that id, and a
    ``$/cancelRequest`` for the id cancels the task itself.
    """

    def _handle_request(self, msg_id: Any, method_name: str, params: Any) -> None:
        token = REQUEST_ID.set(msg_id)
        try:
            super()._handle_request(msg_id, method_name, params)
        finally:
            REQUEST_ID.reset(token)

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        super()._handle_cancel_notification(msg_id)
        task = getattr(self._server, "running", {}).pop(msg_id, None)
        if task is not None:
            task.cancel()


class RequestFailed(JsonRpcException):
    """An LSP ``RequestFailed`` (-32803) error with a precise message."""

    code = -32803


@dataclass(slots=True)
class DocState:
    """What the server knows about one open document."""

    uri: str
    #: The newest snapshot (for the version in ``version``), and the last without errors.
    snapshot: Snapshot | None = None
    version: int | None = None
    last_good: Snapshot | None = None
    settings_key: Any = None
    pending: asyncio.Task[None] | None = None
    #: Set whenever a snapshot for the current version is stored.
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class AmorsizeServer(LanguageServer):
    """The server object; handlers are registered in :func:`create_server`."""

    def __init__(self) -> None:
        super().__init__(
            "amorsize-lsp",
            __version__,
            text_document_sync_kind=t.TextDocumentSyncKind.Incremental,
            converter_factory=wire.converter,
            protocol_cls=AmorsizeProtocol,
            notebook_document_sync=t.NotebookDocumentSyncOptions(
                notebook_selector=[
                    t.NotebookDocumentFilterWithCells(
                        cells=[t.NotebookCellLanguage(language="python")]
                    )
                ]
            ),
        )
        self.worker = AnalysisWorker()
        #: Snapshots made, by how ("full", "partial", "incremental", ...): for the status.
        self.analyses: Counter[str] = Counter()
        self.daemon = DaemonLink()
        self.docs: dict[str, DocState] = {}
        self.base_settings = Settings()
        self.folder_settings: dict[str, Settings] = {}
        self.images = False
        self.pull = False
        self._configs: dict[str, Any] = {}
        self._sampled_at: dict[str, float] = {}
        self.warming: asyncio.Future[None] | None = None
        self._diag_cache: dict[Any, t.Diagnostic] = {}
        #: Cancellable command tasks by request id.
        self.running: dict[Any, asyncio.Task[Any]] = {}

    # ------------------------------------------------------------------ settings

    def folder_of(self, uri: str) -> str | None:
        best = None
        for folder in self.folder_settings:
            if uri.startswith(folder.rstrip("/") + "/") and (
                best is None or len(folder) > len(best)
            ):
                best = folder
        return best

    def settings_for(self, uri: str) -> Settings:
        folder = self.folder_of(uri)
        return (
            self.folder_settings.get(folder, self.base_settings) if folder else self.base_settings
        )

    def check_settings(self, uri: str, settings: Settings) -> tuple[CheckSettings, str | None]:
        """The seam's settings for a document: ``[tool.amorsize]`` plus the editor's."""
        path = doc_path(uri)
        problem = None
        config = None
        if path is not None:
            try:
                found = find_config_file(path.parent)
                if found is not None:
                    key = (str(found), found.stat().st_mtime_ns)
                    config = self._configs.get(key)
                    if config is None:
                        config = load_config(found)
                        self._configs[key] = config
            except (ConfigError, OSError) as exc:
                problem = str(exc)
        if config is None:
            from amorsize_lsp.config import Config

            config = Config(root=path.parent if path else Path.cwd())
        try:
            cs = config.check_settings(path, settings.lint_select, settings.lint_ignore)
        except ConfigError as exc:
            problem = str(exc)
            cs = config.check_settings(path)
        return cs, problem

    # ------------------------------------------------------------------ analysis

    def state(self, uri: str) -> DocState:
        st = self.docs.get(uri)
        if st is None:
            st = self.docs[uri] = DocState(uri)
        return st

    def schedule(self, uri: str, *, immediate: bool = False) -> None:
        """(Re)start the debounced analysis of ``uri``; earlier pending work is dropped."""
        st = self.state(uri)
        if st.pending is not None and not st.pending.done():
            st.pending.cancel()
        st.ready.clear()
        delay = 0.0 if immediate else self.settings_for(uri).debounce_ms / 1000
        st.pending = asyncio.ensure_future(self._analyse_after(uri, delay))

    async def _analyse_after(self, uri: str, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await self.analyse(uri)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("analysis of %s failed", uri)

    async def analyse(self, uri: str) -> Snapshot | None:
        """Analyse the document's current version; store and publish unless superseded."""
        doc = self.workspace.get_text_document(uri)
        version, text = doc.version, doc.source
        st = self.state(uri)
        settings = self.settings_for(uri)
        cs, problem = self.check_settings(uri, settings)
        key = (cs, settings.lint_select, settings.lint_ignore)
        snap: Snapshot | None = None
        base = st.snapshot if st.snapshot is not None and st.snapshot.ok else st.last_good
        if base is not None and st.settings_key != key:
            base = None
        if base is not None:
            snap = incremental(base, text)
        if snap is None:
            snap = await self._check(uri, text, cs, base)
            if snap.how == "syntax":
                good = st.last_good if st.settings_key == key else None
                snap = carried(good, text, snap.errors[0])
        self.analyses[snap.how] += 1
        if problem:
            snap.errors.append(Issue("E902", "configuration", problem, "error", Span(1, 0, 1, 0)))
        self._note_advice(snap)
        current = self.workspace.text_documents.get(uri)
        if current is None or current.version != version:
            # Superseded: keep it only as a base for the next incremental step.
            if snap.ok:
                st.last_good, st.settings_key = snap, key
            return None
        st.snapshot, st.version, st.settings_key = snap, version, key
        if snap.ok:
            st.last_good = snap
        st.ready.set()
        if not self.pull:
            self.publish(uri, snap, version)
        return snap

    async def _check(
        self, uri: str, text: str, cs: CheckSettings, base: Snapshot | None = None
    ) -> Snapshot:
        """The worker's analysis of ``text``: a full snapshot, or a patch to ``base``
        (an edit inside a function that call sites map; see ``recheck``)."""
        advice = {
            "daemon": True,
            "socket": self.daemon.socket_path,
            "db": self.daemon.db_path,
            "roots": [str(p) for p in self.project_roots(uri)],
        }
        path = doc_path(uri)
        request = {
            "op": "check",
            "path": str(path) if path else uri,
            "text": text,
            "settings": cs,
            "advice": advice,
        }
        if base is not None:
            request["previous"] = base.text
        try:
            answer = await self.worker.call(request)
            if isinstance(answer, Patch):
                snap = apply_patch(base, text, answer) if base is not None else None
                if snap is not None:
                    return snap
                request.pop("previous")  # cannot happen; the full check still answers
                answer = await self.worker.call(request)
            return answer
        except WorkerFailed as exc:
            log.error("%s", exc)
            issue = Issue("E999", "analysis-failed", str(exc), "error", Span(1, 0, 1, 0))
            return Snapshot(text, errors=[issue], how="failed")

    def project_roots(self, uri: str) -> list[Path]:
        roots = []
        folder = self.folder_of(uri)
        if folder:
            p = doc_path(folder)
            if p:
                roots.append(p)
        for f in self.workspace.folders.values():
            p = doc_path(f.uri)
            if p and p not in roots:
                roots.append(p)
        return roots

    def _note_advice(self, snap: Snapshot) -> None:
        if snap.how != "full":
            return
        if snap.advice == "daemon":
            if self.daemon.state == "down":
                self.window_log_message(
                    t.LogMessageParams(t.MessageType.Info, "amorsize: the daemon is back")
                )
            self.daemon.state = "up"
            self.daemon.warned = False
            return
        self.daemon.state = "down"
        if not self.daemon.warned:
            self.daemon.warned = True
            where = "the stored measurements" if snap.advice == "store" else "no measurements"
            self.window_show_message(
                t.ShowMessageParams(
                    t.MessageType.Warning,
                    "amorsize: the daemon is not running, so the lint rules and "
                    f"{where} are shown; it reconnects by itself. Start it with "
                    "`amorsize-daemon serve` or the command 'amorsize.restartDaemon'.",
                )
            )

    # ---------------------------------------------------------------- conversion

    def range_of(self, snap: Snapshot, span: Span, lines: list[str] | None = None) -> t.Range:
        lines = lines if lines is not None else snap_lines(snap)
        codec = self.workspace.position_codec
        start = codec.position_to_client_units(lines, t.Position(span.line - 1, span.column))
        end = codec.position_to_client_units(lines, t.Position(span.end_line - 1, span.end_column))
        return t.Range(start, end)

    def text_edit(self, snap: Snapshot, edit: TextEdit, lines: list[str]) -> t.TextEdit:
        return t.TextEdit(range=self.range_of(snap, edit.span, lines), new_text=edit.new_text)

    def _related_support(self) -> bool:
        doc = self.client_capabilities.text_document
        publish = doc.publish_diagnostics if doc is not None else None
        return bool(publish and publish.related_information)

    def diagnostics(self, snap: Snapshot, uri: str) -> list[t.Diagnostic]:
        lines = snap_lines(snap)
        out = []
        cache: dict[Any, t.Diagnostic] = {}
        for issue in [*snap.errors, *snap.issues]:
            # An issue that only moved (or did not change) converts the same way when
            # the text of its lines is the same: reuse the last conversion.
            key = (uri, issue, *(_line(lines, n) for n in _issue_lines(issue)))
            hit = self._diag_cache.get(key)
            if hit is not None:
                cache[key] = hit
                out.append(hit)
                continue
            data: dict[str, Any] = {"code": issue.code}
            if issue.fix_edits:
                data["fix"] = {
                    "title": issue.fix_title,
                    "safe": issue.fix_safe,
                    "edits": [edit_json(self.text_edit(snap, e, lines)) for e in issue.fix_edits],
                }
            if issue.suppress is not None:
                data["suppress"] = edit_json(self.text_edit(snap, issue.suppress, lines))
            is_rule = issue.code.startswith("AMZ")
            related = None
            if issue.related and self._related_support():
                related = [
                    t.DiagnosticRelatedInformation(
                        t.Location(uri, self.range_of(snap, span, lines)), text
                    )
                    for span, text in issue.related
                ]
            out.append(
                t.Diagnostic(
                    range=self.range_of(snap, issue.span, lines),
                    message=issue.message,
                    severity=_SEVERITY[issue.severity],
                    code=issue.code,
                    code_description=t.CodeDescription(
                        href=DOCS_URL.format(code=issue.code.lower())
                    )
                    if is_rule
                    else None,
                    source=SOURCE,
                    data=data,
                    related_information=related,
                )
            )
            cache[key] = out[-1]
        self._diag_cache = cache
        return out

    def publish(self, uri: str, snap: Snapshot, version: int | None) -> None:
        self.text_document_publish_diagnostics(
            t.PublishDiagnosticsParams(
                uri=uri, diagnostics=self.diagnostics(snap, uri), version=version
            )
        )

    async def current(self, uri: str, timeout_s: float = 30.0) -> Snapshot | None:
        """The snapshot of the document's current version, waiting for it if needed."""
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            return None
        st = self.state(uri)
        # A re-analysis under way (new settings) supersedes the snapshot of this version.
        fresh = st.pending is None or st.pending.done()
        if st.snapshot is not None and st.version == doc.version and fresh:
            return st.snapshot
        if fresh:
            self.schedule(uri, immediate=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(st.ready.wait(), timeout_s)
        doc = self.workspace.text_documents.get(uri)
        if doc is not None and st.version == doc.version:
            return st.snapshot
        return None

    def reanalyse_all(self) -> None:
        """Analyse every open document afresh (advice or settings changed: no reuse)."""
        for uri in list(self.workspace.text_documents):
            self.state(uri).settings_key = None
            self.schedule(uri, immediate=True)

    def refresh_views(self) -> None:
        """Ask the client to re-request hints, lenses and pulled diagnostics."""
        ws = self.client_capabilities.workspace
        if ws is None:
            return
        if ws.inlay_hint and ws.inlay_hint.refresh_support:
            self.workspace_inlay_hint_refresh(None)
        if ws.code_lens and ws.code_lens.refresh_support:
            self.workspace_code_lens_refresh(None)
        if self.pull and ws.diagnostics and ws.diagnostics.refresh_support:
            self.workspace_diagnostic_refresh(None)


def _line(lines: list[str], number: int) -> str | None:
    return lines[number - 1] if 0 < number <= len(lines) else None


def _issue_lines(issue: Issue) -> set[int]:
    spans = [issue.span, *(e.span for e in issue.fix_edits), *(s for s, _ in issue.related)]
    if issue.suppress is not None:
        spans.append(issue.suppress.span)
    return {n for s in spans for n in (s.line, s.end_line)}


def snap_lines(snap: Snapshot) -> list[str]:
    return split_lines(snap.text)


def edit_json(edit: t.TextEdit) -> dict[str, Any]:
    r = edit.range
    return {
        "range": {
            "start": {"line": r.start.line, "character": r.start.character},
            "end": {"line": r.end.line, "character": r.end.character},
        },
        "newText": edit.new_text,
    }


def edit_from_json(data: dict[str, Any]) -> t.TextEdit:
    r = data["range"]
    return t.TextEdit(
        range=t.Range(
            t.Position(r["start"]["line"], r["start"]["character"]),
            t.Position(r["end"]["line"], r["end"]["character"]),
        ),
        new_text=data["newText"],
    )


def doc_path(uri: str) -> Path | None:
    """The file system path of a ``file:`` URI; None for untitled and other schemes."""
    if urlparse(uri).scheme != "file":
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def _overlaps(a: t.Range, b: t.Range) -> bool:
    a0, a1 = (a.start.line, a.start.character), (a.end.line, a.end.character)
    b0, b1 = (b.start.line, b.start.character), (b.end.line, b.end.character)
    return a0 <= b1 and b0 <= a1


def create_server(worker: subprocess.Popen[bytes] | None = None) -> AmorsizeServer:
    """The server; ``worker`` is an analysis worker already started (``worker.spawn``)."""
    server = AmorsizeServer()
    if worker is not None:
        server.worker = AnalysisWorker(started=worker)

    @server.feature(t.INITIALIZE)
    def initialize(ls: AmorsizeServer, params: t.InitializeParams) -> None:
        ls.base_settings = parse_settings(params.initialization_options or {})
        opts = (
            params.initialization_options if isinstance(params.initialization_options, dict) else {}
        )
        name = (params.client_info.name if params.client_info else "") or ""
        images = opts.get("hoverImages")
        ls.images = images if isinstance(images, bool) else "code" in name.lower()
        td = params.capabilities.text_document
        ls.pull = bool(td and td.diagnostic)
        for folder in params.workspace_folders or []:
            ls.folder_settings[folder.uri] = ls.base_settings
        _apply_log_level(ls.base_settings)
        ls.warming = asyncio.ensure_future(ls.worker.start())

    @server.feature(t.INITIALIZED)
    async def initialized(ls: AmorsizeServer, params: t.InitializedParams) -> None:
        await _fetch_configuration(ls)

    @server.feature(t.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: AmorsizeServer, params: t.DidChangeConfigurationParams
    ) -> None:
        if params.settings:
            ls.base_settings = parse_settings(params.settings, ls.base_settings)
            for folder in ls.folder_settings:
                ls.folder_settings[folder] = parse_settings(
                    params.settings, ls.folder_settings[folder]
                )
        await _fetch_configuration(ls)
        _apply_log_level(ls.base_settings)
        ls.reanalyse_all()
        ls.refresh_views()

    @server.feature(t.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    async def did_change_folders(ls: AmorsizeServer, params: t.DidChangeWorkspaceFoldersParams):
        for f in params.event.removed:
            ls.folder_settings.pop(f.uri, None)
        for f in params.event.added:
            ls.folder_settings[f.uri] = ls.base_settings
        await _fetch_configuration(ls)

    @server.feature(t.SHUTDOWN)
    async def shutdown(ls: AmorsizeServer, params: None) -> None:
        for st in ls.docs.values():
            if st.pending is not None:
                st.pending.cancel()
        await ls.worker.close()

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: AmorsizeServer, params: t.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, immediate=True)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: AmorsizeServer, params: t.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: AmorsizeServer, params: t.DidSaveTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, immediate=True)

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: AmorsizeServer, params: t.DidCloseTextDocumentParams) -> None:
        st = ls.docs.pop(params.text_document.uri, None)
        if st is not None and st.pending is not None:
            st.pending.cancel()
        if not ls.pull:
            ls.text_document_publish_diagnostics(
                t.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
            )

    @server.feature(
        t.TEXT_DOCUMENT_DIAGNOSTIC,
        t.DiagnosticOptions(
            identifier=SOURCE, inter_file_dependencies=False, workspace_diagnostics=False
        ),
    )
    async def pull_diagnostics(
        ls: AmorsizeServer, params: t.DocumentDiagnosticParams
    ) -> t.DocumentDiagnosticReport:
        snap = await ls.current(params.text_document.uri)
        items = ls.diagnostics(snap, params.text_document.uri) if snap is not None else []
        return t.RelatedFullDocumentDiagnosticReport(items=items)

    @server.feature(
        t.TEXT_DOCUMENT_CODE_ACTION,
        t.CodeActionOptions(
            code_action_kinds=[
                t.CodeActionKind.QuickFix,
                t.CodeActionKind.RefactorRewrite,
                FIX_ALL_KIND,
                t.CodeActionKind.SourceFixAll,
            ],
            resolve_provider=True,
        ),
    )
    async def code_action(
        ls: AmorsizeServer, params: t.CodeActionParams
    ) -> list[t.CodeAction] | None:
        uri = params.text_document.uri
        snap = await ls.current(uri)
        if snap is None:
            return None
        only = params.context.only
        lines = snap_lines(snap)
        doc = ls.workspace.get_text_document(uri)
        actions: list[t.CodeAction] = []

        def wanted(kind: str) -> bool:
            return not only or any(kind == k or kind.startswith(f"{k}.") for k in only)

        resolve = _supports_resolve(ls)
        if wanted(t.CodeActionKind.QuickFix):
            for diag in params.context.diagnostics:
                if diag.source != SOURCE or not isinstance(diag.data, dict):
                    continue
                data = diag.data
                fix = data.get("fix")
                if isinstance(fix, dict) and fix.get("edits"):
                    edits = [edit_from_json(e) for e in fix["edits"]]
                    actions.append(
                        t.CodeAction(
                            title=f"{fix.get('title')} ({diag.code})",
                            kind=t.CodeActionKind.QuickFix,
                            diagnostics=[diag],
                            is_preferred=bool(fix.get("safe")),
                            edit=_workspace_edit(uri, doc.version, edits),
                        )
                    )
                sup = data.get("suppress")
                if isinstance(sup, dict):
                    actions.append(
                        t.CodeAction(
                            title=f"Suppress {diag.code} on this line",
                            kind=t.CodeActionKind.QuickFix,
                            diagnostics=[diag],
                            edit=_workspace_edit(uri, doc.version, [edit_from_json(sup)]),
                        )
                    )
        if wanted(t.CodeActionKind.RefactorRewrite):
            for site in snap.sites:
                if not site.apply_edits or not site.apply_title:
                    continue
                if not _overlaps(ls.range_of(snap, site.span, lines), params.range):
                    continue
                edits = [ls.text_edit(snap, e, lines) for e in site.apply_edits]
                data = {"uri": uri, "version": doc.version, "line": site.span.line}
                action = t.CodeAction(
                    title=site.apply_title, kind=t.CodeActionKind.RefactorRewrite, data=data
                )
                if not resolve:
                    action.edit = _workspace_edit(uri, doc.version, edits)
                actions.append(action)
        if wanted(FIX_ALL_KIND) or (only and t.CodeActionKind.SourceFixAll in only):
            safe = [i for i in snap.issues if i.fix_safe and i.fix_edits]
            if safe:
                data = {"uri": uri, "version": doc.version, "fixAll": True}
                action = t.CodeAction(
                    title="Fix all safe amorsize issues", kind=FIX_ALL_KIND, data=data
                )
                if not resolve:
                    action.edit = await _fix_all_edit(ls, uri)
                actions.append(action)
        return actions or None

    @server.feature(t.CODE_ACTION_RESOLVE)
    async def code_action_resolve(ls: AmorsizeServer, action: t.CodeAction) -> t.CodeAction:
        data = action.data if isinstance(action.data, dict) else {}
        uri = data.get("uri")
        if not isinstance(uri, str):
            return action
        doc = ls.workspace.text_documents.get(uri)
        if doc is None or doc.version != data.get("version"):
            raise RequestFailed("the document changed since this action was offered; ask again")
        if data.get("fixAll"):
            action.edit = await _fix_all_edit(ls, uri)
            return action
        snap = await ls.current(uri)
        if snap is None:
            return action
        lines = snap_lines(snap)
        for site in snap.sites:
            if site.span.line == data.get("line") and site.apply_edits:
                edits = [ls.text_edit(snap, e, lines) for e in site.apply_edits]
                action.edit = _workspace_edit(uri, doc.version, edits)
        return action

    @server.feature(t.TEXT_DOCUMENT_INLAY_HINT, t.InlayHintOptions(resolve_provider=False))
    async def inlay_hints(ls: AmorsizeServer, params: t.InlayHintParams) -> list[t.InlayHint]:
        uri = params.text_document.uri
        if not ls.settings_for(uri).inlay_hints_enabled:
            return []
        snap = await ls.current(uri)
        if snap is None:
            return []
        lines = snap_lines(snap)
        hints = []
        for site in snap.sites:
            label = present.hint_label(site.rec)
            if label is None:
                continue
            end = ls.range_of(snap, site.span, lines).end
            if not (params.range.start.line <= end.line <= params.range.end.line):
                continue
            hints.append(
                t.InlayHint(
                    position=end,
                    label=label,
                    kind=t.InlayHintKind.Type,
                    padding_left=False,
                    tooltip=(site.rec or {}).get("reasons", [""])[0] if site.rec else None,
                )
            )
        return hints

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    async def hover(ls: AmorsizeServer, params: t.HoverParams) -> t.Hover | None:
        uri = params.text_document.uri
        snap = await ls.current(uri)
        if snap is None:
            return None
        lines = snap_lines(snap)
        for site in snap.sites:
            rng = ls.range_of(snap, site.span, lines)
            here = t.Range(params.position, params.position)
            if _overlaps(rng, here):
                text = present.hover_markdown(
                    site.rec,
                    site.callsite,
                    images=ls.images,
                    measured_at=ls._sampled_at.get(f"{uri}:{site.span.line}"),
                )
                return t.Hover(
                    contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=text), range=rng
                )
        return None

    @server.feature(t.TEXT_DOCUMENT_CODE_LENS, t.CodeLensOptions(resolve_provider=False))
    async def code_lens(ls: AmorsizeServer, params: t.CodeLensParams) -> list[t.CodeLens]:
        uri = params.text_document.uri
        if not ls.settings_for(uri).may_sample or doc_path(uri) is None:
            return []
        snap = await ls.current(uri)
        if snap is None:
            return []
        lines = snap_lines(snap)
        lenses = []
        for site in snap.sites:
            rng = ls.range_of(snap, site.span, lines)
            title = present.lens_title(site.rec, ls._sampled_at.get(f"{uri}:{site.span.line}"))
            args = [{"uri": uri, "line": site.span.line}]
            lenses.append(
                t.CodeLens(
                    range=rng, command=t.Command(title=title, command=SAMPLE, arguments=args)
                )
            )
        return lenses

    @server.command(SAMPLE)
    async def sample_call_site(ls: AmorsizeServer, *args: Any) -> dict[str, Any]:
        return await _sample(ls, args)

    @server.command(RESTART)
    async def restart_daemon(ls: AmorsizeServer, *args: Any) -> dict[str, Any]:
        settings = ls.base_settings
        try:
            status = await ls.daemon.restart(settings.daemon_auto_start)
        except Exception as exc:
            raise RequestFailed(f"amorsize: could not restart the daemon: {exc}") from None
        ls.reanalyse_all()
        return {"state": ls.daemon.state, "status": status, "error": ls.daemon.last_error}

    @server.command(STATUS)
    async def show_status(ls: AmorsizeServer, *args: Any) -> dict[str, Any]:
        return await _status(ls)

    return server


def _supports_resolve(ls: AmorsizeServer) -> bool:
    td = ls.client_capabilities.text_document
    ca = td.code_action if td else None
    props = ca.resolve_support.properties if ca and ca.resolve_support else []
    return "edit" in props


def _workspace_edit(uri: str, version: int | None, edits: list[t.TextEdit]) -> t.WorkspaceEdit:
    return t.WorkspaceEdit(
        document_changes=[
            t.TextDocumentEdit(
                text_document=t.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=list(edits),
            )
        ]
    )


async def _fix_all_edit(ls: AmorsizeServer, uri: str) -> t.WorkspaceEdit:
    """Every safe fix, applied (and re-checked) by the seam's ``fix_source`` in the worker."""
    doc = ls.workspace.get_text_document(uri)
    text = doc.source
    cs, _ = ls.check_settings(uri, ls.settings_for(uri))
    path = doc_path(uri)
    try:
        fixed, _counts = await ls.worker.call(
            {"op": "fix", "path": str(path) if path else uri, "text": text, "settings": cs}
        )
    except WorkerFailed as exc:
        raise RequestFailed(str(exc)) from None
    lines = split_lines(text)
    end = t.Position(len(lines) - 1, ls.workspace.position_codec.client_num_units(lines[-1]))
    edit = t.TextEdit(range=t.Range(t.Position(0, 0), end), new_text=fixed)
    return _workspace_edit(uri, doc.version, [edit] if fixed != text else [])


async def _fetch_configuration(ls: AmorsizeServer) -> None:
    ws = ls.client_capabilities.workspace
    if not (ws and ws.configuration):
        return
    folders = list(ls.folder_settings)
    items = [t.ConfigurationItem(section="amorsize")] + [
        t.ConfigurationItem(scope_uri=f, section="amorsize") for f in folders
    ]
    try:
        answers = await asyncio.wait_for(
            ls.workspace_configuration_async(t.ConfigurationParams(items=items)), 10
        )
    except Exception as exc:  # a client that cannot answer keeps the current settings
        log.warning("workspace/configuration failed: %s", exc)
        return
    if not answers:
        return
    if isinstance(answers[0], dict):
        ls.base_settings = parse_settings(answers[0], ls.base_settings)
    for folder, answer in zip(folders, answers[1:], strict=False):
        base = ls.base_settings
        ls.folder_settings[folder] = (
            parse_settings(answer, base) if isinstance(answer, dict) else base
        )
    for s in [ls.base_settings, *ls.folder_settings.values()]:
        for problem in s.problems:
            ls.window_log_message(t.LogMessageParams(t.MessageType.Warning, f"amorsize: {problem}"))


def _apply_log_level(settings: Settings) -> None:
    logging.getLogger("amorsize").setLevel(settings.log_level.upper())


def _site_at(snap: Snapshot, line: int) -> Site | None:
    exact = [s for s in snap.sites if s.span.line == line]
    spanning = [s for s in snap.sites if s.span.line <= line <= s.span.end_line]
    return (exact or spanning or [None])[0]


async def _sample(ls: AmorsizeServer, args: tuple[Any, ...]) -> dict[str, Any]:
    arg = args[0] if args and isinstance(args[0], dict) else {}
    uri, line = arg.get("uri"), arg.get("line")
    if not isinstance(uri, str) or not isinstance(line, int):
        raise RequestFailed(
            "amorsize.sampleCallSite: pass one argument "
            '{"uri": <document URI>, "line": <1-based line>}'
        )
    settings = ls.settings_for(uri)
    if not settings.trusted:
        raise RequestFailed(
            "amorsize: sampling runs your code, and this workspace is not trusted "
            "(setting amorsize.trusted is false); trust the workspace to sample"
        )
    if not settings.sampling_enabled:
        raise RequestFailed(
            "amorsize: sampling is disabled; set amorsize.sampling.enabled to true to sample"
        )
    path = doc_path(uri)
    if path is None or not path.is_file():
        raise RequestFailed(f"amorsize: {uri} is not a file on disk; save it before sampling")
    doc = ls.workspace.text_documents.get(uri)
    if doc is not None:
        try:
            on_disk = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            on_disk = None
        if on_disk is not None and on_disk != doc.source:
            raise RequestFailed(
                f"amorsize: {path.name} has unsaved changes; save it first, since the file "
                "on disk is what runs"
            )
    cancelled = threading.Event()
    loop = asyncio.get_running_loop()
    token = f"amorsize-sample-{os.getpid()}-{time.monotonic_ns()}"
    progress = False
    win = ls.client_capabilities.window
    if win and win.work_done_progress:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ls.work_done_progress.create_async(token), 5)
            progress = True
    if progress:
        ls.work_done_progress.begin(
            token,
            t.WorkDoneProgressBegin(
                title=f"Sampling {path.name}:{line}", cancellable=True, message="queued"
            ),
        )

    def on_event(event: dict[str, Any]) -> None:
        if progress:
            message = str(event.get("phase") or event.get("state") or "")
            loop.call_soon_threadsafe(
                ls.work_done_progress.report, token, t.WorkDoneProgressReport(message=message)
            )

    async def watch_cancel() -> None:
        future = ls.work_done_progress.tokens.get(token) if progress else None
        while not cancelled.is_set():
            if future is not None and future.cancelled():
                cancelled.set()
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch_cancel())
    request_id = REQUEST_ID.get()
    task = asyncio.current_task()
    if request_id is not None and task is not None:
        ls.running[request_id] = task
    outcome = "failed"
    try:
        status = await ls.daemon.sample(
            path,
            line,
            interpreter=settings.interpreter,
            budget_s=settings.sampling_budget_s,
            spawn=settings.daemon_auto_start,
            on_event=on_event,
            cancelled=cancelled,
        )
        outcome = str(status.get("state"))
    except asyncio.CancelledError:
        cancelled.set()  # the request was cancelled ($/cancelRequest): cancel the job too
        outcome = "cancelled"
        raise
    except SampleCancelled as exc:
        outcome = "cancelled"
        return {"state": "cancelled", "message": str(exc)}
    except Exception as exc:
        raise RequestFailed(f"amorsize: sampling {path.name}:{line} failed: {exc}") from None
    finally:
        cancelled.set()
        watcher.cancel()
        ls.running.pop(request_id, None)
        if progress:
            ls.work_done_progress.end(token, t.WorkDoneProgressEnd(message=outcome))
    if status.get("state") == "done":
        ls._sampled_at[f"{uri}:{line}"] = time.time()
        with contextlib.suppress(WorkerFailed):
            await ls.worker.call({"op": "refresh"})
        ls.reanalyse_all()
        for st in ls.docs.values():
            if st.pending is not None:
                with contextlib.suppress(Exception):
                    await st.pending
        ls.refresh_views()
    elif status.get("state") == "failed":
        err = status.get("error") or {}
        raise RequestFailed(f"amorsize: sampling {path.name}:{line} failed: {err.get('message')}")
    return status


async def _status(ls: AmorsizeServer) -> dict[str, Any]:
    status = await ls.daemon.status()
    counts = ((status or {}).get("db") or {}).get("counts") or {}
    open_measured = sum(
        1
        for st in ls.docs.values()
        if st.snapshot is not None
        for s in st.snapshot.sites
        if s.rec and s.rec.get("source") in ("measured", "recorded")
    )
    return {
        "server": {"version": __version__, "pid": os.getpid()},
        "daemon": {
            "state": ls.daemon.state,
            "socket": ls.daemon.socket_path,
            "error": ls.daemon.last_error,
            "version": (status or {}).get("version"),
            "queue": (status or {}).get("queue"),
            "db": (status or {}).get("db"),
        },
        "measured_profiles": counts.get("profiles"),
        "measured_call_sites_open": open_measured,
        "documents": len(ls.docs),
        "worker": {
            "pid": ls.worker.pid,
            "restarts": ls.worker.restarts,
            "requests": ls.worker.requests,
            "last_failure": ls.worker.last_failure,
        },
        "analyses": dict(ls.analyses),
        "settings": to_json(ls.base_settings),
    }
