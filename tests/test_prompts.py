"""The prompt library: guides served as resources, workflow templates served as MCP prompts, the
template loader's checks, and the packaging of `prompts/` inside the installed package."""

from __future__ import annotations

import re
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest
from mcp import MCPError
from mcp.types import INVALID_PARAMS, TextContent, TextResourceContents

from helpers import Rig
from sora_mcp.errors import InvalidRequest, TemplateError
from sora_mcp.templates import library_root, load_guides, load_templates, parse_template

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
WORKFLOWS = {
    "ad_variants",
    "product_from_photo",
    "multi_scene_story",
    "recurring_character",
    "iterate_by_edit",
}
GUIDES = {
    "prompt-anatomy",
    "camera-lens-lighting",
    "durations-and-sizes",
    "image-references",
    "editing-and-extending",
    "characters",
    "dialogue-and-sound",
    "refusals",
}


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(root=tmp_path)


def template_text(front: str, body: str) -> str:
    return f"+++\n{front.strip()}\n+++\n{body}"


GOOD_FRONT = """
name = "demo"
title = "Demo"
description = "A demo template."

[[arguments]]
name = "subject"
description = "What to film."
required = true

[[arguments]]
name = "seconds"
description = "Clip length."
default = "4"
"""


# --- through the MCP client ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_prompts_shows_the_five_workflows_with_their_declared_arguments(rig: Rig) -> None:
    async with rig.client() as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(prompts) == WORKFLOWS
    ads = prompts["ad_variants"]
    assert ads.title and ads.description
    arguments = {a.name: a for a in ads.arguments or []}
    assert arguments["product"].required is True
    assert arguments["headline"].required is True
    assert arguments["variants"].required is False
    assert 'Default: "4"' in (arguments["variants"].description or "")
    for prompt in prompts.values():
        assert prompt.arguments, prompt.name
        assert all(a.description for a in prompt.arguments)


@pytest.mark.anyio
async def test_get_prompt_renders_a_plan_with_the_arguments_and_defaults_filled_in(rig: Rig) -> None:
    async with rig.client() as client:
        result = await client.get_prompt(
            "ad_variants",
            {"product": "a matte-black steel water bottle", "headline": "Cold for 24 hours", "variants": "3"},
        )
    (message,) = result.messages
    assert message.role == "user"
    assert isinstance(message.content, TextContent)
    text = message.content.text
    assert "a matte-black steel water bottle" in text
    assert '"Cold for 24 hours"' in text
    assert "Produce 3 variants" in text
    assert '"size": "720x1280", "seconds": 8' in text  # defaults, in a ready-to-use batch call
    assert "{{" not in text and "}}" not in text


@pytest.mark.anyio
async def test_every_workflow_renders_from_its_required_arguments_alone(rig: Rig) -> None:
    async with rig.client() as client:
        for prompt in (await client.list_prompts()).prompts:
            values = {a.name: f"<{a.name}-value>" for a in prompt.arguments or [] if a.required}
            result = await client.get_prompt(prompt.name, values)
            (message,) = result.messages
            assert isinstance(message.content, TextContent)
            text = message.content.text
            assert all(value in text for value in values.values()), prompt.name
            assert "{{" not in text, prompt.name
            # Every plan names the tools to call, not just advice.
            assert re.search(r"\b(generate|edit|batch|get_video)\(", text), prompt.name


@pytest.mark.anyio
async def test_a_missing_required_argument_is_reported_with_every_missing_name_at_once(rig: Rig) -> None:
    async with rig.client() as client:
        with pytest.raises(MCPError) as raised:
            await client.get_prompt("recurring_character", {"scenes": "watering plants; stargazing"})
    assert raised.value.code == INVALID_PARAMS
    assert "character_name" in raised.value.message and "appearance" in raised.value.message
    assert "scenes (required)" in raised.value.message  # it also says what the prompt takes


