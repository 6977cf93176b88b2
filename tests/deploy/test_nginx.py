"""nginx/kadr.conf as deployed, run by Debian's nginx in front of a real `kadr api` (the
shared test stack's): only the two webhooks and the Mini App under /app/ are public, the
Telegram path only from Telegram's addresses, bodies over the cap are refused by nginx, the
probes and /metrics are on the internal listener only, port 80 serves ACME challenges and
redirects the rest, and the access log keeps the fal webhook's token out. Ports, paths and
the upstream are the only things changed for the test."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandbox.stack import Stack

CONFIG = Path(__file__).resolve().parents[2] / "nginx" / "kadr.conf"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(
    NGINX is None or OPENSSL is None, reason="nginx or openssl not installed"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Nginx:
    http: str
    https: str
    internal: str
    access_log: Path
    acme: Path


def _site(root: Path, api: str, ports: dict[str, int]) -> str:
    text = CONFIG.read_text()
    for old, new in {
        "server api:8000;": f"server {api};",
        "listen 80;": f"listen 127.0.0.1:{ports['http']};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{ports['https']} ssl http2;",
        "listen 8080;": f"listen 127.0.0.1:{ports['internal']};",
        "/etc/nginx/certs/live/kadr": str(root / "certs"),
        "/var/www/certbot": str(root / "acme"),
        "/var/log/nginx/access.log": str(root / "access.log"),
    }.items():
        assert old in text, f"nginx/kadr.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


def _main_config(root: Path) -> str:
    temp = " ".join(
        f"{kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    return (
        f"daemon off; pid {root / 'nginx.pid'}; error_log {root / 'error.log'};\n"
        f"events {{}}\nhttp {{ {temp} uwsgi_temp_path {root / 'uwsgi'}; "
        f"scgi_temp_path {root / 'scgi'}; include {root / 'kadr.conf'}; }}\n"
    )


def _certificate(directory: Path) -> None:
    directory.mkdir()
    subprocess.run(
        [OPENSSL or "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(directory / "privkey.pem"),
         "-out", str(directory / "fullchain.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def nginx(stack: Stack) -> Iterator[Nginx]:
    # Outside pytest's private tmp tree: nginx's workers run as nobody and must reach it.
    root = Path(tempfile.mkdtemp(prefix="kadr-nginx-"))
    root.chmod(0o755)
    _certificate(root / "certs")
    (root / "acme" / ".well-known" / "acme-challenge").mkdir(parents=True)
    ports = {name: free_port() for name in ("http", "https", "internal")}
    (root / "kadr.conf").write_text(_site(root, stack.api_url.removeprefix("http://"), ports))
    (root / "nginx.conf").write_text(_main_config(root))
    process = subprocess.Popen([NGINX or "nginx", "-c", str(root / "nginx.conf")])
    site = Nginx(
        f"http://127.0.0.1:{ports['http']}",
        f"https://127.0.0.1:{ports['https']}",
        f"http://127.0.0.1:{ports['internal']}",
        root / "access.log",
        root / "acme" / ".well-known" / "acme-challenge",
    )
    try:
        _wait_for(site.internal + "/nginx-health", process, root)
        yield site
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(timeout=10)
        shutil.rmtree(root)


def _wait_for(url: str, process: subprocess.Popen[bytes], root: Path) -> None:
    for _ in range(100):
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {(root / 'error.log').read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 204:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail("nginx did not start")


def test_the_telegram_path_is_refused_from_other_addresses(nginx: Nginx) -> None:
    answer = httpx.post(f"{nginx.https}/webhooks/telegram", json={"update_id": 1}, verify=False)
    assert answer.status_code == 403


@pytest.mark.parametrize("path", ["/metrics", "/readyz", "/livez", "/docs"])
def test_only_the_webhooks_are_public(nginx: Nginx, path: str) -> None:
    assert httpx.get(f"{nginx.https}{path}", verify=False).status_code == 404
    assert httpx.get(f"{nginx.internal}{path}").status_code in (200, 404)


@pytest.mark.parametrize(
    "path", ["/webhooks/fal/j1/t1", "/webhooks/fal?job=j1&token=t1"], ids=["path", "query"]
)
def test_both_forms_of_the_fal_webhook_reach_the_api(nginx: Nginx, path: str) -> None:
    """Unsigned, so the api's answer is 401: what matters is that the api gave it."""
    answer = httpx.post(f"{nginx.https}{path}", content=b"{}", verify=False)
    assert (answer.status_code, answer.json()) == (401, {"detail": "invalid signature"})
    deeper = httpx.post(f"{nginx.https}/webhooks/fal/j1/t1/x", content=b"{}", verify=False)
    assert deeper.status_code == 404


def test_the_mini_app_page_and_api_reach_the_api(nginx: Nginx) -> None:
    """The page and its script come through; an API call without initData gets the api's
    own 401, so it reached kadr; anything else under /app/ is kadr's 404."""
    page = httpx.get(f"{nginx.https}/app/", verify=False)
    assert page.status_code == 200 and "gallery.js" in page.text
    script = httpx.get(f"{nginx.https}/app/static/gallery.js", verify=False)
    assert script.status_code == 200
    call = httpx.get(f"{nginx.https}/app/api/results", verify=False)
    assert call.status_code == 401 and "initData" in call.json()["detail"]
    assert httpx.delete(f"{nginx.https}/app/api/results", verify=False).status_code == 403


def test_the_probes_and_metrics_are_on_the_internal_listener(nginx: Nginx) -> None:
    assert httpx.get(f"{nginx.internal}/readyz").status_code == 200
    assert "kadr_telegram_webhook_seconds" in httpx.get(f"{nginx.internal}/metrics").text


def test_a_body_over_the_cap_is_refused_by_nginx(nginx: Nginx) -> None:
    huge = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    answer = httpx.post(f"{nginx.https}/webhooks/fal", content=huge, verify=False)
    assert answer.status_code == 413


def test_port_80_serves_acme_challenges_and_redirects_the_rest(nginx: Nginx) -> None:
    (nginx.acme / "token-1").write_text("challenge answer")
    assert httpx.get(f"{nginx.http}/.well-known/acme-challenge/token-1").text == "challenge answer"
    moved = httpx.get(f"{nginx.http}/webhooks/telegram?x=1")
    assert moved.status_code == 301
    assert moved.headers["location"].startswith("https://127.0.0.1")


@pytest.mark.parametrize(
    "path",
    ["/webhooks/fal?job=j1&token=do-not-log-me", "/webhooks/fal/j1/do-not-log-me"],
    ids=["query", "path"],
)
def test_the_access_log_keeps_the_fal_token_out(nginx: Nginx, path: str) -> None:
    before = nginx.access_log.read_text() if nginx.access_log.exists() else ""
    httpx.post(f"{nginx.https}{path}", content=b"{}", verify=False)
    for _ in range(50):
        logged = nginx.access_log.read_text()[len(before) :] if nginx.access_log.exists() else ""
        if "/webhooks/fal" in logged:
            break
        time.sleep(0.1)
    assert "/webhooks/fal" in logged and "do-not-log-me" not in logged
