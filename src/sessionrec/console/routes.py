"""The console's pages and JSON endpoints, mounted on the API's app under ``/ui``.

    GET  /ui/playground                      session playground (search, product, lanes, trail)
    GET  /ui/models, /ui/models/{lane}       model cards
    GET  /ui/experiment                      dashboard of the running experiment
    GET  /ui/api/products?q=                 catalogue search (id, name, category, brand)
    POST /ui/api/sessions/{id}/click         a click answered by every lane
    POST /ui/api/sessions/{id}/reset         end the session in every lane
    GET  /ui/api/experiment                  the dashboard's numbers (cached analysis)
    POST /ui/api/reload                      reload the served model(s) (admin token)
    GET|POST /ui/login, POST /ui/logout      keep the admin token in a cookie

Pages are Jinja2 templates (autoescaped); their scripts put data into the page as text only.
The analysis modules (SciPy) are imported on first use, so the console adds nothing to the
API's start-up time.
FastAPI reads the handlers' annotations at run time: no ``from __future__ import annotations``.
"""

import asyncio
import hmac
import json
import math
import uuid
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from sessionrec.console import lanes as lanes_mod
from sessionrec.console.auth import COOKIE, has_token, may_read
from sessionrec.console.catalogue import Catalogue
from sessionrec.errors import SessionRecError
from sessionrec.serving.app import AnyId, ReloadRequest, _text
from sessionrec.serving.settings import ServeSettings

HERE = Path(__file__).parent
DEFAULT_K = 10
SESSION_PATTERN = r"^ui-[A-Za-z0-9_-]{1,60}$"  # the console touches only its own sessions


class Click(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: AnyId
    user_id: AnyId | None = None
    k: int = Field(DEFAULT_K, ge=1, le=100)


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True)
    env.filters["num"] = lambda x, d=4: "n/a" if x is None else (
        f"{x:,}" if isinstance(x, int) else f"{x:,.{d}f}")
    env.globals["polyline"] = polyline
    return env


def polyline(values: list[float | None], width: int = 560, height: int = 160) -> str:
    """SVG polyline points of a series scaled into ``width`` x ``height`` (missing: skipped)."""
    shown = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not shown:
        return ""
    lo, hi = min(v for _, v in shown), max(v for _, v in shown)
    span, n = (hi - lo) or 1.0, max(len(values) - 1, 1)
    x = [10 + (width - 20) * i / n for i, _ in shown]
    y = [height - 10 - (height - 20) * (v - lo) / span for _, v in shown]
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))


def new_session_id() -> str:
    return f"ui-{uuid.uuid4().hex[:16]}"


