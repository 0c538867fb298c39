"""The one way camwatch talks HTTP to a device (ISAPI, Dahua CGI, ONVIF SOAP, snapshots).

Through aiohttp's client (its C HTTP parser: about a fifth of httpx's CPU per request,
measured on loopback), one `ClientSession` per `HttpPool`, so that each device keeps
one keep-alive connection from one check to the next, and its digest challenge with it
(preemptive digest: no 401 round trip per check).

A device may be broken or hostile, so every exchange here is bounded:

- an overall deadline around the whole exchange (connect, headers and body), so a body
  dribbled byte by byte cannot outlast the timeout;
- the body is streamed and cut off at `max_body_bytes` (an endless or gigabyte body);
  header lines and counts are bounded by aiohttp's parser;
- redirects are never followed blindly: only to hosts the inventory names or that the
  configuration allows; anything else (another host, 169.254.169.254) is refused
  without a request to it;
- TLS is verified by default; per device a certificate may be pinned by its SHA-256
  fingerprint (checked in the handshake, before one byte of a request is sent), or
  verification skipped explicitly;
- XML is parsed with entities, DTDs and network access off; a document that declares a
  DTD or entities (billion laughs, external entities) is refused.

Failures become a `DeviceError(reason_code, zh_reason)`; its text never carries a
credential or a URL with userinfo.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
from lxml import etree

from probes.reasons import DeviceError, ReasonCode

__all__ = ["DeviceError", "DeviceHttp", "HttpLimits", "HttpPool", "HttpReply", "ReasonCode"]

# (user, password) for HTTP digest auth, or None
Auth = tuple[str, str] | None

log = logging.getLogger("camwatch.probes")

# How long an idle keep-alive connection to a device is kept: past the host interval
# (60 s), so that each check finds the previous one's connection. A device that closes
# sooner is simply connected to again.
KEEPALIVE_S = 90.0


@dataclass(frozen=True)
class HttpLimits:
    timeout: float = 10.0
    max_body_bytes: int = 8 * 1024 * 1024
    # Hosts a redirect may lead to besides the requested URL's own host: the device's
    # host from the inventory plus ProbeConfig.allowed_redirect_hosts. The caller checks
    # that a URL a device named (snapshot/stream URI) is on an allowed host first.
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    tls_verify: bool = True
    tls_pin_sha256: str | None = None
    max_redirects: int = 3
    # When set, the Content-Type must start with one of these (e.g. ("image/",)).
    expect_content: tuple[str, ...] | None = None


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _base(url: str) -> str:
    """The URL before its query and fragment: what the cached helpers below key on, so
    that requests differing only in their query (a Dahua search's times) share one."""
    return url.partition("?")[0].partition("#")[0]


def safe_url(url: str) -> str:
    """The URL without userinfo, query or fragment: fit for a message or a log."""
    return _safe_base(_base(url))


@functools.lru_cache(maxsize=4096)
def _safe_base(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(invalid URL)"


def host_of(url: str) -> str:
    return _host_of_base(_base(url))


@functools.lru_cache(maxsize=4096)
def _host_of_base(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


@functools.lru_cache(maxsize=4096)
def _origin_of_base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def is_allowed(url: str, limits: HttpLimits) -> bool:
    """Whether a URL (e.g. a snapshot URI a device returned) is on an allowed host."""
    return host_of(url) in {h.lower() for h in limits.allowed_hosts}


def _norm_pin(pin: str) -> str:
    return pin.replace(":", "").lower()


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle costs tens of milliseconds per client.
    return ssl.create_default_context()


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _ssl_context(limits: HttpLimits) -> ssl.SSLContext:
    if limits.tls_pin_sha256:
        return _pinned_context(_norm_pin(limits.tls_pin_sha256))
    if not limits.tls_verify:
        return _unverified_context()
    return _verifying_context()


def _pin_matches(ssl_object: Any, pin: str) -> bool:
    cert = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not isinstance(cert, bytes) or not cert:
        return False
    return hashlib.sha256(cert).hexdigest() == _norm_pin(pin)


class PinMismatch(ssl.SSLCertVerificationError):
    """The peer's certificate is not the one pinned in the inventory."""


@functools.cache
def _pinned_context(pin: str) -> ssl.SSLContext:
    """A TLS context whose handshake fails unless the peer's certificate has this
    SHA-256 fingerprint: not one byte of a request (a WS-Security digest in a SOAP body,
    a digest response) reaches a peer with another certificate.

    `SSLContext.sslobject_class` is the standard library's documented hook for the
    object every asyncio TLS connection is made of; the pin is checked the moment its
    handshake completes. One context per pin (cached), so the connection pool keeps
    connections of different pins apart."""

    class _Pinned(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            if not _pin_matches(self, pin):
                raise PinMismatch("certificate fingerprint does not match the pin")

    ctx = ssl.create_default_context()
    ctx.check_hostname = False  # the pin replaces the CA and name checks
    ctx.verify_mode = ssl.CERT_NONE
    ctx.sslobject_class = _Pinned
    return ctx


def _timeout_reason(timeout: float) -> DeviceError:
    return DeviceError(ReasonCode.TIMEOUT, f"主機無回應（逾時 {timeout:g} 秒）")


def _new_session() -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,  # the scheduler bounds concurrency; no second queue here
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_S,
        use_dns_cache=True,
        ttl_dns_cache=300,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # a device's cookies go nowhere
        auto_decompress=False,
        trust_env=False,  # no proxy from the environment between camwatch and a device
        headers={"User-Agent": "camwatch", "Accept-Encoding": "identity"},
        timeout=aiohttp.ClientTimeout(total=None),
        max_line_size=16 * 1024,
        max_field_size=16 * 1024,
    )


class HttpPool:
    """One aiohttp session for many devices, and per device its `DeviceHttp` (login,
    limits, digest state) kept from one check to the next: each device's keep-alive
    connection and digest challenge outlive the check that opened them.

    Owned by whoever runs the checks (the service); `aclose()` ends every connection.
    A device whose login or limits changed (an inventory reload) gets a new DeviceHttp.
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._devices: dict[str, DeviceHttp] = {}

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session, self._loop = _new_session(), loop
            self._devices.clear()
        return self._session

    def device(self, key: str, limits: HttpLimits, auth: Auth) -> DeviceHttp:
        http = self._devices.get(key)
        session = self.session()
        if http is None or http.limits != limits or http.auth != auth or http.shared is not session:
            http = DeviceHttp(limits, auth, session=session)
            self._devices[key] = http
        return http

    def forget(self, keep: set[str]) -> None:
        """Drops the devices not in `keep` (removed from the inventory)."""
        for key in [k for k in self._devices if k not in keep]:
            del self._devices[key]

    async def aclose(self) -> None:
        self._devices.clear()
        if self._session is not None:
            session, self._session = self._session, None
            if not session.closed:
                await session.close()


class DeviceHttp:
    """One device's HTTP session: its login, its limits, and the connection(s) to it.

    Standalone: `async with DeviceHttp(limits, auth=(user, pw)) as http: await
    http.get(url)` (its own aiohttp session, closed at the end). From an `HttpPool`:
    `pool.device(id, limits, auth)`, already open, closed by the pool. Every call is
    bounded by `limits.timeout` as a whole.
    """

    def __init__(
        self,
        limits: HttpLimits,
        auth: Auth = None,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.limits = limits
        self.auth = auth
        self.shared = session
        self._session: aiohttp.ClientSession | None = session
        self._ssl = _ssl_context(limits)
        self._allowed = frozenset(h.lower() for h in limits.allowed_hosts)
        # One digest middleware per origin (scheme, host, port) this device is spoken
        # to on: each keeps its own challenge, so an ONVIF port apart from the web
        # port is answered too. Credentials never go to an origin the limits refuse.
        self._digest: dict[str, aiohttp.DigestAuthMiddleware] = {}
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            # A connect that hangs is a device that is not there (unreachable); a reply
            # that hangs is a device that is there but stuck (timeout).
            sock_connect=min(limits.timeout * 0.6, 5.0),
        )

    async def __aenter__(self) -> DeviceHttp:
        if self._session is None:
            self._session = _new_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes a standalone session; a pooled one stays (the pool closes it)."""
        if self.shared is None and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def get(self, url: str, **kw: Any) -> HttpReply:
        return await self.request("GET", url, **kw)

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (200,),
    ) -> HttpReply:
        """One exchange (following allowed redirects), bounded in time and size.

        A status outside `ok_statuses` raises DeviceError — 401 as `auth` (the login is
        refused), 403 as `forbidden` (this endpoint is refused while the login works: a
        Hikvision NVR answers 403 to /ISAPI/System/Video/inputs/channels, a camera to
        ContentMgmt/InputProxy; with an ISAPI `notSupport` body, `not-supported`) —
        except that a 5xx with an XML body is returned (SOAP faults travel as 500).
        """
        if self._session is None:
            raise RuntimeError("DeviceHttp used outside 'async with'")
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await self._exchange(method, url, content, headers, ok_statuses)
        except TimeoutError:
            raise _timeout_reason(self.limits.timeout) from None

    async def _exchange(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        ok_statuses: tuple[int, ...],
    ) -> HttpReply:
        first = host_of(url)
        for _hop in range(self.limits.max_redirects + 1):
            host = host_of(url)
            if host != first and host not in self._allowed:
                raise DeviceError(ReasonCode.REDIRECT_REFUSED,
                    f"主機要求轉向未登錄的位址 {host or '?'}，已拒絕",
                )
            status, hdrs_, body = await self._one(method, url, content, headers)
            if status in (301, 302, 303, 307, 308) and "location" in hdrs_:
                url = urljoin(url, hdrs_["location"])
                if status == 303:
                    method, content = "GET", None
                continue
            return self._judge(HttpReply(status, hdrs_, body, safe_url(url)), ok_statuses)
        raise DeviceError(ReasonCode.REDIRECT_REFUSED, "主機轉向次數過多，已停止")

    def _middlewares(self, url: str) -> tuple[aiohttp.DigestAuthMiddleware, ...]:
        if self.auth is None:
            return ()
        origin = _origin_of_base(_base(url))
        mw = self._digest.get(origin)
        if mw is None:
            mw = aiohttp.DigestAuthMiddleware(self.auth[0], self.auth[1])
            self._digest[origin] = mw
        return (mw,)

    async def _one(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            return await self._send(method, url, content, headers)
        except aiohttp.ServerDisconnectedError:
            # A keep-alive connection the device closed while idle (a race no client
            # avoids): once more on a fresh connection; a second hang-up is the device.
            pass
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _client_error(exc) from None
        try:
            return await self._send(method, url, content, headers)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _client_error(exc) from None

    async def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        limit = self.limits.max_body_bytes
        resp = await self._session.request(
            method,
            url,
            data=content,
            headers=headers,
            allow_redirects=False,
            ssl=self._ssl,
            timeout=self._timeout,
            middlewares=self._middlewares(url),
        )
        try:
            declared = resp.content_length
            if declared is not None and declared > limit:
                raise DeviceError(ReasonCode.TOO_LARGE, _too_large(limit))
            if resp.status in (301, 302, 303, 307, 308):
                body = b""
            elif declared is not None:
                body = await resp.read()
            else:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_any():
                    size += len(chunk)
                    if size > limit:
                        raise DeviceError(ReasonCode.TOO_LARGE, _too_large(limit))
                    chunks.append(chunk)
                body = b"".join(chunks)
            hdrs_ = {k.lower(): v for k, v in resp.headers.items()}
            return resp.status, hdrs_, body
        except BaseException:
            resp.close()  # an unread or cut body: the connection is not reused
            raise
        finally:
            resp.release()

    def _judge(self, reply: HttpReply, ok_statuses: tuple[int, ...]) -> HttpReply:
        if reply.status == 401:
            raise DeviceError(ReasonCode.AUTH, "帳號或密碼錯誤，主機拒絕登入")
        if reply.status == 403:
            raise forbidden(reply.body)
        if reply.status == 404 or reply.status == 501:
            raise DeviceError(ReasonCode.NOT_SUPPORTED, f"主機不支援此功能（HTTP {reply.status}）")
        if reply.status not in ok_statuses:
            if reply.status >= 500 and looks_like_xml(reply.body):
                return reply  # a SOAP fault or an ISAPI ResponseStatus: the caller reads it
            raise DeviceError(ReasonCode.HTTP_STATUS, f"主機回覆錯誤（HTTP {reply.status}）")
        expect = self.limits.expect_content
        if expect is not None and not reply.content_type.startswith(expect):
            raise DeviceError(
                ReasonCode.BAD_CONTENT,
                f"主機回覆的內容類型不符（{reply.content_type or '未標示'}）",
            )
        return reply


def _client_error(exc: BaseException) -> DeviceError:
    """The DeviceError for what aiohttp (or the socket under it) raised."""
    tls = _tls_error(exc)
    if tls is not None:
        return tls
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return DeviceError(ReasonCode.UNREACHABLE, "無法連線到主機（連線逾時）")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return DeviceError(ReasonCode.TIMEOUT, "主機無回應（逾時）")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return DeviceError(ReasonCode.UNREACHABLE, "無法連線到主機")
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError) or (
        isinstance(exc, aiohttp.ServerDisconnectedError) and exc.message is not None
        and "Server disconnected" not in str(exc.message)
    ):
        # It answered, with something that is not HTTP (or hung up mid-reply).
        return DeviceError(ReasonCode.BAD_REPLY, "主機回覆的 HTTP 格式錯誤或中途斷線")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return DeviceError(ReasonCode.DISCONNECTED, "與主機的連線中斷")
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return DeviceError(ReasonCode.BAD_REPLY, "主機提供的網址無法使用")
    return DeviceError(ReasonCode.UNREACHABLE, "無法連線到主機")


_SUB_STATUS = re.compile(rb"<(?:\w+:)?subStatusCode>\s*([A-Za-z]+)\s*<")


def forbidden(body: bytes) -> DeviceError:
    """An HTTP 403: the device refuses this one endpoint. Hikvision explains it in an
    ISAPI ResponseStatus (statusCode 4 "Invalid Operation"): `notSupport` is an endpoint
    this model does not offer, `lowPrivilege` one this account may not use."""
    m = _SUB_STATUS.search(body[:4096])
    sub = m.group(1).decode("ascii") if m else ""
    if sub.lower() == "notsupport":
        return DeviceError(ReasonCode.NOT_SUPPORTED, "主機不支援此功能（HTTP 403 notSupport）")
    detail = f"HTTP 403 {sub}" if sub else "HTTP 403"
    return DeviceError(ReasonCode.FORBIDDEN, f"主機不開放此帳號使用此功能（{detail}）")


def _too_large(limit: int) -> str:
    return f"主機回覆過大（超過 {limit // 1024} KB），已中止"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, kind):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _tls_error(exc: BaseException) -> DeviceError | None:
    """The DeviceError for a failed TLS handshake (a pin that does not match, or a
    certificate that does not verify); None when `exc` is no TLS failure."""
    if _caused_by(exc, PinMismatch):
        return DeviceError(ReasonCode.TLS, "主機憑證與登錄的指紋不符，已拒絕連線")
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch) or (
        _caused_by(exc, ssl.SSLError)
    ):
        return DeviceError(ReasonCode.TLS, "主機憑證驗證失敗（TLS）")
    return None


