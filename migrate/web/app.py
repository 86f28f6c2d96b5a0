"""The review app: the queue, item pages with the evidence, decisions, the decision log and golden records.

Server-rendered pages that work without JavaScript; ``static/review.js`` only adds keyboard
shortcuts. Every decision goes through :func:`migrate.review.decide`, the same code as
``crm-migrate review decide``, so the CLI sees it at once.
"""

from __future__ import annotations

import getpass
import json
import math
from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
import sqlalchemy as sa
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from mappings.canonical import GOLDEN_ATTRIBUTES
from migrate import charts, review
from migrate.project import Project
from migrate.web.security import LOCAL_HOSTS, SECURITY_HEADERS, Session
from migrate.workspace import golden, golden_events, read_table, records, xref

#: Queue rows per page.
PAGE_SIZE = 100
#: Probability bands the queue filters on (the review threshold is 0.60 by default).
BANDS = ((0.0, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0))
STATUSES = (*review.STATUSES, "all")
#: Record columns the side-by-side view leaves out: bookkeeping, or already in the record key.
HIDDEN_COLUMNS = ("record_key", "source", "source_id", "row_hash", "name_key", "first_seen_run", "last_seen_run")
#: Record columns that differ between any two records by nature: shown, never flagged.
UNCOMPARED = ("source_ref", "source_updated_at", "extra")
#: Decision log columns, in the order a steward reads them (``previous`` is for audits: CLI and JSON).
LOG_COLUMNS = ("id", "at", "who", "item_id", "constraint", "record_key_l", "record_key_r", "golden_id", "attribute",
               "value", "note", "revoked_at", "revoked_by")
#: Golden records a search lists at most.
SEARCH_LIMIT = 50
TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Changed since you looked"}

_HERE = files("migrate.web")
templates = Jinja2Templates(directory=str(_HERE / "templates"))


