"""Why a device gave no usable answer: one `ReasonCode` per kind of failure, and the
`DeviceError` every driver raises with it.

The code says how far a failure reaches, so that no check keeps its own "give up now"
list:

- final (`code.final`): the device itself is the problem: it does not answer at this
  address (timeout, unreachable), refuses the login (auth), or misbehaves in a way that
  makes asking it anything else unsafe (TLS, a huge reply, unsafe XML, a redirect to a
  host the inventory does not name). Another driver on the same box will not do better,
  so a check stops asking and judges what it has.
- one request (everything else): this endpoint did not give an answer — the device does
  not offer it (`not-supported`: HTTP 404/501, a SOAP ActionNotSupported, ISAPI
  notSupport), or forbids it while the login works (`forbidden`), or answered with
  something unreadable. The check asks the next driver, or leaves that fact unknown.
- `no-driver`: camwatch has no driver among the device's protocols that can answer this
  at all (an ability no listed driver has) — not the device's fault.

Issue-specific meanings stay with the code that knows them (e.g. the picture check
still tries the RTSP port after an unreachable HTTP port), never as a list of strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class ReasonCode(StrEnum):
    # -- final: the device itself
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    AUTH = "auth"  # the login was refused (HTTP 401, a SOAP NotAuthorized)
    TLS = "tls"
    TOO_LARGE = "too-large"
    UNSAFE_XML = "unsafe-xml"
    REDIRECT_REFUSED = "redirect-refused"
    # -- one request
    FORBIDDEN = "forbidden"  # one endpoint refused while the login itself works (HTTP 403)
    NOT_SUPPORTED = "not-supported"  # the device does not offer this endpoint
    HTTP_STATUS = "http-status"
    BAD_XML = "bad-xml"
    BAD_REPLY = "bad-reply"
    BAD_CONTENT = "bad-content"
    FAULT = "fault"  # a SOAP fault that names no known cause
    DISCONNECTED = "disconnected"
    # -- SNMP (its own transport: a UDP agent may be down while HTTP answers)
    SNMP_TIMEOUT = "snmp-timeout"
    SNMP_AUTH = "snmp-auth"
    SNMP_PROTOCOL = "snmp-protocol"
    SNMP_CONFIG = "snmp-config"
    # -- camwatch's side
    CONFIG = "config"  # the inventory's settings for this device cannot be used
    NO_DRIVER = "no-driver"  # no driver of the listed protocols has this ability

    @property
    def final(self) -> bool:
        """Stop asking this device: no other driver on it will do better."""
        return self in _FINAL


_FINAL = frozenset(
    {
        ReasonCode.TIMEOUT,
        ReasonCode.UNREACHABLE,
        ReasonCode.AUTH,
        ReasonCode.TLS,
        ReasonCode.TOO_LARGE,
        ReasonCode.UNSAFE_XML,
        ReasonCode.REDIRECT_REFUSED,
    }
)

# Which failure to report when several drivers failed: a refused login says the most,
# then a device that is not there, then one that hangs; otherwise the preferred
# driver's (first) failure.
_WORST_FIRST = (
    ReasonCode.AUTH,
    ReasonCode.UNREACHABLE,
    ReasonCode.TIMEOUT,
    ReasonCode.TLS,
    ReasonCode.TOO_LARGE,
    ReasonCode.UNSAFE_XML,
)


class DeviceError(Exception):
    """A device did not give a usable answer: a `ReasonCode` and the zh-TW reason a
    custodian reads. Its text never carries a credential or a URL with userinfo."""

    def __init__(self, reason_code: ReasonCode | str, zh_reason: str) -> None:
        code = ReasonCode(reason_code)
        super().__init__(f"{code.value}: {zh_reason}")
        self.reason_code = code
        self.zh_reason = zh_reason

    @property
    def final(self) -> bool:
        return self.reason_code.final


def worst(errors: Iterable[DeviceError]) -> DeviceError | None:
    """The failure that explains the most (see _WORST_FIRST); None without any."""
    errs = list(errors)
    if not errs:
        return None
    for code in _WORST_FIRST:
        for e in errs:
            if e.reason_code == code:
                return e
    return errs[0]
