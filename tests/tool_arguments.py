"""Hypothesis strategies for MCP tool arguments, derived from each tool's inputSchema.

Plausible values are what a careful model sends (real ids, allowed sizes, small images); hostile
ones mix in odd strings (NUL, unicode, traversal, private-address URLs, garbage data URLs, very
long ids), wrong types, out-of-range numbers and near-miss enum values. A `World` names what
exists on the server under test, so that arguments can point at real things.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from mcp.types import Tool

from helpers import data_url, png_bytes
from sora_mcp import catalog
from sora_mcp.batch.plan import MAX_ITEMS

Json = Any
Strategy = st.SearchStrategy[Json]

# ---------------------------------------------------------------- hostile values


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header announcing a huge image with no pixel data: a decompression-bomb probe."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


ODD_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "video_\x00",
    "../../etc/passwd",
    "..",
    "/",
    "/etc/passwd",
    "/dev/zero",
    "/proc/self/environ",
    "~/.ssh/id_rsa",
    "C:\\Windows\\win.ini",
    "\\\\server\\share\\x.png",
    "video_../../secret",
    "video_%2e%2e%2fetc",
    "CON",
    "NUL",
    "🎬 café ‮gnp.exe",
    "\ufeff\u200b",
    "null",
    "None",
    "{}",
    "'; DROP TABLE videos; --",
    "${HOME}",
    "video_" + "9" * 5000,
    "x" * (catalog.PROMPT_MAX_CHARS + 1),
    "https://127.0.0.1/a.png",
    "https://10.0.0.1/a.png",
    "https://192.168.1.1:8443/a.png",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/a.png",
    "https://[::ffff:127.0.0.1]/a.png",
    "https://[fe80::1]/a.png",
    "https://0.0.0.0/a.png",
    "https://localhost/a.png",
    "https://user:secret@127.0.0.1:8080/a.png",
    "https://metadata.invalid/computeMetadata/v1/",
    "https://",
    "https://[::1",
    "http://127.0.0.1/a.png",
    "file:///etc/passwd",
    "ftp://127.0.0.1/a.png",
    "javascript:alert(1)",
    "data:image/png;base64,!!!!",
    "data:image/png;base64,",
    "data:image/png;base64,iVBORw0KGgo=",
    "data:image/png,notbase64",
    "data:text/html,<script>alert(1)</script>",
    "data:,",
    data_url(b"GIF89a" + b"\x00" * 64, "image/gif"),
    data_url(b"plain text pretending to be a picture", "image/png"),
    data_url(_png_claiming(100_000, 100_000)),
    data_url(png_bytes(8, 8)),
)

# A data URL over the size cap, built once: it must be refused before anything is decoded.
OVERSIZED_DATA_URL = "data:image/png;base64," + "A" * (4 * (catalog.IMAGE_MAX_BYTES // 3) + 4096)

_SCALARS: Strategy = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
WRONG_TYPES: Strategy = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), _SCALARS, max_size=3),
)
HUGE_NUMBERS = (10**30, -(10**30), 2**63, -(2**63) - 1, 1e300, -1e300, 0.5, -0.5)
# Drawn in place of a value to leave the property out (a required one, when spoiling).
_MISSING = object()


@dataclass(frozen=True)
class World:
    """What exists before the examples run, so that arguments can name real things."""

    video_ids: tuple[str, ...]
    batch_ids: tuple[str, ...]
    paths: tuple[str, ...]
    clips: tuple[str, ...]
    fifos: tuple[Path, ...]


# ---------------------------------------------------------------- strategies from the schema


def _strings(name: str, world: World, *, hostile: bool) -> Strategy:
    """Plausible strings for a property, by its name; hostile ones add the odd strings."""
    plausible: Strategy
    odd: Strategy = st.sampled_from(ODD_STRINGS)
    if name in ("video_id", "start_from", "parent"):
        plausible = st.sampled_from(world.video_ids)
        odd = st.one_of(odd, st.sampled_from(("video_does_not_exist", "video_1", "batch_1")))
    elif name in ("batch_id", "batch"):
        plausible = st.sampled_from(world.batch_ids)
        odd = st.one_of(odd, st.sampled_from(("batch_does_not_exist", *world.video_ids)))
    elif name == "image":
        plausible = st.sampled_from((data_url(png_bytes(48, 27)), "picture.png"))
        odd = st.one_of(odd, st.sampled_from(world.paths), st.just(OVERSIZED_DATA_URL))
    elif name in ("clip_path", "jsonl_path"):
        plausible = st.sampled_from(world.clips if name == "clip_path" else ("items.jsonl",))
        odd = st.one_of(odd, st.sampled_from(world.paths))
    elif name == "prompt":
        plausible = st.sampled_from(
            ("a red kite over green dunes", "Pip waves", "a crowd [fail:moderation_blocked]")
        )
        odd = st.one_of(odd, st.just("x" * catalog.PROMPT_MAX_CHARS))
    elif name == "size":
        plausible = st.sampled_from(catalog.MODELS["sora-2"].sizes)
        odd = st.one_of(
            odd,
            st.sampled_from(catalog.MODELS["sora-2-pro"].sizes),
            st.sampled_from(("720X1280", "0x0", "-720x-1280", "99999x99999", "720x", "x", "1280×720")),
        )
    elif name == "model":
        plausible = st.sampled_from(("sora-2", "sora-2-pro", "sora-2-2025-10-06"))
        odd = st.one_of(odd, st.sampled_from(("sora-3", "gpt-4o", "SORA-2", "sora-2-pro-9999-99-99")))
    elif name in ("name", "characters"):
        plausible = st.sampled_from(("Pip", "Moss the owl"))
    else:
        plausible = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
    if not hostile:
        return plausible
    return st.one_of(plausible, odd, odd, st.text(max_size=40))


def _numbers(name: str, schema: Mapping[str, Json], *, integer: bool, hostile: bool) -> Strategy:
    low, high = schema.get("minimum"), schema.get("maximum")
    inside: Strategy
    if name == "wait_seconds":
        # Any real wait advances the fake clock and renders media; waiting is tested elsewhere.
        inside = st.just(0)
    elif integer:
        inside = st.integers(low, high)
    else:
        inside = st.floats(low, high if high is not None else 30.0, allow_nan=False)
    if not hostile:
        return inside
    edges = [v for v in (low, high) if v is not None]
    near = [e + d for e in edges for d in (-1, 1, -0.001, 0.001)]
    return st.one_of(inside, st.sampled_from((*near, *HUGE_NUMBERS)))


def _typed(
    name: str, schema: Mapping[str, Json], defs: Mapping[str, Json], world: World, *, hostile: bool
) -> Strategy:
    """Values for one property: plausible ones (what a careful model sends), or — `hostile` —
    those mixed with odd strings, out-of-range numbers and near-miss enum values."""
    if "$ref" in schema:
        return _object(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, world, hostile=hostile)
    if "anyOf" in schema:
        return st.one_of(*(_typed(name, option, defs, world, hostile=hostile) for option in schema["anyOf"]))
    if "enum" in schema:
        choices = list(schema["enum"])
        misses = [c.upper() if isinstance(c, str) else c + 1 for c in choices]
        return st.sampled_from(choices) if not hostile else st.sampled_from(choices + misses)
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return _numbers(name, schema, integer=kind == "integer", hostile=hostile)
    if kind == "string":
        return _strings(name, world, hostile=hostile)
    if kind == "array":
        items = _typed(name, schema.get("items", {}), defs, world, hostile=hostile)
        if not hostile:
            return st.lists(items, min_size=1, max_size=min(2, schema.get("maxItems", 2)))
        some = st.lists(items, max_size=schema.get("maxItems", 3) + 2)
        if name != "requests":
            return some
        return st.one_of(some, st.just([{"prompt": "one of too many"}] * (MAX_ITEMS + 1)))
    if kind == "object":
        return _object(schema, defs, world, hostile=hostile)
    return WRONG_TYPES


def _object(schema: Mapping[str, Json], defs: Mapping[str, Json], world: World, *, hostile: bool) -> Strategy:
    """Argument dicts. Plausible: every required property and some optional ones, each with a
    plausible value. Hostile: the same, but up to two properties spoilt (a hostile value, a
    wrong type, or a required one left out), and now and then an unknown key added — so each
    hostile value also arrives inside an otherwise valid call and reaches the deeper checks."""
    properties: Mapping[str, Mapping[str, Json]] = schema.get("properties", {})
    required = frozenset(schema.get("required", ()))
    plausible = {key: _typed(key, sub, defs, world, hostile=False) for key, sub in properties.items()}
    spoilt = {
        key: st.one_of(_typed(key, sub, defs, world, hostile=True), WRONG_TYPES, st.just(_MISSING))
        for key, sub in properties.items()
    }

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Json]:
        keys = sorted(properties)
        bad = draw(st.sets(st.sampled_from(keys), max_size=2)) if hostile and keys else set()
        out: dict[str, Json] = {}
        for key in keys:
            if key in bad:
                value = draw(spoilt[key])
            elif key in required or draw(st.booleans()):
                value = draw(plausible[key])
            else:
                value = _MISSING
            if value is not _MISSING:
                out[key] = value
        if hostile and draw(st.integers(0, 9)) == 0:
            out[draw(st.sampled_from(("extra", "__proto__", "prompt\x00", "")))] = draw(WRONG_TYPES)
        return out

    return build()


def arguments_for(tool: Tool, world: World, *, hostile: bool = True) -> Strategy:
    schema = tool.input_schema
    return _object(schema, schema.get("$defs", {}), world, hostile=hostile)
