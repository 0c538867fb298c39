"""Authentication as the simulated devices check it: HTTP Digest (RFC 7616, MD5, qop=auth,
as Hikvision and Dahua firmware do) and ONVIF WS-UsernameToken (PasswordDigest or
PasswordText)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time

from lxml import etree

_SECRET = os.urandom(16)
NONCE_TTL_S = 600

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST_TYPE_URI = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def make_nonce() -> str:
    ts = f"{int(time.time()):x}"
    mac = hmac.new(_SECRET, ts.encode(), hashlib.sha256).hexdigest()[:24]
    return ts + mac


def nonce_valid(nonce: str) -> bool:
    ts, mac = nonce[:-24], nonce[-24:]
    good = hmac.new(_SECRET, ts.encode(), hashlib.sha256).hexdigest()[:24]
    if not hmac.compare_digest(mac, good):
        return False
    try:
        return time.time() - int(ts, 16) < NONCE_TTL_S
    except ValueError:
        return False


def challenge(realm: str, stale: bool = False) -> str:
    header = f'Digest realm="{realm}", qop="auth", nonce="{make_nonce()}"'
    header += f', opaque="{_md5(realm)[:16]}"'
    if stale:
        header += ', stale="TRUE"'
    return header


_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


def parse_digest(header: str) -> dict[str, str]:
    if header[:7].lower() != "digest ":
        return {}
    return {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(header)}


def check_digest(header: str | None, method: str, username: str, password: str, realm: str) -> bool:
    """True when the Authorization header is a valid digest answer for this user."""
    if not header:
        return False
    p = parse_digest(header)
    if not p or p.get("username") != username or p.get("realm") != realm:
        return False
    nonce = p.get("nonce", "")
    if not nonce_valid(nonce):
        return False
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{p.get('uri', '')}")
    if p.get("qop"):
        expected = _md5(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p['qop']}:{ha2}")
    else:
        expected = _md5(f"{ha1}:{nonce}:{ha2}")
    return hmac.compare_digest(expected, p.get("response", ""))


def check_basic(header: str | None, username: str, password: str) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, username) and hmac.compare_digest(pw, password)


def check_username_token(envelope: etree._Element, username: str, password: str) -> bool:
    """WS-Security UsernameToken in the SOAP header, PasswordDigest or PasswordText."""
    token = envelope.find(f".//{{{WSSE_NS}}}UsernameToken")
    if token is None:
        return False
    user = token.findtext(f"{{{WSSE_NS}}}Username") or ""
    pw_el = token.find(f"{{{WSSE_NS}}}Password")
    if pw_el is None or user != username:
        return False
    given = (pw_el.text or "").strip()
    if pw_el.get("Type", DIGEST_TYPE_URI).endswith("#PasswordText"):
        return hmac.compare_digest(given, password)
    nonce_text = token.findtext(f"{{{WSSE_NS}}}Nonce") or ""
    created = token.findtext(f"{{{WSU_NS}}}Created") or ""
    try:
        nonce = base64.b64decode(nonce_text)
    except ValueError:
        return False
    digest = base64.b64encode(
        hashlib.sha1(nonce + created.encode() + password.encode(), usedforsecurity=False).digest()
    ).decode()
    return hmac.compare_digest(digest, given)
