"""The running app accepts its websocket only from a browser that calls it by a local name:
a web page that points its own domain at 127.0.0.1 (DNS rebinding) is refused."""
import base64
import os
import socket
from urllib.parse import urlparse

from browser import serving


def websocket_status(url: str, host: str) -> int:
    """The HTTP status of a websocket upgrade to the app's stream, sent with this Host and Origin."""
    address = urlparse(url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{address.port}\r\n"
               f"Origin: http://{host}:{address.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    with socket.create_connection((address.hostname, address.port), timeout=10) as s:
        s.sendall(request.encode())
        status_line = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_the_app_s_websocket_answers_local_names_only(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    with serving(tmp_path, runs) as url:
        assert websocket_status(url, "127.0.0.1") == 101
        assert websocket_status(url, "localhost") == 101
        assert websocket_status(url, "evil.example") != 101
        assert websocket_status(url, "rebind.attacker.test") != 101