async def fetch_bytes(url: str, auth: Auth, limits: HttpLimits) -> bytes:
    """GET one URL (snapshot JPEG, CGI page) with digest auth, bounded; the body.

    Raises DeviceError. Redirects are followed only to the URL's own host or
    `limits.allowed_hosts` (build them with `limits_for(address, config)`); check a URL
    a device named yourself with `is_allowed(url, limits)` before fetching it.
    """
    async with DeviceHttp(limits, auth) as http:
        return (await http.get(url)).body


def limits_for(
    address: Any,
    config: Any,
    *,
    expect_content: tuple[str, ...] | None = None,
    timeout: float | None = None,
) -> HttpLimits:
    """HttpLimits for one device: its inventory Address and the ProbeConfig."""
    return HttpLimits(
        timeout=timeout if timeout is not None else float(config.timeout),
        max_body_bytes=int(config.max_body_bytes),
        allowed_hosts=frozenset(
            {str(address.host).lower(), *(h.lower() for h in config.allowed_redirect_hosts)}
        ),
        tls_verify=bool(address.tls_verify),
        tls_pin_sha256=address.tls_pin_sha256,
        expect_content=expect_content,
    )


def base_url(address: Any, port: int | None = None) -> str:
    host = str(address.host)
    if ":" in host:
        host = f"[{host}]"
    return f"{address.scheme}://{host}:{port or address.http_port}"


