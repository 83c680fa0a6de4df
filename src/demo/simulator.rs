//! The demo's TMWS database and the thread that keeps writing traffic to it.
//!
//! The database is created from `assets/tmws_schema.sql`, seeded with agents, license keys
//! and the migration head, and backfilled with the last hour of traffic so every pane has
//! figures at once. Then a dedicated thread (rusqlite blocks) writes a small transaction
//! per tick: permission checks (~20/s, ~8% denied), license validations (~3/s, ~3%
//! invalid), generations (~3/min), authentications and the odd revocation. During an
//! incident most permission checks are denied because role lookups fail, and more
//! validations fail.
//!
//! Times are written as `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, what SQLAlchemy writes, so
//! the checklist's `created_at > datetime('now', '-1 hour')` compares them correctly.

use super::incident::{Phase, Script};
use super::{Counters, StopSignal};
use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The migration head of the TMWS release the demo pretends to have deployed.
pub const MIGRATION_HEAD: &str = "571948cc671b";
/// How many agents the database is seeded with.
pub(crate) const AGENTS: usize = 200;
/// License keys created before the backfilled hour (the hour adds ~180 more).
pub(crate) const HISTORIC_LICENSES: usize = 320;

const SCHEMA: &str = include_str!("../../assets/tmws_schema.sql");
/// A real TMWS database indexes the time columns the checklist filters on.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS ix_security_audit_logs_created_at ON security_audit_logs(created_at);
CREATE INDEX IF NOT EXISTS ix_license_usage_history_validated_at ON license_usage_history(validated_at);
CREATE INDEX IF NOT EXISTS ix_license_keys_created_at ON license_keys(created_at);
";
const BACKFILL: TimeDelta = TimeDelta::hours(1);
/// Rows older than this are deleted so a long demo does not grow the database forever;
/// it is longer than the longest window the checklist looks at (24 hours).
const RETENTION: &str = "-25 hours";
const PRUNE_EVERY: Duration = Duration::from_secs(300);
/// Waits for a reader's lock instead of failing the write.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The pool error an incident is about; the log says the same.
pub(crate) const POOL_ERROR: &str =
    "QueuePool limit of size 20 overflow 10 reached, connection timed out, timeout 30.00";

/// `YYYY-MM-DD HH:MM:SS.ffffff`, the way SQLAlchemy stores a UTC datetime in SQLite.
pub(crate) fn sql_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

const FIRST_NAMES: [&str; 16] = [
    "artemis", "aurora", "hestia", "athena", "apollo", "hermes", "iris", "eris", "hera", "demeter",
    "selene", "helios", "nyx", "theia", "rhea", "leto",
];
const SECOND_NAMES: [&str; 12] = [
    "optimizer",
    "researcher",
    "auditor",
    "planner",
    "builder",
    "reviewer",
    "scribe",
    "scout",
    "steward",
    "analyst",
    "guardian",
    "courier",
];
const NAMESPACES: [&str; 4] = ["default", "project-x", "tmws-core", "research"];

/// The agent id of agent number `i`, e.g. `athena-auditor-003`.
pub(crate) fn agent_name(i: usize) -> String {
    format!(
        "{}-{}-{i:03}",
        FIRST_NAMES[i % FIRST_NAMES.len()],
        SECOND_NAMES[(i / FIRST_NAMES.len()) % SECOND_NAMES.len()]
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    /// 80% viewers, 16% editors, 4% admins, as the checklist expects.
    fn of_agent(i: usize) -> Role {
        match i % 25 {
            0 => Role::Admin,
            1..=4 => Role::Editor,
            _ => Role::Viewer,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Operations the role may do, weighted by how often agents do them.
    fn allowed(self) -> &'static [(&'static str, u32)] {
        match self {
            Role::Viewer => &[
                ("license:validate", 40),
                ("memory:read", 30),
                ("agent:read", 15),
                ("license:read", 15),
            ],
            Role::Editor => &[
                ("license:validate", 25),
                ("memory:read", 20),
                ("memory:write", 20),
                ("license:generate", 15),
                ("agent:update", 10),
                ("agent:read", 10),
            ],
            Role::Admin => &[
                ("license:validate", 20),
                ("agent:read", 15),
                ("license:generate", 15),
                ("audit:read", 15),
                ("agent:update", 15),
                ("license:revoke", 10),
                ("role:assign", 10),
            ],
        }
    }

    /// Operations the role may not do, weighted by how often agents try anyway.
    fn forbidden(self) -> &'static [(&'static str, u32)] {
        match self {
            Role::Viewer => &[
                ("license:generate", 45),
                ("agent:update", 25),
                ("memory:write", 20),
                ("license:revoke", 10),
            ],
            Role::Editor => &[
                ("license:revoke", 50),
                ("role:assign", 30),
                ("audit:read", 20),
            ],
            Role::Admin => &[],
        }
    }

    /// How often an agent of this role tries something it may not do. With the role mix
    /// this gives 0.8 × 9% + 0.16 × 6% ≈ 8.2% denials.
    fn stray(self) -> f64 {
        match self {
            Role::Viewer => 0.09,
            Role::Editor => 0.06,
            Role::Admin => 0.0,
        }
    }
}

