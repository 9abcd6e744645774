"""`/docs`: Swagger UI, served offline from the swagger-ui-py package's own copy of its assets.

Only the assets (swagger-ui 5, which reads OpenAPI 3.1) are used, not the package's handlers or
templates: our page names the same-origin `/openapi.json`, so "Try it out" calls this server,
and a Content-Security-Policy lets the page load nothing from elsewhere (the validator badge,
which would call an outside service, is switched off). The API key typed into "Authorize" lives
in the page only (`persistAuthorization` off: no key left in the browser's storage).
"""

from __future__ import annotations

import html
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from payment_service.core.errors import NotFound

# The package's asset folder, found without importing it (its __init__ pulls in jinja2).
ASSETS: Final = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "favicon-32x32.png": "image/png",
}
INIT_JS: Final = "init.js"
ASSET_NAMES: Final = (*ASSETS, INIT_JS)
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_INIT: Final = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    tryItOutEnabled: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
};
"""


@cache
def asset_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (it is a runtime dependency)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def page(document: dict[str, Any]) -> str:
    """The Swagger UI page, with a plain list of the operations for readers without scripts."""
    rows = "".join(
        f"<li><code>{method.upper()} {html.escape(path)}</code>: {html.escape(op['summary'])}</li>"
        for path, operations in document["paths"].items()
        for method, op in operations.items()
    )
    title = f"Payment Service API {html.escape(document['info']['version'])}"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title>"
        "<link rel='stylesheet' href='/docs/static/swagger-ui.css'>"
        "<link rel='icon' type='image/png' href='/docs/static/favicon-32x32.png'>"
        "</head><body><div id='swagger-ui'></div>"
        f"<noscript><h1>{title}</h1><p>Authenticate with <code>Authorization: Bearer "
        "&lt;api key&gt;</code>. The document: <a href='/openapi.json'>/openapi.json</a>."
        f"</p><ul>{rows}</ul></noscript>"
        "<script src='/docs/static/swagger-ui-bundle.js' charset='utf-8'></script>"
        f"<script src='/docs/static/{INIT_JS}' charset='utf-8'></script>"
        "</body></html>"
    )


def page_response(document: dict[str, Any]) -> web.Response:
    response = web.Response(text=page(document), content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response


async def asset(request: web.Request) -> web.StreamResponse:
    """One of the few assets the page uses; any other name is 404 (no directory listing)."""
    name = request.match_info["asset"]
    if name == INIT_JS:
        return web.Response(text=_INIT, content_type="application/javascript")
    if name not in ASSETS:
        raise NotFound("no such asset", param="asset")
    response = web.Response(body=_read(name), content_type=ASSETS[name])
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@cache
def _read(name: str) -> bytes:
    return (asset_dir() / name).read_bytes()  # 1.6 MB in all, read once
