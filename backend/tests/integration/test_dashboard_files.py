"""The dashboard's files as the API serves them: types, caching, and nothing from elsewhere."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from app.api import dashboard

WEB = dashboard.WEB_DIR
VENDOR_JS = "vendor/lightweight-charts.standalone.production.js"
URL = re.compile(r"https?://[^\s\"'`)<>]+")
# An XML namespace name, which browsers never fetch (SVG elements need it).
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


def _asset_urls(html: str) -> list[str]:
    """The scripts and stylesheet the page loads, each named with its content hash."""
    return re.findall(r'(?:src|href)="(/static/[^"?]+\?v=[0-9a-f]{16})"', html)


async def test_the_page_is_html_with_versioned_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "script-src 'self';" in policy  # no inline or remote scripts
    assert '<div id="chart"' in response.text
    assert "{{" not in response.text
    urls = _asset_urls(response.text)
    assert {urlsplit(url).path for url in urls} == {
        "/static/app.js",
        "/static/style.css",
        f"/static/{VENDOR_JS}",
    }
    again = await client.get("/", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_assets_are_served_with_their_types_and_cached(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for url in _asset_urls(html):
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


async def test_the_dashboard_is_not_in_the_openapi_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/static")]


def _code_without_comments(path: Path) -> str:
    text = path.read_text()
    if path.suffix == ".html":
        return re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(?<![:\\])//.*$", "", text, flags=re.M)  # keeps the // of a URL


def test_the_page_references_no_external_url() -> None:
    for name in ("index.html", "app.js", "style.css"):
        urls = set(URL.findall(_code_without_comments(WEB / name)))
        # The favicon is an inline SVG (data: URI) and app.js creates SVG elements.
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