def show(value: Any) -> str:
    """A workspace value as a steward reads and types it: lists comma-separated, consent as yes/no.

    The same text is what a ``pick`` decision sends back, so it must match how
    :mod:`migrate.review` writes the values it offers.

    Example:
        >>> show(["a@x.org", "b@x.org"]), show(None), show(float("nan")), show(True)
        ('a@x.org, b@x.org', '', '', 'yes')
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(show(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value) if value else ""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


templates.env.filters["show"] = show
templates.env.filters["quote"] = lambda value: quote(str(value), safe="")


def band_key(band: tuple[float, float]) -> str:
    """How a band appears in a URL.

    Example:
        >>> band_key((0.6, 0.7))
        '0.6-0.7'
    """
    return f"{band[0]:g}-{band[1]:g}"


@dataclass(frozen=True)
class Filters:
    """The queue filters of a request (query string), validated."""

    kind: str | None = None
    source: str | None = None
    band: tuple[float, float] | None = None
    status: str = "open"

    @classmethod
    def parse(cls, request: Request, sources: list[str]) -> Filters:
        """Read the filters; an unknown kind, source, band or status is a 400."""
        q = request.query_params
        kind, source, band = q.get("kind") or None, q.get("source") or None, q.get("band") or None
        status = q.get("status") or "open"
        for name, value, allowed in (("kind", kind, review.KINDS), ("source", source, sources),
                                     ("status", status, STATUSES), ("band", band, [band_key(b) for b in BANDS])):
            if value is not None and value not in allowed:
                raise HTTPException(400, f"Unknown {name} {value!r} (one of: {', '.join(allowed)}).")
        return cls(kind, source, next((b for b in BANDS if band_key(b) == band), None), status)

    @property
    def band_name(self) -> str | None:
        """The band as it appears in a URL."""
        return band_key(self.band) if self.band else None

    def query(self, **extra: Any) -> str:
        """These filters (and ``extra``) as a query string for links."""
        pairs = {"kind": self.kind, "source": self.source, "band": self.band_name,
                 "status": None if self.status == "open" else self.status, **extra}
        return urlencode({k: v for k, v in pairs.items() if v not in (None, "")})

    def select(self, items: pd.DataFrame, **override: Any) -> pd.DataFrame:
        """The rows of :func:`migrate.review.list_items` these filters keep (``override`` replaces some).

        The queue page reads the items of one status once and narrows them here, so its
        facet counts and its list come from the same read; the rules are list_items' own
        (a source matches an item involving one of its records, a band is inclusive).
        """
        f = {"kind": self.kind, "source": self.source, "band": self.band, **override}
        keep = pd.Series(True, index=items.index)
        if f["kind"]:
            keep &= items["kind"] == f["kind"]
        if f["source"]:
            keep &= items["sources"].map(lambda s: f["source"] in s)
        if f["band"]:
            keep &= pd.to_numeric(items["probability"], errors="coerce").between(*f["band"])
        return items[keep]

    def items(self, project: Project) -> pd.DataFrame:
        """The review items these filters select, in queue order."""
        return review.list_items(project.workspace(), self.kind, self.source, self.status, self.band)


def create_app(project: Project, token: str, *, who: str | None = None,
               hosts: tuple[str, ...] = LOCAL_HOSTS) -> Starlette:
    """The review app for ``project``, opened by ``token``.

    Args:
        project: The migration project whose workspace holds the queue.
        token: This session's secret; ``/?token=…`` opens the app.
        who: The steward recorded with each decision (default: the login name).
        hosts: Host names the app answers for (DNS-rebinding guard).
    """
    session = Session(token)
    steward = who or getpass.getuser()
    sources = list(project.config.sources)

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        context.update(csrf=session.csrf, who=steward, project=project.dir.name, path=request.url.path)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def error_page(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        # A refused decision links back to the item it was about, with the same queue filters.
        item = request.url.path.removesuffix("/decide") if request.method == "POST" else None
        return render(request, "error.html", exc.status_code, status=exc.status_code,
                      title=TITLES.get(exc.status_code, "Error"), detail=exc.detail,
                      item_url=f"{item}?{request.url.query}" if item else None)

    async def guard(request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            response = session.authenticate(request) or await call_next(request)
        except HTTPException as exc:  # raised here, outside the app's own exception handling
            response = error_page(request, exc)
        response.headers.update(SECURITY_HEADERS)
        return response

    def queue(request: Request) -> Response:
        f = Filters.parse(request, sources)
        everything = review.list_items(project.workspace(), status=f.status)
        items = f.select(everything)
        asked = request.query_params.get("page", "1")
        page = int(asked) if asked.isdigit() and int(asked) > 0 else 1
        facets = {"kind": [(k, len(f.select(everything, kind=k))) for k in review.KINDS],
                  "source": [(s, len(f.select(everything, source=s))) for s in sources],
                  "band": [(band_key(b), len(f.select(everything, band=b))) for b in BANDS]}
        shown = items.iloc[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        return render(request, "queue.html", filters=f, items=_plain_rows(shown), total=len(items), page=page,
                      pages=max(math.ceil(len(items) / PAGE_SIZE), 1), facets=facets, statuses=STATUSES,
                      decided=request.query_params.get("decided"))

    def item_page(request: Request) -> Response:
        f = Filters.parse(request, sources)
        item = _get_item(project, request.path_params["item_id"])
        ids = f.items(project)["item_id"].tolist()
        at = ids.index(item.item_id) if item.item_id in ids else None
        return render(request, "item.html", filters=f, item=item, records=_side_by_side(item.records),
                      evidence=_evidence(item), attributes=GOLDEN_ATTRIBUTES,
                      active=_plain_rows(item.decisions), previous=ids[at - 1] if at else None,
                      next=ids[at + 1] if at is not None and at + 1 < len(ids) else None,
                      position=None if at is None else at + 1, total=len(ids),
                      decided=request.query_params.get("decided"))

    async def decide(request: Request) -> Response:
        form = await session.checked_form(request)
        f = Filters.parse(request, sources)
        item_id = request.path_params["item_id"]
        ids = (await run_in_threadpool(f.items, project))["item_id"].tolist()
        after = ids[ids.index(item_id) + 1:] if item_id in ids else ids
        try:
            await run_in_threadpool(review.decide, project, project.workspace(), item_id, _decision(form), steward,
                                    note=str(form.get("note") or "").strip() or None,
                                    seen_version=str(form.get("version") or "") or None)
        except review.UnknownItemError as exc:
            raise HTTPException(404, str(exc)) from exc
        except review.DecisionError as exc:
            raise HTTPException(400, str(exc)) from exc
        except review.StaleItemError as exc:
            raise HTTPException(409, f"{exc}. Reload the item to see what it holds now.") from exc
        query = f.query(decided=item_id)
        return RedirectResponse(f"/items/{quote(after[0], safe='')}?{query}" if after else f"/?{query}",
                                status_code=303)

    def log_page(request: Request) -> Response:
        entries = review.decision_log(project.workspace()).iloc[::-1]
        return render(request, "log.html", entries=_plain_rows(entries),
                      columns=[c for c in LOG_COLUMNS if c in entries.columns])

    def golden_list(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        return render(request, "golden_list.html", q=q, rows=_find_golden(project, q))

    def golden_page(request: Request) -> Response:
        golden_id = request.path_params["golden_id"]
        ws = project.workspace()
        row = read_table(ws, golden, where=golden.c.golden_id == golden_id)
        if row.empty:
            raise HTTPException(404, f"No golden record {golden_id!r}.")
        rec = row.iloc[0].to_dict()
        members = read_table(ws, records, where=records.c.record_key.in_(
            sa.select(xref.c.record_key).where(xref.c.golden_id == golden_id)))
        events = ws.frame(sa.select(golden_events.c.event, golden_events.c.other_id, golden_events.c.run_id,
                                    golden_events.c.at).where(golden_events.c.golden_id == golden_id)
                          .order_by(golden_events.c.id))
        lineage = rec.get("lineage") or {}
        values = [(a, rec[a], lineage.get(a, {})) for a in GOLDEN_ATTRIBUTES if a in lineage or show(rec.get(a))]
        return render(request, "golden.html", golden=rec, values=values, members=_side_by_side(members),
                      events=_plain_rows(events))

    routes = [
        Route("/", queue), Route("/items/{item_id}/decide", decide, methods=["POST"]),
        Route("/items/{item_id}", item_page), Route("/log", log_page), Route("/golden", golden_list),
        Route("/golden/{golden_id}", golden_page),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
                  Middleware(BaseHTTPMiddleware, dispatch=guard)]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: error_page})


def _get_item(project: Project, item_id: str) -> review.ReviewItem:
    try:
        return review.get_item(project.workspace(), item_id)
    except review.UnknownItemError as exc:
        raise HTTPException(404, f"No review item {item_id!r}: it may have been removed by a later run.") from exc


def _plain_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as dicts with missing values as None (templates test ``is none``)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _side_by_side(frame: pd.DataFrame) -> dict[str, Any]:
    """Records as columns and attributes as rows (those with a value); a row whose values disagree is flagged."""
    rows = []
    for column in frame.columns:
        values = [show(v) for v in frame[column]]
        if column in HIDDEN_COLUMNS or not any(values):
            continue
        filled = {v.casefold().strip() for v in values if v}
        rows.append({"attribute": column, "values": values, "differs": len(filled) > 1 and column not in UNCOMPARED})
    return {"keys": frame["record_key"].tolist(), "rows": rows}


def _evidence(item: review.ReviewItem) -> dict[str, Any]:
    """The item's evidence for the page: probability, the waterfall chart and its rows, conflicting values."""
    evidence = item.evidence
    probability = evidence.get("probability")
    # Rows of rules.match.explain(): prior, one per comparison (and term frequency), then the final total.
    steps = [r for r in evidence.get("waterfall") or [] if isinstance(r.get("weight"), (int, float))
             and not math.isnan(r["weight"])]
    labels = [" · ".join(show(r.get(k)) for k in ("comparison", "level") if show(r.get(k))) or show(r.get("step"))
              for r in steps]
    chart = charts.waterfall([(label, float(r["weight"])) for label, r in zip(labels, steps)],
                             label="why the matcher scored this pair",
                             final="" if probability is None else f"p = {probability:.3f}") if steps else ""
    return {"probability": probability, "waterfall": Markup(chart), "steps": list(zip(labels, steps)),
            "levels": evidence.get("levels") or {}, "values": evidence.get("values") or [],
            "golden_value": evidence.get("golden_value"), "missing": evidence.get("missing_records") or [],
            "thresholds": evidence.get("thresholds")}