class Console:
    """What the console's handlers share: settings, lanes, catalogue, dashboard."""

    def __init__(self, settings: ServeSettings, state: dict, metrics) -> None:
        self.settings = settings
        self.state = state
        self.lanes = lanes_mod.Lanes(settings, state, metrics)
        self._env = None  # Jinja2, loaded with the first page
        self._catalogue: tuple[str, Catalogue] | None = None
        self._dashboard = None  # a console.dashboard.Dashboard once used

    def catalogue(self) -> Catalogue:
        path = self.lanes.served()[0].mw.bundle.vocab.path
        if self._catalogue is None or self._catalogue[0] != path:
            self._catalogue = (path, Catalogue.read(path))
        return self._catalogue[1]

    def dashboard(self):  # -> console.dashboard.Dashboard | None
        router = self.lanes.router
        if router is None:
            return None
        if self._dashboard is None or self._dashboard.config is not router.config:
            from sessionrec.console.dashboard import Dashboard

            self._dashboard = Dashboard(router.config, router.events.log)
        return self._dashboard

    def page(self, request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        router = self.lanes.router
        if self._env is None:
            self._env = _env()
        html = self._env.get_template(name).render(
            request_path=request.url.path, experiment=router.config.name if router else None,
            admin=has_token(request, self.settings), token_set=bool(self.settings.admin_token),
            **context)
        return HTMLResponse(html, status_code=status)

    def describe(self, items: list[dict]) -> list[dict]:
        cat = self.catalogue()
        return [{**cat.describe(i["id"]), "score": i.get("score")} for i in items]


def add_console(app: FastAPI, settings: ServeSettings, state: dict) -> None:
    """Mount the console (pages, JSON endpoints, static files) on ``app`` under ``/ui``."""
    console = Console(settings, state, app.state.metrics)
    app.state.console = console
    router = APIRouter(prefix="/ui", include_in_schema=False)

    def reader(request: Request) -> None:
        if not may_read(request, settings):
            if request.url.path.startswith("/ui/api/"):
                raise HTTPException(401, "the console needs the admin token: send "
                                         "'Authorization: Bearer <token>' or log in at /ui/login")
            raise HTTPException(307, headers={
                "Location": f"/ui/login?next={quote(request.url.path)}"})

    def admin(request: Request) -> None:
        if not settings.admin_token:
            raise HTTPException(403, "admin actions are disabled: set SESSIONREC_ADMIN_TOKEN "
                                     "(or --admin-token)")
        if not has_token(request, settings):
            raise HTTPException(401, "this action needs the admin token: log in at /ui/login "
                                     "or send 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})

    Read = Depends(reader)

    @router.get("", dependencies=[Read])
    @router.get("/", dependencies=[Read])
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/playground", status_code=303)

    @router.get("/playground", response_class=HTMLResponse, dependencies=[Read])
    async def playground(request: Request) -> HTMLResponse:
        lanes = await console.lanes.all()
        cat = console.catalogue()
        boot = {"session_id": new_session_id(), "lanes": [lane.info() for lane in lanes],
                "fields": list(cat.fields), "popular": cat.popular(12), "k": DEFAULT_K}
        return console.page(request, "playground.html", lanes=boot["lanes"], boot=boot,
                            n_products=len(cat))

    @router.get("/models", response_class=HTMLResponse, dependencies=[Read])
    async def models(request: Request) -> HTMLResponse:
        lanes = await console.lanes.all()
        return console.page(request, "models.html", lanes=[lane.info() for lane in lanes])

    @router.get("/models/{name}", response_class=HTMLResponse, dependencies=[Read])
    async def model_page(request: Request, name: str) -> HTMLResponse:
        lane = await console.lanes.get(name)
        if lane is None:
            names = [la.name for la in await console.lanes.all()]
            return console.page(request, "message.html", 404, title="Unknown model",
                                message=f"No model named {name!r} is loaded. Loaded: "
                                        f"{', '.join(names)}.")
        if lane.mw is None:
            return console.page(request, "message.html", 503, title=f"{name}: not loaded",
                                message=f"The model {lane.source!r} failed to load: "
                                        f"{lane.error}")
        from sessionrec.console.modelcard import model_card

        card = await asyncio.to_thread(model_card, lane.mw.bundle)
        return console.page(request, "model.html", lane=lane.info(), card=card,
                            config_json=json.dumps(card.get("config"), indent=2, default=str))

    @router.get("/models/{name}/files/{path:path}", dependencies=[Read])
    async def model_file(name: str, path: str) -> FileResponse:
        from sessionrec.console.modelcard import plots, run_directory

        lane = await console.lanes.get(name)
        if lane is None or lane.mw is None:
            raise HTTPException(404, f"no loaded model named {name!r}")
        run_dir = run_directory(lane.mw.bundle.model_dir)
        if path not in plots(run_dir):  # only the listed plots, never another path
            raise HTTPException(404, f"{name} has no plot {path!r}")
        return FileResponse(run_dir / path, media_type="image/png")

    @router.get("/experiment", response_class=HTMLResponse, dependencies=[Read])
    async def experiment_page(request: Request) -> HTMLResponse:
        if console.dashboard() is None:
            return console.page(request, "message.html", 404, title="No experiment",
                                message="No experiment is running on this server. Start one "
                                        "with: sessionrec serve --experiment EXP.toml")
        return console.page(request, "experiment.html")

    # -- JSON ---------------------------------------------------------------------------------
    @router.get("/api/products", dependencies=[Read])
    async def products(q: Annotated[str, Query(max_length=200)] = "",
                       limit: Annotated[int, Query(ge=1, le=50)] = 20) -> dict:
        if not q.strip():
            raise HTTPException(422, "empty search: type a product id, or part of a name, "
                                     "category or brand")
        found = console.catalogue().search(q, limit)
        return {"query": q, "products": found,
                "message": None if found else f"No product matches {q.strip()!r}."}

    @router.post("/api/sessions/{session_id}/click", dependencies=[Read])
    async def click(session_id: Annotated[str, PathParam(pattern=SESSION_PATTERN)],
                    body: Click) -> dict:
        cat = console.catalogue()
        lanes = await console.lanes.all()
        product = str(body.product_id)
        if cat.get(product) is None and not any(
                la.mw is not None and la.mw.bundle.vocab.index_of(product) >= 0 for la in lanes):
            raise HTTPException(404, f"Unknown product {product!r}: it is in neither the "
                                     f"catalogue ({len(cat):,} products) nor any loaded "
                                     "model's vocabulary.")
        answers = await lanes_mod.click(lanes, session_id, product, _text(body.user_id), body.k)
        for a in answers:
            a["items"] = console.describe(a["items"])
        return {"session_id": session_id, "product": cat.describe(product), "lanes": answers}

    @router.post("/api/sessions/{session_id}/reset", dependencies=[Read])
    async def reset(session_id: Annotated[str, PathParam(pattern=SESSION_PATTERN)]) -> dict:
        ended = await lanes_mod.reset(await console.lanes.all(), session_id)
        return {"ended": session_id, "lanes_ended": ended, "session_id": new_session_id()}

    @router.get("/api/experiment", dependencies=[Read])
    async def experiment_json() -> dict:
        dash = console.dashboard()
        if dash is None:
            raise HTTPException(404, "no experiment is running on this server")
        from sessionrec.experiments.report import _finite

        return _finite(await dash.payload())

    @router.post("/api/reload", dependencies=[Depends(admin)])
    async def reload() -> dict:
        try:
            bundle = await state["reloader"].reload(None, None, None)
        except (SessionRecError, OSError, ValueError) as err:
            raise HTTPException(400, f"reload failed, still serving the previous model: "
                                     f"{err}") from None
        await state["channel"].announce(ReloadRequest())  # other workers reload too
        return {"reloaded": getattr(bundle, "tag", None) or "experiment variants"}

    # -- login --------------------------------------------------------------------------------
    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/ui/playground") -> HTMLResponse:
        return console.page(request, "login.html", next=_local(next), error=None)

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request):
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token, target = form.get("token", [""])[0], _local(form.get("next", [""])[0])
        if not settings.admin_token or not has_token_value(token, settings):
            return console.page(request, "login.html", 401, next=target,
                                error="Wrong token." if settings.admin_token else
                                "No admin token is set on this server (--admin-token).")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/ui")
        return response

    @router.post("/logout")
    async def logout() -> RedirectResponse:
        response = RedirectResponse("/ui/playground", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")


def has_token_value(token: str, settings: ServeSettings) -> bool:
    return hmac.compare_digest(token.encode(), settings.admin_token.encode())


def _local(target: str) -> str:
    """A redirect target inside the console only (no open redirect)."""
    return target if target.startswith("/ui/") and not target.startswith("//") else \
        "/ui/playground"

