//! The Host pane's source: CPU, memory, disk and load of a machine. This machine is read
//! through `sysinfo`; a remote host through its SSH transport, from `/proc` and `df` in
//! one command per poll (see [`REMOTE_SCRIPT`]).
//!
//! Figures (the same ids locally and remotely): `<name>.cpu_pct`, `<name>.mem_pct`,
//! `<name>.disk_pct` (the fullest real disk), `<name>.load1`, with the runbooks' 70/85 and
//! 80/90 thresholds.

use crate::collect::{Collector, Reach, blocking};
use crate::config::SystemSource;
use crate::model::figure::Reading;
use crate::model::rule::{Rule, Threshold};
use crate::model::update::{DiskUsage, HostSnapshot, Update};
use crate::transport::Transport;
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::time::Duration;
use sysinfo::{DiskRefreshKind, Disks, MemoryRefreshKind, System};

pub struct HostCollector {
    name: String,
    interval: Duration,
    reach: Reach,
    /// Kept between polls so CPU % is the delta since the previous poll; refreshed on a
    /// blocking thread (`None` until it could be made).
    probe: blocking::Worker<Option<Probe>>,
    /// A remote host's CPU counters at the previous poll (the same delta, from /proc/stat).
    remote_cpu: Option<CpuTimes>,
}

impl HostCollector {
    /// A collector of this machine (a remote `host` reports that it needs a transport).
    pub fn new(name: &str, source: &SystemSource) -> Self {
        Self::on(
            name,
            source,
            crate::collect::reach_without_pool(&source.host),
        )
    }

    /// A collector of the host behind `reach` (from the pool: [`crate::collect::reach`]).
    pub fn on(name: &str, source: &SystemSource, reach: Reach) -> Self {
        HostCollector {
            name: name.to_string(),
            interval: source.interval,
            reach,
            probe: blocking::Worker::new(|| None),
            remote_cpu: None,
        }
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        &[crate::model::pane::PaneId::Host]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            match crate::collect::resolve(&self.name, &self.reach) {
                Err(updates) => updates,
                Ok(None) => self.poll_local().await,
                Ok(Some(transport)) => self.poll_remote(&transport).await,
            }
        })
    }
}

impl HostCollector {
    async fn poll_local(&mut self) -> Vec<Update> {
        // sysinfo reads /proc synchronously: keep it off the executor.
        let joined = self
            .probe
            .run(|probe| {
                let probe = match probe {
                    Some(probe) => probe,
                    None => probe.insert(Probe::new()?),
                };
                Ok::<_, ProbeError>(probe.sample())
            })
            .await;
        match joined {
            Ok(Ok(snapshot)) => self.snapshot_updates(snapshot),
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
    }

    /// One round trip: the script prints /proc and `df`; the CPU % is the delta since the
    /// previous poll (the first poll takes two samples a quarter second apart, as locally).
    async fn poll_remote(&mut self, transport: &Transport) -> Vec<Update> {
        let prime = if self.remote_cpu.is_none() {
            "prime"
        } else {
            ""
        };
        let budget = crate::collect::exec_budget(self.interval);
        let out = match transport.exec_script(REMOTE_SCRIPT, &[prime], budget).await {
            Ok(out) => out,
            Err(e) if crate::collect::host_unreachable(transport, &e) => {
                return vec![crate::collect::host_down(&self.name, transport, &e)];
            }
            Err(e) => {
                return vec![crate::collect::failed(
                    &self.name,
                    format!(
                        "host metrics: {}",
                        crate::collect::transport_message(transport, &e)
                    ),
                    self.interval,
                )];
            }
        };
        let parsed = if out.success() {
            parse_remote(&out.stdout_text())
        } else {
            Err(remote_failure(transport.name(), &out))
        };
        match parsed {
            Ok(sample) => {
                let cpu_pct = match (&self.remote_cpu, &sample.first_cpu) {
                    (_, Some(first)) => first.busy_pct_until(&sample.cpu),
                    (Some(previous), None) => previous.busy_pct_until(&sample.cpu),
                    (None, None) => None,
                };
                self.remote_cpu = Some(sample.cpu);
                let mut snapshot = sample.snapshot;
                snapshot.cpu_pct = cpu_pct.unwrap_or(0.0);
                self.snapshot_updates(snapshot)
            }
            Err(message) => vec![crate::collect::failed(
                &self.name,
                format!("host metrics: {message}"),
                self.interval,
            )],
        }
    }

    fn snapshot_updates(&self, snapshot: HostSnapshot) -> Vec<Update> {
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
}

/// What the remote host runs each poll: a constant script (its one argument, `prime`, asks
/// for a second CPU sample). Sections start with `@name` lines. `df` is bounded by
/// `timeout` where there is one (a hung network mount must not hang the poll).
pub(crate) const REMOTE_SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
echo @cpu
grep '^cpu' /proc/stat || { echo "cannot read /proc/stat: remote host metrics need a Linux host" >&2; exit 3; }
if [ "$1" = prime ]; then
  sleep 0.25 2>/dev/null || sleep 1
  echo @cpu2
  grep '^cpu' /proc/stat
fi
echo @meminfo
cat /proc/meminfo
echo @loadavg
cat /proc/loadavg
echo @uptime
cat /proc/uptime
echo @hostname
cat /proc/sys/kernel/hostname 2>/dev/null || hostname
echo @df
if command -v timeout >/dev/null 2>&1; then t="timeout 5"; else t=; fi
$t df -P -T -B1 2>/dev/null || $t df -P -B1 2>/dev/null
exit 0"#;

/// The first line of stderr, or the exit status, for a failed remote command.
fn remote_failure(host: &str, out: &crate::transport::Output) -> String {
    let stderr = out.stderr_text();
    let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) => format!("{host}: {line}"),
        None => format!("{host}: the metrics command failed ({})", out.status),
    }
}

