"""The web dashboard: one page at ``/`` and its static files under ``/static/``.

The page is plain HTML, CSS and one ES module, with no build step; the chart library is
vendored in ``app/web/vendor``. Everything the page shows it fetches from the public API, so
a client can get all of it too. The page names its assets with a content hash
(``/static/app.js?v=<hash>``): an asset asked for with the current hash is cached for a year,
and the page itself is revalidated on every load. Nothing here is in the OpenAPI schema.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

from app.errors import NotFound

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGE = "index.html"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    "": "text/plain; charset=utf-8",  # vendor/LICENSE
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The page loads its own scripts and styles and talks to its own origin, nothing else.
# Styles allow 'unsafe-inline' because the chart library sizes its canvases with style attributes.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    **NOSNIFF,
}
_ASSET_REFERENCE = re.compile(r"\{\{\s*static:([A-Za-z0-9_./-]+)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    version: str  # a prefix of the body's sha256, used as the ETag and the ?v= query

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        return cls(body, media_type, hashlib.sha256(body).hexdigest()[:16])


@cache
def static_names() -> frozenset[str]:
    """Paths under app/web that /static/ serves: scripts, styles and the vendor's notices."""
    return frozenset(
        path.relative_to(WEB_DIR).as_posix()
        for path in WEB_DIR.rglob("*")
        if path.is_file() and path.suffix in MEDIA_TYPES and path.name != PAGE
    )


_loaded: dict[str, tuple[int, Asset]] = {}


def _load(name: str, media_type: str) -> Asset:
    """The file's current content; re-read only when its modification time changes."""
    path = WEB_DIR / name
    modified = path.stat().st_mtime_ns
    known = _loaded.get(name)
    if known is not None and known[0] == modified:
        return known[1]
    asset = Asset.of(path.read_bytes(), media_type)
    _loaded[name] = (modified, asset)
    return asset


def static_asset(name: str) -> Asset:
    if name not in static_names():
        raise NotFound(f"no static file {name!r}")
    return _load(name, MEDIA_TYPES[Path(name).suffix])


def _versioned_url(match: re.Match[str]) -> str:
    name = match.group(1)
    return f"/static/{name}?v={static_asset(name).version}"


def page() -> Asset:
    """index.html with each ``{{ static:NAME }}`` replaced by the asset's versioned URL."""
    template = _load(PAGE, "text/html; charset=utf-8")
    html = _ASSET_REFERENCE.sub(_versioned_url, template.body.decode("utf-8"))
    return Asset.of(html.encode("utf-8"), template.media_type)


def _send(request: Request, asset: Asset, cache_control: str, headers: dict[str, str]) -> Response:
    common = {"ETag": asset.etag, "Cache-Control": cache_control, **headers}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=common)
    return Response(asset.body, media_type=asset.media_type, headers=common)


@router.api_route("/", methods=["GET", "HEAD"])
async def dashboard(request: Request) -> Response:
    """The dashboard page."""
    return _send(request, page(), REVALIDATE, PAGE_HEADERS)


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"])
async def static_file(name: str, request: Request) -> Response:
    """A script, stylesheet or notice of the dashboard."""
    asset = static_asset(name)
    current = request.query_params.get("v") == asset.version
    return _send(request, asset, IMMUTABLE if current else REVALIDATE, NOSNIFF)
