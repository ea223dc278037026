"""Hostile inputs for the data tests: samples, a local HTTP server that misbehaves on request,
a fake resolver and a throwaway TLS certificate."""
import io
import shutil
import socket
import subprocess
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image

# PostScript: Pillow hands this to its EPS plugin (Ghostscript) whatever the file is called.
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n"
       b"newpath 0 0 moveto 64 64 lineto stroke showpage\n%%EOF\n")


def png(size=(40, 32), colour=(200, 60, 30), save_as="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, save_as)
    return out.getvalue()


def blank_png(width: int, height: int) -> bytes:
    """Declares width*height pixels in a few kB (1 bit, all black)."""
    out = io.BytesIO()
    Image.new("1", (width, height)).save(out, "PNG")
    return out.getvalue()


def zip_of(members: dict[str, bytes], methods: dict[str, int] | None = None) -> bytes:
    """A zip of `members`, stored unless `methods` names another compression for one."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data, compress_type=(methods or {}).get(name, zipfile.ZIP_STORED))
    return out.getvalue()


def spy(monkeypatch, owner, name: str, record=lambda *args: args) -> list:
    """A list of record(*args) for each call of owner.name from now on; the calls still go through."""
    calls = []
    real = getattr(owner, name)

    def recording(*args, **kwargs):
        calls.append(record(*args))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return calls


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        route, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
        with server.lock:
            server.hits[route] = server.hits.get(route, 0) + 1
            server.hosts.append(self.headers.get("Host"))
        if route == "/red.png":
            return self._send(200, "image/png", png())
        if route == "/cover.png":
            return self._send(200, "image/png", EPS)
        if route == "/bomb.png":
            return self._send(200, "image/png", blank_png(9_400, 9_400))
        if route.startswith("/hop/"):  # /hop/N redirects N times, then serves an image
            n = int(route.rsplit("/", 1)[1])
            return self._redirect(f"/hop/{n - 1}") if n else self._send(200, "image/png", png())
        if route == "/to":
            return self._redirect(query["url"][0])
        if route == "/drip-body":
            return self._drip(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\n\r\n", png())
        if route == "/drip-headers":
            return self._drip(b"HTTP/1.0 200 OK\r\n", b"X-Slow: " + b"z" * 1000)
        self._send(404, "text/plain", b"not found")

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _drip(self, head, tail):
        """`head` at once, then one byte of `tail` every 0.2 s: within any read timeout."""
        try:
            self.wfile.write(head)
            for i in range(len(tail)):
                self.wfile.write(tail[i:i + 1])
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the client hung up: what the test wants

    def log_message(self, *args):
        pass


def serve(httpd: ThreadingHTTPServer) -> threading.Thread:
    """Serve in a daemon thread, counting hits per route and keeping the Host headers seen."""
    httpd.daemon_threads = True
    httpd.hits, httpd.hosts, httpd.lock = {}, [], threading.Lock()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return thread


def stop(httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def fake_dns(monkeypatch) -> tuple[dict, dict]:
    """(names, calls): a name put in `names` resolves to its list of IPs (or to a function of
    the call number's list); `calls` counts the lookups. Other names resolve as usual."""
    real = socket.getaddrinfo
    names, calls = {}, {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            return real(host, port, *args, **kwargs)
        calls[host] = calls.get(host, 0) + 1
        ips = names[host](calls[host]) if callable(names[host]) else names[host]
        return [entry for ip in ips for entry in real(ip, port, *args, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names, calls


def self_signed(folder: Path, name: str) -> tuple[Path, Path] | None:
    """(certificate, key) for `name`, or None without the openssl command."""
    if not shutil.which("openssl"):
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}"], check=True, capture_output=True)
    return cert, key
