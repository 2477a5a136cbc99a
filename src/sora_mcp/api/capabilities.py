"""Which optional endpoints a backend has: what its profile declares, merged with what it showed.

`Capability` names every optional endpoint family the client knows; `create`, `retrieve` and
downloading the `video` variant are the core every backend must have, so they are not
capabilities. A `Capabilities` object belongs to one `VideosClient`: it starts from the
profile's declaration and learns, for the rest of the session, that an endpoint is missing when
the backend answers a call to it with 404 (an unknown route, not an unknown object), 405 or 501.
`require` is the one refusal; `studio/derive.py` declares what is done instead (the fallbacks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from sora_mcp.errors import APIStatusError, InvalidRequest

Capability = Literal["list", "delete", "remix", "edits", "extensions", "characters", "variants", "batches"]
"""An optional endpoint family. A Literal, so a misspelt capability fails type checking."""

ALL_CAPABILITIES: frozenset[Capability] = frozenset(get_args(Capability))

# Statuses by which a backend says "no such endpoint here" rather than "no such object".
_MISSING_ENDPOINT_STATUSES = frozenset({405, 501})


def check_capabilities(values: frozenset[str]) -> frozenset[Capability]:
    """`values` as capabilities. Raises ValueError naming any unknown one (a typo in a profile
    built at run time would otherwise silently disable an endpoint)."""
    unknown = sorted(set(values) - ALL_CAPABILITIES)
    if unknown:
        known = ", ".join(sorted(ALL_CAPABILITIES))
        raise ValueError(f"unknown capabilities {unknown}; known: {known}")
    return frozenset(value for value in ALL_CAPABILITIES if value in values)


def means_endpoint_missing(exc: APIStatusError, *, id_in_path: bool = False) -> bool:
    """True when a refusal says the endpoint does not exist, not that an object is unknown:
    405 and 501 always; 404 only when it names no object (`*_not_found`) and no parameter, and
    never for a path holding an object id (`/videos/{id}/remix`: the 404 may be about the id)."""
    if exc.status_code in _MISSING_ENDPOINT_STATUSES:
        return True
    if exc.status_code != 404 or id_in_path:
        return False
    return exc.param is None and not (exc.code or "").endswith("_not_found")


class Capabilities:
    """The optional endpoints of one backend, as declared and as learned this session."""

    def __init__(self, backend: str, declared: frozenset[Capability]) -> None:
        self.backend = backend
        self.declared = declared
        self._learned: dict[Capability, str] = {}
        self.on_learn: Callable[[Capability, str], object] | None = None
        """Called with each newly learned capability and why (the studio keeps them per base URL)."""

    def has(self, capability: Capability) -> bool:
        return capability in self.declared and capability not in self._learned

    def why_missing(self, capability: Capability) -> str | None:
        """Why `capability` is not available, in words for the model; None when it is."""
        if capability not in self.declared:
            return f"the backend profile {self.backend!r} declares no {capability} endpoint"
        return self._learned.get(capability)

    def learn(self, capability: Capability, exc: APIStatusError, *, id_in_path: bool = False) -> bool:
        """Remember that `capability` is missing if `exc` says so; True when it did."""
        if not means_endpoint_missing(exc, id_in_path=id_in_path):
            return False
        self.note(capability, f"the backend answered HTTP {exc.status_code} to its {capability} endpoint")
        return True

    def note(self, capability: Capability, why: str) -> None:
        """Remember that `capability` is missing, for a reason shown otherwise than by a status
        (a gateway that ignores `variant`), or learned in an earlier session."""
        if capability in self._learned:
            return
        self._learned[capability] = why
        if self.on_learn is not None:
            self.on_learn(capability, why)

    def require(
        self, capability: Capability, action: str | None = None, *, advice: str = "", param: str | None = None
    ) -> None:
        """Refuse, before anything is sent, a call the backend cannot serve.

        Raises:
            InvalidRequest: `capability` is missing (code `unsupported`); the message says why,
                that nothing was sent, and `advice` (what to do instead) when given.
        """
        why = self.why_missing(capability)
        if why is None:
            return
        what = action or f"use {capability}"
        tail = f" {advice}" if advice else ""
        raise InvalidRequest(
            f"The backend cannot {what}: {why}; nothing was sent.{tail}", param=param, code="unsupported"
        )

    def summary(self) -> dict[str, str | None]:
        """Every capability and why it is missing (None: available), for display."""
        return {capability: self.why_missing(capability) for capability in sorted(ALL_CAPABILITIES)}
