"""One download from a URL someone pasted: public addresses only, within a size cap and a deadline.

The URL import runs on the user's machine, so a list could otherwise reach what
only that machine can: the app itself, the router, a cloud metadata service.
Every host is resolved here and each of its addresses checked; the connection
then goes to the checked address (the Host header, TLS SNI and certificate
check keep the name), so DNS that answers differently a moment later changes
nothing. Redirects are followed by hand, each hop checked the same way. Every
refused target gets the same reason, and no packet, so the import can't be used
to tell which internal ports are open. Proxies from the environment are not used.
"""
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from urllib.parse import urljoin, urlsplit

import certifi

USER_AGENT = "GANscope-importer"
ALLOWED_SCHEMES = ("http", "https")
REFUSED = "refused: not a public address"
MAX_REDIRECTS = 5
# All of one URL's time (redirects and retries included): a server that sends one byte every
# few seconds stays within every read timeout and would otherwise hold a worker forever.
MAX_URL_SECONDS = 60.0
BACKOFF_S = 0.5  # first retry waits this long, each later one twice as long
CHUNK_BYTES = 64 * 2**10
REDIRECTS = (301, 302, 303, 307, 308)
# IPv6 forms that carry an IPv4 address (a NAT64 gateway connects to the IPv4 one).
NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Failed(Exception):
    """This URL cannot be imported; str(exc) is the reason shown to the user."""


class Retryable(Failed):
    """A failure that may go away on its own: timeouts, dropped connections, 5xx, 429."""


def is_public(address: Address) -> bool:
    """Globally routable unicast: not loopback, private, link-local, reserved, unspecified or
    multicast, also when an IPv6 address only wraps such an IPv4 one."""
    address = _wrapped_ipv4(address) or address
    return address.is_global and not (address.is_loopback or address.is_private or address.is_link_local
                                      or address.is_reserved or address.is_unspecified or address.is_multicast)


def _wrapped_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if address.version == 4:
        return None
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour


@dataclass
class Target:
    """Where one request goes."""
    scheme: str
    host: str  # ASCII, without IPv6 brackets
    port: int
    path: str  # path and query, as sent in the request line
    host_header: str

    @classmethod
    def of(cls, url: str) -> "Target":
        try:
            parts = urlsplit(url)
            port = parts.port
            host = parts.hostname or ""
            host = host if host.isascii() else host.encode("idna").decode("ascii")
        except (ValueError, UnicodeError) as exc:
            raise Failed("invalid URL") from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise Failed("only http(s) URLs are allowed")
        if not host:
            raise Failed("invalid URL")
        named = f"[{host}]" if ":" in host else host
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = 443 if scheme == "https" else 80
        return cls(scheme, host, default_port if port is None else port, path,
                   named if port is None else f"{named}:{port}")


