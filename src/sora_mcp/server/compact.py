"""A compact `tools/list`: the listing goes into the model's context at the start of every session,
so it carries what a model needs to call the tools and read their answers, once.

- the titles pydantic derives from field names ("Video Id") are dropped: the name says it, and
  the annotations' title repeats the tool's;
- `anyOf: [{type: T}, {type: null}]` becomes `type: [T, null]`;
- `default: null` is dropped (an absent optional argument is null anyway); output schemas leave
  out `additionalProperties: false` and `required`: a result always carries every field of its
  model (null when empty) and nothing else, so both would only repeat the property list;
- output parts are shared across the listing: a `$defs` entry (the video record, a character, …)
  is given in full by the first tool that returns it; later tools say `{"type": "object"}` and
  name that tool, and a description an earlier output schema gave is not repeated;
- input schemas say `additionalProperties: false`: unknown arguments are refused (see protocol).
Descriptions are dedented. Input schemas are otherwise kept whole: each tool must be callable from its own entry.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from mcp.types import Tool, ToolAnnotations


def compact_tools(tools: list[Tool]) -> list[Tool]:
    seen: set[str] = set()
    defined: dict[str, str] = {}  # $defs name → the first tool whose output schema gives it
    compacted = []
    for tool in tools:
        inputs = _compact(tool.input_schema, output=False, seen=None)
        inputs["additionalProperties"] = False
        outputs = None
        if tool.output_schema:
            outputs = _compact(_share_defs(tool.output_schema, tool.name, defined), output=True, seen=seen)
        annotations = _hints(tool.annotations)
        update = {"input_schema": inputs, "output_schema": outputs, "annotations": annotations}
        if tool.description:
            update["description"] = inspect.cleandoc(tool.description)  # tools added by extensions too
        compacted.append(tool.model_copy(update=update))
    return compacted


def _hints(annotations: ToolAnnotations | None) -> ToolAnnotations | None:
    """The annotations without their title (the tool's own); every hint stays explicit."""
    return annotations.model_copy(update={"title": None}) if annotations else None


def _share_defs(schema: dict[str, Any], tool: str, defined: dict[str, str]) -> dict[str, Any]:
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema
    shared: dict[str, Any] = {}
    for name, body in defs.items():
        if name in defined:
            shared[name] = {
                "type": "object",
                "description": f"{name}: as in {defined[name]}'s output schema.",
            }
        else:
            defined[name] = tool
            # The part's own description is its class docstring, written for the code's reader.
            shared[name] = {k: v for k, v in body.items() if k != "description"}
    return _prune({**schema, "$defs": shared})


def _prune(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop `$defs` entries nothing refers to any more (a shared part no longer names its own)."""
    defs: dict[str, Any] = schema["$defs"]
    body = json.dumps({k: v for k, v in schema.items() if k != "$defs"})
    used: set[str] = set()
    pending = [name for name in defs if f'"#/$defs/{name}"' in body]
    while pending:
        name = pending.pop()
        if name in used:
            continue
        used.add(name)
        text = json.dumps(defs[name])
        pending += [other for other in defs if f'"#/$defs/{other}"' in text]
    kept = {name: part for name, part in defs.items() if name in used}
    rest = {k: v for k, v in schema.items() if k != "$defs"}
    return {**rest, "$defs": kept} if kept else rest


def _compact(node: Any, *, output: bool, seen: set[str] | None) -> Any:
    if isinstance(node, list):
        return [_compact(item, output=output, seen=seen) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if key in ("additionalProperties", "required") and output and not isinstance(value, dict):
            continue
        if key == "description" and isinstance(value, str) and seen is not None:
            if value in seen:
                continue
            seen.add(value)
        if key == "properties" and isinstance(value, dict):
            # Property names are data here, not schema keywords: keep every one.
            result[key] = {name: _compact(prop, output=output, seen=seen) for name, prop in value.items()}
            continue
        result[key] = _compact(value, output=output, seen=seen)
    return _nullable(result)


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [{type: T}, {type: null}]` (and nothing else in the branches) → `type: [T, null]`."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) != 2:
        return node
    null = {"type": "null"}
    if null not in branches:
        return node
    (other,) = [b for b in branches if b != null]
    if not isinstance(other, dict) or set(other) != {"type"} or not isinstance(other["type"], str):
        return node
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    merged["type"] = [other["type"], "null"]
    return merged
