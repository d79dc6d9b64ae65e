"""The dashboard's files as the API serves them: types, caching, and nothing from elsewhere."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.api import dashboard
from app.api.dashboard import ModuleGraphError, WebFiles

WEB = dashboard.WEB_DIR
VENDOR_JS = "vendor/lightweight-charts.standalone.production.js"
MAIN_MODULE = "/static/js/main.js"
URL = re.compile(r"https?://[^\s\"'`)<>]+")
# An XML namespace name, which browsers never fetch (SVG elements need it).
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# What a module imports, as served: `from './api.js?v=…'`, `import '../x.js?v=…'`.
IMPORTED = re.compile(r"""\b(?:import|from)\s*["'](\.{1,2}/[^"']+)["']""")
MODULES = sorted(path.relative_to(WEB).as_posix() for path in (WEB / "js").rglob("*.js"))


def _asset_urls(html: str) -> list[str]:
    """The scripts and stylesheet the page loads, each named with its content hash."""
    return re.findall(r'(?:src|href)="(/static/[^"?]+\?v=[0-9a-f]{16})"', html)


async def _module_urls(client: httpx.AsyncClient, html: str) -> list[str]:
    """The modules the page loads: its module script and, transitively, what each imports."""
    found = [url for url in _asset_urls(html) if urlsplit(url).path == MAIN_MODULE]
    for url in found:  # grows as it goes: a breadth-first walk of the import graph
        body = (await client.get(url)).text
        base = posixpath.dirname(urlsplit(url).path)
        for imported in IMPORTED.findall(body):
            target = posixpath.normpath(posixpath.join(base, imported))
            if target not in found:
                found.append(target)
    return found


async def test_the_page_is_html_with_versioned_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "script-src 'self';" in policy  # no inline or remote scripts
    assert re.findall(r"<script(?![^>]*\ssrc=)", response.text) == []
    assert '<div id="chart"' in response.text
    assert "{{" not in response.text
    urls = _asset_urls(response.text)
    assert {urlsplit(url).path for url in urls} == {
        MAIN_MODULE,
        "/static/style.css",
        f"/static/{VENDOR_JS}",
    }
    again = await client.get("/", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_assets_are_served_with_their_types_and_cached(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    modules = await _module_urls(client, html)
    assert len(modules) == len(MODULES)
    for url in {*_asset_urls(html), *modules}:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == types[Path(urlsplit(url).path).suffix], url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        stale = await client.get(urlsplit(url).path + "?v=old")
        assert stale.headers["cache-control"] == "no-cache"
        revalidated = await client.get(url, headers={"If-None-Match": response.headers["etag"]})
        assert revalidated.status_code == 304
    notice = await client.get("/static/vendor/NOTICE.md")
    assert notice.status_code == 200
    assert "TradingView" in notice.text
    licence = await client.get("/static/vendor/LICENSE")
    assert licence.headers["content-type"] == "text/plain; charset=utf-8"


async def test_only_the_dashboards_files_are_served(client: httpx.AsyncClient) -> None:
    for path in (
        "/static/index.html",
        "/static/nope.js",
        "/static/../api/dashboard.py",
        "/static/%2e%2e/main.py",
        "/static/",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json", path
    # The name asked for is never sent back: a reflected string is a place for injection.
    probe = await client.get("/static/%3Cscript%3Ealert(1)%3C%2Fscript%3E.js")
    assert probe.status_code == 404
    assert "script" not in probe.text and "alert" not in probe.text


async def test_the_dashboard_is_not_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/static")]


async def test_modules_import_the_current_version_of_each_module(
    client: httpx.AsyncClient,
) -> None:
    edges = 0
    for name in MODULES:
        body = (await client.get(f"/static/{name}")).text
        for imported in IMPORTED.findall(body):
            path, _, version = imported.partition("?v=")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), path))
            served = await client.get(f"/static/{target}")
            assert version == served.headers["etag"].strip('"'), (name, imported)
            edges += 1
    assert edges > len(MODULES)


def _write(root: Path, modules: dict[str, str], modified: int) -> None:
    for name, body in modules.items():
        path = root / "js" / name
        path.write_text(body)
        os.utime(path, ns=(modified, modified))


def test_a_module_changes_version_with_anything_it_imports(tmp_path: Path) -> None:
    (tmp_path / "js" / "panels").mkdir(parents=True)
    _write(
        tmp_path,
        {
            "main.js": "import { show } from './panels/show.js';\nshow();\n",
            "panels/show.js": 'import { fmt } from "../format.js";\nexport const show = fmt;\n',
            "format.js": "export const fmt = (x) => x;\n",
            "alone.js": "import './other.js';\n",
            "other.js": "export {};\n",
        },
        modified=1,
    )
    files = WebFiles(tmp_path)
    versions = {
        name: files.asset(f"js/{name}").version
        for name in ("main.js", "panels/show.js", "format.js", "alone.js")
    }
    served = files.asset("js/main.js").body.decode()
    assert f"from './panels/show.js?v={versions['panels/show.js']}'" in served
    _write(tmp_path, {"format.js": "export const fmt = (x) => String(x);\n"}, modified=2)
    changed = {
        name for name, version in versions.items() if files.asset(f"js/{name}").version != version
    }
    assert changed == {"main.js", "panels/show.js", "format.js"}


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        (
            {"a.js": "import './b.js';", "b.js": "import './a.js';"},
            "import cycle: js/a.js -> js/b.js -> js/a.js",
        ),
        ({"a.js": "import './gone.js';"}, "js/a.js imports ./gone.js, which is not served"),
        ({"a.js": "import '../../api/dashboard.js';"}, "which is not served"),
    ],
)
def test_a_broken_import_graph_is_an_error(
    tmp_path: Path, modules: dict[str, str], message: str
) -> None:
    (tmp_path / "js").mkdir()
    _write(tmp_path, modules, modified=1)
    with pytest.raises(ModuleGraphError, match=re.escape(message)):
        WebFiles(tmp_path).asset("js/a.js")


def _code_without_comments(path: Path) -> str:
    text = path.read_text()
    if path.suffix == ".html":
        return re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(?<![:\\])//.*$", "", text, flags=re.M)  # keeps the // of a URL


def test_the_page_references_no_external_url() -> None:
    for name in ("index.html", "style.css", *MODULES):
        urls = set(URL.findall(_code_without_comments(WEB / name)))
        # The favicon is an inline SVG (data: URI) and dom.js creates SVG elements.
        assert urls <= {SVG_NAMESPACE}, (name, urls)


def test_the_vendored_chart_library_is_the_one_its_notice_names() -> None:
    body = (WEB / VENDOR_JS).read_bytes()
    notice = (WEB / "vendor" / "NOTICE.md").read_text()
    assert hashlib.sha256(body).hexdigest() in notice
    assert "5.2.1" in notice and b"v5.2.1" in body[:300]
    assert "Apache License" in (WEB / "vendor" / "LICENSE").read_text()
    # Its only URLs: the attribution link, its licence, and the SVG namespace.
    hosts = {urlsplit(url).hostname for url in URL.findall(body.decode())}
    assert hosts == {"www.tradingview.com", "www.apache.org", "www.w3.org"}
