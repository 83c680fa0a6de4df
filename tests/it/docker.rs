//! The Docker collector against the real engine on this machine.
//!
//! Images cannot be pulled here, so the tests build `watchpost-test-busybox:latest`
//! FROM scratch with a static busybox (Debian: `apt-get install -y busybox-static`).
//! Without Docker (or busybox) the tests skip with a message, unless
//! WATCHPOST_REQUIRE_DOCKER=1, where they fail. The log source over SSH also needs the
//! test sshd on 127.0.0.1 (support/sshd.rs; WATCHPOST_REQUIRE_SSH=1 likewise).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use watchpost::collect::Collector;
use watchpost::collect::docker::DockerCollector;
use watchpost::config::DockerSource;
use watchpost::model::figure::{Reading, Severity, Value};
use watchpost::model::update::{
    ContainerLogTail, ContainerRow, ServiceStatus, SourceHealth, Update,
};
use watchpost::rules::judge;

const IMAGE: &str = "watchpost-test-busybox:latest";

// ---------------------------------------------------------------------------------------
// Environment: is there an engine, and an image to run?

fn docker_required() -> bool {
    std::env::var("WATCHPOST_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// `Some(reason)` when the tests cannot run here.
fn environment_problem() -> Option<String> {
    static PROBLEM: OnceLock<Option<String>> = OnceLock::new();
    PROBLEM
        .get_or_init(|| {
            match Command::new("docker")
                .args(["version", "--format", "{{.Server.Version}}"])
                .output()
            {
                Err(e) => return Some(format!("the docker CLI cannot run: {e}")),
                Ok(out) if !out.status.success() => {
                    return Some(format!(
                        "the Docker engine does not answer: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                Ok(_) => {}
            }
            build_image().err()
        })
        .clone()
}

/// Skips (with a visible message) or fails, as the environment asks.
macro_rules! require_docker {
    () => {
        if let Some(problem) = environment_problem() {
            if docker_required() {
                panic!("WATCHPOST_REQUIRE_DOCKER=1 but {problem}");
            }
            eprintln!("SKIPPED (no usable Docker here): {problem}");
            return;
        }
    };
}

/// True when the file is an ELF executable without a program interpreter (static).
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        // PT_INTERP (3) names the dynamic loader.
        bytes
            .get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != 3)
    })
}

fn find_static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| is_static_elf(p))
}

/// Builds the test image from scratch: busybox plus links for the applets the tests use.
/// Each test process asks for it; it is built once per busybox (a label says which), so
/// processes starting together do not leave untagged copies behind.
fn build_image() -> Result<(), String> {
    let busybox = find_static_busybox()
        .ok_or("no static busybox found (apt-get install -y busybox-static)".to_string())?;
    let (len, modified) = size_and_mtime(&busybox)?;
    const APPLETS: [&str; 7] = ["sh", "sleep", "dd", "true", "false", "cat", "echo"];
    let stamp = format!(
        "{}-{len}-{modified}-{}",
        busybox.display(),
        APPLETS.join(",")
    );
    build_scratch_image(
        IMAGE,
        ("watchpost.busybox", &stamp),
        |rootfs| {
            let bin = rootfs.join("bin");
            std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
            std::fs::copy(&busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
            for applet in APPLETS {
                std::os::unix::fs::symlink("busybox", bin.join(applet))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        },
        "CMD [\"/bin/sh\"]",
    )
}

/// A file's size and modification time (seconds), for an image's stamp.
fn size_and_mtime(path: &Path) -> Result<(u64, u64), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok((meta.len(), modified))
}

/// Builds `tag` FROM scratch out of a root file system `fill` makes (with a `/tmp`), plus
/// `config` (its CMD or ENTRYPOINT), unless the image there already carries the label
/// `stamp.0 = stamp.1`: each test process asks for it, and it is built once per what goes
/// in, so processes starting together do not leave untagged copies behind.
fn build_scratch_image(
    tag: &str,
    stamp: (&str, &str),
    fill: impl FnOnce(&Path) -> Result<(), String>,
    config: &str,
) -> Result<(), String> {
    let (label, value) = stamp;
    let built = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
            tag,
        ])
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == value
        });
    if built {
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let rootfs = dir.path().join("rootfs");
    fill(&rootfs)?;
    std::fs::create_dir_all(rootfs.join("tmp")).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY rootfs/ /\nLABEL watchpost.test=1 {label}=\"{value}\"\n{config}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag, "."])
        .current_dir(dir.path())
        .output()
        .map_err(|e| format!("docker build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker build of {tag} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Containers that clean up after themselves.

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!(
        "watchpost-test-{prefix}-{:x}{:x}{n}",
        std::process::id(),
        nanos
    )
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes its containers however the test ends (`docker rm -f`).
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let mut args = vec!["rm".to_string(), "-f".to_string()];
            args.extend(self.0.iter().cloned());
            let _ = Command::new("docker").args(&args).output();
        }
    }
}

