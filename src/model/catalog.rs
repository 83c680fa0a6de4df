//! The catalogue of figure ids, per source kind: the key after `<source>.` and the name
//! panes show. Collectors produce readings from these, `validate` checks `[rules."id"]`
//! against them, and panes and the report look figures up by them, so an id is written once.

use super::figure::Reading;

/// A figure a source produces: the id after `<source>.` and the name panes show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fig {
    pub key: &'static str,
    pub name: &'static str,
}

impl Fig {
    pub const fn new(key: &'static str, name: &'static str) -> Self {
        Fig { key, name }
    }

    /// Whether `id` is this figure of some source (`<source>.<key>`).
    pub(crate) fn is_key_of(&self, id: &str) -> bool {
        id.strip_suffix(self.key)
            .is_some_and(|source| source.len() > 1 && source.ends_with('.'))
    }

    pub fn id(&self, source: &str) -> String {
        format!("{source}.{}", self.key)
    }

    pub fn number(&self, source: &str, value: f64, unit: &str) -> Reading {
        Reading::number(self.id(source), self.name, value, unit)
    }

    pub fn count(&self, source: &str, value: i64) -> Reading {
        self.number(source, value as f64, "")
    }

    pub fn text(&self, source: &str, value: impl Into<String>) -> Reading {
        Reading::text(self.id(source), self.name, value)
    }

    pub fn failed(&self, source: &str, error: &str) -> Reading {
        Reading::failed(self.id(source), self.name, error)
    }
}

/// Every SQLite source, pack or not.
pub mod sqlite {
    use super::Fig;

    pub(crate) const DB_SIZE_MB: Fig = Fig::new("db.size_mb", "database size");
    pub(crate) const DB_FREELIST: Fig = Fig::new("db.freelist", "freelist pages");
    pub(crate) const DB_INTEGRITY: Fig = Fig::new("db.integrity", "integrity check");

    /// A pack of figures on a SQLite source: the id a config names it by (`pack = "tmws"`)
    /// and every figure it produces. The code that reads a pack is found by the same id in
    /// the collector's registry.
    #[derive(Debug, PartialEq, Eq)]
    pub struct PackFigures {
        pub id: &'static str,
        pub figs: &'static [Fig],
    }

    /// Every pack, in the order the config's error messages list them.
    pub(crate) const PACKS: &[PackFigures] = &[super::tmws::PACK];

    /// The ids of [`PACKS`].
    pub(crate) const PACK_IDS: [&str; PACKS.len()] = {
        let mut ids = [""; PACKS.len()];
        let mut i = 0;
        while i < PACKS.len() {
            ids[i] = PACKS[i].id;
            i += 1;
        }
        ids
    };

    /// The pack a config names `id`.
    pub fn pack(id: &str) -> Option<&'static PackFigures> {
        PACKS.iter().find(|p| p.id == id)
    }
}

/// The TMWS pack (seed 000's post-deploy checklist) on a SQLite source.
pub mod tmws {
    use super::Fig;
    use super::sqlite::PackFigures;

    /// The pack's entry in [`super::sqlite::PACKS`].
    pub(crate) const PACK: PackFigures = PackFigures {
        id: "tmws",
        figs: ALL,
    };

    /// Drill-down table ids, after `<source>.`.
    pub(crate) const TABLE_TOP_DENIED: &str = "rbac.top_denied";
    pub(crate) const TABLE_BY_TIER: &str = "license.by_tier";

    pub(crate) const RBAC_CHECKS_1H: Fig = Fig::new("rbac.checks_1h", "permission checks (1h)");
    pub(crate) const RBAC_DENY_PCT_1H: Fig = Fig::new("rbac.deny_pct_1h", "deny % (1h)");
    /// The last minute: an incident shows here long before it moves the hour's figure.
    pub(crate) const RBAC_DENY_PCT_1M: Fig = Fig::new("rbac.deny_pct_1m", "deny % (1m)");
    pub(crate) const RBAC_ALLOW_1H: Fig = Fig::new("rbac.allow_1h", "allowed (1h)");
    pub(crate) const RBAC_DENY_1H: Fig = Fig::new("rbac.deny_1h", "denied (1h)");

    pub(crate) const LICENSE_VALIDATIONS_1H: Fig =
        Fig::new("license.validations_1h", "validations (1h)");
    pub(crate) const LICENSE_FAILURE_PCT_1H: Fig =
        Fig::new("license.failure_pct_1h", "validation failure % (1h)");
    pub(crate) const LICENSE_NOT_FOUND_1H: Fig = Fig::new(
        "license.failures_not_found_1h",
        "failed: key not found (1h)",
    );
    pub(crate) const LICENSE_INVALID_1H: Fig = Fig::new(
        "license.failures_invalid_1h",
        "failed: invalid or expired (1h)",
    );

    pub(crate) const LICENSE_GENERATED_1H: Fig = Fig::new("license.generated_1h", "generated (1h)");
    pub(crate) const LICENSE_REVOKED_1H: Fig = Fig::new("license.revoked_1h", "revoked (1h)");
    pub(crate) const LICENSE_EXPIRING_7D: Fig =
        Fig::new("license.expiring_7d", "expiring within 7 days");
    pub(crate) const LICENSE_EXPIRED_ACTIVE: Fig =
        Fig::new("license.expired_active", "expired, not revoked");

    pub(crate) const DB_MIGRATION: Fig = Fig::new("db.migration", "migration version");
    pub(crate) const AGENTS_ADMIN_PCT: Fig = Fig::new("agents.admin_pct", "admins %");
    pub(crate) const AGENTS_VIEWER_PCT: Fig = Fig::new("agents.viewer_pct", "viewers %");
    pub(crate) const AUDIT_VOLUME_24H: Fig = Fig::new("audit.volume_24h", "audit events (24h)");
    pub(crate) const AUDIT_JUMP_1H: Fig =
        Fig::new("audit.jump_1h", "audit events, last hour vs before");

