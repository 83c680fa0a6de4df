-- The tables of a TMWS database that seed 000's checklist reads, with the columns it uses.
-- The demo's simulator and the tests create databases from this file.
CREATE TABLE IF NOT EXISTS agents (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL DEFAULT 'default',
    role TEXT NOT NULL DEFAULT 'viewer',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS security_audit_logs (
    id INTEGER PRIMARY KEY,
    event_type TEXT NOT NULL,
    agent_id TEXT,
    details TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS license_keys (
    id INTEGER PRIMARY KEY,
    license_key TEXT NOT NULL UNIQUE,
    agent_id TEXT,
    tier TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);

CREATE TABLE IF NOT EXISTS license_usage_history (
    id INTEGER PRIMARY KEY,
    license_key_id INTEGER REFERENCES license_keys(id),
    agent_id TEXT,
    valid INTEGER NOT NULL,
    validated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS alembic_version (
    version_num VARCHAR(32) NOT NULL PRIMARY KEY
);