/// Runs a container of compose project `project`, service `service`; returns its name.
fn run(
    cleanup: &mut Cleanup,
    project: &str,
    service: &str,
    extra: &[&str],
    script: &str,
) -> String {
    // A label is any text; a container name is not.
    let name = unique(&service.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
    cleanup.0.push(name.clone());
    let project_label = format!("com.docker.compose.project={project}");
    let service_label = format!("com.docker.compose.service={service}");
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &project_label,
        "--label",
        &service_label,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    docker(&args);
    name
}

// ---------------------------------------------------------------------------------------
// Reading what the collector says.

fn collector(project: &str) -> DockerCollector {
    DockerCollector::new(
        "dock",
        &DockerSource {
            host: "local".into(),
            project: Some(project.into()),
            services: Vec::new(),
            interval: Duration::from_millis(200),
            exec: Vec::new(),
        },
    )
}

#[derive(Default, Debug)]
struct Poll {
    rows: Option<Vec<ContainerRow>>,
    services: Vec<ServiceStatus>,
    readings: Vec<Reading>,
    error: Option<String>,
    /// The zoomed container's log tail, when this poll brought a new one.
    logs: Option<ContainerLogTail>,
    /// Every update, for a state to apply.
    updates: Vec<Update>,
}

impl Poll {
    fn row(&self, name: &str) -> Option<&ContainerRow> {
        self.rows.as_ref()?.iter().find(|r| r.name == name)
    }
    fn reading(&self, id: &str) -> Option<&Reading> {
        self.readings.iter().find(|r| r.id == id)
    }
}

async fn poll(collector: &mut DockerCollector) -> Poll {
    let mut result = Poll::default();
    let updates = collector.poll().await;
    result.updates = updates.clone();
    for update in updates {
        match update {
            Update::ContainerLogs(tail) => result.logs = Some(tail),
            Update::Containers { rows, .. } => result.rows = Some(rows),
            Update::Service(s) => result.services.push(s),
            Update::Readings { readings, .. } => result.readings.extend(readings),
            Update::Health {
                health: SourceHealth::Error { message, .. },
                ..
            } => result.error = Some(message),
            _ => {}
        }
    }
    result
}

/// Polls until `done` holds, or panics with the last poll after `limit`.
async fn poll_until(
    collector: &mut DockerCollector,
    limit: Duration,
    what: &str,
    done: impl Fn(&Poll) -> bool,
) -> Poll {
    let started = Instant::now();
    loop {
        let p = poll(collector).await;
        if done(&p) {
            return p;
        }
        if started.elapsed() > limit {
            panic!("after {limit:?}, still waiting for {what}; last poll: {p:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// "97.53%" → 97.53
fn parse_percent(text: &str) -> f64 {
    text.trim()
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("not a percentage: {text:?}"))
}

/// "48.3MiB" → bytes, in the units `docker stats` prints.
fn parse_size(text: &str) -> f64 {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a size: {text:?}"));
    let factor = match unit.trim() {
        "B" | "" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unknown unit {other:?} in {text:?}"),
    };
    number * factor
}

/// `docker stats --no-stream` for some containers: name → (CPU %, memory bytes).
fn docker_stats(names: &[&str]) -> HashMap<String, (f64, f64)> {
    let mut args = vec![
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}",
    ];
    args.extend_from_slice(names);
    docker(&args)
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.split('|').collect();
            let used = parts[2].split('/').next().unwrap();
            (
                parts[0].to_string(),
                (parse_percent(parts[1]), parse_size(used)),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_and_memory_agree_with_docker_stats() {
    require_docker!();
    let project = unique("proj");
    let mut cleanup = Cleanup(Vec::new());
    // Held to half a core by its CPU quota, so its use is steady whatever else runs here
    // and both tools read the same figure.
    let burner = run(
        &mut cleanup,
        &project,
        "burner",
        &["--cpus", "0.5"],
        "while :; do :; done",
    );
    // 48 MiB in the container's /dev/shm (tmpfs): charged to its memory cgroup, and not
    // page cache that the kernel may drop.
    let hog = run(
        &mut cleanup,
        &project,
        "hog",
        &[],
        "dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 && sleep 3600",
    );

    let mut collector = collector(&project);
    let ready = |p: &Poll| {
        [&burner, &hog].iter().all(|n| {
            p.row(n)
                .is_some_and(|r| r.cpu_pct.is_some() && r.mem_bytes.is_some())
        }) && p
            .row(&hog)
            .and_then(|r| r.mem_bytes)
            .is_some_and(|m| m > 40.0 * 1024.0 * 1024.0)
    };
    let first = poll_until(
        &mut collector,
        Duration::from_secs(30),
        "stats of both containers",
        ready,
    )
    .await;

    let row = first.row(&burner).unwrap();
    assert_eq!(row.project, project);
    assert_eq!(row.service, "burner");
    assert_eq!(row.state, "running");
    assert!(!row.name.starts_with('/'));
    assert!(row.started_at.is_some());
    assert!(row.mem_limit_bytes.is_some_and(|l| l > 0.0));
    assert!(row.block_read_bytes.is_some());
    assert!(
        first
            .reading("dock.burner.state")
            .is_some_and(|r| r.value == Value::Text("running".into()))
    );
    assert!(
        first
            .reading("dock.hog.mem_bytes")
            .is_some_and(|r| r.unit == "bytes")
    );
    let service = first
        .services
        .iter()
        .find(|s| s.name == format!("{project}/burner"))
        .expect("compose service row");
    assert_eq!(service.kind, "compose");
    assert!(service.up);

    // The same moment, as well as two tools with their own one-second windows allow:
    // ours is read right after `docker stats` returns, and averaged with the one before.
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let before = poll(&mut collector).await;
        let theirs = docker_stats(&[&burner, &hog]);
        let after = poll(&mut collector).await;
        let ours_cpu = |p: &Poll| p.row(&burner).and_then(|r| r.cpu_pct).unwrap();
        let our_cpu = (ours_cpu(&before) + ours_cpu(&after)) / 2.0;
        let our_mem = after.row(&hog).and_then(|r| r.mem_bytes).unwrap();
        let (their_cpu, _) = theirs[&burner];
        let (_, their_mem) = theirs[&hog];
        // Within 5 points of a steady 50%.
        let cpu_ok = (our_cpu - their_cpu).abs() <= 5.0;
        let mem_ok = (our_mem - their_mem).abs() <= (their_mem * 0.05).max(2.0 * 1024.0 * 1024.0);
        attempts.push(format!(
            "cpu ours {our_cpu:.1}% vs docker {their_cpu:.1}%; mem ours {our_mem:.0} vs docker {their_mem:.0}"
        ));
        if cpu_ok && mem_ok {
            assert!(
                our_cpu > 25.0,
                "a busy loop held to half a core shows as such: {}",
                attempts.join("\n")
            );
            eprintln!("agreement: {}", attempts.last().unwrap());
            return;
        }
    }
    panic!(
        "figures disagree with docker stats:\n{}",
        attempts.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_shows_as_down_within_two_seconds() {
    require_docker!();
    let project = unique("proj");
    let mut cleanup = Cleanup(Vec::new());
    let idle = run(&mut cleanup, &project, "idle", &[], "sleep 3600");
    let mut collector = collector(&project);
    poll_until(
        &mut collector,
        Duration::from_secs(20),
        "the idle container running",
        |p| p.row(&idle).is_some_and(|r| r.state == "running"),
    )
    .await;

    let killed = Instant::now();
    docker(&["kill", &idle]);
    let down = poll_until(
        &mut collector,
        Duration::from_secs(5),
        "the kill to show",
        |p| p.row(&idle).is_some_and(|r| r.state != "running"),
    )
    .await;
    let took = killed.elapsed();
    eprintln!("the kill showed after {took:?}");
    assert!(
        took <= Duration::from_secs(2),
        "the kill took {took:?} to show"
    );
    let state = down.reading("dock.idle.state").expect("state figure");
    assert_eq!(judge(state, None), Severity::Crit);
    let service = down
        .services
        .iter()
        .find(|s| s.name.ends_with("/idle"))
        .unwrap();
    assert!(!service.up);
    assert_eq!(
        down.reading("dock.idle.cpu_pct")
            .and_then(|r| r.value.as_f64()),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_are_counted_and_unhealthy_is_critical() {
    require_docker!();
    let project = unique("proj");
    let mut cleanup = Cleanup(Vec::new());
    let flappy = run(
        &mut cleanup,
        &project,
        "flappy",
        &["--restart", "on-failure"],
        "sleep 1; exit 3",
    );
    let sick = run(
        &mut cleanup,
        &project,
        "sick",
        &[
            "--health-cmd",
            "exit 1",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--health-timeout",
            "1s",
        ],
        "sleep 3600",
    );
    let mut collector = collector(&project);
    let p = poll_until(
        &mut collector,
        Duration::from_secs(30),
        "a restart and an unhealthy container",
        |p| {
            p.row(&flappy).is_some_and(|r| r.restarts >= 1)
                && p.row(&sick).is_some_and(|r| r.health == "unhealthy")
        },
    )
    .await;
    let restarts = p.reading("dock.flappy.restarts").unwrap();
    assert!(restarts.value.as_f64().unwrap() >= 1.0);
    assert_eq!(judge(restarts, None), Severity::Warn);
    let health = p.reading("dock.sick.health").unwrap();
    assert_eq!(judge(health, None), Severity::Crit);
    let service = p
        .services
        .iter()
        .find(|s| s.name.ends_with("/sick"))
        .unwrap();
    assert!(!service.up, "running but unhealthy is not up: {service:?}");
    // `docker inspect` agrees on the count (it may have moved on by one meanwhile).
    let theirs: u64 = docker(&["inspect", "--format", "{{.RestartCount}}", &flappy])
        .parse()
        .unwrap();
    let ours = p.row(&flappy).unwrap().restarts;
    assert!(
        theirs >= ours && theirs <= ours + 2,
        "docker inspect {theirs}, ours {ours}"
    );
}

/// A unix-socket proxy in front of the engine that the test can break and restore.
struct EngineProxy {
    path: PathBuf,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl EngineProxy {
    fn start(path: &Path) -> EngineProxy {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).expect("bind the proxy socket");
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                connections.spawn(async move {
                    let Ok(mut engine) =
                        tokio::net::UnixStream::connect("/var/run/docker.sock").await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                });
            }
        });
        EngineProxy {
            path: path.to_path_buf(),
            task: Some(task),
        }
    }

    /// Closes every connection and removes the socket: the engine is gone.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_engine_is_reported_and_rejoined() {
    require_docker!();
    if !Path::new("/var/run/docker.sock").exists() {
        eprintln!("SKIPPED: the proxy test needs the engine at /var/run/docker.sock");
        return;
    }
    let project = unique("proj");
    let mut cleanup = Cleanup(Vec::new());
    let idle = run(&mut cleanup, &project, "idle", &[], "sleep 3600");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("engine.sock");
    let mut proxy = EngineProxy::start(&socket);
    let address = format!("unix://{}", socket.display());
    let mut collector = collector(&project).with_engine_address(&address);
    poll_until(
        &mut collector,
        Duration::from_secs(20),
        "the container with stats",
        |p| {
            p.row(&idle)
                .is_some_and(|r| r.state == "running" && r.mem_bytes.is_some())
        },
    )
    .await;

    proxy.stop().await;
    let broken = poll_until(
        &mut collector,
        Duration::from_secs(10),
        "the engine error",
        |p| p.error.is_some(),
    )
    .await;
    let message = broken.error.unwrap();
    eprintln!("engine gone: {message}");
    assert!(message.starts_with("docker: "), "{message}");
    assert!(message.contains(&address), "names the engine: {message}");
    assert!(
        broken.rows.is_none(),
        "no empty list as if nothing ran; the last rows stay in the state"
    );
    // Still broken a moment later, and still saying so.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = poll(&mut collector).await;
    assert!(
        still
            .error
            .as_deref()
            .is_some_and(|m| m.contains("cannot reach the engine")),
        "{still:#?}"
    );

    // While the engine is away: a container starts, and the idle one's memory grows.
    let newcomer = run(&mut cleanup, &project, "newcomer", &[], "sleep 3600");

    let _proxy = EngineProxy::start(&socket);
    let back = poll_until(
        &mut collector,
        Duration::from_secs(20),
        "the engine to come back, the newcomer listed with stats",
        |p| {
            p.error.is_none()
                && p.row(&idle).is_some_and(|r| r.state == "running")
                && p.row(&newcomer)
                    .is_some_and(|r| r.state == "running" && r.mem_bytes.is_some())
        },
    )
    .await;
    assert!(back.reading("dock.idle.state").is_some());
    assert!(back.reading("dock.newcomer.mem_bytes").is_some());
    // Stats re-subscribed for the container that was there before: 32 MiB more in its
    // /dev/shm shows in its memory figure.
    let idle_before = back.row(&idle).and_then(|r| r.mem_bytes).unwrap();
    docker(&[
        "exec",
        &idle,
        "dd",
        "if=/dev/zero",
        "of=/dev/shm/fill",
        "bs=1M",
        "count=32",
    ]);
    poll_until(
        &mut collector,
        Duration::from_secs(10),
        "the idle container's memory to move after the reconnect",
        |p| {
            p.row(&idle)
                .and_then(|r| r.mem_bytes)
                .is_some_and(|m| m > idle_before + 24.0 * 1024.0 * 1024.0)
        },
    )
    .await;
    // Events re-subscribed: a stop after the reconnect is seen.
    docker(&["stop", "-t", "0", &idle]);
    poll_until(
        &mut collector,
        Duration::from_secs(5),
        "the stop after reconnecting",
        |p| p.row(&idle).is_some_and(|r| r.state != "running"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_list_watches_only_those_services() {
    require_docker!();
    let project = unique("proj");
    let mut cleanup = Cleanup(Vec::new());
    let api = run(&mut cleanup, &project, "api", &[], "sleep 3600");
    let other = run(&mut cleanup, &project, "other", &[], "sleep 3600");
    let mut collector = DockerCollector::new(
        "dock",
        &DockerSource {
            host: "local".into(),
            project: Some(project.clone()),
            services: vec!["api".into()],
            interval: Duration::from_millis(200),
            exec: Vec::new(),
        },
    );
    let listed = poll_until(&mut collector, Duration::from_secs(20), "the api", |p| {
        p.row(&api).is_some_and(|r| r.state == "running")
    })
    .await;
    assert!(listed.row(&other).is_none(), "{:#?}", listed.rows);
    // Started later, learnt from events: the same choice.
    let api2 = run(&mut cleanup, &project, "api", &[], "sleep 3600");
    let other2 = run(&mut cleanup, &project, "other", &[], "sleep 3600");
    let later = poll_until(
        &mut collector,
        Duration::from_secs(10),
        "the second api",
        |p| p.row(&api2).is_some_and(|r| r.state == "running"),
    )
    .await;
    assert!(later.row(&other).is_none() && later.row(&other2).is_none());
    assert!(later.services.iter().all(|s| !s.name.ends_with("/other")));
}

#[tokio::test]
async fn unreachable_engine_is_a_clear_error() {
    // Needs no Docker at all: the socket does not exist.
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix://{}", dir.path().join("nothing.sock").display());
    let mut collector = collector("whatever").with_engine_address(&address);
    let p = poll(&mut collector).await;
    let message = p.error.expect("an error on the first poll");
    eprintln!("no engine: {message}");
    assert!(
        message.starts_with(&format!("docker: cannot reach the engine at {address}: ")),
        "{message}"
    );
    assert!(p.rows.is_none());
}

#[tokio::test]
async fn remote_engine_is_a_clear_error_for_now() {
    let mut collector = DockerCollector::new(
        "far",
        &DockerSource {
            host: "ssh://prod".into(),
            project: None,
            services: Vec::new(),
            interval: Duration::from_secs(2),
            exec: Vec::new(),
        },
    );
    let p = poll(&mut collector).await;
    assert!(p.error.is_some_and(|m| m.contains("SSH transport")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoomed_container_logs_are_followed_only_while_zoomed_and_sanitized() {
    require_docker!();
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use watchpost::collect::OnScreen;
    use watchpost::state::{AppState, Window};
    use watchpost::ui::{PaneId, UiState};

    let project = unique("proj");
    let mut cleanup = Cleanup(Vec::new());
    // A hostile service label (labels are any text) and hostile log lines.
    let name = run(
        &mut cleanup,
        &project,
        "web\x1b]0;pwned\x07\x1b[2J\u{9b}31m",
        &[],
        "echo 'hello from the log'; echo -e 'evil \\033]0;pwned\\007 \\033[2J end'; \
         echo 'ERROR payment failed' >&2; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.5; done",
    );
    let mut collector = collector(&project);
    let (screen, watch) = tokio::sync::watch::channel(OnScreen::default());
    collector.watch_screen(watch);
    let first = poll_until(
        &mut collector,
        Duration::from_secs(20),
        "the talker running",
        |p| p.row(&name).is_some_and(|r| r.state == "running"),
    )
    .await;
    let row = first.row(&name).unwrap().clone();
    assert!(row.service.contains('\x1b'), "the label arrives as it is");
    // Figure ids are made of it, and they leave the screen (check, the record, on_alert).
    assert!(
        first
            .readings
            .iter()
            .all(|r| !r.id.chars().any(char::is_control)),
        "{:?}",
        first.readings
    );
    assert!(
        first
            .readings
            .iter()
            .any(|r| r.id.starts_with("dock.web") && r.id.ends_with(".state")),
        "{:?}",
        first.readings
    );

    // Not zoomed: no log is read.
    for _ in 0..5 {
        let p = poll(&mut collector).await;
        assert!(p.logs.is_none(), "logs read while nothing is zoomed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Zoomed: the last lines come, stdout and stderr, and keep coming.
    screen.send_replace(OnScreen {
        zoomed_container: Some(("dock".into(), row.id.clone())),
    });
    let mut state = AppState::new(Window::new(
        "t",
        chrono::Utc::now(),
        chrono::Duration::hours(1),
    ));
    state.register_source(PaneId::Containers, "dock");
    let started = Instant::now();
    let mut tail: Option<ContainerLogTail> = None;
    while started.elapsed() < Duration::from_secs(15) {
        let p = poll(&mut collector).await;
        for update in p.updates {
            state.apply(update, chrono::Utc::now());
        }
        if let Some(t) = p.logs {
            tail = Some(t);
        }
        let done = tail.as_ref().is_some_and(|t| {
            t.lines.iter().any(|l| l.text == "hello from the log")
                && t.lines
                    .iter()
                    .any(|l| l.stderr && l.text == "ERROR payment failed")
                && t.lines.iter().any(|l| l.text.starts_with("tick "))
        });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tail = tail.expect("a log tail while zoomed");
    assert_eq!(tail.id, row.id);
    assert!(tail.error.is_none(), "{tail:?}");
    assert!(
        tail.lines.iter().any(|l| l.text.starts_with("tick ")),
        "{tail:#?}"
    );
    assert!(
        tail.lines.iter().all(|l| l.at.is_some()),
        "stamped by the engine"
    );
    assert!(tail.lines.len() <= watchpost::model::update::CONTAINER_LOG_TAIL);

    // On screen, zoomed on it: the lines and the label, with no control character.
    let ui = UiState {
        focus: PaneId::Containers,
        zoomed: true,
        ..UiState::default()
    };
    let theme = watchpost::ui::theme::Theme::built_in("default").unwrap();
    let mut terminal = Terminal::new(TestBackend::new(160, 40)).unwrap();
    terminal
        .draw(|frame| watchpost::ui::draw(frame, &state, &ui, &theme, chrono::Utc::now()))
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    let screen_text: String = buffer.content().iter().map(|c| c.symbol()).collect();
    for cell in buffer.content() {
        assert!(
            !cell.symbol().chars().any(char::is_control),
            "control character {:?} on screen",
            cell.symbol()
        );
    }
    assert!(screen_text.contains("hello from the log"), "{screen_text}");
    assert!(screen_text.contains("evil"), "{screen_text}");
    assert!(
        screen_text.contains("ERROR payment failed"),
        "{screen_text}"
    );

    // Unzoomed: the follow is dropped, no new lines are read although the talker talks.
    screen.send_replace(OnScreen::default());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = poll(&mut collector).await;
    for _ in 0..10 {
        let p = poll(&mut collector).await;
        assert!(p.logs.is_none(), "logs still read after the zoom ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Docker services as log sources (`[logs.NAME] docker = [...]`).

mod log_sources {
    use super::*;
    use watchpost::collect::logs::LogCollector;
    use watchpost::config::LogSource;
    use watchpost::model::update::LogLine;

    fn log_source(services: &[&str], project: &str, tail: usize) -> LogSource {
        LogSource {
            docker: services.iter().map(|s| s.to_string()).collect(),
            project: Some(project.into()),
            tail,
            ..LogSource::default()
        }
    }

    #[derive(Default)]
    struct Gathered {
        lines: Vec<LogLine>,
        errors_1h: Option<Reading>,
        error: Option<String>,
        /// What the record was told its count of lay short (see `with_record`).
        counts_cut: Option<watchpost::model::update::LogGap>,
    }

    impl Gathered {
        fn count(&self, text: &str) -> usize {
            self.lines.iter().filter(|l| l.message == text).count()
        }
        fn has(&self, text: &str) -> bool {
            self.count(text) > 0
        }
    }

    /// One poll's lines added to `into`; the figure and health replaced.
    async fn gather(collector: &mut LogCollector, into: &mut Gathered) -> usize {
        let mut new = 0;
        into.error = None;
        for update in collector.poll().await {
            match update {
                Update::Logs(lines) => {
                    new += lines.len();
                    into.lines.extend(lines);
                }
                Update::Readings { readings, .. } => {
                    into.errors_1h = readings.into_iter().find(|r| r.id.ends_with(".errors_1h"));
                }
                Update::Health {
                    health: SourceHealth::Error { message, .. },
                    ..
                } => into.error = Some(message),
                Update::LogCounts {
                    partial: Some(gap), ..
                } => into.counts_cut = Some(gap),
                _ => {}
            }
        }
        new
    }

    async fn gather_until(
        collector: &mut LogCollector,
        into: &mut Gathered,
        what: &str,
        done: impl Fn(&Gathered) -> bool,
    ) {
        let started = Instant::now();
        while !done(into) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "still waiting for {what}; error {:?}, lines {:?}",
                into.error,
                into.lines.iter().map(|l| &l.message).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            gather(collector, into).await;
        }
    }

    /// Prints a boot banner of 150 lines, an error on stderr, a hostile line, then ticks
    /// (every fifth with an exception); each run of the container numbers its lines.
    const TALKER: &str = "n=$(cat /tmp/run 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/run; \
        i=0; while [ $i -lt 150 ]; do i=$((i+1)); echo \"run $n boot $i\"; done; sleep 0.3; \
        echo \"ERROR run $n database failed\" >&2; \
        echo -e \"run $n evil \\033]0;pwned\\007 \\033]52;c;aGk=\\007 \\033[2J end\"; \
        j=0; while :; do j=$((j+1)); echo \"run $n tick $j\"; \
        if [ $((j % 5)) = 0 ]; then echo \"run $n exception at tick $j\"; fi; sleep 0.2; done";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn docker_logs_arrive_once_from_the_tail_across_a_restart_and_errors_count() {
        require_docker!();
        let project = unique("logs");
        let mut cleanup = Cleanup(Vec::new());
        let first = run(&mut cleanup, &project, "backend", &[], TALKER);
        // Another service of the project, not asked for.
        run(
            &mut cleanup,
            &project,
            "frontend",
            &[],
            "while :; do echo 'frontend ERROR not mine'; sleep 0.2; done",
        );
        // The banner is written before the source starts: only the tail of it is read.
        let started = Instant::now();
        while !docker(&["logs", &first]).contains("run 1 tick 3") {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the talker talks"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        const TAIL: usize = 20;
        let source_started = chrono::Utc::now();
        let mut collector = LogCollector::new("backend", &log_source(&["backend"], &project, TAIL));
        let mut got = Gathered::default();
        let at_start = gather(&mut collector, &mut got).await;
        // The first poll also keeps what is written while it settles (ticks).
        let boot_lines = got
            .lines
            .iter()
            .filter(|l| l.message.starts_with("run 1 boot"))
            .count();
        assert!(
            at_start > 0 && boot_lines < TAIL,
            "{at_start} lines at start, {boot_lines} of the banner, tail {TAIL}"
        );
        assert!(!got.has("run 1 boot 1") && !got.has("run 1 boot 130"));
        assert!(got.has("run 1 boot 150"), "the tail ends at the log's end");
        // Dated by the engine's stamps (when written), not when they were read.
        let banner_end = got
            .lines
            .iter()
            .find(|l| l.message == "run 1 boot 150")
            .unwrap();
        assert!(
            banner_end.at < source_started - chrono::Duration::milliseconds(200),
            "{banner_end:?} read at {source_started}"
        );
        gather_until(&mut collector, &mut got, "ticks", |g| {
            g.has("run 1 tick 12")
        })
        .await;
        assert!(got.has("run 1 database failed"), "stderr comes too");

        // A restart: the new run's lines come, none of the old run's again.
        docker(&["restart", "-t", "1", &first]);
        gather_until(&mut collector, &mut got, "the second run", |g| {
            g.has("run 2 tick 5")
        })
        .await;
        assert!(got.has("run 2 boot 1") && got.has("run 2 boot 150"));
        // A container of the service that starts later (scale up) is followed too.
        let second = run(
            &mut cleanup,
            &project,
            "backend",
            &[],
            "while :; do echo 'second replica failed to warm up'; sleep 0.3; done",
        );
        gather_until(&mut collector, &mut got, "the new replica", |g| {
            g.has("second replica failed to warm up")
        })
        .await;
        let _ = second;

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for line in &got.lines {
            *seen.entry(line.message.as_str()).or_default() += 1;
        }
        let repeated: Vec<_> = seen
            .iter()
            .filter(|(text, n)| **n > 1 && !text.starts_with("second replica"))
            .collect();
        assert!(repeated.is_empty(), "lines delivered twice: {repeated:?}");
        assert!(
            !got.has("frontend ERROR not mine"),
            "only the services asked for"
        );
        assert_eq!(got.count("run 2 database failed"), 1);
        // The hostile line arrives as one line, escapes and all, for the sanitizer to
        // defuse on screen (tests/it/panes.rs), and is not an error.
        let evil: Vec<_> = got
            .lines
            .iter()
            .filter(|l| l.message.starts_with("run 2 evil"))
            .collect();
        assert_eq!(evil.len(), 1, "{evil:?}");
        assert!(evil[0].message.contains('\x1b') && !evil[0].is_error);

        // Errors counted by the existing parser and pattern, into <name>.errors_1h.
        assert!(
            got.lines
                .iter()
                .any(|l| l.message == "run 2 exception at tick 5" && l.is_error)
        );
        assert!(
            got.lines
                .iter()
                .all(|l| !l.message.contains(" boot ") || !l.is_error)
        );
        gather(&mut collector, &mut got).await;
        let errors = got.lines.iter().filter(|l| l.is_error).count() as f64;
        let reading = got.errors_1h.clone().expect("backend.errors_1h");
        assert_eq!(reading.id, "backend.errors_1h");
        assert_eq!(reading.value, Value::Number(errors), "{reading:?}");
        assert!(got.error.is_none(), "{:?}", got.error);
    }

    /// A container that wrote its lines before watchpost started: the engine is asked
    /// for the window's lines (`since`), not a fixed tail, so `errors_1h` counts every
    /// ERROR line once (the dashboard, and `check`); a `tail` smaller than what was
    /// written cuts, and the figures say so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_containers_window_is_read_back_whole() {
        require_docker!();
        let project = unique("window");
        let mut cleanup = Cleanup(Vec::new());
        const ERRORS: usize = 437;
        let container = run(
            &mut cleanup,
            &project,
            "api",
            &[],
            &format!(
                "i=0; while [ $i -lt {ERRORS} ]; do i=$((i+1)); echo \"ERROR payment failed $i\"; \
                 echo \"WARNING login failed for user $i\"; echo \"INFO served $i\"; done; \
                 echo written; sleep 600"
            ),
        );
        let started = Instant::now();
        while !docker(&["logs", "--tail", "1", &container]).contains("written") {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the container writes"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let source = log_source(&["api"], &project, watchpost::config::default_docker_tail());
        let mut collector = LogCollector::new("api", &source);
        let mut got = Gathered::default();
        gather_until(&mut collector, &mut got, "every line read", |g| {
            g.has("written")
        })
        .await;
        gather(&mut collector, &mut got).await;
        let reading = got.errors_1h.clone().expect("api.errors_1h");
        assert_eq!(reading.value, Value::Number(ERRORS as f64), "{reading:?}");
        assert!(reading.detail.is_empty(), "{reading:?}");
        let first = got
            .lines
            .iter()
            .filter(|l| l.message.ends_with("payment failed 1"))
            .count();
        assert_eq!(first, 1, "from the first line, once");

        // check, as cron runs it.
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("watchpost.toml");
        std::fs::write(
            &config,
            format!("[logs.api]\ndocker = [\"api\"]\nproject = \"{project}\"\n"),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args([
                "check",
                "--format",
                "json",
                "--config",
                config.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "api.errors_1h")
            .cloned()
            .unwrap_or_else(|| panic!("{report:#}"));
        assert_eq!(check["value"].as_f64(), Some(ERRORS as f64), "{check:#}");

        // A tail smaller than the window: the last lines, and the cut said.
        let mut cut = LogCollector::new("api", &log_source(&["api"], &project, 30));
        let mut few = Gathered::default();
        gather_until(&mut cut, &mut few, "the last lines", |g| g.has("written")).await;
        gather(&mut cut, &mut few).await;
        let reading = few.errors_1h.clone().expect("api.errors_1h");
        // The last 30: "written", then 9 whole ERROR/WARNING/INFO groups and the end of one.
        assert_eq!(reading.value, Value::Number(9.0), "{reading:?}");
        assert!(
            reading.detail.contains("partial: only the last 30 lines"),
            "{reading:?}"
        );

        // After a restart whose record counted up to an hour before: the cut is kept in
        // the record as well, from there to the oldest line of the tail.
        let counted_until = chrono::Utc::now() - chrono::Duration::hours(1);
        let mut cut = LogCollector::new("api", &log_source(&["api"], &project, 30)).with_record(
            Some(watchpost::collect::logs::RecordFrom {
                counted_until: Some(counted_until),
                window_start: counted_until - chrono::Duration::hours(1),
            }),
        );
        let mut few = Gathered::default();
        gather_until(&mut cut, &mut few, "the record told of the cut", |g| {
            g.counts_cut.is_some()
        })
        .await;
        let gap = few.counts_cut.clone().unwrap();
        assert_eq!(gap.from, counted_until, "{gap:?}");
        assert!(gap.to > counted_until && gap.read > 0, "{gap:?}");
        assert!(gap.why.starts_with("the tail of 30 lines of "), "{gap:?}");
    }

    /// `check` over a container's 120,000-line window: read without following, to the
    /// end of its log, so `errors_1h` is the exact count (not what came before the first
    /// quiet moment, 2 s at most before); through an engine link too slow to read it all
    /// in the one-shot limit, the figures say they are partial, never a silent low number.
    /// (A debug build reads about 25,000 lines a second on 2 shared cores: 120,000 leaves
    /// room under the 11 s limit while other tests run.)
    #[test]
    fn check_reads_a_containers_whole_window_or_says_it_was_cut() {
        require_docker!();
        let project = unique("checkwin");
        let mut cleanup = Cleanup(Vec::new());
        // 60,000 lines: enough that a read which stopped at the first quiet moment would
        // miss most of them, few enough for a loaded machine to read in check's limit.
        const GROUPS: usize = 6_000;
        // Ten lines a group: one ERROR, one WARNING that says "failed", eight INFO.
        let container = run(
            &mut cleanup,
            &project,
            "api",
            &[],
            &format!(
                "i=0; while [ $i -lt {GROUPS} ]; do i=$((i+1)); \
                 printf 'ERROR payment failed %d\\nWARNING login failed for user %d\\nINFO a %d\\nINFO b\\nINFO c\\nINFO d\\nINFO e\\nINFO f\\nINFO g\\nINFO h\\n' $i $i $i; \
                 done; echo written; sleep 600"
            ),
        );
        let started = Instant::now();
        while !docker(&["logs", "--tail", "1", &container]).contains("written") {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the container writes its lines"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "{} lines written in {:.1}s",
            GROUPS * 10 + 1,
            started.elapsed().as_secs_f64()
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("watchpost.toml");
        std::fs::write(
            &config,
            format!("[logs.api]\ndocker = [\"api\"]\nproject = \"{project}\"\ntail = 500000\n"),
        )
        .unwrap();
        let check = |docker_host: Option<&str>| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_watchpost"));
            command.args([
                "check",
                "--format",
                "json",
                "--config",
                config.to_str().unwrap(),
            ]);
            if let Some(host) = docker_host {
                command.env("DOCKER_HOST", host);
            }
            let began = Instant::now();
            let out = command.output().unwrap();
            let took = began.elapsed();
            let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
            let check = report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == "api.errors_1h")
                .cloned()
                .unwrap_or_else(|| panic!("{report:#}"));
            (check, took)
        };
        let (whole, took) = check(None);
        eprintln!("check: {whole} in {:.1}s", took.as_secs_f64());
        assert_eq!(whole["value"].as_f64(), Some(GROUPS as f64), "{whole:#}");
        assert!(
            !whole["detail"].as_str().unwrap_or("").contains("partial"),
            "{whole:#}"
        );

        // The same engine behind a slow link: the read is cut at the one-shot limit.
        let proxy = SlowEngine::start(dir.path());
        let (cut, took) = check(Some(&proxy.docker_host()));
        eprintln!(
            "check over a slow link: {cut} in {:.1}s",
            took.as_secs_f64()
        );
        let detail = cut["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains(&format!(
                "partial: the log of {container} was still being read after"
            )),
            "{cut:#}"
        );
        assert!(
            detail.contains("its newer lines are not counted"),
            "{cut:#}"
        );
        let counted = cut["value"].as_f64().unwrap_or(0.0);
        assert!(
            counted > 0.0 && counted < GROUPS as f64,
            "what was read is counted, not all: {cut:#}"
        );
        assert!(
            took < Duration::from_secs(20),
            "within check's limit: {took:?}"
        );
    }

    /// A unix socket in front of the real engine that passes its answers on slowly
    /// (about 80 KB/s), for a container log that cannot be read in the one-shot limit.
    struct SlowEngine {
        path: PathBuf,
    }

    impl SlowEngine {
        fn start(dir: &Path) -> SlowEngine {
            use std::io::{Read, Write};
            use std::os::unix::net::{UnixListener, UnixStream};
            let path = dir.join("slow-engine.sock");
            let listener = UnixListener::bind(&path).unwrap();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { return };
                    let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
                        return;
                    };
                    let (mut up_from, mut up_to) =
                        (client.try_clone().unwrap(), engine.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut up_from, &mut up_to);
                        let _ = up_to.shutdown(std::net::Shutdown::Write);
                    });
                    let (mut down_from, mut down_to) = (engine, client);
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4 * 1024];
                        loop {
                            match down_from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if down_to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        let _ = down_to.shutdown(std::net::Shutdown::Both);
                    });
                }
            });
            SlowEngine { path }
        }

        fn docker_host(&self) -> String {
            format!("unix://{}", self.path.display())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_service_with_no_running_container_says_so_until_one_starts() {
        require_docker!();
        let project = unique("idle");
        let mut cleanup = Cleanup(Vec::new());
        let mut collector = LogCollector::new("worker", &log_source(&["worker"], &project, 10));
        let mut got = Gathered::default();
        gather_until(&mut collector, &mut got, "the idle service said", |g| {
            g.error.as_deref()
                == Some(&*format!(
                    "no running container of worker in compose project {project}"
                ))
        })
        .await;
        run(
            &mut cleanup,
            &project,
            "worker",
            &[],
            "while :; do echo 'worker job failed'; sleep 0.2; done",
        );
        gather_until(
            &mut collector,
            &mut got,
            "the worker's lines, healthy",
            |g| g.has("worker job failed") && g.error.is_none(),
        )
        .await;
        let errors = got.errors_1h.clone().expect("worker.errors_1h");
        assert!(
            matches!(errors.value, Value::Number(n) if n > 0.0),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn docker_logs_with_no_engine_say_why_in_the_source_health() {
        // Needs no Docker at all: the socket does not exist.
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix://{}", dir.path().join("nothing.sock").display());
        let source = log_source(&["backend"], "warungin", 100);
        let mut collector = LogCollector::with_engine_address("backend", &source, &address);
        let mut got = Gathered::default();
        gather(&mut collector, &mut got).await;
        let message = got.error.clone().expect("an error on the first poll");
        eprintln!("no engine: {message}");
        assert!(
            message.starts_with(&format!("docker: cannot reach the engine at {address}: ")),
            "{message}"
        );
        let reading = got.errors_1h.expect("the figure, unknown");
        assert!(
            reading.error.is_some() && reading.value == Value::None,
            "{reading:?}"
        );
    }

    /// How many times each message came.
    fn counts(got: &Gathered) -> HashMap<&str, usize> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for line in &got.lines {
            *seen.entry(line.message.as_str()).or_default() += 1;
        }
        seen
    }

    fn assert_each_once(got: &Gathered) {
        let repeated: Vec<_> = counts(got).into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(repeated.is_empty(), "lines delivered twice: {repeated:?}");
    }

    fn state_of(container: &str) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            container,
        ])
    }

    fn wait_for_state(container: &str, want: &str) {
        let started = Instant::now();
        while state_of(container) != want {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{container} is {:?}, not {want:?}",
                state_of(container)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls for `how_long`, every 200 ms, adding what comes.
    async fn gather_for(collector: &mut LogCollector, into: &mut Gathered, how_long: Duration) {
        let started = Instant::now();
        while started.elapsed() < how_long {
            tokio::time::sleep(Duration::from_millis(200)).await;
            gather(collector, into).await;
        }
    }

    fn idle_message(service: &str, project: &str) -> String {
        format!("no running container of {service} in compose project {project}")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_container_that_crashed_before_the_source_started_is_read_back_once() {
        require_docker!();
        let project = unique("crashed");
        let mut cleanup = Cleanup(Vec::new());
        let crashed = run(
            &mut cleanup,
            &project,
            "backend",
            &[],
            "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo \"boot $i\"; done; sleep 0.2; \
             echo 'ERROR cannot open /etc/app.conf' >&2; sleep 0.2; echo 'shutting down'; exit 3",
        );
        wait_for_state(&crashed, "exited 3");
        const TAIL: usize = 10;
        let source_started = chrono::Utc::now();
        let mut collector = LogCollector::new("backend", &log_source(&["backend"], &project, TAIL));
        let mut got = Gathered::default();
        gather_until(
            &mut collector,
            &mut got,
            "the crashed run's last lines",
            |g| g.has("shutting down"),
        )
        .await;
        // Over a reconcile tick (10 s) and many polls: nothing more, nothing again.
        gather_for(&mut collector, &mut got, Duration::from_secs(11)).await;
        let messages: Vec<&str> = got.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages.len(), TAIL, "the last {TAIL} lines: {messages:?}");
        assert_each_once(&got);
        for i in 23..=30 {
            assert!(got.has(&format!("boot {i}")), "{messages:?}");
        }
        assert!(!got.has("boot 22"), "{messages:?}");
        let fatal: Vec<_> = got.lines.iter().filter(|l| l.is_error).collect();
        assert_eq!(fatal.len(), 1, "{messages:?}");
        assert!(fatal[0].message.contains("cannot open /etc/app.conf"));
        // Dated by the engine, when they were written.
        assert!(got.lines.iter().all(|l| l.at < source_started));
        // The error is counted, and the source still says that nothing runs.
        let reading = got.errors_1h.clone().expect("backend.errors_1h");
        assert_eq!(reading.value, Value::Number(1.0), "{reading:?}");
        assert_eq!(got.error, Some(idle_message("backend", &project)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_container_that_crashes_while_followed_delivers_up_to_the_crash_once() {
        require_docker!();
        let project = unique("crashing");
        let mut cleanup = Cleanup(Vec::new());
        // Ticks until told to crash, then a burst (a stack dump) and the panic.
        let crashing = run(
            &mut cleanup,
            &project,
            "worker",
            &[],
            "j=0; while [ ! -f /tmp/crash ]; do j=$((j+1)); echo \"tick $j\"; sleep 0.2; done; \
             k=0; while [ $k -lt 200 ]; do k=$((k+1)); echo \"dump $k\"; done; \
             echo 'panic: out of memory' >&2; exit 2",
        );
        let mut collector = LogCollector::new("worker", &log_source(&["worker"], &project, 100));
        let mut got = Gathered::default();
        gather_until(&mut collector, &mut got, "ticks while it runs", |g| {
            g.has("tick 5") && g.error.is_none()
        })
        .await;
        docker(&["exec", &crashing, "sh", "-c", ": > /tmp/crash"]);
        wait_for_state(&crashing, "exited 2");
        gather_until(&mut collector, &mut got, "the lines up to the crash", |g| {
            g.lines.iter().any(|l| l.message.contains("out of memory")) && g.has("dump 200")
        })
        .await;
        gather_until(&mut collector, &mut got, "the source to say so", |g| {
            g.error == Some(idle_message("worker", &project))
        })
        .await;
        let before = got.lines.len();
        gather_for(&mut collector, &mut got, Duration::from_secs(3)).await;
        assert_eq!(got.lines.len(), before, "nothing after the crash");
        assert_each_once(&got);
        let ticks = got
            .lines
            .iter()
            .filter(|l| l.message.starts_with("tick "))
            .count();
        for j in 1..=ticks {
            assert!(got.has(&format!("tick {j}")), "tick {j} of {ticks}");
        }
        for k in 1..=200 {
            assert!(got.has(&format!("dump {k}")), "dump {k}");
        }
        assert_eq!(got.lines.len(), ticks + 201);
        let reading = got.errors_1h.clone().expect("worker.errors_1h");
        assert_eq!(reading.value, Value::Number(1.0), "{reading:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_loop_and_a_later_start_deliver_every_run_once() {
        require_docker!();
        let project = unique("loop");
        let mut cleanup = Cleanup(Vec::new());
        let mut collector = LogCollector::new("api", &log_source(&["api"], &project, 50));
        let mut got = Gathered::default();
        gather_until(&mut collector, &mut got, "the idle service said", |g| {
            g.error == Some(idle_message("api", &project))
        })
        .await;
        // Runs 1 and 2 crash at once (restarted by the policy, a few hundred ms apart),
        // run 3 ends cleanly; a later `docker start` runs for a second.
        let looping = run(
            &mut cleanup,
            &project,
            "api",
            &["--restart", "on-failure"],
            "n=$(cat /tmp/run 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/run; \
             i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo \"run $n line $i\"; done; \
             echo \"run $n exception\" >&2; \
             if [ $n -lt 3 ]; then exit 1; fi; \
             if [ $n -gt 3 ]; then sleep 1; echo \"run $n bye\"; fi; exit 0",
        );
        wait_for_state(&looping, "exited 0");
        let run_lines =
            |n: usize| move |g: &Gathered| (1..=5).all(|i| g.has(&format!("run {n} line {i}")));
        gather_until(
            &mut collector,
            &mut got,
            "the three runs of the loop",
            |g| (1..=3).all(|n| run_lines(n)(g) && g.has(&format!("run {n} exception"))),
        )
        .await;
        assert_eq!(
            docker(&["inspect", "--format", "{{.RestartCount}}", &looping]),
            "2"
        );

        docker(&["start", &looping]);
        gather_until(&mut collector, &mut got, "the started run", |g| {
            run_lines(4)(g) && g.has("run 4 bye")
        })
        .await;
        wait_for_state(&looping, "exited 0");
        gather_until(&mut collector, &mut got, "the source to say so", |g| {
            g.error == Some(idle_message("api", &project))
        })
        .await;
        gather_for(&mut collector, &mut got, Duration::from_secs(3)).await;
        assert_each_once(&got);
        let messages: Vec<&str> = got.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages.len(), 4 * 6 + 1, "{messages:?}");
        let reading = got.errors_1h.clone().expect("api.errors_1h");
        assert_eq!(reading.value, Value::Number(4.0), "{reading:?}");
    }

    /// The number in "tick 12" or "tick 12 failed".
    fn tick_of(message: &str) -> Option<u32> {
        let rest = message.split("tick ").nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    /// (stamp, message, is_error) of the lines up to tick `last` (and the banner).
    fn up_to_tick(got: &Gathered, last: u32) -> Vec<(chrono::DateTime<chrono::Utc>, String, bool)> {
        let mut lines: Vec<_> = got
            .lines
            .iter()
            .filter(|l| tick_of(&l.message).is_none_or(|t| t <= last))
            .map(|l| (l.at, l.message.clone(), l.is_error))
            .collect();
        lines.sort();
        lines
    }

    fn last_tick(got: &Gathered) -> u32 {
        got.lines
            .iter()
            .filter_map(|l| tick_of(&l.message))
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_docker_log_source_over_ssh_delivers_the_local_lines_across_an_sshd_crash() {
        require_docker!();
        let mut sshd = sshd_or_skip!();
        let pool = sshd.quick_pool();
        let project = unique("sshlogs");
        let mut cleanup = Cleanup(Vec::new());
        // A banner, then quiet until told to tick, so both sources start from the same
        // tail; every fifth tick fails on stderr.
        let talker = run(
            &mut cleanup,
            &project,
            "api",
            &[],
            "i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo \"boot $i\"; done; \
             while [ ! -f /tmp/go ]; do sleep 0.1; done; \
             j=0; while :; do j=$((j+1)); \
             if [ $((j % 5)) = 0 ]; then echo \"ERROR tick $j failed\" >&2; \
             else echo \"tick $j\"; fi; sleep 0.1; done",
        );
        let started = Instant::now();
        while !docker(&["logs", &talker]).contains("boot 40") {
            assert!(started.elapsed() < Duration::from_secs(20), "the banner");
            std::thread::sleep(Duration::from_millis(100));
        }
        const TAIL: usize = 15;
        let local_source = log_source(&["api"], &project, TAIL);
        let remote_source = LogSource {
            host: "test".into(),
            ..log_source(&["api"], &project, TAIL)
        };
        let mut local = LogCollector::new("api", &local_source);
        let mut remote = LogCollector::on(
            "api",
            &remote_source,
            watchpost::collect::reach(&pool, "test"),
        );
        let (mut near, mut far) = (Gathered::default(), Gathered::default());
        gather_until(&mut local, &mut near, "the banner's tail here", |g| {
            g.has("boot 40")
        })
        .await;
        gather_until(&mut remote, &mut far, "the banner's tail over ssh", |g| {
            g.has("boot 40")
        })
        .await;
        assert_eq!(far.lines.len(), TAIL);
        assert_eq!(up_to_tick(&far, 0), up_to_tick(&near, 0), "the same tail");

        docker(&["exec", &talker, "sh", "-c", ": > /tmp/go"]);
        gather_until(&mut remote, &mut far, "ticks over ssh", |g| {
            g.has("tick 12")
        })
        .await;

        // The server dies mid-stream: the source says so in the host's words.
        sshd.crash();
        gather_until(&mut remote, &mut far, "the host's line", |g| {
            g.error
                .as_deref()
                .is_some_and(|m| m.starts_with("ssh test: "))
        })
        .await;
        let cut = last_tick(&far);
        eprintln!("down: {:?} after tick {cut}", far.error);
        // Lines are written while it is down (ten a second); the local source sees them.
        let down = Instant::now();
        while down.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            gather(&mut remote, &mut far).await;
            gather(&mut local, &mut near).await;
            assert!(
                far.error
                    .as_deref()
                    .is_some_and(|m| m.starts_with("ssh test: ")),
                "{:?}",
                far.error
            );
        }
        assert_eq!(
            last_tick(&far),
            cut,
            "nothing arrives while the host is down"
        );
        let written = last_tick(&near);
        assert!(written > cut + 10, "written {written}, cut at {cut}");

        sshd.start_again().unwrap();
        let target = written + 5;
        gather_until(&mut remote, &mut far, "the ticks written meanwhile", |g| {
            last_tick(g) >= target && g.error.is_none()
        })
        .await;
        gather_until(&mut local, &mut near, "the same ticks here", |g| {
            last_tick(g) >= target
        })
        .await;
        assert_each_once(&far);
        let (here, there) = (up_to_tick(&near, target), up_to_tick(&far, target));
        assert_eq!(there.len(), TAIL + target as usize);
        assert!(
            here == there,
            "over ssh the same lines, stamps and errors as here:\nhere {here:?}\nthere {there:?}"
        );
        let failed = there.iter().filter(|(_, _, error)| *error).count();
        assert_eq!(failed, target as usize / 5);
        assert_eq!(sshd.established_from_here(), 1, "one connection");
    }
}

// ---------------------------------------------------------------------------------------
// Alert hygiene through the lifecycle of a compose project.

/// Creates (does not start) a container of compose project `project`, service `service`.
fn create(cleanup: &mut Cleanup, project: &str, service: &str) -> String {
    let name = unique(service);
    cleanup.0.push(name.clone());
    let project_label = format!("com.docker.compose.project={project}");
    let service_label = format!("com.docker.compose.service={service}");
    docker(&[
        "create",
        "--name",
        &name,
        "--label",
        &project_label,
        "--label",
        &service_label,
        IMAGE,
        "sleep",
        "3600",
    ]);
    name
}

/// A dashboard's state fed by one collector, with every alert event kept.
struct Watched {
    collector: DockerCollector,
    state: watchpost::state::AppState,
    events: Vec<watchpost::state::alerts::AlertEvent>,
    /// What went wrong, at any step (checked at the end, so one run shows all of it).
    problems: Vec<String>,
}

impl Watched {
    fn new(project: &str) -> Watched {
        let mut state = watchpost::state::AppState::new(watchpost::state::Window::new(
            "churn",
            chrono::Utc::now(),
            chrono::Duration::hours(24),
        ));
        state.enable_outbox();
        Watched {
            collector: collector(project),
            state,
            events: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// One poll applied to the state, then a tick, as the app loop does.
    async fn step(&mut self, phase: &str) -> Poll {
        let p = poll(&mut self.collector).await;
        let now = chrono::Utc::now();
        for update in p.updates.clone() {
            self.state.apply(update, now);
        }
        self.state.tick(now);
        self.collect(phase);
        p
    }

    fn collect(&mut self, phase: &str) {
        use watchpost::model::rule::Priority;
        for out in self.state.take_outbox() {
            if let watchpost::state::Outgoing::Alert(e) = out {
                let opens = matches!(
                    e.kind.as_str(),
                    "pending" | "fired" | "changed" | "flapping"
                );
                if opens && e.priority < Priority::P3 {
                    self.problems.push(format!(
                        "{phase}: {} {} {} {} ({})",
                        e.kind.as_str(),
                        e.id,
                        e.priority.label(),
                        e.condition.label(),
                        e.value
                    ));
                }
                self.events.push(e);
            }
        }
        for a in &self.state.alerts.active {
            if a.priority < Priority::P3 {
                let line = format!(
                    "{phase}: active {} {} {}",
                    a.id,
                    a.priority.label(),
                    a.condition.label()
                );
                if !self.problems.contains(&line) {
                    self.problems.push(line);
                }
            }
        }
    }

    /// Steps until `done` holds (or fails the test after `limit`).
    async fn until(&mut self, phase: &str, limit: Duration, done: impl Fn(&Poll) -> bool) {
        let started = Instant::now();
        loop {
            let p = self.step(phase).await;
            if done(&p) {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{phase}: still waiting after {limit:?}; last poll {p:#?}; problems so far {:#?}",
                self.problems
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Nothing of `project` is left in the Services, Containers and Alerts panes' state,
    /// nor among the figures.
    fn ghosts(&self, project: &str) -> Vec<String> {
        let mut ghosts = Vec::new();
        for name in self.state.services.keys() {
            if name.starts_with(&format!("{project}/")) {
                ghosts.push(format!("Services row {name}"));
            }
        }
        for row in self.state.containers.values().flatten() {
            ghosts.push(format!("Containers row {}", row.name));
        }
        for id in self.state.figures.keys() {
            if id.starts_with("dock.") {
                ghosts.push(format!("figure {id}"));
            }
        }
        for a in &self.state.alerts.active {
            ghosts.push(format!("alert {} {}", a.id, a.condition.label()));
        }
        ghosts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_churn_raises_nothing_above_p3_and_leaves_no_ghosts() {
    require_docker!();
    let project = unique("churn");
    let mut cleanup = Cleanup(Vec::new());
    let mut w = Watched::new(&project);
    w.step("empty project").await;

    // 1. Three services created, then started together (as `docker compose up` does):
    // each passes through `created`.
    let services = ["q1", "q2", "q3"];
    let names: Vec<String> = services
        .iter()
        .map(|s| create(&mut cleanup, &project, s))
        .collect();
    w.until("created", Duration::from_secs(20), |p| {
        p.rows.as_ref().is_some_and(|r| r.len() == 3)
    })
    .await;
    // Seen in `created` for a while, as a slow start would be.
    for _ in 0..4 {
        w.step("created").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut start = vec!["start"];
    start.extend(names.iter().map(String::as_str));
    docker(&start);
    w.until("started", Duration::from_secs(20), |p| {
        p.rows
            .as_ref()
            .is_some_and(|r| r.len() == 3 && r.iter().all(|r| r.state == "running"))
    })
    .await;
    assert_eq!(
        w.state
            .services
            .keys()
            .filter(|k| k.starts_with(&project))
            .count(),
        3,
        "{:?}",
        w.state.services.keys()
    );

    // 2. All removed (`docker rm -f`, as `docker compose down` ends): gone from every
    // pane within one interval, one "removed" line each, never "no data".
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    docker(&rm);
    w.until("removed", Duration::from_secs(10), |p| {
        p.rows.as_ref().is_some_and(|r| r.is_empty())
    })
    .await;
    w.step("removed").await;
    let ghosts = w.ghosts(&project);
    if !ghosts.is_empty() {
        w.problems.push(format!("after removal: ghosts {ghosts:?}"));
    }
    // A minute later (time passing without a poll, then with one): still nothing.
    let later = chrono::Utc::now() + chrono::Duration::seconds(90);
    w.state.tick(later);
    w.collect("a minute after removal");
    let ghosts = w.ghosts(&project);
    if !ghosts.is_empty() {
        w.problems
            .push(format!("a minute after removal: ghosts {ghosts:?}"));
    }
    let removed: Vec<&str> = w
        .events
        .iter()
        .filter(|e| e.kind.as_str() == "removed")
        .map(|e| e.id.as_str())
        .collect();
    let mut expected: Vec<String> = services.iter().map(|s| format!("dock.{s}")).collect();
    expected.sort();
    let mut got: Vec<String> = removed.iter().map(|s| s.to_string()).collect();
    got.sort();
    if got != expected {
        w.problems.push(format!(
            "one \"removed\" line per container expected, got {got:?}"
        ));
    }

    // 3. Recreated and started together again.
    let names: Vec<String> = services
        .iter()
        .map(|s| create(&mut cleanup, &project, s))
        .collect();
    let mut start = vec!["start"];
    start.extend(names.iter().map(String::as_str));
    docker(&start);
    w.until("recreated", Duration::from_secs(20), |p| {
        p.rows
            .as_ref()
            .is_some_and(|r| r.len() == 3 && r.iter().all(|r| r.state == "running"))
    })
    .await;

    // 4. One replaced by a new replica the way compose recreates a container: the new one
    // created beside it, the old one stopped and removed, the new one renamed and started.
    let old = names[0].clone();
    let fresh = create(&mut cleanup, &project, "q1");
    w.step("replacing").await;
    docker(&["stop", "-t", "0", &old]);
    w.step("replacing").await;
    docker(&["rm", &old]);
    w.step("replacing").await;
    let renamed = unique("q1");
    cleanup.0.push(renamed.clone());
    docker(&["rename", &fresh, &renamed]);
    docker(&["start", &renamed]);
    w.until("replaced", Duration::from_secs(20), |p| {
        p.rows.as_ref().is_some_and(|r| {
            r.len() == 3 && r.iter().all(|r| r.state == "running") && p.row(&renamed).is_some()
        })
    })
    .await;
    w.step("replaced").await;
    let rows = w.state.containers.get("dock").cloned().unwrap_or_default();
    if rows.iter().any(|r| r.name == old) {
        w.problems
            .push(format!("the replaced container {old} is still listed"));
    }
    let q1: Vec<&String> = w
        .state
        .services
        .keys()
        .filter(|k| k.starts_with(&project))
        .collect();
    if q1.len() != 3 {
        w.problems
            .push(format!("three Services rows expected, got {q1:?}"));
    }

    // The record's view of the same events: nothing left open.
    let replay = watchpost::record::replay(&w.events);
    for a in &replay.open {
        w.problems.push(format!(
            "the record keeps {} open ({})",
            a.id,
            a.condition.label()
        ));
    }
    let kinds: Vec<String> = w
        .events
        .iter()
        .map(|e| format!("{} {} {}", e.kind.as_str(), e.id, e.priority.label()))
        .collect();
    assert!(
        w.problems.is_empty(),
        "problems:\n{}\nalert events:\n{}",
        w.problems.join("\n"),
        kinds.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// [[docker.NAME.exec]]: figures from commands run inside a service's container.

fn exec_collector(project: &str) -> DockerCollector {
    let config = watchpost::config::Config::parse(&format!(
        r#"[docker.dk]
project = "{project}"
interval = "1s"

[[docker.dk.exec]]
id = "misses"
service = "cache"
command = ["sh", "-c", "echo '# Stats'; echo keyspace_hits:42; echo keyspace_misses:8"]
field = "keyspace_misses"
warn = "> 5"

[[docker.dk.exec]]
id = "conns"
service = "cache"
command = ["sh", "-c", "echo '{{\"db\": {{\"conns\": 7}}}}'"]
field = "db.conns"

[[docker.dk.exec]]
id = "query_ms"
service = "cache"
command = ["sh", "-c", "echo PONG; echo 'query took 12.5 ms'"]
regex = "took ([0-9.]+) ms"
unit = "ms"

[[docker.dk.exec]]
id = "ready"
service = "cache"
command = ["sh", "-c", "exit 2"]

[[docker.dk.exec]]
id = "literal"
service = "cache"
command = ["echo", "a; rm -rf /tmp/x | cat", "*", "`id`"]
regex = "(.*)"

[[docker.dk.exec]]
id = "hang"
service = "cache"
command = ["sleep", "37"]
interval = "5s"
timeout = "1s"

[[docker.dk.exec]]
id = "absent"
service = "nosuch"
command = ["true"]
"#
    ))
    .unwrap();
    DockerCollector::new("dk", &config.docker["dk"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_reads_figures_from_a_containers_output_and_cuts_a_hang() {
    require_docker!();
    let project = unique("exec");
    let mut cleanup = Cleanup(Vec::new());
    let name = run(&mut cleanup, &project, "cache", &[], "sleep 600");

    // As `watchpost check` polls: every exec runs, and is waited for.
    let mut once = exec_collector(&project);
    once.one_shot();
    let p = poll(&mut once).await;
    let value = |id: &str| {
        p.reading(id)
            .unwrap_or_else(|| panic!("no {id} in {:#?}", p.readings))
            .clone()
    };
    let misses = value("dk.misses");
    assert_eq!(misses.value, Value::Number(8.0), "{misses:?}");
    assert_eq!(misses.detail, format!("in {name}"));
    assert_eq!(judge(&misses, None), Severity::Warn);
    assert_eq!(value("dk.conns").value, Value::Number(7.0));
    let query = value("dk.query_ms");
    assert_eq!(
        (query.value.clone(), query.unit.as_str()),
        (Value::Number(12.5), "ms")
    );
    // No extraction: the exit code, critical when not 0 (pg_isready's way of saying it).
    let ready = value("dk.ready");
    assert_eq!(ready.value, Value::Number(2.0));
    assert_eq!(judge(&ready, None), Severity::Crit);
    // The arguments reach the program as they are: no shell of ours expands them.
    assert_eq!(
        value("dk.literal").value,
        Value::Text("a; rm -rf /tmp/x | cat * `id`".into())
    );
    let hang = value("dk.hang");
    let error = hang.error.clone().expect("the hang is an error");
    assert!(error.contains("still running after 1s"), "{error}");
    assert!(error.contains("stopped (process"), "{error}");
    let absent = value("dk.absent");
    assert!(
        absent.error.as_deref().unwrap().contains(&format!(
            "no running container of nosuch in compose project {project}"
        )),
        "{absent:?}"
    );
    // The hung command is gone from the container.
    let top = docker(&["top", &name]);
    assert!(!top.contains("sleep 37"), "{top}");

    // Live: a poll never waits for a run; the hang's figure comes once it is cut.
    let mut live = exec_collector(&project);
    // The first poll connects to the engine, then starts the runs.
    poll(&mut live).await;
    let started = Instant::now();
    let p = poll(&mut live).await;
    assert!(
        started.elapsed() < Duration::from_millis(900) && p.reading("dk.hang").is_none(),
        "the poll waited for the runs: {:?}",
        started.elapsed()
    );
    let p = poll_until(&mut live, Duration::from_secs(10), "the hang cut", |p| {
        p.reading("dk.hang").is_some()
    })
    .await;
    assert!(p.reading("dk.hang").unwrap().error.is_some());
}

// ---------------------------------------------------------------------------------------
// `[redis.NAME] container = "SERVICE"`: the server reached at its container's address.

mod databases {
    use super::*;
    use crate::support::updates::{health, number};
    use watchpost::collect::redis::RedisCollector;
    use watchpost::config::Config;

    const REDIS_IMAGE: &str = "watchpost-test-redis:latest";
    const REDIS_SERVER: &str = "/usr/bin/redis-server";

    /// Debian's redis-server is linked dynamically: the image, FROM scratch, holds it and
    /// every library `ldd` names, at their paths. Built once per binary (a label says which).
    fn build_redis_image() -> Result<(), String> {
        let (len, modified) = size_and_mtime(Path::new(REDIS_SERVER))
            .map_err(|e| format!("{e} (apt-get install -y redis-server)"))?;
        let stamp = format!("{len}-{modified}");
        let ldd = Command::new("ldd")
            .arg(REDIS_SERVER)
            .output()
            .map_err(|e| format!("ldd: {e}"))?;
        let mut files = vec![PathBuf::from(REDIS_SERVER)];
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux… (0x…)"
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                files.push(PathBuf::from(path));
            }
        }
        build_scratch_image(
            REDIS_IMAGE,
            ("watchpost.redis", &stamp),
            |rootfs| {
                for file in &files {
                    let to = rootfs.join(file.strip_prefix("/").unwrap());
                    std::fs::create_dir_all(to.parent().unwrap()).map_err(|e| e.to_string())?;
                    std::fs::copy(file, &to).map_err(|e| format!("{}: {e}", file.display()))?;
                }
                Ok(())
            },
            &format!(
                "ENTRYPOINT [\"{REDIS_SERVER}\", \"--bind\", \"0.0.0.0\", \"--protected-mode\", \"no\", \"--save\", \"\", \"--dir\", \"/tmp\"]"
            ),
        )
    }

    /// A network of its own with a /24 free here, so each container gets the address the
    /// test gives it; removed (with its containers) at the end.
    struct Network {
        name: String,
        prefix: String,
        containers: Cleanup,
    }

    impl Network {
        fn create() -> Network {
            let name = unique("net");
            for attempt in 0..20u32 {
                let seed = std::process::id().wrapping_add(attempt * 7919);
                let prefix = format!("10.{}.{}", 100 + seed % 100, (seed / 100) % 250);
                let made = Command::new("docker")
                    .args([
                        "network",
                        "create",
                        "--subnet",
                        &format!("{prefix}.0/24"),
                        &name,
                    ])
                    .output()
                    .unwrap();
                if made.status.success() {
                    return Network {
                        name,
                        prefix,
                        containers: Cleanup(Vec::new()),
                    };
                }
            }
            panic!("no free /24 for a test network");
        }

        /// A redis container of compose service `service` in `project`, named `name`, at
        /// `<prefix>.<host>`.
        fn redis(&mut self, name: &str, service: &str, project: &str, host: u8) -> String {
            let ip = format!("{}.{host}", self.prefix);
            docker(&[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                &self.name,
                "--ip",
                &ip,
                "--label",
                &format!("com.docker.compose.service={service}"),
                "--label",
                &format!("com.docker.compose.project={project}"),
                REDIS_IMAGE,
            ]);
            if !self.containers.0.iter().any(|c| c == name) {
                self.containers.0.push(name.to_string());
            }
            ip
        }
    }

    impl Drop for Network {
        fn drop(&mut self) {
            let mut args = vec!["rm".to_string(), "-f".to_string()];
            args.append(&mut self.containers.0);
            if args.len() > 2 {
                let _ = Command::new("docker").args(&args).output();
            }
            let _ = Command::new("docker")
                .args(["network", "rm", &self.name])
                .output();
        }
    }

    fn collector(body: &str) -> RedisCollector {
        let config = Config::parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        let (name, source) = config.redis.iter().next().expect("a [redis.NAME] source");
        RedisCollector::new(name, source)
    }

    /// The Services row's detail, and the source's error if it is down.
    fn said(updates: &[Update]) -> (Option<String>, Option<String>) {
        let row = updates.iter().find_map(|u| match u {
            Update::Service(s) => Some(s.detail.clone()),
            _ => None,
        });
        let error = match health(updates) {
            SourceHealth::Error { message, .. } => Some(message),
            _ => None,
        };
        (row, error)
    }

    /// Polls until `done` holds, for at most 20 s; the last poll's updates.
    fn poll_until(
        rt: &tokio::runtime::Runtime,
        c: &mut RedisCollector,
        what: &str,
        done: impl Fn(&[Update]) -> bool,
    ) -> Vec<Update> {
        let started = Instant::now();
        loop {
            let updates = rt.block_on(c.poll());
            if done(&updates) {
                return updates;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what}: {:?}",
                said(&updates)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The same through a `[hosts]` host: the engine asked through the host's SSH
    /// connection (its forwarded socket), the server reached through a channel of that
    /// same connection.
    #[test]
    fn redis_in_a_container_on_a_host_is_reached_through_its_ssh_connection() {
        require_docker!();
        if let Err(problem) = build_redis_image() {
            if docker_required() {
                panic!("WATCHPOST_REQUIRE_DOCKER=1 but {problem}");
            }
            eprintln!("SKIPPED (no Redis image): {problem}");
            return;
        }
        let sshd = sshd_or_skip!();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _inside = rt.enter();
        let pool = sshd.quick_pool();
        let mut net = Network::create();
        let project = unique("shop");
        let name = unique("cache");
        let ip = net.redis(&name, "cache", &project, 20);
        let config = Config::parse(&format!(
            "[redis.cache]\ncontainer = \"cache\"\nproject = \"{project}\"\ntimeout = \"2s\"\n"
        ))
        .unwrap();
        let source = watchpost::config::RedisSource {
            host: "test".into(),
            ..config.redis["cache"].clone()
        };
        let mut c = RedisCollector::on("cache", &source, watchpost::collect::reach(&pool, "test"));
        let up = poll_until(&rt, &mut c, "up through the host", |u| {
            number(u, "cache.up") == 1.0
        });
        let row = said(&up).0.unwrap();
        eprintln!("{row}");
        assert!(row.contains(&format!("({ip}:6379)")), "{row}");
        assert_eq!(
            sshd.established_from_here(),
            1,
            "one connection to the host"
        );
    }

    /// A compose service's Redis, published nowhere, reached at its container's address on
    /// its network as the engine says; recreated with another address, found there at the
    /// next connection; stopped, or never there, a source error that says so.
    #[test]
    fn redis_in_a_container_is_reached_at_its_address_and_found_again_when_recreated() {
        require_docker!();
        if let Err(problem) = build_redis_image() {
            if docker_required() {
                panic!("WATCHPOST_REQUIRE_DOCKER=1 but {problem}");
            }
            eprintln!("SKIPPED (no Redis image): {problem}");
            return;
        }
        let mut net = Network::create();
        let project = unique("shop");
        let name = unique("cache");
        let first_ip = net.redis(&name, "cache", &project, 10);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut c = collector(&format!(
            "[redis.cache]\ncontainer = \"cache\"\nproject = \"{project}\"\ntimeout = \"2s\"\n"
        ));
        let up = poll_until(&rt, &mut c, "up at the first address", |u| {
            number(u, "cache.up") == 1.0
        });
        let (row, _) = said(&up);
        let row = row.unwrap();
        eprintln!("{row}");
        assert!(
            row.contains(&format!(
                "at container cache of compose project {project} ({first_ip}:6379)"
            )),
            "{row}"
        );
        let inspected = docker(&[
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &name,
        ]);
        assert_eq!(inspected, first_ip);

        // A url whose host is the container's name, as the app's compose config writes it
        // (a name no DNS here resolves): the container's address, from the engine.
        let mut named = collector(&format!(
            "[redis.named]\nurl = \"redis://cache:6379\"\ncontainer = \"cache\"\nproject = \"{project}\"\ntimeout = \"2s\"\n"
        ));
        let up = poll_until(&rt, &mut named, "up by the url's host", |u| {
            number(u, "named.up") == 1.0
        });
        let row = said(&up).0.unwrap();
        eprintln!("{row}");
        assert!(
            row.contains(&format!(
                "at container cache of compose project {project} ({first_ip}:6379)"
            )),
            "{row}"
        );
        // A url with another host (here the container's IP, as a server anywhere would be
        // given): reached as written, the engine not asked — its container is not there.
        let config = Config::parse(&format!(
            "[redis.written]\ncontainer = \"sessions\"\nproject = \"{project}\"\ntimeout = \"2s\"\n"
        ))
        .unwrap();
        let source = watchpost::config::RedisSource {
            url: Some(format!("redis://{first_ip}:6379")),
            ..config.redis["written"].clone()
        };
        let mut written = RedisCollector::new("written", &source);
        let up = poll_until(&rt, &mut written, "up at the url's address", |u| {
            number(u, "written.up") == 1.0
        });
        let row = said(&up).0.unwrap();
        eprintln!("{row}");
        assert!(row.contains(&format!(" at {first_ip}:6379, ")), "{row}");
        assert!(!row.contains("container"), "{row}");

        // Recreated (as `docker compose up` does after a change) at another address.
        docker(&["rm", "-f", &name]);
        let second_ip = net.redis(&name, "cache", &project, 11);
        let again = poll_until(&rt, &mut c, "up at the new address", |u| {
            number(u, "cache.up") == 1.0
                && said(u)
                    .0
                    .is_some_and(|r| r.contains(&format!("({second_ip}:6379)")))
        });
        eprintln!("{}", said(&again).0.unwrap());

        // Stopped: a source error that says so, `up` 0.
        docker(&["stop", "-t", "1", &name]);
        let stopped = poll_until(&rt, &mut c, "down while stopped", |u| {
            number(u, "cache.up") == 0.0 && said(u).1.is_some_and(|e| e.contains("is not running"))
        });
        let message = said(&stopped).1.unwrap();
        eprintln!("{message}");
        assert!(
            message.starts_with(&format!(
                "redis cache: container cache of compose project {project} is not running ({name}: Exited"
            )),
            "{message}"
        );
        // Started again: up at its address.
        docker(&["start", &name]);
        poll_until(&rt, &mut c, "up after a start", |u| {
            number(u, "cache.up") == 1.0
        });

        // A service that is not there.
        let mut missing = collector(&format!(
            "[redis.sessions]\ncontainer = \"sessions\"\nproject = \"{project}\"\ntimeout = \"2s\"\n"
        ));
        let none = rt.block_on(missing.poll());
        assert_eq!(number(&none, "sessions.up"), 0.0);
        assert_eq!(
            said(&none).1.as_deref(),
            Some(
                format!(
                    "redis sessions: no container of compose service sessions in project {project} and none named sessions"
                )
                .as_str()
            )
        );
        // The same lookup for PostgreSQL.
        let config = Config::parse(&format!(
            "[postgres.db]\nurl = \"postgres://app@db/app\"\ncontainer = \"db\"\nproject = \"{project}\"\ntimeout = \"2s\"\n"
        ))
        .unwrap();
        let mut db =
            watchpost::collect::postgres::PostgresCollector::new("db", &config.postgres["db"]);
        let none = rt.block_on(db.poll());
        assert_eq!(number(&none, "db.up"), 0.0);
        assert_eq!(
            said(&none).1.as_deref(),
            Some(
                format!(
                    "postgres db: no container of compose service db in project {project} and none named db"
                )
                .as_str()
            )
        );
    }
}
