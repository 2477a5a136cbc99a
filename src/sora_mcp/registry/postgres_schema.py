"""The PostgreSQL registry's tables, their version, and the migrations between versions.

One row per record, one column per field, with the constraints the records promise: a backend
id belongs to at most one video (UNIQUE), statuses and relations are the known ones (CHECK), a
file or batch item belongs to a record that exists (FOREIGN KEY). A record's lists and maps get
their own tables (`video_files`, `batch_items`) or a typed array (`character_ids`), so every
filter the tools use is an indexed query, not a scan of JSON.

Beyond the records, these serve a fleet of servers sharing the registry:
`idempotency_keys` (a billable call's key → the records it made: a retry returns them),
`backend_pauses` (a 429's Retry-After, honoured by every process), `queue_workers` (who asked
the batch queue for work lately: each gets its fair share of a backend's slots), `work_claims`
(background work one process does at a time: following a job, looking for a lost one), the lease
columns of `videos` (which process is sending a direct-batch item, and until when its claim
holds), `character_keys` (a create_character call's key → the character it made) and
`confirm_tokens` (single-use spending confirmations, redeemed on any replica).

The schema is created or migrated on open inside one transaction that holds an advisory lock,
so concurrent openers run each step exactly once; a database written by a newer sora-mcp is
refused, never misread.
"""

from __future__ import annotations

from collections.abc import Callable

from sora_mcp.errors import RegistryError
from sora_mcp.registry.postgres_rows import Conn

SCHEMA_VERSION = 4
# Any 64-bit number unique to this application: serialises schema creation across processes.
_SCHEMA_LOCK = 0x50_4D_43_53_4F_52_41  # "SORA MCP"

_V1 = """
CREATE TABLE sora_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE videos (
    local_id           text PRIMARY KEY,
    id                 text UNIQUE,
    backend            text NOT NULL,
    model              text NOT NULL,
    prompt             text NOT NULL,
    size               text NOT NULL,
    seconds            integer NOT NULL,
    status             text NOT NULL CHECK (status IN ('pending', 'submitting', 'queued',
                           'in_progress', 'completed', 'failed', 'unknown', 'deleted')),
    progress           integer NOT NULL,
    error_code         text,
    error_message      text,
    created_at         double precision NOT NULL,
    updated_at         double precision NOT NULL,
    remote_created_at  bigint,
    completed_at       bigint,
    expires_at         bigint,
    parent_id          text,
    relation           text NOT NULL CHECK (relation IN ('generate', 'remix', 'edit', 'extension')),
    character_ids      text[] NOT NULL DEFAULT '{}',
    image_reference    text,
    batch_id           text,
    custom_id          text,
    estimated_cost_usd double precision NOT NULL CHECK (estimated_cost_usd >= 0),
    note               text,
    -- The fleet's claim on a direct-batch item being sent: who, and until when (epoch seconds).
    lease_owner        text,
    lease_until        double precision,
    CHECK ((lease_owner IS NULL) = (lease_until IS NULL))
);
CREATE INDEX videos_created_at ON videos (created_at);
CREATE INDEX videos_status ON videos (status, created_at);
CREATE INDEX videos_batch ON videos (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX videos_parent ON videos (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX videos_characters ON videos USING gin (character_ids);
CREATE INDEX videos_queue ON videos (backend, created_at) WHERE status = 'pending' AND batch_id IS NOT NULL;
CREATE INDEX videos_leases ON videos (backend, lease_until) WHERE lease_owner IS NOT NULL;

CREATE TABLE video_files (
    local_id text NOT NULL REFERENCES videos (local_id) ON DELETE CASCADE,
    variant  text NOT NULL,
    path     text NOT NULL,
    seq      integer NOT NULL,
    PRIMARY KEY (local_id, variant)
);

CREATE TABLE characters (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    name_folded text NOT NULL,
    backend     text NOT NULL,
    source      text NOT NULL,
    created_at  double precision NOT NULL
);
CREATE INDEX characters_name ON characters (name_folded, created_at);

CREATE TABLE batches (
    local_id           text PRIMARY KEY,
    id                 text UNIQUE,
    backend            text NOT NULL,
    mode               text NOT NULL CHECK (mode IN ('native', 'direct')),
    status             text NOT NULL,
    created_at         double precision NOT NULL,
    updated_at         double precision NOT NULL,
    input_file_id      text,
    output_file_id     text,
    error_file_id      text,
    estimated_cost_usd double precision NOT NULL CHECK (estimated_cost_usd >= 0),
    note               text,
    input_path         text,
    finished_at        double precision
);
CREATE INDEX batches_created_at ON batches (created_at);
CREATE INDEX batches_unfinished ON batches (mode) WHERE finished_at IS NULL;

CREATE TABLE batch_items (
    batch_local_id text NOT NULL REFERENCES batches (local_id) ON DELETE CASCADE,
    custom_id      text NOT NULL,
    local_id       text NOT NULL,
    seq            integer NOT NULL,
    PRIMARY KEY (batch_local_id, custom_id)
);
CREATE INDEX batch_items_video ON batch_items (local_id);

CREATE TABLE idempotency_keys (
    key        text PRIMARY KEY,
    tool       text NOT NULL,
    created_at double precision NOT NULL
);
CREATE TABLE idempotency_records (
    key      text NOT NULL REFERENCES idempotency_keys (key) ON DELETE CASCADE,
    kind     text NOT NULL CHECK (kind IN ('video', 'batch')),
    local_id text NOT NULL,
    seq      integer NOT NULL,
    PRIMARY KEY (key, seq)
);

CREATE TABLE backend_pauses (
    backend    text PRIMARY KEY,
    not_before double precision NOT NULL
);
"""

