"""Parse and format actor and node addresses: ``SCHEME://HOST:PORT[/ACTOR]``.

The grammar is checked by hand, not by :mod:`urllib.parse`, which accepts
almost anything. The rules this module keeps:

- SCHEME is ``[a-z][a-z0-9+.-]*`` (at most 32 characters) and picks the
  transport plugin; upper case in a URL is folded to lower case.
- HOST is an IPv4 literal, an IPv6 literal in brackets (``[::1]``; an
  optional ``%zone`` inside the brackets), or a DNS name of ASCII letters,
  digits, ``-`` and ``_``. :class:`Address` keeps IPv6 hosts without
  brackets; :func:`parse_address` returns IPv6 in compressed form and names
  in lower case, so equal addresses compare equal.
- PORT is decimal, 0..65535 (0 only makes sense for listening).
- ACTOR is one path segment: printable characters except whitespace, ``/``,
  ``?``, ``#`` and ``%``, at most 255 bytes of UTF-8 (it travels in a one-byte
  length field). ``%`` is refused rather than taken literally, so that
  percent-decoding can be added later without changing what a URL means.
- No user info (``user@``), no query (``?``), no fragment (``#``).

Every rejection is an :class:`~relay_core.InvalidAddress` that quotes the input
and shows the accepted form.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..errors import InvalidAddress
from ..interfaces import endpoint_url, format_host_port

__all__ = [
    "MAX_ACTOR_NAME_BYTES",
    "Address",
    "actor_name_problem",
    "endpoint_url",
    "format_host_port",
    "host_problem",
    "parse_address",
    "scheme_problem",
]

MAX_ACTOR_NAME_BYTES = 255
"""The wire format gives the target actor name a one-byte length."""

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,31}")
_PORT = re.compile(r"[0-9]{1,5}")
_NUMBER = re.compile(r"[0-9]+")
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)", re.IGNORECASE | re.ASCII)
_MAX_HOST_NAME = 253
_FORM = "SCHEME://HOST:PORT/ACTOR"
_NODE_FORM = "SCHEME://HOST:PORT"
_EXAMPLES = "for example udp://127.0.0.1:9002/greeter or tcp://[::1]:7000/greeter"
_NODE_EXAMPLES = "for example udp://127.0.0.1:9002 or tcp://[::1]:7000"


@dataclass(frozen=True, slots=True)
class Address:
    """Where a node listens, or an actor lives: the parts of a URL.

    Constructing one directly checks every part, as :func:`parse_address` does,
    but does not normalise them.
    """

    scheme: str
    """Transport scheme: ``udp``, ``tcp``, ``quic`` or a plugin's."""
    host: str
    """Numeric IPv4/IPv6 (IPv6 without brackets) or a DNS name."""
    port: int
    actor: str = ""
    """Actor name at that node; empty when the address names the node itself."""

    def __post_init__(self) -> None:
        problem = _parts_problem(self.scheme, self.host, self.port, self.actor)
        if problem:
            raise InvalidAddress(f"invalid {self!r}: {problem}")

    def node_url(self) -> str:
        """The node's URL, without the actor: ``udp://[::1]:9002``."""
        return f"{self.scheme}://{format_host_port(self.host, self.port)}"

    def __str__(self) -> str:
        return f"{self.node_url()}/{self.actor}" if self.actor else self.node_url()


def parse_address(url: str, *, require_actor: bool = False, forbid_actor: bool = False) -> Address:
    """Parse ``SCHEME://HOST:PORT[/ACTOR]``; raise InvalidAddress saying what is wrong."""
    form, examples = (_NODE_FORM, _NODE_EXAMPLES) if forbid_actor else (_FORM, _EXAMPLES)
    if not isinstance(url, str):
        raise InvalidAddress(f"an address must be a string like {form}, not {type(url).__name__}")
    result = _split(url)
    if isinstance(result, Address):
        problem = _actor_rule_problem(result.actor, require_actor, forbid_actor)
        if not problem:
            return result
    else:
        problem = result
    raise InvalidAddress(f"invalid address {_quote(url)}: {problem}; expected {form}, {examples}")


def host_problem(host: str) -> str | None:
    """Why ``host`` (IPv6 without brackets) is not a valid host, or None if it is."""
    if not host:
        return "the host is empty"
    if host.startswith("["):
        return "write the IPv6 host without brackets here"
    if ":" in host:
        return _ip_problem(host, ipaddress.IPv6Address, "IPv6")
    if _NUMBER.fullmatch(host.rsplit(".", 1)[-1]):
        # A name cannot end in an all-numeric label, so this was meant as IPv4.
        return _ip_problem(host, ipaddress.IPv4Address, "IPv4")
    return _name_problem(host)


