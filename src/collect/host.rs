//! The Host pane's source: CPU, memory, disk and load of the local machine through
//! `sysinfo`. Remote hosts will read /proc over the SSH transport (not built yet).
//!
//! Figures: `<name>.cpu_pct`, `<name>.mem_pct`, `<name>.disk_pct` (the fullest real
//! disk), `<name>.load1`, with the runbooks' 70/85 and 80/90 thresholds.

use crate::collect::{Collector, health};
use crate::config::SystemSource;
use crate::rules::{Rule, Threshold};
use crate::state::figure::Reading;
use crate::state::update::{DiskUsage, HostSnapshot, SourceHealth, Update};
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::time::Duration;
use sysinfo::{DiskRefreshKind, Disks, MemoryRefreshKind, System};

/// What a remote host says until the SSH transport exists.
pub const REMOTE_NOT_BUILT: &str = "remote hosts need the SSH transport (not built yet)";

pub struct HostCollector {
    name: String,
    interval: Duration,
    host: String,
    /// Kept between polls so CPU % is the delta since the previous poll. Taken out while
    /// a blocking refresh runs and put back after.
    probe: Option<Probe>,
}

impl HostCollector {
    pub fn new(name: &str, source: &SystemSource) -> Self {
        HostCollector {
            name: name.to_string(),
            interval: source.interval,
            host: source.host.clone(),
            probe: None,
        }
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [&'static str] {
        &["host"]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            if self.host != "local" {
                return vec![remote_error(&self.name)];
            }
            let probe = self.probe.take();
            // sysinfo reads /proc synchronously: keep it off the executor.
            let joined = tokio::task::spawn_blocking(move || {
                let mut probe = match probe {
                    Some(probe) => probe,
                    None => Probe::new()?,
                };
                let snapshot = probe.sample();
                Ok::<_, String>((probe, snapshot))
            })
            .await;
            match joined {
                Ok(Ok((probe, snapshot))) => {
                    self.probe = Some(probe);
                    let readings = readings(&self.name, &snapshot);
                    vec![
                        Update::Host {
                            source: self.name.clone(),
                            snapshot,
                        },
                        Update::Readings {
                            source: self.name.clone(),
                            readings,
                        },
                    ]
                }
                Ok(Err(message)) => vec![crate::collect::failed(
                    &self.name,
                    format!("host metrics: {message}"),
                    self.interval,
                )],
                Err(e) => vec![crate::collect::failed(
                    &self.name,
                    format!("host metrics: the sampling thread failed: {e}"),
                    self.interval,
                )],
            }
        })
    }
}

fn remote_error(source: &str) -> Update {
    health(
        source,
        SourceHealth::Error {
            message: REMOTE_NOT_BUILT.into(),
            retry_in_secs: None,
        },
    )
}

/// The sysinfo handles that must live between polls.
struct Probe {
    system: System,
    disks: Disks,
    /// Whether CPU usage has a previous sample to diff against.
    primed: bool,
}

impl Probe {
    fn new() -> Result<Probe, String> {
        let system = System::new().map_err(|e| format!("cannot read system information: {e}"))?;
        let disks = Disks::new().map_err(|e| format!("cannot list disks: {e}"))?;
        Ok(Probe {
            system,
            disks,
            primed: false,
        })
    }

    /// One sample. Only CPU, memory and disks are refreshed: the process table is the
    /// expensive part of sysinfo and the Host pane does not need it.
    fn sample(&mut self) -> HostSnapshot {
        self.system.refresh_cpu_usage();
        if !self.primed {
            // CPU % is a difference between two readings; the first poll (and `check`)
            // takes a short second look instead of reporting a meaningless first value.
            std::thread::sleep(
                sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(250)),
            );
            self.system.refresh_cpu_usage();
            self.primed = true;
        }
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        // `true` drops disks that were unmounted since the last poll; only sizes are read
        // (the kind and the I/O counters are not shown).
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());

        let load = System::load_average()
            .map(|l| [l.one, l.five, l.fifteen])
            .unwrap_or([0.0; 3]);
        let mounts: Vec<MountInfo> = self
            .disks
            .iter()
            .map(|d| MountInfo {
                device: d.name().to_string_lossy().into_owned(),
                mount: d.mount_point().to_string_lossy().into_owned(),
                fs: d.file_system().to_string_lossy().into_owned(),
                total: d.total_space(),
                available: d.available_space(),
            })
            .collect();
        HostSnapshot {
            hostname: System::host_name().unwrap_or_default(),
            cpu_pct: f64::from(self.system.global_cpu_usage()).clamp(0.0, 100.0),
            cores: self.system.cpus().len(),
            mem_used_bytes: self.system.used_memory() as f64,
            mem_total_bytes: self.system.total_memory() as f64,
            load,
            uptime_secs: System::uptime().unwrap_or(0),
            disks: pick_disks(&mounts),
        }
    }
}

