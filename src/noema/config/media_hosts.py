"""``NOEMA_MEDIA_HOSTS`` and ``NOEMA_COMFYUI_INPUT_HOSTS``: the places files may be fetched from."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Source:
    """One place results may come from: a host (or its subdomains), a port, a path prefix."""

    host: str
    port: int | None = None  #: None: the default port of the URL's scheme
    path: str = "/"
    subdomains: bool = False
    scheme: str | None = None  #: None: http or https (a bare host); a URL prefix keeps its own

    @classmethod
    def parse(cls, text: str) -> Source:
        """``host``, ``host:port``, ``*.domain`` or a URL prefix ``http(s)://host[:port]/path``."""
        raw = text.strip()
        subdomains = raw.startswith("*.")
        try:
            url = httpx.URL(raw.removeprefix("*.") if "://" in raw else f"https://{raw.removeprefix('*.')}")
        except httpx.InvalidURL as exc:
            raise ValueError(f"{text!r} is not a host, host:port or http(s) URL") from exc
        if url.scheme not in ("http", "https") or not url.host or url.query or url.userinfo:
            raise ValueError(f"{text!r} is not a host, host:port or http(s) URL")
        scheme = url.scheme if "://" in raw else None
        return cls(url.host.lower(), url.port, url.path or "/", subdomains, scheme)

    def admits(self, url: httpx.URL) -> bool:
        """Whether ``url`` is under this source (exact port; no ``..`` out of a path prefix)."""
        host = url.host.lower()
        if self.scheme is not None and url.scheme != self.scheme:
            return False
        if host != self.host and not (self.subdomains and host.endswith("." + self.host)):
            return False
        if url.port != self.port:
            return False
        return self.path == "/" or (url.path.startswith(self.path) and ".." not in url.path.split("/"))


def parse_hosts(raw: str) -> tuple[Source, ...]:
    """Comma-separated sources; ValueError names a bad one."""
    return tuple(Source.parse(item) for item in raw.split(",") if item.strip())
