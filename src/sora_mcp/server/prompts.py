"""The prompt library over MCP: every guide is a resource `sora://guides/{name}` (plus an index at
`sora://guides`), every workflow template an MCP prompt with its declared arguments.

The files are loaded and validated once, when the server is built, so a malformed one stops the
server at start rather than failing a user's request later.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.prompts.base import Message, Prompt, PromptArgument, UserMessage
from mcp.server.mcpserver.resources import TextResource
from mcp.types import INVALID_PARAMS
from pydantic import Field

from sora_mcp import catalog
from sora_mcp.errors import InvalidRequest
from sora_mcp.server.state import AppState
from sora_mcp.studio.planning import plan_clip
from sora_mcp.templates import Guide, Template, load_guides, load_templates

log = logging.getLogger(__name__)
GUIDES_URI = "sora://guides"
MARKDOWN = "text/markdown"


def guide_uri(name: str) -> str:
    return f"{GUIDES_URI}/{name}"


class TemplatePrompt(Prompt):
    """An MCP prompt rendered from a validated template.

    The SDK's own check stops at the first problem it sees and words it for programmers; the
    template names every missing required argument in one message, so ours runs instead.
    """

    template: Template = Field(exclude=True)

    @classmethod
    def of(cls, template: Template) -> TemplatePrompt:
        def fn(**arguments: str) -> str:
            return template.render(arguments)

        return cls(
            name=template.name,
            title=template.title,
            description=template.description,
            arguments=[
                PromptArgument(
                    name=a.name,
                    description=a.description
                    if a.required
                    else f"{a.description} Default: {json.dumps(a.default, ensure_ascii=False)}.",
                    required=a.required,
                )
                for a in template.arguments
            ],
            fn=fn,
            template=template,
        )

    async def render(self, arguments: dict[str, Any] | None, context: Context[Any, Any]) -> list[Message]:
        """One user message: the plan, with every argument filled in.

        Raises:
            MCPError: INVALID_PARAMS naming every missing required (or unknown) argument at once.
        """
        given = {name: str(value) for name, value in (arguments or {}).items()}
        try:
            text = self.template.render(given)
            check_clip_arguments(self.template, given)
        except InvalidRequest as exc:
            log.info("Prompt %r refused its arguments: %s", self.name, exc)
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
        return [UserMessage(text)]


def check_clip_arguments(template: Template, given: dict[str, str]) -> None:
    """Check a template's model / size / seconds (given or default) against the catalogue, as the
    tools would: a plan built on `seconds=5` would only be refused later, by the first tool call.

    Raises:
        InvalidRequest: the first value the catalogue refuses, in the tools' own words.
    """
    declared = {a.name: a.default or "" for a in template.arguments}
    if not {"model", "size", "seconds"} & set(declared):
        return
    values = {name: (given.get(name) or "").strip() or declared.get(name, "") for name in declared}
    seconds = values.get("seconds") or catalog.DEFAULT_SECONDS
    try:
        plan_clip(
            prompt="check",
            model=values.get("model") or catalog.DEFAULT_MODEL,
            size=values.get("size") or catalog.DEFAULT_SIZE,
            seconds=int(seconds) if seconds.isdigit() else -1,
        )
    except InvalidRequest as exc:
        raise InvalidRequest(f"Prompt {template.name!r}: {exc}", code=exc.code, param=exc.param) from exc


def register_prompts(server: MCPServer[AppState]) -> None:
    """Register the guides (resources, with an index) and the workflow templates (prompts).

    Raises:
        TemplateError: a packaged guide or template is malformed.
    """
    guides = load_guides()
    templates = load_templates()
    server.add_resource(
        TextResource(
            uri=GUIDES_URI,
            name="guides",
            title="Prompt-writing guides (index)",
            description="Every writing guide with a one-line summary, and the workflow prompts; start here.",
            mime_type=MARKDOWN,
            text=guides_index(guides, templates),
        )
    )
    for guide in guides:
        server.add_resource(
            TextResource(
                uri=guide_uri(guide.name),
                name=f"guide-{guide.name}",
                title=guide.title,
                description=guide.summary,
                mime_type=MARKDOWN,
                text=guide.body,
            )
        )
    for template in templates:
        server.add_prompt(TemplatePrompt.of(template))


def guides_index(guides: list[Guide], templates: list[Template]) -> str:
    """The `sora://guides` page: guides by name with summaries, then the workflow prompts (for
    hosts that show resources but not prompts)."""
    lines = [
        "# Prompt-writing guides",
        "",
        "Read the guide that fits before writing a prompt. Models, sizes, prices and limits are in "
        "`sora://capabilities`.",
        "",
    ]
    lines += [f"- [{g.title}]({guide_uri(g.name)}) — {g.summary}" for g in guides]
    lines += [
        "",
        "## Workflow prompts",
        "",
        "MCP prompts that expand into a step-by-step plan (tools, parameters, draft shot prompts).",
        "",
    ]
    lines += [f"- `{t.name}` — {t.description} Arguments: {t.signature()}." for t in templates]
    return "\n".join(lines) + "\n"
