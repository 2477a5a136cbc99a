"""sora-mcp's prompt library, shipped as data inside the package as `sora_mcp.prompts`.

guides/*.md     writing guides, served as MCP resources `sora://guides/{name}`
templates/*.md  workflow templates, served as MCP prompts with declared arguments

Both open with TOML front matter between `+++` lines; `sora_mcp.templates` loads and validates
them. This folder holds no code: it is a package only so `importlib.resources` can find it.
"""
