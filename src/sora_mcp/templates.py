"""The packaged prompt library: writing guides and workflow templates, shipped as markdown inside
the package (`sora_mcp.prompts`; the files live in the repository's top-level `prompts/`).

Every file opens with TOML front matter between two `+++` lines. A guide (`guides/*.md`) declares
`title` and `summary` and is served as written. A template (`templates/*.md`) declares `name`,
`title`, `description` and `[[arguments]]` (`name`, `description`, `required`, `default`), and
its body holds `{{argument}}` placeholders.

Templates are checked when loaded — every placeholder declared, every declared argument used, a
required argument has no default and an optional one has one — so a broken file stops the server
at start instead of surprising a user mid-request. Rendering reports every missing required
argument in one error, so the caller can fix them all in one go.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sora_mcp.errors import InvalidRequest, TemplateError

PACKAGE = "sora_mcp.prompts"
FENCE = "+++"
# Anything between double braces is meant as a placeholder; names are then checked one by one, so
# a typo such as `{{ product name }}` is reported instead of being shipped verbatim.
_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
_ARGUMENT_NAME = r"^[a-z][a-z0-9_]*$"
_GUIDE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class _Authored(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TemplateArgument(_Authored):
    """One argument of a workflow template, as declared in its front matter."""

    name: str = Field(pattern=_ARGUMENT_NAME)
    description: str = Field(min_length=1)
    required: bool = False
    default: str | None = None

    @model_validator(mode="after")
    def _default_only_when_optional(self) -> TemplateArgument:
        if self.required and self.default is not None:
            raise ValueError(f"argument {self.name!r} is required, so it cannot have a default")
        if not self.required and self.default is None:
            raise ValueError(f'optional argument {self.name!r} needs a default (use "" for none)')
        return self


class TemplateFrontMatter(_Authored):
    """What a template declares between its `+++` lines."""

    name: str = Field(pattern=_ARGUMENT_NAME)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    arguments: list[TemplateArgument] = []


class Template(TemplateFrontMatter):
    """A validated workflow template: front matter plus a body with `{{argument}}` placeholders."""

    body: str = Field(min_length=1)

    @model_validator(mode="after")
    def _placeholders_match_arguments(self) -> Template:
        declared = [a.name for a in self.arguments]
        problems: list[str] = []
        duplicated = sorted({n for n in declared if declared.count(n) > 1})
        if duplicated:
            problems.append(f"arguments declared twice: {', '.join(duplicated)}")
        used = placeholders(self.body)
        malformed = sorted({n for n in used if not re.match(_ARGUMENT_NAME, n)})
        if malformed:
            problems.append("malformed placeholders: " + ", ".join("{{" + n + "}}" for n in malformed))
        stray = _PLACEHOLDER.sub("", self.body)
        if "{{" in stray or "}}" in stray:
            problems.append("unbalanced '{{' or '}}' in the body")
        undeclared = sorted(set(used) - set(declared) - set(malformed))
        if undeclared:
            problems.append(f"placeholders not declared in [[arguments]]: {', '.join(undeclared)}")
        unused = [n for n in declared if n not in used]
        if unused:
            problems.append(f"arguments declared but never used in the body: {', '.join(unused)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def render(self, arguments: Mapping[str, str] | None = None) -> str:
        """The body with every placeholder replaced by its argument's value or default.

        Blank values count as not given: clients often send "" for every field a form shows.

        Raises:
            InvalidRequest: one error naming every missing required argument (and any argument
                this template does not take), so all of them can be fixed at once.
        """
        given = {name: value.strip() for name, value in (arguments or {}).items() if value.strip()}
        declared = {a.name: a for a in self.arguments}
        missing = [a.name for a in self.arguments if a.required and a.name not in given]
        unknown = sorted(set(given) - set(declared))
        if missing or unknown:
            problems = []
            if missing:
                problems.append(
                    f"missing required argument{'s' if len(missing) > 1 else ''}: {', '.join(missing)}"
                )
            if unknown:
                problems.append(f"unknown argument{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
            raise InvalidRequest(
                f"Prompt {self.name!r}: {'; '.join(problems)}. It takes: {self.signature()}.",
                param=", ".join(missing + unknown),
            )
        values = {name: given.get(name, arg.default or "") for name, arg in declared.items()}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1).strip()], self.body)

    def signature(self) -> str:
        """The arguments in one line, required ones first, e.g. `product (required), seconds = "8"`."""
        required = [f"{a.name} (required)" for a in self.arguments if a.required]
        optional = [
            f"{a.name} = {json.dumps(a.default, ensure_ascii=False)}"
            for a in self.arguments
            if not a.required
        ]
        return ", ".join(required + optional) or "no arguments"


class Guide(_Authored):
    """A writing guide: served as written, listed by name with its one-line summary."""

    name: str = Field(pattern=_GUIDE_NAME.pattern)
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1, pattern=r"^[^\n]+$")
    body: str = Field(min_length=1)


def placeholders(body: str) -> list[str]:
    """The placeholder names in a body, in order of first use (whitespace inside braces ignored)."""
    return list(dict.fromkeys(m.group(1).strip() for m in _PLACEHOLDER.finditer(body)))


def split_front_matter(text: str, *, source: str) -> tuple[dict[str, Any], str]:
    """`(front matter as a dict, body)` of a `+++`-fenced markdown file.

    Raises:
        TemplateError: no opening or closing fence, or front matter that is not valid TOML.
    """
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != FENCE:
        raise TemplateError(f"{source}: the first line must be '{FENCE}', opening the TOML front matter.")
    closing = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == FENCE), None)
    if closing is None:
        raise TemplateError(f"{source}: the front matter has no closing '{FENCE}' line.")
    try:
        data = tomllib.loads("".join(lines[1:closing]))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{source}: the front matter is not valid TOML ({exc}).") from exc
    return data, "".join(lines[closing + 1 :]).strip()


def parse_template(text: str, *, source: str) -> Template:
    """A template from the text of its file; `source` names the file in error messages.

    Raises:
        TemplateError: bad front matter, or placeholders and arguments that do not match.
    """
    data, body = split_front_matter(text, source=source)
    try:
        front = TemplateFrontMatter.model_validate(data)
        return Template(**dict(front), body=body)
    except ValidationError as exc:
        raise TemplateError(f"{source}: {_explain(exc)}") from exc


def parse_guide(text: str, *, name: str, source: str) -> Guide:
    """A guide from the text of its file (front matter `title` and `summary`, then markdown).

    Raises:
        TemplateError: bad front matter or an empty body.
    """
    data, body = split_front_matter(text, source=source)
    try:
        return Guide.model_validate({**data, "name": name, "body": body})
    except ValidationError as exc:
        raise TemplateError(f"{source}: {_explain(exc)}") from exc


def library_root() -> Traversable:
    """The installed prompt library (works from an editable install and from a wheel)."""
    return resources.files(PACKAGE)


def load_templates(root: Traversable | None = None) -> list[Template]:
    """Every template under `root/templates`, sorted by name; each file's stem must be its name.

    Raises:
        TemplateError: the folder is missing, or any file is malformed.
    """
    templates = []
    for source, file in _markdown_files(root or library_root(), "templates"):
        template = parse_template(file.read_text(encoding="utf-8"), source=source)
        if template.name != _stem(file):
            raise TemplateError(f"{source}: name {template.name!r} must match the file name.")
        templates.append(template)
    return sorted(templates, key=lambda t: t.name)


def load_guides(root: Traversable | None = None) -> list[Guide]:
    """Every guide under `root/guides`, sorted by name (the file's stem, lowercase-with-dashes).

    Raises:
        TemplateError: the folder is missing, or any file is malformed.
    """
    guides = [
        parse_guide(file.read_text(encoding="utf-8"), name=_stem(file), source=source)
        for source, file in _markdown_files(root or library_root(), "guides")
    ]
    return sorted(guides, key=lambda g: g.name)


def _markdown_files(root: Traversable, folder: str) -> Iterator[tuple[str, Traversable]]:
    directory = root / folder
    if not directory.is_dir():
        raise TemplateError(f"prompts/{folder}/ is missing from the installed package; reinstall sora-mcp.")
    for file in sorted(directory.iterdir(), key=lambda f: f.name):
        if file.is_file() and file.name.endswith(".md"):
            yield f"prompts/{folder}/{file.name}", file


def _stem(file: Traversable) -> str:
    return file.name.removesuffix(".md")


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