/// One mounted filesystem as sysinfo lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct MountInfo {
    pub device: String,
    pub mount: String,
    pub fs: String,
    pub total: u64,
    pub available: u64,
}

/// Filesystems that do not live on a disk of their own.
fn is_pseudo(fs: &str) -> bool {
    const PSEUDO: &[&str] = &[
        "overlay",
        "overlayfs",
        "fuse-overlayfs",
        "fuse.fuse-overlayfs",
        "aufs",
        "tmpfs",
        "devtmpfs",
        "ramfs",
        "squashfs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "nsfs",
        "autofs",
        "efivarfs",
        "fuse.lxcfs",
        "shm",
        "tracefs",
        "debugfs",
        "securityfs",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "hugetlbfs",
        "binfmt_misc",
        "rpc_pipefs",
        "nfsd",
    ];
    PSEUDO.contains(&fs)
}

/// A container's root: not a disk, but the only filesystem a container may have.
fn is_container_root(fs: &str) -> bool {
    matches!(
        fs,
        "overlay" | "overlayfs" | "fuse-overlayfs" | "fuse.fuse-overlayfs" | "aufs"
    )
}

/// The disks worth showing: real filesystems, one row per device (bind mounts of the
/// same device, such as a container's /etc/hosts, are the same disk), or the overlay
/// root when that is all there is.
pub fn pick_disks(mounts: &[MountInfo]) -> Vec<DiskUsage> {
    let sized = mounts.iter().filter(|m| m.total > 0);
    let mut chosen: Vec<&MountInfo> = sized.clone().filter(|m| !is_pseudo(&m.fs)).collect();
    if chosen.is_empty() {
        chosen = sized.filter(|m| is_container_root(&m.fs)).collect();
    }
    // Shortest mount point first, so "/" wins over "/etc/hosts" for the same device.
    chosen.sort_by(|a, b| {
        a.mount
            .len()
            .cmp(&b.mount.len())
            .then(a.mount.cmp(&b.mount))
    });
    let mut seen = HashSet::new();
    let mut disks = Vec::new();
    for m in chosen {
        if !seen.insert((m.device.clone(), m.total)) {
            continue;
        }
        disks.push(DiskUsage {
            mount: m.mount.clone(),
            used_bytes: m.total.saturating_sub(m.available) as f64,
            total_bytes: m.total as f64,
        });
    }
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    disks
}

