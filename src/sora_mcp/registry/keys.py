"""The registry's key layout in diskcache (see `schema` for what each version holds)."""

SCHEMA_KEY = "meta:schema_version"
MIGRATIONS_KEY = "meta:migrations"
VIDEO, VIDEO_INDEX = "video:", "vid:"
BATCH, BATCH_INDEX = "batch:", "bid:"
CHARACTER, CHARACTER_NAME = "char:", "cname:"


def name_key(name: str) -> str:
    """The index key of a character name: names are looked up case-insensitively."""
    return CHARACTER_NAME + name.casefold()