@pytest.mark.anyio
async def test_every_guide_is_listed_and_served_as_markdown(rig: Rig) -> None:
    files = {path.stem: path for path in (REPO_PROMPTS / "guides").glob("*.md")}
    assert set(files) == GUIDES
    async with rig.client() as client:
        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        for name, path in files.items():
            resource = listed[f"sora://guides/{name}"]
            assert resource.mime_type == "text/markdown"
            assert resource.title and resource.description
            (content,) = (await client.read_resource(f"sora://guides/{name}")).contents
            assert isinstance(content, TextResourceContents)
            assert content.mime_type == "text/markdown"
            assert content.text.startswith("# ")
            assert content.text in path.read_text(encoding="utf-8")  # the body, without front matter
            assert "+++" not in content.text


@pytest.mark.anyio
async def test_the_guides_index_lists_every_guide_with_its_summary_and_every_workflow(rig: Rig) -> None:
    async with rig.client() as client:
        (content,) = (await client.read_resource("sora://guides")).contents
    assert isinstance(content, TextResourceContents)
    assert content.mime_type == "text/markdown"
    for guide in load_guides():
        assert f"(sora://guides/{guide.name}) — {guide.summary}" in content.text
    for name in WORKFLOWS:
        assert f"`{name}`" in content.text


# --- the shipped files --------------------------------------------------------------------------


def test_importlib_resources_finds_every_file_in_the_prompts_folder() -> None:
    on_disk = {path.relative_to(REPO_PROMPTS).as_posix() for path in REPO_PROMPTS.rglob("*.md")}
    assert on_disk  # the library is not empty

    def walk(node: Traversable, prefix: str) -> set[str]:
        found: set[str] = set()
        for child in node.iterdir():
            if child.is_dir():
                found |= walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".md"):
                found.add(prefix + child.name)
        return found

    assert walk(library_root(), "") == on_disk


def test_every_guide_link_in_the_library_points_to_a_guide_that_exists() -> None:
    texts = [g.body for g in load_guides()] + [t.body for t in load_templates()]
    linked = {name for text in texts for name in re.findall(r"sora://guides/([a-z0-9-]+)", text)}
    assert linked  # the templates do point at the guides
    assert linked <= GUIDES


@pytest.mark.anyio
async def test_every_tool_call_in_the_library_names_a_real_tool_and_its_real_parameters(rig: Rig) -> None:
    texts = [g.body for g in load_guides()] + [t.body for t in load_templates()]
    calls = [call for text in texts for call in tool_calls(text)]
    assert {name for name, _ in calls} >= {"generate", "extend", "edit", "create_character", "batch"}
    async with rig.client() as client:
        tools = {
            tool.name: set(tool.input_schema.get("properties", {}))
            for tool in (await client.list_tools()).tools
        }
    for name, keywords in calls:
        assert name in tools, name
        assert keywords <= tools[name], (name, keywords - tools[name])


def tool_calls(text: str) -> list[tuple[str, set[str]]]:
    """`name(key=…, …)` calls written in a guide or template: the name and the keywords used,
    skipping quoted prompts and `<placeholders>` (which may hold parentheses or apostrophes)."""
    found = []
    for match in re.finditer(r"\b([a-z_]+)\(", text):
        depth, i, outside = 1, match.end(), []
        while depth and i < len(text):
            for opener, closer in (('"""', '"""'), ('"', '"'), ("'", "'"), ("<", ">")):
                if text.startswith(opener, i):
                    i = text.index(closer, i + len(opener)) + len(closer)
                    break
            else:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                outside.append(text[i])
                i += 1
        found.append((match.group(1), set(re.findall(r"\b([a-z_]+)=", "".join(outside)))))
    return found


# --- the template loader ------------------------------------------------------------------------


def test_a_template_renders_values_and_falls_back_to_defaults() -> None:
    template = parse_template(
        template_text(GOOD_FRONT, "Film {{subject}} for {{ seconds }} s."), source="demo.md"
    )
    assert template.render({"subject": "a kite"}) == "Film a kite for 4 s."
    assert template.render({"subject": " a kite ", "seconds": "8"}) == "Film a kite for 8 s."