fn pick<'a>(rng: &mut SmallRng, items: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut n = rng.random_range(0..total.max(1));
    for (item, weight) in items {
        if n < *weight {
            return item;
        }
        n -= weight;
    }
    items.last().map(|(item, _)| *item).unwrap_or("unknown")
}

/// Events per second, by phase.
struct Rates {
    checks: f64,
    /// Share of permission checks denied because the role lookup failed.
    lookup_failures: f64,
    validations: f64,
    invalid: f64,
    generations: f64,
    revocations: f64,
    authentications: f64,
}

fn rates(phase: Phase) -> Rates {
    match phase {
        Phase::Incident { .. } => Rates {
            // Clients retry, so there are more checks, and most of them fail closed.
            checks: 32.0,
            lookup_failures: 0.68,
            validations: 3.0,
            invalid: 0.15,
            generations: 0.02,
            revocations: 0.0,
            authentications: 0.5,
        },
        Phase::Normal { .. } | Phase::Recovery { .. } => Rates {
            checks: 20.0,
            lookup_failures: 0.0,
            validations: 3.0,
            invalid: 0.03,
            generations: 0.05,
            revocations: 1.0 / 600.0,
            authentications: 0.5,
        },
    }
}

/// A Poisson-distributed count with mean `mean` (Knuth's method, split for large means).
fn poisson(rng: &mut SmallRng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        return poisson(rng, mean / 2.0) + poisson(rng, mean / 2.0);
    }
    let limit = (-mean).exp();
    let mut product: f64 = rng.random();
    let mut count = 0;
    while product > limit {
        product *= rng.random::<f64>();
        count += 1;
    }
    count
}

/// `n` sorted random times in `[from, to)`.
fn times_in(
    rng: &mut SmallRng,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    n: u32,
) -> Vec<DateTime<Utc>> {
    let span = (to - from).num_microseconds().unwrap_or(0).max(1);
    let mut times: Vec<_> = (0..n)
        .map(|_| from + TimeDelta::microseconds(rng.random_range(0..span)))
        .collect();
    times.sort();
    times
}

fn random_delta(rng: &mut SmallRng, min: TimeDelta, max: TimeDelta) -> TimeDelta {
    let (min, max) = (
        min.num_seconds(),
        max.num_seconds().max(min.num_seconds() + 1),
    );
    TimeDelta::seconds(rng.random_range(min..max))
        + TimeDelta::microseconds(rng.random_range(0..1_000_000))
}

struct Agent {
    id: String,
    role: Role,
}

struct Key {
    id: i64,
    owner: usize,
    /// Neither revoked nor expired.
    usable: bool,
}

#[derive(Default)]
struct SpanCounts {
    checks: u64,
    denials: u64,
    validations: u64,
    generations: u64,
}

/// The simulated users of TMWS and what they do.
struct Traffic {
    rng: SmallRng,
    agents: Vec<Agent>,
    keys: Vec<Key>,
}