def _decision(form: FormData) -> review.Decision:
    """The decision a submitted form asks for; 400 when it is incomplete."""
    action = str(form.get("decision") or "")
    value = form.get("override_value") if action == "override" else form.get("value")
    try:
        return review.Decision.parse(action, None if value is None else str(value),
                                     str(form.get("field") or "") or None)
    except review.DecisionError as exc:
        raise HTTPException(400, str(exc)) from exc


def _find_golden(project: Project, q: str) -> list[dict[str, Any]]:
    """Golden records whose id starts with ``q`` or whose name or e-mail contains it (case-insensitive)."""
    query = sa.select(golden.c.golden_id, golden.c.status, golden.c.first_name, golden.c.last_name,
                      golden.c.organization_name, golden.c.emails, golden.c.country, golden.c.member_count)
    if q:
        like = f"%{q.lower()}%"
        query = query.where(sa.or_(golden.c.golden_id.like(f"{q}%"), *(
            sa.func.lower(c).like(like) for c in (golden.c.first_name, golden.c.last_name,
                                                  golden.c.organization_name, golden.c.emails))))
    frame = project.workspace().frame(query.order_by(golden.c.member_count.desc(), golden.c.golden_id)
                                      .limit(SEARCH_LIMIT))
    frame["emails"] = [json.loads(v)[:1] if v else [] for v in frame["emails"]]
    return _plain_rows(frame)
