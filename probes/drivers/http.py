"""The one way camwatch talks HTTP to a device (ISAPI, Dahua CGI, ONVIF SOAP, snapshots).

A device may be broken or hostile, so every exchange here is bounded:

- an overall deadline around the whole exchange (connect, headers and body), so a body
  dribbled byte by byte cannot outlast the timeout;
- the body is streamed and cut off at `max_body_bytes` (an endless or gigabyte body);
- redirects are never followed blindly: only to hosts the inventory names or that the
  configuration allows; anything else (another host, 169.254.169.254) is refused
  without a request to it;
- TLS is verified by default; per device a certificate may be pinned by its SHA-256
  fingerprint, or verification skipped explicitly;
- XML is parsed with entities, DTDs and network access off; a document that declares a
  DTD or entities (billion laughs, external entities) is refused.

Failures become a `DeviceError(reason_code, zh_reason)`; its text never carries a
credential or a URL with userinfo.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import logging
import re
import ssl
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from lxml import etree

from probes.reasons import DeviceError, ReasonCode

__all__ = ["DeviceError", "DeviceHttp", "HttpLimits", "HttpReply", "ReasonCode"]

Auth = httpx.Auth | tuple[str, str] | None

# httpx logs every request URL at INFO; device URLs stay out of the service's log.
logging.getLogger("httpx").setLevel(logging.WARNING)

if importlib.util.find_spec("sniffio") is None:
    # httpcore runs `import sniffio` on every request; without the package each failed
    # import scans sys.path again (~8 ms of CPU per probe, measured). Remember the miss.
    sys.modules["sniffio"] = None  # type: ignore[assignment]


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


def safe_url(url: str) -> str:
    """The URL without userinfo, query or fragment: fit for a message or a log."""
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
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


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


def _check_pin(response: httpx.Response, limits: HttpLimits) -> None:
    if not limits.tls_pin_sha256 or response.url.scheme != "https":
        return
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if not _pin_matches(ssl_object, limits.tls_pin_sha256):
        raise DeviceError(ReasonCode.TLS, "主機憑證與登錄的指紋不符，已拒絕連線")


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
    object every asyncio/anyio TLS connection is made of; the pin is checked the moment
    its handshake completes."""

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


def _auth(auth: Auth) -> httpx.Auth | None:
    if auth is None or isinstance(auth, httpx.Auth):
        return auth
    return httpx.DigestAuth(auth[0], auth[1])


def _timeout_reason(timeout: float) -> DeviceError:
    return DeviceError(ReasonCode.TIMEOUT, f"主機無回應（逾時 {timeout:g} 秒）")


