//! The demo's scripted incident: when it happens, as a pure function of elapsed time.
//!
//! Every part of the simulated deployment (database writer, application log, health
//! endpoint) asks the same [`Script`] which [`Phase`] it is in, so they switch together.

use std::fmt;
use std::time::{Duration, Instant};

/// When incidents happen, relative to the start of the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncidentSchedule {
    /// Time from the start to the beginning of the first incident.
    pub first_after: Duration,
    /// Time from the beginning of one incident to the beginning of the next.
    pub period: Duration,
    /// How long an incident lasts.
    pub duration: Duration,
    /// How long the deployment is still shaky after an incident (health slow but 200).
    pub recovery: Duration,
}

impl Default for IncidentSchedule {
    /// First incident 60 s in, then every 4 minutes; 45 s of incident, 15 s of recovery.
    fn default() -> Self {
        IncidentSchedule {
            first_after: Duration::from_secs(60),
            period: Duration::from_secs(240),
            duration: Duration::from_secs(45),
            recovery: Duration::from_secs(15),
        }
    }
}

impl IncidentSchedule {
    /// A schedule for tests: the first incident after `first_after`, lasting `duration`,
    /// with a short recovery and a period long enough that it does not come back soon.
    pub fn fast(first_after: Duration, duration: Duration) -> Self {
        IncidentSchedule {
            first_after,
            period: Duration::from_secs(3600),
            duration,
            recovery: Duration::from_secs(2),
        }
    }

    /// The phase of the deployment `elapsed` after the start.
    ///
    /// A period shorter than incident + recovery is stretched to fit them, so the phases
    /// never overlap; a zero-length incident means there is never one.
    pub fn phase_at(&self, elapsed: Duration) -> Phase {
        if self.duration.is_zero() {
            return Phase::Normal {
                next_incident_in: None,
            };
        }
        if elapsed < self.first_after {
            return Phase::Normal {
                next_incident_in: Some(self.first_after - elapsed),
            };
        }
        let period = self.period.max(self.duration + self.recovery);
        let since_first = elapsed - self.first_after;
        let cycle = since_first.as_nanos() / period.as_nanos();
        let offset = Duration::from_nanos((since_first.as_nanos() % period.as_nanos()) as u64);
        if offset < self.duration {
            Phase::Incident {
                number: cycle as u32 + 1,
                ends_in: self.duration - offset,
            }
        } else if offset < self.duration + self.recovery {
            Phase::Recovery {
                ends_in: self.duration + self.recovery - offset,
            }
        } else {
            Phase::Normal {
                next_incident_in: Some(period - offset),
            }
        }
    }
}

/// The phase at `elapsed` under the default schedule (see [`IncidentSchedule::default`]).
pub fn phase_at(elapsed: Duration) -> Phase {
    IncidentSchedule::default().phase_at(elapsed)
}

/// What the simulated deployment is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Healthy traffic: ~8% denials, 200 from /health, the odd warning in the log.
    Normal { next_incident_in: Option<Duration> },
    /// The database connection pool is exhausted: most permission checks are denied,
    /// errors burst into the log and /health answers 503.
    Incident { number: u32, ends_in: Duration },
    /// Back to normal traffic, but /health is still slow.
    Recovery { ends_in: Duration },
}

impl Phase {
    pub fn is_incident(&self) -> bool {
        matches!(self, Phase::Incident { .. })
    }

    /// A short lowercase name: "normal", "incident" or "recovery".
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Normal { .. } => "normal",
            Phase::Incident { .. } => "incident",
            Phase::Recovery { .. } => "recovery",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Normal {
                next_incident_in: Some(d),
            } => write!(f, "normal, next incident in {}s", d.as_secs()),
            Phase::Normal {
                next_incident_in: None,
            } => write!(f, "normal"),
            Phase::Incident { number, ends_in } => {
                write!(f, "incident #{number}, ends in {}s", ends_in.as_secs())
            }
            Phase::Recovery { ends_in } => write!(f, "recovering, {}s left", ends_in.as_secs()),
        }
    }
}

/// The schedule anchored at the moment the demo started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Script {
    pub started: Instant,
    pub schedule: IncidentSchedule,
}

impl Script {
    pub fn now(&self) -> Phase {
        self.at(Instant::now())
    }

    pub fn at(&self, instant: Instant) -> Phase {
        self.schedule
            .phase_at(instant.saturating_duration_since(self.started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn default_schedule_runs_first_incident_a_minute_in_then_every_four_minutes() {
        assert_eq!(
            phase_at(s(0)),
            Phase::Normal {
                next_incident_in: Some(s(60))
            }
        );
        assert_eq!(
            phase_at(s(59)),
            Phase::Normal {
                next_incident_in: Some(s(1))
            }
        );
        assert_eq!(
            phase_at(s(60)),
            Phase::Incident {
                number: 1,
                ends_in: s(45)
            }
        );
        assert_eq!(
            phase_at(s(104)),
            Phase::Incident {
                number: 1,
                ends_in: s(1)
            }
        );
        assert_eq!(phase_at(s(105)), Phase::Recovery { ends_in: s(15) });
        assert_eq!(
            phase_at(s(120)),
            Phase::Normal {
                next_incident_in: Some(s(180))
            }
        );
        assert_eq!(
            phase_at(s(300)),
            Phase::Incident {
                number: 2,
                ends_in: s(45)
            }
        );
        assert_eq!(
            phase_at(s(60 + 240 * 9 + 10)),
            Phase::Incident {
                number: 10,
                ends_in: s(35)
            }
        );
    }

    #[test]
    fn short_period_is_stretched_so_phases_do_not_overlap() {
        let schedule = IncidentSchedule {
            first_after: s(0),
            period: s(5),
            duration: s(10),
            recovery: s(2),
        };
        assert!(schedule.phase_at(s(9)).is_incident());
        assert_eq!(schedule.phase_at(s(11)), Phase::Recovery { ends_in: s(1) });
        assert_eq!(
            schedule.phase_at(s(12)),
            Phase::Incident {
                number: 2,
                ends_in: s(10)
            }
        );
    }

    #[test]
    fn zero_duration_means_no_incident() {
        let schedule = IncidentSchedule {
            duration: Duration::ZERO,
            ..IncidentSchedule::default()
        };
        assert_eq!(
            schedule.phase_at(s(60)),
            Phase::Normal {
                next_incident_in: None
            }
        );
    }
}
