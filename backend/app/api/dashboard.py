"""The web dashboard: one page at ``/`` and its static files under ``/static/``.

The page is plain HTML, CSS and ES modules (``app/web/js``), with no build step; the chart
library is vendored in ``app/web/vendor``. Everything the page shows it fetches from the public
API, its vocabulary included, so a client can get all of it too. Nothing here is in the
OpenAPI schema.

Assets are named with a content hash (``/static/style.css?v=<hash>``): one asked for with its
current hash is cached for a year, and the page itself is revalidated on every load.

Modules import each other by relative URL, which would bypass those hashes, so the server
rewrites each module's static imports to carry the hash of what they import
(``from './api.js'`` is served as ``from './api.js?v=<hash>'``) and hashes a module as served,
after the rewrite. A module's hash thus changes whenever anything it imports changes, however
deep (a Merkle tree over the import graph): a deploy that changes ``format.js`` gives
``main.js`` a new URL too, and a page can only load the one set of modules it was served with,
never old ones from the cache beside new ones.

Why not an import map: it has to be inline in the page, so the Content-Security-Policy would
need a hash source made per page to allow it; the rewrite keeps ``script-src 'self'``, with no
inline script at all, and makes each module's URL name its whole dependency tree. It is
deliberately narrow: only a static ``import``/``export ... from`` of a relative ``.js`` path
is rewritten (the one kind the dashboard writes), and importing a file that is not served, or
an import cycle, fails when the module is first served.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from fastapi import APIRouter, Request, Response

from app.errors import NotFound

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGE = "index.html"
MODULES = "js/"  # the dashboard's own ES modules; the vendored bundle is a classic script
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
# `import x from './x.js'`, `export { y } from '../y.js'`, `import './z.js'`.
_STATIC_IMPORT = re.compile(
    r"""(?P<keyword>\b(?:import|from)\s*)(?P<quote>["'])(?P<path>\.{1,2}/[^"'?#]+\.js)(?P=quote)"""
)


class ModuleGraphError(RuntimeError):
    """A module imports a file that is not served, or the modules import each other in a cycle."""


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


class WebFiles:
    """The files of one directory as the dashboard serves them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._read: dict[str, tuple[int, Asset]] = {}

    @cached_property
    def names(self) -> frozenset[str]:
        """Paths that /static/ serves: scripts, styles and the vendor's notices."""
        return frozenset(
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file() and path.suffix in MEDIA_TYPES and path.name != PAGE
        )

    def _load(self, name: str, media_type: str) -> Asset:
        """The file's current content; re-read only when its modification time changes."""
        path = self.root / name
        modified = path.stat().st_mtime_ns
        known = self._read.get(name)
        if known is not None and known[0] == modified:
            return known[1]
        asset = Asset.of(path.read_bytes(), media_type)
        self._read[name] = (modified, asset)
        return asset

    def asset(self, name: str) -> Asset:
        if name not in self.names:
            raise NotFound("no static file of that name")  # never the name sent back
        if name.startswith(MODULES) and name.endswith(".js"):
            return self._module(name, (), {})
        return self._load(name, MEDIA_TYPES[Path(name).suffix])

    def _module(self, name: str, importers: tuple[str, ...], served: dict[str, Asset]) -> Asset:
        """The module with its imports versioned; ``served`` keeps each module done so far."""
        if name in importers:
            raise ModuleGraphError(f"import cycle: {' -> '.join((*importers, name))}")
        if name in served:
            return served[name]
        source = self._load(name, MEDIA_TYPES[".js"])

        def versioned(match: re.Match[str]) -> str:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), match["path"]))
            if not target.startswith(MODULES) or target not in self.names:
                raise ModuleGraphError(f"{name} imports {match['path']}, which is not served")
            version = self._module(target, (*importers, name), served).version
            quote = match["quote"]
            return f"{match['keyword']}{quote}{match['path']}?v={version}{quote}"

        body = _STATIC_IMPORT.sub(versioned, source.body.decode("utf-8"))
        served[name] = Asset.of(body.encode("utf-8"), source.media_type)
        return served[name]

    def page(self) -> Asset:
        """index.html with each ``{{ static:NAME }}`` replaced by the asset's versioned URL."""
        template = self._load(PAGE, "text/html; charset=utf-8")
        html = _ASSET_REFERENCE.sub(self._versioned_url, template.body.decode("utf-8"))
        return Asset.of(html.encode("utf-8"), template.media_type)

    def _versioned_url(self, match: re.Match[str]) -> str:
        name = match.group(1)
        return f"/static/{name}?v={self.asset(name).version}"


FILES = WebFiles(WEB_DIR)


def _send(request: Request, asset: Asset, cache_control: str, headers: dict[str, str]) -> Response:
    common = {"ETag": asset.etag, "Cache-Control": cache_control, **headers}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=common)
    return Response(asset.body, media_type=asset.media_type, headers=common)


@router.api_route("/", methods=["GET", "HEAD"])
async def dashboard(request: Request) -> Response:
    """The dashboard page."""
    return _send(request, FILES.page(), REVALIDATE, PAGE_HEADERS)


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"])
async def static_file(name: str, request: Request) -> Response:
    """A script, stylesheet or notice of the dashboard."""
    asset = FILES.asset(name)
    current = request.query_params.get("v") == asset.version
    return _send(request, asset, IMMUTABLE if current else REVALIDATE, NOSNIFF)