# `queue_seq` keeps the order intents were recorded in: a batch's items share one created_at,
# and the queue sends them in the order they were listed.
_V1_TO_V2 = "ALTER TABLE videos ADD COLUMN queue_seq bigserial"

# v3: the records' fallback fields (the embedded store's schema v4): what was done instead when the
# backend lacked an endpoint, the source an extension is stitched onto here, and a character's
# reference frame when the backend could not make the character.
_V2_TO_V3 = """
ALTER TABLE videos ADD COLUMN fallback text;
ALTER TABLE videos ADD COLUMN stitch_onto text;
ALTER TABLE characters ADD COLUMN reference text;
-- The processes that asked the queue for work lately: each may hold its fair share of a
-- backend's slots.
CREATE TABLE queue_workers (
    backend    text NOT NULL,
    owner      text NOT NULL,
    seen_until double precision NOT NULL,
    PRIMARY KEY (backend, owner)
);
-- Background work one process of the fleet does at a time (following a job, looking for a
-- lost one): who claimed it, and until when the claim holds without a heartbeat.
CREATE TABLE work_claims (
    key   text PRIMARY KEY,
    owner text NOT NULL,
    until double precision NOT NULL
);
CREATE INDEX work_claims_owner ON work_claims (owner);
"""

# v4: what the registry remembers of tool calls for the whole fleet: create_character's
# idempotency keys (the character the call made; none while its first call has no answer) and
# the single-use spending confirmation tokens, so a confirmed call may reach any replica.
_V3_TO_V4 = """
CREATE TABLE character_keys (
    key          text PRIMARY KEY,
    created_at   double precision NOT NULL,
    character_id text REFERENCES characters (id) ON DELETE SET NULL
);
CREATE TABLE confirm_tokens (
    token      text PRIMARY KEY,
    digest     text NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX confirm_tokens_expiry ON confirm_tokens (expires_at);
"""

# MIGRATIONS[n] turns a version-n database into a version n+1 one (SQL run in one transaction).
# A new database is created at version 1 and migrated up, so every database takes one path.
MIGRATIONS: dict[int, str] = {1: _V1_TO_V2, 2: _V2_TO_V3, 3: _V3_TO_V4}


def read_version(conn: Conn) -> int | None:
    """The schema version the database holds: 0 when it has no sora-mcp tables yet, None when
    its version row is missing or unreadable. Reads only."""
    exists = conn.execute("SELECT to_regclass('sora_meta') IS NOT NULL AS present").fetchone()
    if not (exists and exists["present"]):
        return 0
    row = conn.execute("SELECT value FROM sora_meta WHERE key = 'schema_version'").fetchone()
    raw = str(row["value"]) if row else ""
    return int(raw) if raw.isdigit() else None


def describe_version(version: int | None) -> tuple[bool, str]:
    """Whether this sora-mcp can open a database holding `version`, and what opening it does."""
    if version == 0:
        return True, f"an empty database: the tables (schema v{SCHEMA_VERSION}) are created on first start"
    if version == SCHEMA_VERSION:
        return True, f"schema v{version}, current"
    if version is not None and 0 < version < SCHEMA_VERSION:
        return (
            True,
            f"schema v{version}: migrated to v{SCHEMA_VERSION} on first start (in place, records kept)",
        )
    return False, (
        f"schema version {version} is not one this sora-mcp (up to v{SCHEMA_VERSION}) can open: the "
        "servers would refuse it; upgrade sora-mcp or use another database"
    )


def ensure_schema(conn: Conn, where: str, now: Callable[[], float]) -> None:
    """Create the tables in an empty database, migrate an older schema, refuse a newer one.

    Raises:
        RegistryError: the schema is newer than this sora-mcp, or has no migration path.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        if read_version(conn) == 0:
            conn.execute(_V1)
            conn.execute("INSERT INTO sora_meta (key, value) VALUES ('schema_version', '1')")
        version = read_version(conn)
        if version is None or version > SCHEMA_VERSION:
            raise RegistryError(
                f"the registry database {where} was written with schema version {version}; this "
                f"sora-mcp understands versions up to {SCHEMA_VERSION}. Upgrade sora-mcp, or point "
                "SORA_MCP_REGISTRY_URL at another database."
            )
        for step in range(version, SCHEMA_VERSION):
            if step not in MIGRATIONS:
                raise RegistryError(
                    f"the registry database {where} has schema version {version} and this sora-mcp "
                    "has no migration from it; it is left untouched."
                )
            conn.execute(MIGRATIONS[step])
            conn.execute(
                "INSERT INTO sora_meta (key, value) VALUES (%s, %s)",
                (f"migrated_{step}_to_{step + 1}", str(now())),
            )
        conn.execute("UPDATE sora_meta SET value = %s WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