impl Traffic {
    fn tier(&mut self) -> &'static str {
        pick(
            &mut self.rng,
            &[("FREE", 60), ("PRO", 30), ("ENTERPRISE", 10)],
        )
    }

    fn license_string(&mut self, tier: &str) -> String {
        let r = &mut self.rng;
        format!(
            "TMWS-{tier}-{:08X}-{:08X}-{:08X}",
            r.random::<u32>(),
            r.random::<u32>(),
            r.random::<u32>()
        )
    }

    fn insert_key(
        &mut self,
        tx: &Transaction,
        owner: usize,
        tier: &str,
        created: DateTime<Utc>,
        expires: Option<DateTime<Utc>>,
        revoked: Option<DateTime<Utc>>,
    ) -> rusqlite::Result<i64> {
        let key = self.license_string(tier);
        // Generation takes tens of milliseconds between issue and insert (seed 000, step 12).
        let issued = created - TimeDelta::milliseconds(self.rng.random_range(40..250));
        tx.prepare_cached(
            "INSERT INTO license_keys (license_key, agent_id, tier, issued_at, created_at, expires_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            key,
            self.agents[owner].id,
            tier,
            sql_time(issued),
            sql_time(created),
            expires.map(sql_time),
            revoked.map(sql_time)
        ])?;
        let id = tx.last_insert_rowid();
        let now = Utc::now();
        let usable = revoked.is_none() && expires.is_none_or(|e| e > now);
        self.keys.push(Key { id, owner, usable });
        Ok(id)
    }

    fn audit(
        tx: &Transaction,
        event_type: &str,
        agent: &str,
        details: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![event_type, agent, details.to_string(), sql_time(at)])?;
        Ok(())
    }

    /// A random key that is usable (or not), if one turns up within a few tries.
    fn find_key(&mut self, usable: bool) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        (0..50)
            .map(|_| self.rng.random_range(0..self.keys.len()))
            .find(|&i| self.keys[i].usable == usable)
    }

    /// Writes the traffic of `[from, to)` as it looks in `phase`.
    fn write_span(
        &mut self,
        tx: &Transaction,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        phase: Phase,
    ) -> rusqlite::Result<SpanCounts> {
        let rates = rates(phase);
        let seconds = (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6;
        let mut counts = SpanCounts::default();

        let n = poisson(&mut self.rng, rates.checks * seconds);
        for at in times_in(&mut self.rng, from, to, n) {
            let agent = self.rng.random_range(0..self.agents.len());
            let role = self.agents[agent].role;
            let strays = self.rng.random_bool(role.stray());
            let operation = pick(
                &mut self.rng,
                if strays {
                    role.forbidden()
                } else {
                    role.allowed()
                },
            );
            let details = if self.rng.random_bool(rates.lookup_failures) {
                json!({
                    "result": "DENY",
                    "operation": operation,
                    "role": role.as_str(),
                    "agent_id": self.agents[agent].id,
                    "reason": format!("role lookup failed: {POOL_ERROR}"),
                })
            } else if strays {
                json!({
                    "result": "DENY",
                    "operation": operation,
                    "role": role.as_str(),
                    "agent_id": self.agents[agent].id,
                    "reason": format!("role {} lacks {operation}", role.as_str()),
                })
            } else {
                json!({
                    "result": "ALLOW",
                    "operation": operation,
                    "role": role.as_str(),
                    "agent_id": self.agents[agent].id,
                })
            };
            if details["result"] == "DENY" {
                counts.denials += 1;
            }
            Self::audit(tx, "permission_check", &self.agents[agent].id, &details, at)?;
            counts.checks += 1;
        }

        let n = poisson(&mut self.rng, rates.validations * seconds);
        for at in times_in(&mut self.rng, from, to, n) {
            let (key, valid) = if self.rng.random_bool(rates.invalid) {
                // Invalid: a key nobody issued (not found), or a revoked or expired one.
                let key = if self.rng.random_bool(0.4) {
                    None
                } else {
                    self.find_key(false)
                };
                (key, false)
            } else {
                (self.find_key(true), true)
            };
            let (key_id, agent) = match key {
                Some(k) => (
                    Some(self.keys[k].id),
                    self.agents[self.keys[k].owner].id.clone(),
                ),
                None => (
                    None,
                    self.agents[self.rng.random_range(0..self.agents.len())]
                        .id
                        .clone(),
                ),
            };
            let valid = valid && key_id.is_some();
            tx.prepare_cached(
                "INSERT INTO license_usage_history (license_key_id, agent_id, valid, validated_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![key_id, agent, valid as i64, sql_time(at)])?;
            counts.validations += 1;
        }

        let n = poisson(&mut self.rng, rates.generations * seconds);
        for at in times_in(&mut self.rng, from, to, n) {
            // Only editors and admins may generate.
            let owner = (0..50)
                .map(|_| self.rng.random_range(0..self.agents.len()))
                .find(|&a| self.agents[a].role != Role::Viewer)
                .unwrap_or(0);
            let tier = self.tier();
            let days = if tier == "FREE" { 30 } else { 365 };
            let id =
                self.insert_key(tx, owner, tier, at, Some(at + TimeDelta::days(days)), None)?;
            let details =
                json!({ "license_key_id": id, "tier": tier, "agent_id": self.agents[owner].id });
            Self::audit(
                tx,
                "license_generated",
                &self.agents[owner].id,
                &details,
                at,
            )?;
            counts.generations += 1;
        }

        let n = poisson(&mut self.rng, rates.revocations * seconds);
        for at in times_in(&mut self.rng, from, to, n) {
            let Some(k) = self.find_key(true) else {
                continue;
            };
            tx.prepare_cached("UPDATE license_keys SET revoked_at = ?1 WHERE id = ?2")?
                .execute(params![sql_time(at), self.keys[k].id])?;
            self.keys[k].usable = false;
            let admin = self
                .agents
                .iter()
                .position(|a| a.role == Role::Admin)
                .unwrap_or(0);
            let details = json!({ "license_key_id": self.keys[k].id, "reason": "user_request" });
            Self::audit(tx, "license_revoked", &self.agents[admin].id, &details, at)?;
        }

        let n = poisson(&mut self.rng, rates.authentications * seconds);
        for at in times_in(&mut self.rng, from, to, n) {
            let agent = self.rng.random_range(0..self.agents.len());
            let details = json!({ "method": "api_key", "agent_id": self.agents[agent].id });
            Self::audit(
                tx,
                "authentication_success",
                &self.agents[agent].id,
                &details,
                at,
            )?;
        }
        Ok(counts)
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode is {mode}, wanted wal"
        )));
    }
    // In WAL mode NORMAL only syncs at checkpoints: cheap, and the demo's data is throwaway.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// The writer: owns the connection and the simulated users.