class Downloader:
    """GETs with per-read timeouts, retries, a size cap and a deadline per URL, to public
    addresses and to `allowed_networks` (tests allow their own server: 127.0.0.1/32)."""

    def __init__(self, timeout: tuple[float, float], retries: int, max_bytes: int,
                 deadline_s: float = MAX_URL_SECONDS, allowed_networks: Iterable[str] = ()):
        self.connect_timeout, self.read_timeout = timeout
        self.retries = retries
        self.max_bytes = max_bytes
        self.deadline_s = deadline_s
        self.allowed = [ipaddress.ip_network(network) for network in allowed_networks]

    def get(self, url: str) -> tuple[bytes, str | None]:
        """(body, content type) of a 2xx response; raises Failed with the reason."""
        deadline = time.monotonic() + self.deadline_s
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(BACKOFF_S * 2 ** (attempt - 1), max(deadline - time.monotonic(), 0)))
            if time.monotonic() >= deadline:
                raise Failed("timed out")
            try:
                return self._follow(url, deadline)
            except Retryable as exc:
                last = exc
        raise last

    def _follow(self, url: str, deadline: float) -> tuple[bytes, str | None]:
        for _ in range(MAX_REDIRECTS + 1):
            location, body, content_type = self._get_once(url, deadline)
            if location is None:
                return body, content_type
            url = urljoin(url, location)
        raise Failed(f"too many redirects (over {MAX_REDIRECTS})")

    def address_of(self, host: str, port: int) -> Address:
        """The address to connect to. Every address the name has must be allowed, so a public one
        listed first can't cover for a private one."""
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Retryable("connection failed") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in found]
        if not addresses or not all(self._allows(address) for address in addresses):
            raise Failed(REFUSED)
        return addresses[0]

    def _allows(self, address: Address) -> bool:
        return is_public(address) or any(address in network for network in self.allowed)

    def _get_once(self, url: str, deadline: float) -> tuple[str | None, bytes, str | None]:
        """(redirect location or None, body, content type) of one request."""
        target = Target.of(url)
        address = self.address_of(target.host, target.port)
        cutoff = _Cutoff(deadline - time.monotonic())
        connection = None
        try:
            connection = http.client.HTTPConnection(target.host, target.port)
            connection.sock = self._connect(target, address, cutoff, deadline)
            connection.request("GET", target.path, headers={"Host": target.host_header, "User-Agent": USER_AGENT})
            response = connection.getresponse()
            status = response.status
            if status == 429 or status >= 500:
                raise Retryable(f"HTTP {status}")
            if status in REDIRECTS and response.getheader("Location"):
                return response.getheader("Location"), b"", None
            if status >= 300:
                raise Failed(f"HTTP {status}")
            body = self._read_capped(response)
            if cutoff.fired:  # the cut looks like the end of a body that has no length
                raise Failed("timed out")
            return None, body, response.getheader("Content-Type")
        except Failed:
            if cutoff.fired:  # out of this URL's time: no retry
                raise Failed("timed out") from None
            raise
        except Exception as exc:
            raise (Failed("timed out") if cutoff.fired else _failure(exc)) from exc
        finally:
            cutoff.stop()
            if connection is not None:
                connection.close()

    def _connect(self, target: Target, address: Address, cutoff: "_Cutoff", deadline: float) -> socket.socket:
        sock = socket.create_connection((str(address), target.port), timeout=min(self.connect_timeout, _left(deadline)))
        try:
            cutoff.watch(sock)
            if target.scheme == "https":
                # The name, not the address, for SNI and the certificate check.
                sock = _tls().wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
                cutoff.watch(sock)
                sock.do_handshake()
            sock.settimeout(min(self.read_timeout, _left(deadline)))
            return sock
        except BaseException:
            sock.close()
            raise

    def _read_capped(self, response: http.client.HTTPResponse) -> bytes:
        too_big = Failed(f"over the {size_text(self.max_bytes)} size cap")
        declared = response.getheader("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        body = bytearray()
        while chunk := response.read1(CHUNK_BYTES):
            body += chunk
            if len(body) > self.max_bytes:
                raise too_big  # stop reading: the server may send far more
        if response.length:  # the connection ended before the declared length
            raise Retryable("connection failed")
        return bytes(body)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.001)


def _failure(exc: Exception) -> Failed:
    """The reason for an error from the network or the server's bytes."""
    if isinstance(exc, TimeoutError):
        return Retryable("timed out")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Failed("TLS certificate not valid for this host")
    if isinstance(exc, OSError):
        return Retryable("connection failed")
    if isinstance(exc, (http.client.InvalidURL, ValueError)):  # control characters in the URL
        return Failed("invalid URL")
    if isinstance(exc, http.client.HTTPException):
        return Retryable("connection failed")
    return Failed(f"request failed ({type(exc).__name__})")


class _Cutoff:
    """Shuts the connection's socket when the URL's time is up, whatever phase it is in."""

    def __init__(self, seconds: float):
        self.fired = False
        self._sock = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.fired:
                _shut(sock)

    def stop(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    # The TCP socket under TLS too: a blocked read then returns at once.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


@cache
def _tls() -> ssl.SSLContext:
    # certifi's roots, as requests used: Python's own store is empty on some installs (macOS).
    return ssl.create_default_context(cafile=certifi.where())


def size_text(n_bytes: int) -> str:
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:.3g} MB"
    if n_bytes >= 2**10:
        return f"{n_bytes / 2**10:.3g} KB"
    return f"{n_bytes} bytes"
