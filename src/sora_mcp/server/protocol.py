"""The server at the protocol edge: what the SDK's `MCPServer` does, plus sora-mcp's rules for what
reaches the client.

- Arguments are strict: an argument a tool does not take is refused before anything runs (a
  misspelt `duration` must not quietly become the default 4 s, billed), and every argument error
  is worded in the project's voice — what was wrong, what is allowed, what to do — with the same
  machine-readable fields as any tool error, never the validation library's text.
- `tools/list` is compact (`compact.py`): the listing is read into the model's context every
  session.
- Unknown resources and prompts, and bad prompt arguments, are protocol errors with a message
  that says what exists; they are expected, so they are logged without a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.types import INVALID_PARAMS, CallToolResult, GetPromptResult, InputRequiredResult
from mcp.types import Tool as MCPTool
from pydantic import AnyUrl, ValidationError
from pydantic_core import ErrorDetails

from sora_mcp.errors import InvalidRequest
from sora_mcp.server.common import error_result
from sora_mcp.server.compact import compact_tools
from sora_mcp.server.state import AppState

log = logging.getLogger(__name__)


class ArgumentsRefused(InvalidRequest):
    """A tool call's arguments do not fit the tool; nothing ran. `problems` lists each one
    ({param, problem}); `param` is the first argument at fault."""

    kind = "invalid_arguments"

    def __init__(self, message: str, *, code: str, problems: list[dict[str, str]]) -> None:
        super().__init__(message, code=code, param=problems[0]["param"] if problems else None)
        self.problems = problems


class SoraMCPServer(MCPServer[AppState]):
    """`MCPServer` with strict tool arguments, a compact listing and clean protocol errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arguments: dict[str, tuple[str, ...]] = {}

    async def list_tools(self) -> list[MCPTool]:
        return compact_tools(await super().list_tools())

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[AppState, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        started = context.request_context.lifespan_context.started if context is not None else None
        if started is not None and not started.is_set():  # (no checkpoint once it is)
            # The session's start-up pass runs behind `initialize` and `tools/list`; a call
            # waits for it, so its answer already shows the lost requests it found.
            await started.wait()
        allowed = await self._arguments_of(name)
        if allowed is None:
            known = ", ".join(tool.name for tool in await self.list_tools())
            return error_result(
                InvalidRequest(f"There is no tool {name!r}; the tools are: {known}.", code="unknown_tool")
            )
        unknown = [key for key in arguments if key not in allowed]
        if unknown:
            return error_result(_unknown_arguments(name, unknown, allowed))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError) or not isinstance(exc.__cause__, ValidationError):
                raise
            return error_result(_invalid_arguments(name, exc.__cause__.errors(), allowed))

    async def _arguments_of(self, name: str) -> tuple[str, ...] | None:
        """The arguments a tool takes, from its input schema (parameters the SDK fills, like the
        context or resolved values, are not in it); None for a tool the server does not have.
        Read from the listing, so tools added by extensions (the studio view's) count too."""
        if name not in self._arguments:
            for tool in await super().list_tools():
                self._arguments[tool.name] = tuple(tool.input_schema.get("properties", {}))
        return self._arguments.get(name)

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[AppState, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        try:
            return await super().read_resource(uri, context)
        except NoSuchRecord:
            raise
        except ResourceNotFoundError as exc:
            listed = [
                str(r.uri) for r in await self.list_resources() if not str(r.uri).startswith("sora://guides/")
            ]
            listed += [t.uri_template for t in await self.list_resource_templates()]
            readable = ", ".join([*listed, "sora://guides/<name> (see sora://guides)"])
            raise ResourceNotFoundError(f"There is no resource {str(uri)!r}. Readable: {readable}.") from exc

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        context: Context[AppState, Any] | None = None,
    ) -> GetPromptResult | InputRequiredResult:
        if not any(prompt.name == name for prompt in self._prompt_manager.list_prompts()):
            known = ", ".join(prompt.name for prompt in self._prompt_manager.list_prompts())
            log.info("Unknown prompt %r", name)
            raise MCPError(
                code=INVALID_PARAMS, message=f"There is no prompt {name!r}; the prompts are: {known}."
            )
        return await super().get_prompt(name, arguments, context)


class NoSuchRecord(ResourceNotFoundError):
    """A resource template matched but names nothing the registry holds (message: what to do)."""


def _unknown_arguments(tool: str, unknown: Sequence[str], allowed: Sequence[str]) -> ArgumentsRefused:
    names = ", ".join(repr(name) for name in unknown)
    problems = [{"param": name, "problem": f"{tool} takes no argument {name!r}"} for name in unknown]
    takes = f"Its arguments are: {', '.join(allowed)}." if allowed else "It takes no arguments."
    return ArgumentsRefused(
        f"{tool} takes no argument {names}; nothing was sent. {takes} Use those names and call {tool} again.",
        code="unknown_argument",
        problems=problems,
    )


def _invalid_arguments(tool: str, errors: Sequence[ErrorDetails], allowed: Sequence[str]) -> ArgumentsRefused:
    problems = [{"param": _where(error["loc"]), "problem": _problem(error)} for error in errors]
    listed = "\n".join(f"- {p['problem']}" for p in problems)
    return ArgumentsRefused(
        f"{tool} was not called: {len(problems)} argument problem(s); nothing was sent.\n{listed}\n"
        f"Fix them and call {tool} again (its arguments: {', '.join(allowed)}).",
        code="invalid_argument",
        problems=problems,
    )


def _where(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.startswith(("literal[", "function-")):  # union branches name no field
            text += f".{part}" if text else part
    return text or "arguments"


_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "text",
    "list": "a list",
    "dict": "an object",
    "model": "an object",
    "literal": "one of the listed values",
}


def _problem(error: ErrorDetails) -> str:
    """One argument error in plain words: what was given, what is allowed."""
    where = _where(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = _shown(error.get("input"))
    if kind == "missing":
        return f"{where} is required."
    if kind == "extra_forbidden":
        return f"{where} is not a field this takes; remove it."
    if kind == "literal_error":
        return f"{where}={given} is not allowed; use one of {ctx.get('expected')}."
    bounds = {
        "greater_than_equal": f"at least {ctx.get('ge')}",
        "greater_than": f"more than {ctx.get('gt')}",
        "less_than_equal": f"at most {ctx.get('le')}",
        "less_than": f"less than {ctx.get('lt')}",
    }
    if kind in bounds:
        return f"{where}={given} is out of range; it must be {bounds[kind]}."
    if kind in ("too_long", "too_short"):
        limit = (
            f"at most {ctx.get('max_length')}" if kind == "too_long" else f"at least {ctx.get('min_length')}"
        )
        return f"{where} has {ctx.get('actual_length')} item(s); {limit} are allowed."
    if kind in ("string_too_long", "string_too_short"):
        limit = (
            f"at most {ctx.get('max_length')}"
            if kind == "string_too_long"
            else f"at least {ctx.get('min_length')}"
        )
        return f"{where} must have {limit} character(s)."
    base = kind.split("_")[0]
    if base in _KINDS:
        return f"{where} must be {_KINDS[base]}; got {given}."
    return f"{where}={given} is not valid here; see the tool's description for what is allowed."


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