pub(crate) struct Simulator {
    conn: Connection,
    traffic: Traffic,
    written_until: DateTime<Utc>,
    counters: Arc<Counters>,
}

impl Simulator {
    /// Creates the database at `path`, seeds it and backfills the last hour of traffic.
    pub(crate) fn create(
        path: &Path,
        seed: u64,
        counters: Arc<Counters>,
    ) -> rusqlite::Result<Simulator> {
        let mut conn = open(path)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(INDEXES)?;
        let now = Utc::now();
        let mut traffic = Traffic {
            rng: SmallRng::seed_from_u64(seed),
            agents: Vec::new(),
            keys: Vec::new(),
        };

        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO alembic_version (version_num) VALUES (?1)",
            [MIGRATION_HEAD],
        )?;
        seed_agents(&tx, &mut traffic, now)?;
        seed_licenses(&tx, &mut traffic, now)?;
        let mut counts = SpanCounts::default();
        let mut from = now - BACKFILL;
        while from < now {
            let to = (from + TimeDelta::seconds(1)).min(now);
            let c = traffic.write_span(
                &tx,
                from,
                to,
                Phase::Normal {
                    next_incident_in: None,
                },
            )?;
            counts.checks += c.checks;
            counts.denials += c.denials;
            counts.validations += c.validations;
            counts.generations += c.generations;
            from = to;
        }
        tx.commit()?;
        counters.add_db(
            counts.checks,
            counts.denials,
            counts.validations,
            counts.generations,
        );
        Ok(Simulator {
            conn,
            traffic,
            written_until: now,
            counters,
        })
    }

    /// Writes a transaction per `tick` until `stop` is signalled.
    pub(crate) fn run(mut self, script: Script, stop: Arc<StopSignal>, tick: Duration) {
        let mut last_prune = Instant::now();
        while !stop.sleep(tick) {
            let now = Utc::now();
            let phase = script.now();
            if let Err(e) = self.write(now, phase) {
                self.counters.write_error(format!("database writer: {e}"));
            }
            // Whatever happened, do not try to catch up on a long gap later.
            self.written_until = now;
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(e) = self.prune() {
                    self.counters.write_error(format!("database pruning: {e}"));
                }
            }
        }
    }

    fn write(&mut self, until: DateTime<Utc>, phase: Phase) -> rusqlite::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let counts = self
            .traffic
            .write_span(&tx, self.written_until, until, phase)?;
        tx.commit()?;
        self.counters.add_db(
            counts.checks,
            counts.denials,
            counts.validations,
            counts.generations,
        );
        Ok(())
    }

    fn prune(&self) -> rusqlite::Result<()> {
        self.conn.execute(
            "DELETE FROM security_audit_logs WHERE created_at < datetime('now', ?1)",
            [RETENTION],
        )?;
        self.conn.execute(
            "DELETE FROM license_usage_history WHERE validated_at < datetime('now', ?1)",
            [RETENTION],
        )?;
        Ok(())
    }
}