    /// Every figure the pack produces (each one is sent on every poll, failed or not).
    pub const ALL: &[Fig] = &[
        RBAC_CHECKS_1H,
        RBAC_DENY_PCT_1H,
        RBAC_DENY_PCT_1M,
        RBAC_ALLOW_1H,
        RBAC_DENY_1H,
        LICENSE_VALIDATIONS_1H,
        LICENSE_FAILURE_PCT_1H,
        LICENSE_NOT_FOUND_1H,
        LICENSE_INVALID_1H,
        LICENSE_GENERATED_1H,
        LICENSE_REVOKED_1H,
        LICENSE_EXPIRING_7D,
        LICENSE_EXPIRED_ACTIVE,
        DB_MIGRATION,
        AGENTS_ADMIN_PCT,
        AGENTS_VIEWER_PCT,
        AUDIT_VOLUME_24H,
        AUDIT_JUMP_1H,
    ];
}

/// A Redis server (`[redis.NAME]`), read with `PING` and `INFO`.
pub mod redis {
    use super::Fig;

    pub(crate) const UP: Fig = Fig::new("up", "reachable");
    pub(crate) const PING_MS: Fig = Fig::new("ping_ms", "PING round trip");
    /// Hits of all lookups between two polls (INFO's counters' change, not since start).
    pub(crate) const CACHE_HIT_PCT: Fig = Fig::new("cache_hit_pct", "keyspace hit %");
    pub(crate) const MEM_USED_BYTES: Fig = Fig::new("mem_used_bytes", "memory used");
    /// Only while `maxmemory` is set.
    pub(crate) const MEM_PCT: Fig = Fig::new("mem_pct", "memory used of maxmemory");
    pub(crate) const EVICTIONS_PER_MIN: Fig =
        Fig::new("evictions_per_min", "keys evicted per minute");
    pub(crate) const REJECTED_PER_MIN: Fig =
        Fig::new("rejected_conns_per_min", "connections rejected per minute");
    pub(crate) const CLIENTS: Fig = Fig::new("clients", "connected clients");
    pub(crate) const BLOCKED_CLIENTS: Fig = Fig::new("blocked_clients", "blocked clients");
    pub(crate) const ROLE: Fig = Fig::new("role", "replication role");
    /// Only on a replica: `master_link_status`.
    pub(crate) const MASTER_LINK: Fig = Fig::new("master_link", "link to the master");

    /// Every built-in figure (`mem_pct` and `master_link` only when they apply).
    pub const ALL: &[Fig] = &[
        UP,
        PING_MS,
        CACHE_HIT_PCT,
        MEM_USED_BYTES,
        MEM_PCT,
        EVICTIONS_PER_MIN,
        REJECTED_PER_MIN,
        CLIENTS,
        BLOCKED_CLIENTS,
        ROLE,
        MASTER_LINK,
    ];
}

/// A PostgreSQL server (`[postgres.NAME]`), read in one short read-only transaction a poll.
pub mod postgres {
    use super::Fig;

    pub(crate) const UP: Fig = Fig::new("up", "reachable");
    /// Client backends in `pg_stat_activity`, every state.
    pub(crate) const CONNECTIONS: Fig = Fig::new("connections", "connections");
    pub(crate) const CONNECTIONS_PCT: Fig =
        Fig::new("connections_pct", "connections of max_connections");
    pub(crate) const ACTIVE: Fig = Fig::new("connections.active", "connections active");
    pub(crate) const IDLE: Fig = Fig::new("connections.idle", "connections idle");
    pub(crate) const IDLE_IN_TX: Fig = Fig::new(
        "connections.idle_in_transaction",
        "connections idle in transaction",
    );
    /// The states above are the usual ones; the rest (aborted transactions, fastpath).
    pub(crate) const OTHER: Fig = Fig::new("connections.other", "connections in another state");
    pub(crate) const LONGEST_QUERY_S: Fig = Fig::new("longest_query_s", "longest running query");
    pub(crate) const LONGEST_TX_S: Fig =
        Fig::new("longest_transaction_s", "longest open transaction");
    /// Only where there is a replica (on a primary with one, or on the replica itself).
    pub(crate) const REPLICATION_LAG_S: Fig = Fig::new("replication_lag_s", "replication lag");
    pub(crate) const DB_SIZE_BYTES: Fig = Fig::new("db_size_bytes", "database size");
    pub(crate) const DEADLOCKS_PER_MIN: Fig = Fig::new("deadlocks_per_min", "deadlocks per minute");
    pub(crate) const ROLLBACKS_PER_MIN: Fig = Fig::new("rollbacks_per_min", "rollbacks per minute");
    /// Buffer cache hits of all block reads between two polls.
    pub(crate) const BLKS_HIT_PCT: Fig = Fig::new("blks_hit_pct", "buffer cache hit %");

    /// Every built-in figure (`replication_lag_s` only where there is a replica).
    pub const ALL: &[Fig] = &[
        UP,
        CONNECTIONS,
        CONNECTIONS_PCT,
        ACTIVE,
        IDLE,
        IDLE_IN_TX,
        OTHER,
        LONGEST_QUERY_S,
        LONGEST_TX_S,
        REPLICATION_LAG_S,
        DB_SIZE_BYTES,
        DEADLOCKS_PER_MIN,
        ROLLBACKS_PER_MIN,
        BLKS_HIT_PCT,
    ];
}