class DeviceHttp:
    """One device's HTTP session: a client, its auth and its limits.

    Use as `async with DeviceHttp(limits, auth=(user, pw)) as http: await http.get(url)`.
    Every call is bounded by `limits.timeout` as a whole.
    """

    def __init__(self, limits: HttpLimits, auth: Auth = None) -> None:
        self.limits = limits
        self._auth = _auth(auth)
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> DeviceHttp:
        self._client = httpx.AsyncClient(
            verify=_ssl_context(self.limits),
            follow_redirects=False,
            trust_env=False,
            # A connect that hangs is a device that is not there (unreachable); a reply
            # that hangs is a device that is there but stuck (timeout).
            timeout=httpx.Timeout(self.limits.timeout, connect=min(self.limits.timeout * 0.6, 5.0)),
            headers={"User-Agent": "camwatch", "Accept-Encoding": "identity"},
            # The pin is checked at the TLS handshake (_pinned_context) and again on
            # every response as it arrives: an impostor never gets even a digest response.
            event_hooks={"response": [self._pin_hook]},
        )
        return self

    async def _pin_hook(self, response: httpx.Response) -> None:
        _check_pin(response, self.limits)

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

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
        if self._client is None:
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
        assert self._client is not None
        allowed = {host_of(url), *(h.lower() for h in self.limits.allowed_hosts)}
        for _hop in range(self.limits.max_redirects + 1):
            if host_of(url) not in allowed:
                raise DeviceError(ReasonCode.REDIRECT_REFUSED,
                    f"主機要求轉向未登錄的位址 {host_of(url) or '?'}，已拒絕",
                )
            status, hdrs, body = await self._one(method, url, content, headers)
            if status in (301, 302, 303, 307, 308) and "location" in hdrs:
                url = urljoin(url, hdrs["location"])
                if status == 303:
                    method, content = "GET", None
                continue
            return self._judge(HttpReply(status, hdrs, body, safe_url(url)), ok_statuses)
        raise DeviceError(ReasonCode.REDIRECT_REFUSED, "主機轉向次數過多，已停止")

    async def _one(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._client is not None
        limit = self.limits.max_body_bytes
        try:
            req = self._client.build_request(method, url, content=content, headers=headers)
            resp = await self._client.send(req, auth=self._auth, stream=True)
            try:
                _check_pin(resp, self.limits)
                declared = resp.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise DeviceError(ReasonCode.TOO_LARGE, _too_large(limit))
                chunks: list[bytes] = []
                size = 0
                if resp.status_code not in (301, 302, 303, 307, 308):
                    async for chunk in resp.aiter_raw():
                        size += len(chunk)
                        if size > limit:
                            raise DeviceError(ReasonCode.TOO_LARGE, _too_large(limit))
                        chunks.append(chunk)
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
                return resp.status_code, hdrs, b"".join(chunks)
            finally:
                await resp.aclose()
        except DeviceError:
            raise
        except httpx.ConnectTimeout:
            raise DeviceError(ReasonCode.UNREACHABLE, "無法連線到主機（連線逾時）") from None
        except httpx.TimeoutException:
            raise _timeout_reason(self.limits.timeout) from None
        except httpx.ConnectError as exc:
            raise _tls_error(exc) or DeviceError(ReasonCode.UNREACHABLE, "無法連線到主機") from None
        except httpx.RemoteProtocolError:
            # It answered, with something that is not HTTP (or hung up mid-reply).
            raise DeviceError(ReasonCode.BAD_REPLY, "主機回覆的 HTTP 格式錯誤或中途斷線") from None
        except httpx.HTTPError as exc:
            lost = DeviceError(ReasonCode.DISCONNECTED, "與主機的連線中斷")
            raise _tls_error(exc) or lost from None
        except (OSError, ssl.SSLError) as exc:
            raise _tls_error(exc) or DeviceError(ReasonCode.UNREACHABLE, "無法連線到主機") from None

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
    if _caused_by(exc, ssl.SSLError) or "CERTIFICATE" in str(exc).upper() or (
        "SSL" in str(exc).upper()
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


def parse_xml(body: bytes) -> etree._Element:
    """Parse a device's XML reply safely; DeviceError if it is not plain, safe XML."""
    if not looks_like_xml(body):
        raise DeviceError(ReasonCode.BAD_XML, "主機回覆不是 XML，無法解讀")
    upper = body.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise DeviceError(ReasonCode.UNSAFE_XML, "主機回覆含不安全的 XML（DTD／實體宣告），已拒絕")
    parser = etree.XMLParser(**_PARSER_KW)
    try:
        root = etree.fromstring(body, parser=parser)
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


def iter_local(el: etree._Element, name: str) -> Iterator[etree._Element]:
    """All descendants (and el itself) with this local name, in document order."""
    for node in el.iter():
        if local(node.tag) == name:
            yield node


def child(el: etree._Element | None, *path: str) -> etree._Element | None:
    """Follow direct children by local name: child(el, "Time", "Hour")."""
    cur = el
    for name in path:
        if cur is None:
            return None
        cur = next((c for c in cur if local(c.tag) == name), None)
    return cur


def children(el: etree._Element | None, name: str) -> list[etree._Element]:
    if el is None:
        return []
    return [c for c in el if local(c.tag) == name]


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