/// The Host pane's figures from a snapshot.
pub fn readings(source: &str, s: &HostSnapshot) -> Vec<Reading> {
    let id = |figure: &str| format!("{source}.{figure}");
    let label = |what: &str| format!("{source} {what}");
    let mut out = Vec::new();
    out.push(
        Reading::number(id("cpu_pct"), label("CPU"), s.cpu_pct, "%")
            .with_detail(format!("{} cores", s.cores))
            .with_rule(Rule::warn_crit(
                Threshold::above(70.0),
                Threshold::above(85.0),
            )),
    );
    let mem_rule = Rule::warn_crit(Threshold::above(80.0), Threshold::above(90.0));
    if s.mem_total_bytes > 0.0 {
        let pct = 100.0 * s.mem_used_bytes / s.mem_total_bytes;
        out.push(
            Reading::number(id("mem_pct"), label("memory"), pct, "%")
                .with_detail(format!(
                    "{} of {}",
                    crate::state::figure::format_bytes(s.mem_used_bytes),
                    crate::state::figure::format_bytes(s.mem_total_bytes)
                ))
                .with_rule(mem_rule),
        );
    } else {
        out.push(
            Reading::failed(id("mem_pct"), label("memory"), "total memory reads as 0")
                .with_unit("%")
                .with_rule(mem_rule),
        );
    }
    let disk_rule = Rule::warn_crit(Threshold::above(80.0), Threshold::above(90.0));
    let fullest = s
        .disks
        .iter()
        .max_by(|a, b| a.used_pct().total_cmp(&b.used_pct()));
    match fullest {
        Some(d) => out.push(
            Reading::number(id("disk_pct"), label("disk"), d.used_pct(), "%")
                .with_detail(format!(
                    "{}: {} of {}",
                    d.mount,
                    crate::state::figure::format_bytes(d.used_bytes),
                    crate::state::figure::format_bytes(d.total_bytes)
                ))
                .with_rule(disk_rule),
        ),
        None => out.push(
            Reading::failed(
                id("disk_pct"),
                label("disk"),
                "no disk with a size was found",
            )
            .with_unit("%")
            .with_rule(disk_rule),
        ),
    }
    out.push(
        Reading::number(id("load1"), label("load (1m)"), s.load[0], "").with_detail(format!(
            "5m {:.2}, 15m {:.2}, {} cores",
            s.load[1], s.load[2], s.cores
        )),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(device: &str, mount: &str, fs: &str, total: u64, available: u64) -> MountInfo {
        MountInfo {
            device: device.into(),
            mount: mount.into(),
            fs: fs.into(),
            total,
            available,
        }
    }

    #[test]
    fn real_disks_win_over_pseudo_and_bind_mounts_collapse() {
        let disks = pick_disks(&[
            mount("overlay", "/", "overlay", 100, 50),
            mount("/dev/vda", "/etc/hosts", "ext4", 1000, 100),
            mount("/dev/vda", "/", "ext4", 1000, 100),
            mount("tmpfs", "/dev/shm", "tmpfs", 64, 64),
            mount("/dev/loop0", "/snap/core", "squashfs", 10, 0),
            mount("/dev/vdb", "/data", "xfs", 2000, 1500),
        ]);
        let mounts: Vec<&str> = disks.iter().map(|d| d.mount.as_str()).collect();
        assert_eq!(mounts, ["/", "/data"]);
        assert!((disks[0].used_pct() - 90.0).abs() < 1e-9);
    }

    #[test]
    fn overlay_root_is_used_when_it_is_all_there_is() {
        let disks = pick_disks(&[
            mount("overlay", "/", "overlay", 100, 25),
            mount("tmpfs", "/dev", "tmpfs", 64, 64),
        ]);
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].mount, "/");
        assert!((disks[0].used_pct() - 75.0).abs() < 1e-9);
    }

    #[test]
    fn readings_pick_the_fullest_disk_and_carry_thresholds() {
        let snapshot = HostSnapshot {
            hostname: "h".into(),
            cpu_pct: 90.0,
            cores: 2,
            mem_used_bytes: 85.0,
            mem_total_bytes: 100.0,
            load: [1.0, 0.5, 0.25],
            uptime_secs: 1,
            disks: vec![
                DiskUsage {
                    mount: "/".into(),
                    used_bytes: 10.0,
                    total_bytes: 100.0,
                },
                DiskUsage {
                    mount: "/data".into(),
                    used_bytes: 95.0,
                    total_bytes: 100.0,
                },
            ],
        };
        let readings = readings("web", &snapshot);
        let get = |id: &str| readings.iter().find(|r| r.id == id).unwrap();
        let sev = |id: &str| crate::rules::judge(get(id), None);
        use crate::state::figure::Severity;
        assert_eq!(sev("web.cpu_pct"), Severity::Crit);
        assert_eq!(sev("web.mem_pct"), Severity::Warn);
        assert_eq!(sev("web.disk_pct"), Severity::Crit);
        assert!(get("web.disk_pct").detail.starts_with("/data"));
        assert_eq!(sev("web.load1"), Severity::Ok);
        assert!(get("web.load1").detail.contains("2 cores"));
    }
}
