"""What each backend turned out to lack, remembered per base URL across sessions.

A 404/405/501 from an optional endpoint (no `/videos/extensions`), or an answer that ignores what
was asked (a "thumbnail" that is an MP4), is learned once and kept here, so later calls go
straight to the fallback — never to a raw HTTP error, never to a second billable POST.

Kept as one small JSON file beside the registry's records (`capabilities.json`), written
atomically by read-merge-replace, so several processes sharing a registry folder add to it
rather than overwrite each other. It is a cache of facts any process can re-learn: a lost
update costs one more refused request, never money.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sora_mcp.errors import RegistryError

FILENAME = "capabilities.json"


@dataclass(frozen=True)
class Learned:
    """One capability a backend lacks: how it showed it, and when (epoch seconds)."""

    capability: str
    why: str
    at: float


class CapabilityMemory:
    """Learned missing capabilities by base URL, in `directory/capabilities.json`."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILENAME
        self._lock = threading.Lock()

    def missing(self, base_url: str) -> dict[str, Learned]:
        """Capability name → what was learned about it, for one backend."""
        entries = self._load().get(base_url, {})
        return {
            name: Learned(name, str(item.get("why", "")), _number(item.get("at")))
            for name, item in entries.items()
            if isinstance(item, dict)
        }

    def learn(self, base_url: str, capability: str, why: str, at: float) -> Learned:
        with self._lock:
            data = self._load()
            data.setdefault(base_url, {})[capability] = {"why": why, "at": at}
            self._save(data)
        return Learned(capability, why, at)

    def forget(self, base_url: str) -> None:
        """Drop what was learned about one backend (e.g. after it was upgraded)."""
        with self._lock:
            data = self._load()
            if data.pop(base_url, None) is not None:
                self._save(data)

    def _load(self) -> dict[str, dict[str, dict[str, object]]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise RegistryError(f"cannot read {self.path}: {exc}") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return {}  # a cache: start again rather than refuse to work
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict[str, dict[str, object]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{FILENAME}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise RegistryError(f"cannot write {self.path}: {exc}") from exc


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