def test_a_value_that_looks_like_a_placeholder_is_inserted_verbatim() -> None:
    template = parse_template(template_text(GOOD_FRONT, "{{subject}} / {{seconds}}"), source="demo.md")
    assert template.render({"subject": "{{seconds}}"}) == "{{seconds}} / 4"


def test_blank_values_count_as_missing_and_every_missing_argument_is_named() -> None:
    front = GOOD_FRONT + '\n[[arguments]]\nname = "place"\ndescription = "Where."\nrequired = true\n'
    template = parse_template(template_text(front, "{{subject}} {{seconds}} {{place}}"), source="demo.md")
    with pytest.raises(InvalidRequest) as raised:
        template.render({"subject": "   "})
    assert raised.value.param == "subject, place"


def test_an_argument_the_template_does_not_take_is_refused() -> None:
    template = parse_template(template_text(GOOD_FRONT, "{{subject}} {{seconds}}"), source="demo.md")
    with pytest.raises(InvalidRequest) as raised:
        template.render({"subject": "a kite", "colour": "red"})
    assert raised.value.param == "colour"


def test_an_undeclared_placeholder_and_an_unused_argument_are_both_reported() -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template(template_text(GOOD_FRONT, "Film {{subject}} at {{place}}."), source="demo.md")
    message = str(raised.value)
    assert message.startswith("demo.md:")
    assert "not declared" in message and "place" in message
    assert "never used" in message and "seconds" in message


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ("{{subject}} {{seconds}} {{ two words }}", "malformed placeholders: {{two words}}"),
        ("{{subject}} {{seconds}} {{subject}", "unbalanced"),
        ("{{subject}} {{seconds}} }}", "unbalanced"),
    ],
)
def test_a_malformed_placeholder_is_reported(body: str, fault: str) -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template(template_text(GOOD_FRONT, body), source="demo.md")
    assert fault in str(raised.value)


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("no front matter at all {{subject}}", "first line"),
        ("+++\nname = 'demo'\n{{subject}}", "closing"),
        ("+++\nname = = 'demo'\n+++\nbody", "not valid TOML"),
        (template_text(GOOD_FRONT + 'colour = "red"\n', "{{subject}} {{seconds}}"), "colour"),
        (
            template_text(GOOD_FRONT.replace('default = "4"', "default = 4"), "{{subject}} {{seconds}}"),
            "string",
        ),
        (
            template_text(GOOD_FRONT.replace('default = "4"', ""), "{{subject}} {{seconds}}"),
            "needs a default",
        ),
        (
            template_text(
                GOOD_FRONT.replace("required = true", 'required = true\ndefault = "x"'),
                "{{subject}} {{seconds}}",
            ),
            "cannot have a default",
        ),
        (template_text(GOOD_FRONT.replace('"Demo"', '""'), "{{subject}} {{seconds}}"), "title"),
        (template_text(GOOD_FRONT.replace('name = "seconds"', 'name = "subject"'), "{{subject}}"), "twice"),
    ],
)
def test_bad_front_matter_is_reported_with_the_file_and_the_fault(text: str, fault: str) -> None:
    with pytest.raises(TemplateError) as raised:
        parse_template(text, source="prompts/templates/demo.md")
    assert str(raised.value).startswith("prompts/templates/demo.md:")
    assert fault in str(raised.value)


def test_a_template_whose_name_differs_from_its_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "other.md").write_text(template_text(GOOD_FRONT, "{{subject}} {{seconds}}"))
    with pytest.raises(TemplateError, match="must match the file name"):
        load_templates(tmp_path)


def test_a_guide_without_a_summary_is_refused(tmp_path: Path) -> None:
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "lenses.md").write_text('+++\ntitle = "Lenses"\n+++\n# Lenses\n')
    with pytest.raises(TemplateError, match="summary"):
        load_guides(tmp_path)


def test_a_missing_library_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="prompts/templates/ is missing"):
        load_templates(tmp_path)