/// The aggregate CPU counters of /proc/stat (in USER_HZ ticks).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

impl CpuTimes {
    /// From the `cpu ` line: user nice system idle iowait irq softirq steal (guest time is
    /// already counted in user). Idle and iowait are idle.
    pub fn parse(line: &str) -> Option<CpuTimes> {
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let values: Vec<u64> = fields.take(8).map_while(|f| f.parse().ok()).collect();
        if values.len() < 4 {
            return None;
        }
        let total: u64 = values.iter().sum();
        let idle = values[3] + values.get(4).copied().unwrap_or(0);
        Some(CpuTimes {
            busy: total.saturating_sub(idle),
            total,
        })
    }

    /// Busy share (0-100) between this sample and a later one; `None` without ticks between.
    pub(crate) fn busy_pct_until(&self, later: &CpuTimes) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let busy = later.busy.saturating_sub(self.busy);
        (total > 0).then(|| (100.0 * busy as f64 / total as f64).clamp(0.0, 100.0))
    }
}

/// What one run of [`REMOTE_SCRIPT`] printed.
#[derive(Debug)]
pub(crate) struct RemoteSample {
    /// Everything but the CPU %, which needs a previous sample.
    pub snapshot: HostSnapshot,
    /// The counters now.
    pub cpu: CpuTimes,
    /// A sample 0.25 s earlier, when the script was asked to prime.
    pub first_cpu: Option<CpuTimes>,
}

/// Parses the script's output. Missing sections are errors that say what is missing.
pub(crate) fn parse_remote(text: &str) -> Result<RemoteSample, String> {
    let mut sections: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('@')
            && matches!(
                name,
                "cpu" | "cpu2" | "meminfo" | "loadavg" | "uptime" | "hostname" | "df"
            )
        {
            current = Some(name);
            sections.entry(name).or_default();
            continue;
        }
        if let Some(name) = current {
            sections.entry(name).or_default().push(line);
        }
    }
    let section = |name: &str| sections.get(name).map(Vec::as_slice).unwrap_or(&[]);
    let cpu_line = |lines: &[&str]| lines.iter().find_map(|l| CpuTimes::parse(l));
    let first = cpu_line(section("cpu")).ok_or("/proc/stat has no cpu line")?;
    let (cpu, first_cpu) = match cpu_line(section("cpu2")) {
        Some(second) => (second, Some(first)),
        None => (first, None),
    };
    let cores = section("cpu")
        .iter()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();

    let meminfo = |key: &str| {
        section("meminfo").iter().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            let kib: f64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kib * 1024.0)
        })
    };
    let total = meminfo("MemTotal").ok_or("/proc/meminfo has no MemTotal")?;
    // MemAvailable is what sysinfo uses locally; kernels before 3.14 lack it.
    let available = meminfo("MemAvailable")
        .or_else(|| {
            Some(meminfo("MemFree")? + meminfo("Buffers").unwrap_or(0.0) + meminfo("Cached")?)
        })
        .ok_or("/proc/meminfo has neither MemAvailable nor MemFree and Cached")?;

    let load: Vec<f64> = section("loadavg")
        .first()
        .map(|l| {
            l.split_whitespace()
                .take(3)
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let load: [f64; 3] = load
        .try_into()
        .map_err(|_| "/proc/loadavg is not three numbers")?;
    let uptime_secs = section("uptime")
        .first()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |s| s as u64);
    let hostname = section("hostname")
        .first()
        .map(|h| h.trim().to_string())
        .unwrap_or_default();

    Ok(RemoteSample {
        snapshot: HostSnapshot {
            hostname,
            cpu_pct: 0.0,
            cores: cores.max(1),
            mem_used_bytes: (total - available).max(0.0),
            mem_total_bytes: total,
            load,
            uptime_secs,
            disks: pick_disks(&parse_df(section("df"))),
        },
        cpu,
        first_cpu,
    })
}