def actor_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an actor name, or None if it can."""
    if not name:
        return "the actor name is empty"
    bad = sorted({c for c in name if not c.isprintable() or c.isspace() or c in "/?#%"})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return (
            f"the actor name contains {shown}; whitespace, control characters, "
            "'/', '?', '#' and '%' are not allowed"
        )
    size = len(name.encode("utf-8"))
    if size > MAX_ACTOR_NAME_BYTES:
        return f"the actor name is {size} bytes of UTF-8; at most {MAX_ACTOR_NAME_BYTES} allowed"
    return None


def scheme_problem(scheme: str) -> str | None:
    """Why ``scheme`` cannot be a URL scheme, or None if it can."""
    if isinstance(scheme, str) and _SCHEME.fullmatch(scheme):
        return None
    return f"the scheme {scheme!r} is not [a-z][a-z0-9+.-]* (at most 32 characters)"


def _split(url: str) -> Address | str:
    """The checked, normalised address, or what is wrong with ``url``."""
    problem = _characters_problem(url)
    if problem:
        return problem
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "the scheme is missing (the address must start with SCHEME://)"
    scheme = scheme.lower() if scheme.isascii() else scheme
    authority, slash, actor = rest.partition("/")
    host, port, problem = _split_authority(authority)
    if not problem and slash and not actor:
        problem = "the actor name after '/' is empty; drop the '/' to name the node"
    problem = problem or _parts_problem(scheme, host, port, actor)
    return problem or Address(scheme, _normalise_host(host), port, actor)


def _characters_problem(url: str) -> str | None:
    if any(not c.isprintable() or c.isspace() for c in url):
        return "it contains whitespace or control characters"
    if "?" in url or "#" in url:
        return "a query ('?') or fragment ('#') is not allowed"
    return None


def _split_authority(authority: str) -> tuple[str, int, str]:
    """``HOST:PORT`` -> (host without brackets, port, problem)."""
    if "@" in authority:
        return "", 0, "user info ('user@') is not allowed"
    if authority.startswith("["):
        host, bracket, tail = authority[1:].partition("]")
        if not bracket:
            return "", 0, "the '[' before the IPv6 host has no matching ']'"
        if not host or ":" not in host:
            return "", 0, "brackets are only for IPv6 hosts"
        return host, *_port(tail)
    if authority.count(":") > 1:
        return "", 0, "an IPv6 host must be written in brackets, e.g. udp://[::1]:9002"
    host, colon, digits = authority.rpartition(":")
    if not colon:
        return authority, 0, "the port is missing (write HOST:PORT)"
    return host, *_port(colon + digits)


def _port(tail: str) -> tuple[int, str]:
    """``:PORT`` -> (port, problem)."""
    if not tail.startswith(":"):
        return 0, "the port is missing (write HOST:PORT)"
    digits = tail[1:]
    if not _PORT.fullmatch(digits) or int(digits) > 65535:
        return 0, f"the port {digits!r} is not a decimal number in 0..65535"
    return int(digits), ""


def _parts_problem(scheme: str, host: str, port: int, actor: str) -> str | None:
    problem = scheme_problem(scheme)
    if problem:
        return problem
    if not isinstance(host, str):
        return f"the host must be a string, not {type(host).__name__}"
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        return f"the port {port!r} is not an integer in 0..65535"
    if not isinstance(actor, str):
        return f"the actor name must be a string, not {type(actor).__name__}"
    return host_problem(host) or (actor_name_problem(actor) if actor else None)


def _actor_rule_problem(actor: str, require_actor: bool, forbid_actor: bool) -> str:
    if require_actor and not actor:
        return "the actor name is missing (add /ACTOR)"
    if forbid_actor and actor:
        return f"a node address takes no actor name, but {actor!r} was given"
    return ""


def _ip_problem(
    host: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address], label: str
) -> str | None:
    try:
        kind(host)
    except ValueError:
        return f"{host!r} is not a valid {label} address"
    return None


def _name_problem(host: str) -> str | None:
    if not host.isascii():
        return f"the host name {host!r} is not ASCII; use its IDNA (xn--) form"
    labels = host.split(".")
    if len(host) > _MAX_HOST_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        return (
            f"the host name {host!r} is not a DNS name (dot-separated labels of 1..63 letters, "
            f"digits, '-' or '_', not starting or ending with '-'; at most 253 characters)"
        )
    return None


def _normalise_host(host: str) -> str:
    return ipaddress.IPv6Address(host).compressed if ":" in host else host.lower()


def _quote(url: str) -> str:
    """The input as a Python literal, cut short so a huge input cannot flood a log."""
    return repr(url) if len(url) <= 200 else f"{url[:200]!r}... ({len(url)} characters)"