# --- XML -----------------------------------------------------------------------------

_PARSER_KW: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
    "dtd_validation": False,
    "remove_comments": True,
    "remove_pis": True,
    "recover": False,
}


def looks_like_xml(body: bytes) -> bool:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


_parsers = threading.local()


def _parser() -> etree.XMLParser:
    """One parser per thread (lxml's are not shared across threads), made once."""
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(**_PARSER_KW)
        _parsers.parser = parser
    return parser


def parse_xml(body: bytes) -> etree._Element:
    """Parse a device's XML reply safely; DeviceError if it is not plain, safe XML."""
    if not looks_like_xml(body):
        raise DeviceError(ReasonCode.BAD_XML, "主機回覆不是 XML，無法解讀")
    if b"<!" in body:  # a declaration (or CDATA): look closer, whatever its case
        upper = body.upper()
        if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
            raise DeviceError(
                ReasonCode.UNSAFE_XML, "主機回覆含不安全的 XML（DTD／實體宣告），已拒絕"
            )
    try:
        root = etree.fromstring(body, parser=_parser())
    except (etree.XMLSyntaxError, ValueError):
        raise DeviceError(ReasonCode.BAD_XML, "主機回覆的 XML 格式錯誤，無法解讀") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise DeviceError(ReasonCode.UNSAFE_XML, "主機回覆含不安全的 XML（DTD／實體宣告），已拒絕")
    return root


def local(tag: object) -> str:
    """The local name of an element tag, whatever its namespace."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


# The helpers below match by local name in any namespace (or none) with lxml's `{*}`
# wildcard: the search runs in lxml's C code, not element by element in Python.


def iter_local(el: etree._Element, name: str) -> Iterator[etree._Element]:
    """All descendants (and el itself) with this local name, in document order."""
    found: Iterator[etree._Element] = el.iter("{*}" + name)
    return found


def child(el: etree._Element | None, *path: str) -> etree._Element | None:
    """Follow direct children by local name: child(el, "Time", "Hour")."""
    cur = el
    for name in path:
        if cur is None:
            return None
        cur = cur.find("{*}" + name)
    return cur


def children(el: etree._Element | None, name: str) -> list[etree._Element]:
    if el is None:
        return []
    found: list[etree._Element] = el.findall("{*}" + name)
    return found


def text(el: etree._Element | None, *path: str) -> str | None:
    node = child(el, *path) if path else el
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


def first_text(el: etree._Element, name: str) -> str | None:
    """Text of the first descendant with this local name."""
    for node in iter_local(el, name):
        return text(node)
    return None
