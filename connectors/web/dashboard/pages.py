"""The dashboard's static files, and its two server-rendered forms (sign-in, choose a password)."""

from __future__ import annotations

from html import escape
from importlib.resources import files

from fastapi.responses import HTMLResponse

STATIC = files(__package__) / "static"
#: No caching, and no address of these pages (a token in a link) sent on to anyone.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def static(name: str) -> str:
    return (STATIC / name).read_text()


def form_page(name: str, status: int = 200, error: str | None = None, headers: dict[str, str] | None = None, **values: str) -> HTMLResponse:
    """``name`` with an error message and the given input values filled in (escaped)."""
    page = static(name)
    if error:
        page = page.replace("<!--error-->", f'<p class="error" role="alert">{escape(error)}</p>')
    for field, value in values.items():
        page = page.replace(f'name="{field}" value=""', f'name="{field}" value="{escape(value)}"')
    return HTMLResponse(page, status_code=status, headers={**PRIVATE, **(headers or {})})
