"""``/docs`` (Swagger UI) and ``/redoc``, with their scripts served by the app itself.

The assets come from the ``fastapi-offline`` package (Swagger UI and ReDoc bundles, pinned by
its release), served under ``/docs/assets``: the pages work offline and load no third-party
script on the organizer's origin. Each page carries a Content-Security-Policy that allows
scripts from this origin only, plus the one inline script Swagger UI's page needs, by hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_offline") / "static"))
PREFIX = "/docs/assets"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
#: The image ReDoc's bundle shows beside "API docs by Redocly", and what it shows here instead.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
NO_LOGO = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"


def install(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve the assets and the two pages on ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    redoc_js = (ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_LOGO.encode(), NO_LOGO.encode())

    @app.get(f"{PREFIX}/redoc.standalone.js", include_in_schema=False)  # before the mount: this one wins
    async def redoc_script() -> Response:
        return Response(redoc_js, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")
    swagger = get_swagger_ui_html(
        openapi_url=openapi_url, title=f"{app.title} API", swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{PREFIX}/swagger-ui.css", swagger_favicon_url=f"{PREFIX}/favicon.png", oauth2_redirect_url=None,
    ).body
    redoc = get_redoc_html(
        openapi_url=openapi_url, title=f"{app.title} API", redoc_js_url=f"{PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{PREFIX}/favicon.png", with_google_fonts=False,
    ).body
    swagger, redoc = valid_html(swagger), valid_html(redoc)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers={"Content-Security-Policy": policy(swagger)})

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers={"Content-Security-Policy": policy(redoc)})


def valid_html(page: bytes) -> bytes:
    """FastAPI's page made valid HTML: a language and a character set, and ReDoc started by its
    own ``Redoc.init`` on a ``div`` instead of a ``<redoc>`` element (not an HTML element: a
    custom one needs a hyphen in its name)."""
    text = page.decode().replace("<html>", '<html lang="en">', 1)
    if "<meta charset" not in text:
        text = text.replace("<head>", '<head>\n    <meta charset="utf-8">', 1)
    spec = re.search(r'<redoc spec-url="([^"]+)"></redoc>', text)
    if spec:
        script = re.search(r'<script src="[^"]+"> </script>', text).group(0)
        start = f"<script>Redoc.init({json.dumps(spec.group(1))}, {{}}, document.getElementById('redoc'))</script>"
        text = text.replace(spec.group(0), '<div id="redoc"></div>').replace(script, f"{script}\n    {start}")
    return text.encode()


def policy(page: bytes) -> str:
    """A CSP for one docs page: this origin's scripts and the page's own inline scripts (by
    hash); inline styles and blob: workers, which ReDoc's renderer and search need."""
    hashes = " ".join(f"'sha256-{script_hash(s)}'" for s in _INLINE_SCRIPT.findall(page.decode()))
    return (f"default-src 'self'; script-src 'self' {hashes}".rstrip() + "; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


def script_hash(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