/// `df -P -T -B1` (or `df -P -B1` where there is no `-T`) as mounts; the type column is
/// told apart by the header. Mount points may hold spaces: they are the rest of the line.
pub fn parse_df(lines: &[&str]) -> Vec<MountInfo> {
    let Some(header) = lines.first() else {
        return Vec::new();
    };
    let typed = header.split_whitespace().nth(1) == Some("Type");
    let numbers_at = if typed { 2 } else { 1 };
    let mut mounts = Vec::new();
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < numbers_at + 5 {
            continue;
        }
        let number = |i: usize| fields[numbers_at + i].parse::<u64>().ok();
        let (Some(total), Some(used), Some(available)) = (number(0), number(1), number(2)) else {
            continue;
        };
        let device = fields[0].to_string();
        mounts.push(MountInfo {
            fs: if typed {
                fields[1].to_string()
            } else {
                // Without types, pseudo filesystems still show by their device name.
                device.clone()
            },
            device,
            mount: fields[numbers_at + 4..].join(" "),
            total,
            used,
            available,
        });
    }
    mounts
}

/// Why this machine's figures cannot be read at all. `Display` is the pane's text (after
/// "host metrics: ").
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("cannot read system information: {0}")]
    System(sysinfo::Error),
    #[error("cannot list disks: {0}")]
    Disks(sysinfo::Error),
}

/// The sysinfo handles that must live between polls.
struct Probe {
    system: System,
    disks: Disks,
    /// Whether CPU usage has a previous sample to diff against.
    primed: bool,
}

impl Probe {
    fn new() -> Result<Probe, ProbeError> {
        let system = System::new().map_err(ProbeError::System)?;
        let disks = Disks::new().map_err(ProbeError::Disks)?;
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
            .map(|d| {
                let (total, used, available) = df_numbers(d.mount_point())
                    // Without statvfs, sysinfo's numbers: reserved blocks then count as used.
                    .unwrap_or((
                        d.total_space(),
                        d.total_space().saturating_sub(d.available_space()),
                        d.available_space(),
                    ));
                MountInfo {
                    device: d.name().to_string_lossy().into_owned(),
                    mount: d.mount_point().to_string_lossy().into_owned(),
                    fs: d.file_system().to_string_lossy().into_owned(),
                    total,
                    used,
                    available,
                }
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
    /// As `df`: blocks in use (reserved blocks are not in use).
    pub used: u64,
    /// As `df`: free to an ordinary user.
    pub available: u64,
}

/// Size, used and available bytes of the file system at `mount`, as `df` computes them
/// from statvfs: size = blocks × frsize, used = (blocks − bfree) × frsize,
/// available = bavail × frsize.
pub fn df_numbers(mount: &std::path::Path) -> Option<(u64, u64, u64)> {
    let s = nix::sys::statvfs::statvfs(mount).ok()?;
    Some(df_from_statvfs(
        s.blocks(),
        s.blocks_free(),
        s.blocks_available(),
        s.fragment_size(),
    ))
}

/// The arithmetic of [`df_numbers`], apart so it can be checked on known numbers.
pub(crate) fn df_from_statvfs(
    blocks: u64,
    free: u64,
    available: u64,
    frsize: u64,
) -> (u64, u64, u64) {
    (
        blocks.saturating_mul(frsize),
        blocks.saturating_sub(free).saturating_mul(frsize),
        available.saturating_mul(frsize),
    )
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
            used_bytes: m.used as f64,
            available_bytes: m.available as f64,
            total_bytes: m.total as f64,
        });
    }
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    disks
}