fn seed_agents(
    tx: &Transaction,
    traffic: &mut Traffic,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare(
        "INSERT INTO agents (agent_id, namespace, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for i in 0..AGENTS {
        let rng = &mut traffic.rng;
        let id = agent_name(i);
        let role = Role::of_agent(i);
        let created = now - random_delta(rng, TimeDelta::days(2), TimeDelta::days(120));
        // A handful had their role changed in the last day (Playbook A looks for them).
        let updated = if i % 33 == 7 {
            now - random_delta(rng, TimeDelta::hours(1), TimeDelta::hours(20))
        } else {
            created + random_delta(rng, TimeDelta::zero(), (now - created) / 2)
        };
        let namespace = NAMESPACES[rng.random_range(0..NAMESPACES.len())];
        insert.execute(params![
            id,
            namespace,
            role.as_str(),
            sql_time(created),
            sql_time(updated)
        ])?;
        traffic.agents.push(Agent { id, role });
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum KeyState {
    Active,
    /// Expires within the next 7 days.
    Expiring,
    /// Past its expiry but never revoked (the checklist's "expired but active").
    ExpiredActive,
    Revoked,
}

fn seed_licenses(
    tx: &Transaction,
    traffic: &mut Traffic,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let mut states = vec![KeyState::Expiring; 18];
    states.extend([KeyState::ExpiredActive; 6]);
    states.extend([KeyState::Revoked; 22]);
    states.resize(HISTORIC_LICENSES, KeyState::Active);
    states.shuffle(&mut traffic.rng);
    for state in states {
        let owner = traffic.rng.random_range(0..traffic.agents.len());
        let tier = traffic.tier();
        let rng = &mut traffic.rng;
        let day = TimeDelta::days(1);
        let created = now - random_delta(rng, day * 20, day * 300);
        let later = now + random_delta(rng, day * 8, day * 365);
        let (expires, revoked) = match state {
            KeyState::Active if tier == "ENTERPRISE" && rng.random_bool(0.5) => (None, None),
            KeyState::Active => (Some(later), None),
            KeyState::Expiring => (
                Some(now + random_delta(rng, TimeDelta::hours(2), day * 7 - TimeDelta::hours(4))),
                None,
            ),
            KeyState::ExpiredActive => (
                Some(now - random_delta(rng, TimeDelta::hours(1), day * 19)),
                None,
            ),
            KeyState::Revoked => (
                Some(later),
                Some(now - random_delta(rng, TimeDelta::hours(1), day * 19)),
            ),
        };
        traffic.insert_key(tx, owner, tier, created, expires, revoked)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_time_is_what_sqlalchemy_writes() {
        let at = DateTime::parse_from_rfc3339("2025-11-15T08:09:10.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(sql_time(at), "2025-11-15 08:09:10.123456");
    }

    #[test]
    fn role_mix_is_80_16_4() {
        let roles: Vec<Role> = (0..AGENTS).map(Role::of_agent).collect();
        let count = |r| roles.iter().filter(|&&x| x == r).count();
        assert_eq!(
            (count(Role::Viewer), count(Role::Editor), count(Role::Admin)),
            (160, 32, 8)
        );
    }

    #[test]
    fn agent_names_are_unique() {
        let mut names: Vec<String> = (0..AGENTS).map(agent_name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), AGENTS);
    }

    #[test]
    fn poisson_has_the_mean_it_is_asked_for() {
        let mut rng = SmallRng::seed_from_u64(7);
        for mean in [0.05, 3.0, 20.0, 100.0] {
            let n = 4000;
            let total: u64 = (0..n).map(|_| poisson(&mut rng, mean) as u64).sum();
            let got = total as f64 / n as f64;
            assert!(
                (got - mean).abs() < mean * 0.1 + 0.02,
                "mean {mean}: got {got}"
            );
        }
    }
}
