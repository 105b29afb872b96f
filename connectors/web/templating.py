"""The Jinja environment of the web app's HTML pages: a package's own templates first, then the
ones its pages share (``connectors/web/templates``: ``staff.html``, the layout of the door and
the organizer console)."""

from __future__ import annotations

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape


def environment(package: str) -> Environment:
    loader = ChoiceLoader([PackageLoader(package, "templates"), PackageLoader(__package__, "templates")])
    return Environment(loader=loader, autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