/// How long CPU % must stay over a threshold before its alert fires.
pub(crate) const CPU_HOLD: Duration = Duration::from_secs(60);

/// The Host pane's figures from a snapshot.
pub fn readings(source: &str, s: &HostSnapshot) -> Vec<Reading> {
    let id = |figure: &str| format!("{source}.{figure}");
    let label = |what: &str| format!("{source} {what}");
    let mut out = Vec::new();
    // CPU % is one interval's share, and bursts are normal (a build, a cron job, this
    // program's own start): it must stay high for a while before it is an alert. And a
    // busy CPU is a cause to look at, not a page by itself: P2, as the runbooks that set
    // these thresholds (seeds 001 and 003) rank it.
    out.push(
        Reading::number(id("cpu_pct"), label("CPU"), s.cpu_pct, "%")
            .with_detail(format!("{} cores", s.cores))
            .with_rule(
                Rule::warn_crit(Threshold::above(70.0), Threshold::above(85.0))
                    .with_priority(crate::model::rule::Priority::P2)
                    .held_for(CPU_HOLD),
            ),
    );
    let mem_rule = Rule::warn_crit(Threshold::above(80.0), Threshold::above(90.0));
    if s.mem_total_bytes > 0.0 {
        let pct = 100.0 * s.mem_used_bytes / s.mem_total_bytes;
        out.push(
            Reading::number(id("mem_pct"), label("memory"), pct, "%")
                .with_detail(format!(
                    "{} of {}",
                    crate::model::figure::format_bytes(s.mem_used_bytes),
                    crate::model::figure::format_bytes(s.mem_total_bytes)
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
                    crate::model::figure::format_bytes(d.used_bytes),
                    crate::model::figure::format_bytes(d.total_bytes)
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
            used: total - available,
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

    const SAMPLE: &str = "@cpu
cpu  100 0 50 800 50 0 0 0 0 0
cpu0 50 0 25 400 25 0 0 0 0 0
cpu1 50 0 25 400 25 0 0 0 0 0
@cpu2
cpu  160 0 70 900 70 0 0 0 0 0
cpu0 80 0 35 450 35 0 0 0 0 0
cpu1 80 0 35 450 35 0 0 0 0 0
@meminfo
MemTotal:        2000000 kB
MemFree:          100000 kB
MemAvailable:     500000 kB
Cached:           300000 kB
@loadavg
0.50 0.25 0.10 1/100 1234
@uptime
12345.67 20000.00
@hostname
web-1
@df
Filesystem     Type     1B-blocks       Used  Available Capacity Mounted on
/dev/vda1      ext4    1000000000  900000000  100000000      90% /
tmpfs          tmpfs      1000000          0    1000000       0% /run
/dev/vdb       xfs     2000000000  500000000 1500000000      25% /srv/my data
overlay        overlay  100000000   50000000   50000000      50% /var/lib/docker/overlay2/x/merged
";

    #[test]
    fn remote_output_becomes_the_same_snapshot() {
        let sample = parse_remote(SAMPLE).unwrap();
        let s = &sample.snapshot;
        assert_eq!(s.hostname, "web-1");
        assert_eq!(s.cores, 2);
        assert_eq!(s.mem_total_bytes, 2_000_000.0 * 1024.0);
        assert_eq!(s.mem_used_bytes, 1_500_000.0 * 1024.0);
        assert_eq!(s.load, [0.5, 0.25, 0.1]);
        assert_eq!(s.uptime_secs, 12345);
        let mounts: Vec<&str> = s.disks.iter().map(|d| d.mount.as_str()).collect();
        assert_eq!(mounts, ["/", "/srv/my data"], "pseudo filesystems skipped");
        assert!((s.disks[0].used_pct() - 90.0).abs() < 1e-9);
        // The primed second sample gives the CPU %: 80 busy of 200 ticks.
        let first = sample.first_cpu.unwrap();
        assert_eq!(first.busy_pct_until(&sample.cpu), Some(40.0));
        let figures = readings("web", s);
        assert_eq!(figures.len(), 4);
    }

    #[test]
    fn remote_output_without_df_types_or_mem_available() {
        let text = "@cpu\ncpu 1 2 3 4\n@meminfo\nMemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 25 kB\n@loadavg\n1 2 3 4/5 6\n@uptime\n5.0 1.0\n@hostname\nh\n@df\nFilesystem 1-blocks Used Available Capacity Mounted on\ntmpfs 100 0 100 0% /dev/shm\n/dev/sda1 1000 250 750 25% /\n";
        let sample = parse_remote(text).unwrap();
        assert_eq!(sample.snapshot.mem_used_bytes, 60.0 * 1024.0);
        assert_eq!(sample.snapshot.disks.len(), 1);
        assert_eq!(sample.snapshot.cores, 1);
        assert!(sample.first_cpu.is_none());
        // No ticks between two samples: no CPU figure rather than a division by zero.
        assert_eq!(sample.cpu.busy_pct_until(&sample.cpu), None);
        assert!(parse_remote("@cpu\n").unwrap_err().contains("cpu"));
        assert!(
            parse_remote("@cpu\ncpu 1 2 3 4\n@meminfo\n")
                .unwrap_err()
                .contains("MemTotal")
        );
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
                    available_bytes: 90.0,
                    total_bytes: 100.0,
                },
                DiskUsage {
                    mount: "/data".into(),
                    used_bytes: 95.0,
                    available_bytes: 5.0,
                    total_bytes: 100.0,
                },
            ],
        };
        let readings = readings("web", &snapshot);
        let get = |id: &str| readings.iter().find(|r| r.id == id).unwrap();
        let sev = |id: &str| crate::rules::judge(get(id), None);
        use crate::model::figure::Severity;
        assert_eq!(sev("web.cpu_pct"), Severity::Crit);
        assert_eq!(sev("web.mem_pct"), Severity::Warn);
        assert_eq!(sev("web.disk_pct"), Severity::Crit);
        assert!(get("web.disk_pct").detail.starts_with("/data"));
        assert_eq!(sev("web.load1"), Severity::Ok);
        assert!(get("web.load1").detail.contains("2 cores"));
    }

    #[test]
    fn a_busy_cpu_must_stay_busy_and_is_not_a_page() {
        use crate::model::figure::Severity;
        use crate::model::rule::Priority;
        let snapshot = HostSnapshot {
            cpu_pct: 100.0,
            ..HostSnapshot::default()
        };
        let readings = readings("web", &snapshot);
        let cpu = readings.iter().find(|r| r.id == "web.cpu_pct").unwrap();
        let rule = cpu.default_rule.as_ref().unwrap();
        assert_eq!(rule.for_duration, Some(CPU_HOLD));
        assert_eq!(rule.priority_for(Severity::Crit), Some(Priority::P2));
        // Memory and disk keep the default priority: full is full.
        let mem = readings.iter().find(|r| r.id == "web.mem_pct").unwrap();
        assert_eq!(mem.default_rule.as_ref().unwrap().for_duration, None);
    }

    #[test]
    fn disk_figures_follow_dfs_formula_with_reserved_blocks() {
        // statvfs of an ext4 made with 50 % reserved blocks, 4 KiB blocks: 1000 blocks,
        // 400 free, 0 available to users (the reserve is 500 blocks).
        let (size, used, available) = df_from_statvfs(1000, 400, 0, 4096);
        assert_eq!((size, used, available), (4_096_000, 2_457_600, 0));
        let disk = DiskUsage {
            mount: "/".into(),
            used_bytes: used as f64,
            available_bytes: available as f64,
            total_bytes: size as f64,
        };
        assert_eq!(
            disk.used_pct(),
            100.0,
            "df says 100%: nothing left for users"
        );
        // The same disk by df -P -T -B1: Used and Available come from its columns, not
        // from size minus available.
        let mounts = parse_df(&[
            "Filesystem     Type 1B-blocks    Used Available Capacity Mounted on",
            "/dev/loop0     ext4  4096000 2457600    1638400      61% /mnt/my disk",
        ]);
        assert_eq!(mounts[0].used, 2_457_600);
        assert_eq!(mounts[0].available, 1_638_400);
        assert_eq!(mounts[0].mount, "/mnt/my disk");
        let disks = pick_disks(&mounts);
        // 2457600 / (2457600 + 1638400) is exactly 60 %. The Capacity column of this made-up
        // line says 61% to show that it is computed, not read.
        assert!((disks[0].used_pct() - 60.0).abs() < 1e-9);
    }
}
