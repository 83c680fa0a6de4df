//! The SSH transport against a real OpenSSH server on 127.0.0.1 (see support/sshd.rs).

use crate::support::net::ClosedPort;
use crate::support::sshd;

use sshd::{Agent, PASSPHRASE};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use watchpost::config::HostKeyPolicy;
use watchpost::transport::{
    AgentSource, HostStatus, LineStream, StreamEvent, StreamSpec, Transport, TransportError,
};

const WAIT: Duration = Duration::from_secs(15);

/// Waits until the host's status satisfies `want`, or fails with the last one seen.
async fn wait_status(transport: &Transport, want: impl Fn(&HostStatus) -> bool) -> HostStatus {
    let mut rx = transport.status();
    let deadline = Instant::now() + WAIT;
    loop {
        let now = rx.borrow_and_update().clone();
        if want(&now) {
            return now;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
            panic!("status never matched; last: {now:?}");
        }
    }
}

async fn wait_down(transport: &Transport) -> String {
    match wait_status(transport, |s| matches!(s, HostStatus::Down { .. })).await {
        HostStatus::Down { reason, .. } => reason,
        _ => unreachable!(),
    }
}

/// The next line of a stream within `limit`, skipping other events.
async fn next_line(stream: &mut LineStream, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.recv()).await {
            Ok(Some(StreamEvent::Line { text, .. })) => {
                return Some(String::from_utf8_lossy(&text).into_owned());
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Waits for the stream's command to have started (so appends are seen by it).
async fn wait_started(stream: &mut LineStream) {
    match tokio::time::timeout(WAIT, stream.recv()).await {
        Ok(Some(StreamEvent::Started { .. })) => {}
        Ok(Some(other)) => panic!("expected Started, got {other:?}"),
        _ => panic!("the stream never started"),
    }
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn marker(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "/tmp/pwned-{name}-{}-{}",
        std::process::id(),
        rand_u64()
    ))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_login_with_ed25519_ecdsa_and_rsa() {
    let sshd = sshd_or_skip!();
    for key in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let pool = sshd.pool(key);
        let t = pool.transport("test").unwrap();
        assert_eq!(t.name(), "test");
        let out = t
            .exec(&["id", "-un"])
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(out.stdout_text().trim(), sshd.user, "{key}");
        assert!(out.success());
        wait_status(&t, HostStatus::is_up).await;
    }
    // Exit codes, stderr and signals come back as data.
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let out = t
        .exec(&["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    assert_eq!(out.status.code, Some(3));
    let out = t.exec(&["sh", "-c", "kill -TERM $$"]).await.unwrap();
    assert_eq!(out.status.code, None, "{:?}", out.status);
    assert_eq!(out.status.signal.as_deref(), Some("TERM"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_login() {
    let sshd = sshd_or_skip!();
    let agent = Agent::start(sshd.dir(), "full", &[sshd.key("id_ed25519")]).unwrap();
    let mut entry = sshd.entry("id_ed25519");
    entry.identity_files.clear();
    let mut options = sshd.options();
    options.agent = AgentSource::Socket(agent.socket.clone());
    let t = sshd
        .pool_with(entry.clone(), options.clone())
        .transport("test")
        .unwrap();
    let out = t.exec(&["echo", "via agent"]).await.unwrap();
    assert_eq!(out.stdout_text(), "via agent\n");

    // An agent without the right key: refused, and the message says what was tried.
    let empty = Agent::start(sshd.dir(), "empty", &[]).unwrap();
    options.agent = AgentSource::Socket(empty.socket.clone());
    let t = sshd.pool_with(entry, options).transport("test").unwrap();
    let reason = wait_down(&t).await;
    assert!(reason.contains("authentication failed"), "{reason}");
    assert!(reason.contains("agent"), "{reason}");
    assert!(!reason.contains("password"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_key_is_unlocked_before_the_tui_starts() {
    let sshd = sshd_or_skip!();
    // Without a passphrase the key is skipped, and the message says how to give one.
    let t = sshd.pool("id_locked").transport("test").unwrap();
    let reason = wait_down(&t).await;
    assert!(reason.contains("encrypted and no passphrase"), "{reason}");

    let pool = sshd.pool("id_locked");
    let mut asked = Vec::new();
    let mut prompt = |key: &Path| {
        asked.push(key.to_path_buf());
        Ok(PASSPHRASE.to_string())
    };
    let unlocked = pool.unlock_keys(&["test", "local"], &mut prompt).unwrap();
    assert_eq!(unlocked, vec![sshd.key("id_locked")]);
    assert_eq!(asked, vec![sshd.key("id_locked")]);
    let t = pool.transport("test").unwrap();
    let out = t.exec(&["echo", "unlocked"]).await.unwrap();
    assert_eq!(out.stdout_text(), "unlocked\n");

    // A key the agent holds is not asked for. (ssh-add reads the passphrase through an
    // askpass helper, there is no terminal here.)
    let agent = Agent::start(sshd.dir(), "locked", &[]).unwrap();
    let askpass = sshd.dir().join("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{PASSPHRASE}'\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let added = std::process::Command::new("ssh-add")
        .arg(sshd.key("id_locked"))
        .env("SSH_AUTH_SOCK", &agent.socket)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("SSH_ASKPASS", &askpass)
        .env("DISPLAY", "none")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut options = sshd.options();
    options.agent = AgentSource::Socket(agent.socket.clone());
    let pool = sshd.pool_with(sshd.entry("id_locked"), options);
    let mut never = |_: &Path| -> std::io::Result<String> { panic!("the agent has this key") };
    assert!(pool.unlock_keys(&["test"], &mut never).unwrap().is_empty());
    let out = pool
        .transport("test")
        .unwrap()
        .exec(&["true"])
        .await
        .unwrap();
    assert!(out.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_is_refused_with_how_to_add_it() {
    let sshd = sshd_or_skip!();
    std::fs::write(sshd.known_hosts(), "").unwrap();
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let reason = wait_down(&t).await;
    let keyscan = format!(
        "ssh-keyscan -p {} 127.0.0.1 >> {}",
        sshd.port,
        sshd.known_hosts().display()
    );
    assert!(reason.contains("is not known"), "{reason}");
    assert!(reason.contains(&keyscan), "{reason}");
    assert!(reason.contains("accept-new"), "{reason}");
    assert!(reason.contains("SHA256:"), "{reason}");
    // exec answers at once with the same explanation.
    let started = Instant::now();
    let err = t.exec(&["true"]).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(matches!(err, TransportError::HostDown { .. }), "{err}");
    let shown = err.to_string();
    assert!(shown.starts_with("ssh test: "), "{shown}");
    assert!(shown.contains(&keyscan), "{shown}");
    assert!(shown.contains("retrying in"), "{shown}");
    assert_eq!(std::fs::read_to_string(sshd.known_hosts()).unwrap(), "");

    // A plain `127.0.0.1` entry vouches for port 22 only, as with OpenSSH.
    std::fs::write(
        sshd.known_hosts(),
        format!("127.0.0.1 {}\n", sshd.host_public_key()),
    )
    .unwrap();
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let reason = wait_down(&t).await;
    assert!(reason.contains("is not known"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_is_refused_loudly_even_with_accept_new() {
    let sshd = sshd_or_skip!();
    let other = sshd.dir().join("other_host_key");
    sshd::keygen(&other, "ed25519", "").unwrap();
    let other_pub = std::fs::read_to_string(other.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", other.display())))
        .unwrap();
    let other_pub: String = other_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let recorded = format!("{} {other_pub}\n", sshd.host_pattern());
    std::fs::write(sshd.known_hosts(), &recorded).unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        let mut entry = sshd.entry("id_ed25519");
        entry.host_key = policy;
        let t = sshd
            .pool_with(entry, sshd.options())
            .transport("test")
            .unwrap();
        let reason = wait_down(&t).await;
        assert!(
            reason.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
            "{reason}"
        );
        assert!(reason.contains("ssh-keygen -R"), "{reason}");
        assert!(reason.contains("line 1"), "{reason}");
        let err = t.exec(&["true"]).await.unwrap_err().to_string();
        assert!(
            err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(sshd.known_hosts()).unwrap(),
            recorded
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_records_the_key_and_hashed_entries_match() {
    let sshd = sshd_or_skip!();
    std::fs::write(sshd.known_hosts(), "# my hosts\n").unwrap();
    let mut entry = sshd.entry("id_ed25519");
    entry.host_key = HostKeyPolicy::AcceptNew;
    let t = sshd
        .pool_with(entry, sshd.options())
        .transport("test")
        .unwrap();
    t.exec(&["true"]).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(sshd.known_hosts()).unwrap(),
        format!("# my hosts\n{}\n", sshd.known_hosts_line())
    );
    // Strict now connects with the recorded key, also after hashing the file.
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(sshd.known_hosts())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hashed = std::fs::read_to_string(sshd.known_hosts()).unwrap();
    assert!(hashed.contains("|1|"), "{hashed}");
    assert!(!hashed.contains("127.0.0.1"), "{hashed}");
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let out = t.exec(&["echo", "hashed ok"]).await.unwrap();
    assert_eq!(out.stdout_text(), "hashed ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_argument_is_quoted_and_nothing_is_injected() {
    let sshd = sshd_or_skip!();
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let mark = marker("exec");
    let m = mark.display();
    let hostile = [
        format!("x; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("a\nb; touch {m}"),
        format!("' ; touch {m}; echo '"),
        format!("| touch {m}"),
        format!("&& touch {m}"),
    ];
    for value in &hostile {
        let out = t.exec(&["printf", "%s", value.as_str()]).await.unwrap();
        assert_eq!(&out.stdout_text(), value);
        // As a unit name, an argument of a command that fails.
        t.exec(&["systemctl", "show", value.as_str()])
            .await
            .unwrap();
        let out = t.exec(&["ls", "--", value.as_str()]).await.unwrap();
        assert!(!out.success());
        // As $1 of a script.
        let out = t
            .exec_script(
                "printf '%s' \"$1\"",
                &[value.as_str()],
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!(&out.stdout_text(), value);
    }
    // And as a path to follow.
    // (No such file: the follower waits for it, quietly.)
    let mut stream = t.stream(StreamSpec::follow_file(hostile[0].clone(), 1));
    let _ = tokio::time::timeout(Duration::from_millis(1500), stream.recv()).await;
    assert!(
        !mark.exists(),
        "{} was created: an argument ran as a command",
        m
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_stream_receives_appended_lines() {
    let sshd = sshd_or_skip!();
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let log = sshd.dir().join("app log.jsonl");
    std::fs::write(&log, "old 1\nold 2\n").unwrap();
    let mut stream = t.follow_file(&log.to_string_lossy(), 1).await;
    wait_started(&mut stream).await;
    assert_eq!(next_line(&mut stream, WAIT).await.as_deref(), Some("old 2"));
    append(&log, "new 1\nnew ");
    assert_eq!(next_line(&mut stream, WAIT).await.as_deref(), Some("new 1"));
    // A partial line waits for its newline.
    assert_eq!(
        next_line(&mut stream, Duration::from_millis(500)).await,
        None
    );
    append(&log, "2\n");
    assert_eq!(next_line(&mut stream, WAIT).await.as_deref(), Some("new 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_stops_the_remote_command() {
    let sshd = sshd_or_skip!();
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    // A sleep no other test runs, to find it in the process table.
    let seconds = format!("{}.{}", 900 + std::process::id() % 97, rand_u64() % 100_000);
    let mut stream = t.stream(StreamSpec::fixed(&["sleep", seconds.as_str()]));
    wait_started(&mut stream).await;
    // Looked up in /proc: is a `sleep SECONDS` process alive?
    let running = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|c| c == format!("sleep\0{seconds}\0").as_bytes())
        })
    };
    let deadline = Instant::now() + WAIT;
    while !running() {
        assert!(Instant::now() < deadline, "the remote sleep never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() {
        assert!(
            Instant::now() < deadline,
            "the remote sleep outlived its stream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_closes_the_channel_and_the_connection_stays() {
    let sshd = sshd_or_skip!();
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    t.exec(&["true"]).await.unwrap();
    let started = Instant::now();
    let err = t
        .exec_timeout(&["sleep", "5"], Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        t.exec(&["echo", "still"]).await.unwrap().stdout_text(),
        "still\n"
    );
    assert_eq!(sshd.established_from_here(), 1);
}

/// A unix socket server that answers every line in upper case.
fn echo_server(path: &Path) -> std::thread::JoinHandle<()> {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let mut writer = conn.try_clone().unwrap();
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { return };
                    if writer
                        .write_all(format!("{}\n", line.to_uppercase()).as_bytes())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    })
}

async fn ask_echo(path: &Path, text: &str) -> String {
    let mut conn = tokio::net::UnixStream::connect(path).await.unwrap();
    conn.write_all(format!("{text}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\n") {
        let n = tokio::time::timeout(WAIT, conn.read(&mut buf))
            .await
            .expect("no answer through the forward")
            .unwrap();
        assert!(n > 0, "forward closed before answering");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_forward_reaches_the_remote_socket() {
    let sshd = sshd_or_skip!();
    let remote = sshd.dir().join("echo.sock");
    let _server = echo_server(&remote);
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let forward = t.forward_unix(&remote.to_string_lossy()).await.unwrap();
    assert_ne!(forward.path(), remote.as_path());
    assert!(forward.docker_host().starts_with("unix://"));
    assert_eq!(ask_echo(forward.path(), "hello").await, "HELLO\n");
    let (a, b) = tokio::join!(
        ask_echo(forward.path(), "one"),
        ask_echo(forward.path(), "two")
    );
    assert_eq!((a.as_str(), b.as_str()), ("ONE\n", "TWO\n"));
    // A big payload both ways.
    let big = "x".repeat(300_000);
    assert_eq!(ask_echo(forward.path(), &big).await.len(), big.len() + 1);

    // A socket that is not there: the local connection is closed promptly.
    let missing = t.forward_unix("/nonexistent/docker.sock").await.unwrap();
    let mut conn = tokio::net::UnixStream::connect(missing.path())
        .await
        .unwrap();
    let _ = conn.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").await;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("a forward to a missing socket must not hang");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let path = forward.path().to_path_buf();
    drop(forward);
    assert!(!path.exists(), "the local socket outlived its forward");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_ping_through_the_forward() {
    let sshd = sshd_or_skip!();
    let socket = "/var/run/docker.sock";
    let local = bollard::Docker::connect_with_unix(socket, 5, bollard::API_DEFAULT_VERSION);
    let reachable = match &local {
        Ok(docker) => docker.ping().await.is_ok(),
        Err(_) => false,
    };
    if !reachable {
        if std::env::var("WATCHPOST_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("WATCHPOST_REQUIRE_DOCKER=1 but {socket} does not answer");
        }
        eprintln!(
            "SKIPPED (no Docker engine at {socket}): the echo-socket forward test covers the tunnel"
        );
        return;
    }
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let forward = t.forward_unix(socket).await.unwrap();
    let docker = bollard::Docker::connect_with_unix(
        &forward.path().to_string_lossy(),
        10,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    assert_eq!(docker.ping().await.unwrap(), "OK");
    let version = docker.version().await.unwrap();
    assert!(version.api_version.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tcp_connection_carries_everything() {
    let sshd = sshd_or_skip!();
    let pool = sshd.pool("id_ed25519");
    let t = pool.transport("test").unwrap();
    // The same server written inline is the same connection.
    let inline = pool
        .transport(&format!("ssh://{}", sshd.destination()))
        .unwrap();
    t.exec(&["true"]).await.unwrap();

    let log = sshd.dir().join("busy.log");
    std::fs::write(&log, "").unwrap();
    let mut stream = t.follow_file(&log.to_string_lossy(), 0).await;
    wait_started(&mut stream).await;
    let remote = sshd.dir().join("echo.sock");
    let _server = echo_server(&remote);
    let forward = inline
        .forward_unix(&remote.to_string_lossy())
        .await
        .unwrap();
    let forward_conn = tokio::net::UnixStream::connect(forward.path())
        .await
        .unwrap();

    // More execs at once than OpenSSH's MaxSessions (10): the rest wait their turn.
    let mut execs = Vec::new();
    for i in 0..14 {
        let t = if i % 2 == 0 {
            t.clone()
        } else {
            inline.clone()
        };
        execs.push(tokio::spawn(async move {
            t.exec(&["sh", "-c", &format!("sleep 1; echo {i}")]).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    append(&log, "during\n");
    assert_eq!(ask_echo(forward.path(), "during").await, "DURING\n");
    assert_eq!(
        sshd.established(),
        1,
        "connections to sshd: {}",
        sshd.established()
    );
    assert_eq!(sshd.established_from_here(), 1);
    assert_eq!(
        next_line(&mut stream, WAIT).await.as_deref(),
        Some("during")
    );
    for (i, exec) in execs.into_iter().enumerate() {
        let out = exec.await.unwrap().unwrap();
        assert_eq!(out.stdout_text(), format!("{i}\n"));
    }
    assert_eq!(sshd.established(), 1);
    assert_eq!(pool.hosts().len(), 1);
    drop(forward_conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_is_reported_and_the_stream_resumes_without_repeats() {
    let mut sshd = sshd_or_skip!();
    let t = sshd.pool("id_ed25519").transport("test").unwrap();
    let log = sshd.dir().join("fault.log");
    std::fs::write(&log, "").unwrap();
    let mut stream = t.follow_file(&log.to_string_lossy(), 0).await;
    wait_started(&mut stream).await;
    let mut seen = Vec::new();
    for i in 1..=5 {
        append(&log, &format!("line {i}\n"));
    }
    while seen.len() < 5 {
        seen.push(
            next_line(&mut stream, WAIT)
                .await
                .expect("lines before the kill"),
        );
    }

    sshd.kill();
    let killed = Instant::now();
    let reason = wait_down(&t).await;
    eprintln!("down after {:?}: {reason}", killed.elapsed());
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "noticed after {:?}",
        killed.elapsed()
    );
    assert!(
        reason.contains("closed") || reason.contains("lost") || reason.contains("refused"),
        "{reason}"
    );
    let describe = t.status().borrow().describe("test");
    assert!(
        describe.starts_with("ssh test: ") && describe.contains("retrying in"),
        "{describe}"
    );
    // Callers get an answer at once while it is down.
    let asked = Instant::now();
    let err = t.exec(&["true"]).await.unwrap_err();
    assert!(asked.elapsed() < Duration::from_secs(1), "{err}");
    assert!(err.to_string().contains("retrying in"), "{err}");
    // The stream says it was interrupted.
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout(deadline - Instant::now(), stream.recv()).await {
            Ok(Some(StreamEvent::Interrupted { .. })) => break,
            Ok(Some(StreamEvent::Line { text, .. })) => {
                panic!("a line while down: {}", String::from_utf8_lossy(&text))
            }
            Ok(Some(_)) => {}
            _ => panic!("no Interrupted event"),
        }
    }
    // Lines written while the server is down.
    for i in 6..=10 {
        append(&log, &format!("line {i}\n"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    sshd.start_again().unwrap();
    let restarted = Instant::now();
    while seen.len() < 10 {
        let left = Duration::from_secs(10).saturating_sub(restarted.elapsed());
        match next_line(&mut stream, left).await {
            Some(line) => seen.push(line),
            None => panic!(
                "the stream did not resume within 10 s; got {seen:?}\n{}",
                sshd.log()
            ),
        }
    }
    eprintln!("resumed {:?} after the restart", restarted.elapsed());
    wait_status(&t, HostStatus::is_up).await;
    for i in 11..=12 {
        append(&log, &format!("line {i}\n"));
    }
    while seen.len() < 12 {
        seen.push(
            next_line(&mut stream, WAIT)
                .await
                .expect("lines after the resume"),
        );
    }
    let expected: Vec<String> = (1..=12).map(|i| format!("line {i}")).collect();
    assert_eq!(seen, expected, "each line exactly once, in order");
    assert_eq!(
        next_line(&mut stream, Duration::from_millis(500)).await,
        None
    );
    assert_eq!(
        t.exec(&["echo", "back"]).await.unwrap().stdout_text(),
        "back\n"
    );
    assert_eq!(sshd.established_from_here(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_jump_goes_through_the_jump_hosts_connection() {
    let jump = sshd_or_skip!();
    let target = sshd_or_skip!();
    let key = jump.key("id_ed25519");
    // The target accepts the jump's key too.
    std::fs::copy(
        jump.dir().join("id_ed25519.pub"),
        target.dir().join("authorized_keys"),
    )
    .unwrap();
    let config = jump.dir().join("ssh_config_jump");
    std::fs::write(
        &config,
        format!(
            "Host jumpbox\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n\n\
             Host target\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  ProxyJump jumpbox\n",
            jump.port,
            jump.user,
            key.display(),
            target.port,
            target.user,
            key.display()
        ),
    )
    .unwrap();
    let known = jump.dir().join("known_hosts_both");
    std::fs::write(
        &known,
        format!(
            "{}\n{}\n",
            jump.known_hosts_line(),
            target.known_hosts_line()
        ),
    )
    .unwrap();
    let mut options = jump.options();
    options.ssh_config = Some(config);
    options.known_hosts = Some(known);
    let pool = watchpost::transport::HostPool::new(Default::default(), options);
    let resolved = pool.resolve_target("ssh://target").unwrap();
    assert_eq!(resolved.port, target.port);
    assert_eq!(resolved.proxy_jump.as_ref().unwrap().port, jump.port);

    let t = pool.transport("ssh://target").unwrap();
    let out = t.exec(&["sh", "-c", "echo $SSH_CONNECTION"]).await.unwrap();
    // The target saw a connection from the jump host's sshd, not from us.
    assert!(
        out.stdout_text().trim().ends_with(&target.port.to_string()),
        "{}",
        out.stdout_text()
    );
    assert_eq!(
        jump.established_from_here(),
        1,
        "one connection, to the jump host"
    );
    assert_eq!(
        target.established_from_here(),
        0,
        "no direct connection to the target"
    );
    assert_eq!(
        target.established(),
        1,
        "the jump host's sshd connects to the target"
    );
    let jump_t = pool.transport("ssh://jumpbox").unwrap();
    jump_t.exec(&["true"]).await.unwrap();
    assert_eq!(
        jump.established_from_here(),
        1,
        "the jump host's connection is shared"
    );
    assert_eq!(pool.hosts().len(), 2);
}

/// CPU time (clock ticks) of this process's threads with this name.
fn thread_ticks(name: &str) -> Option<u64> {
    let mut total = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat; `after` starts at field 3.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        *total.get_or_insert(0) += ticks;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_sleeps() {
    let sshd = sshd_or_skip!();
    let pool = watchpost::transport::HostPool::new(
        std::collections::BTreeMap::from([("idlecheck".to_string(), sshd.entry("id_ed25519"))]),
        sshd.options(),
    );
    let t = pool.transport("idlecheck").unwrap();
    t.exec(&["true"]).await.unwrap();
    let log = sshd.dir().join("quiet.log");
    std::fs::write(&log, "").unwrap();
    let mut stream = t.follow_file(&log.to_string_lossy(), 0).await;
    wait_started(&mut stream).await;
    let remote = sshd.dir().join("echo.sock");
    let _server = echo_server(&remote);
    let forward = t.forward_unix(&remote.to_string_lossy()).await.unwrap();
    assert_eq!(ask_echo(forward.path(), "x").await, "X\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = thread_ticks("ssh idlecheck").expect("the connection thread is named");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = thread_ticks("ssh idlecheck").unwrap();
    // 100 ticks a second: a busy loop would burn ~300 here.
    assert!(
        after - before <= 5,
        "the idle connection thread used {} ticks in 3 s",
        after - before
    );
    // And it still works.
    append(&log, "awake\n");
    assert_eq!(next_line(&mut stream, WAIT).await.as_deref(), Some("awake"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_from_the_config_file() {
    let sshd = sshd_or_skip!();
    let config = watchpost::config::Config::parse(&format!(
        "[hosts.prod]\nssh = \"{}\"\nhost_key = \"accept-new\"\n\n[system.box]\nhost = \"prod\"\n",
        sshd.destination()
    ))
    .unwrap();
    std::fs::write(sshd.known_hosts(), "").unwrap();
    let mut entries = std::collections::BTreeMap::new();
    for (name, host) in &config.hosts {
        let mut entry = watchpost::transport::HostEntry::from_config(host).unwrap();
        entry.identity_files.push(sshd.key("id_rsa"));
        entries.insert(name.clone(), entry);
    }
    let pool = watchpost::transport::HostPool::new(entries, sshd.options());
    let t = pool.transport(&config.system["box"].host).unwrap();
    assert_eq!(t.name(), "prod");
    assert_eq!(
        t.exec(&["echo", "prod"]).await.unwrap().stdout_text(),
        "prod\n"
    );
    assert!(
        std::fs::read_to_string(sshd.known_hosts())
            .unwrap()
            .contains(&sshd.known_hosts_line())
    );
    assert!(pool.transport("local").unwrap().is_local());
    assert!(watchpost::transport::HostPool::from_config(&config).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_noticed_within_seconds() {
    let sshd = sshd_or_skip!();
    let mut options = sshd.options();
    options.keepalive = Duration::from_secs(1);
    options.dead_after = Duration::from_secs(3);
    let t = sshd
        .pool_with(sshd.entry("id_ed25519"), options)
        .transport("test")
        .unwrap();
    t.exec(&["true"]).await.unwrap();
    // A quiet but healthy server is not mistaken for a hung one: it answers keepalives.
    let mut status = t.status();
    status.borrow_and_update();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!status.has_changed().unwrap(), "{:?}", *status.borrow());
    assert!(t.status().borrow().is_up());
    let log = sshd.dir().join("hung.log");
    std::fs::write(&log, "").unwrap();
    let mut stream = t.follow_file(&log.to_string_lossy(), 0).await;
    wait_started(&mut stream).await;
    // TCP stays up (the kernel still acknowledges), but sshd answers nothing.
    sshd.freeze(true);
    let frozen = Instant::now();
    let reason = wait_down(&t).await;
    eprintln!("hung server noticed after {:?}: {reason}", frozen.elapsed());
    assert!(
        frozen.elapsed() < Duration::from_secs(8),
        "noticed after {:?}",
        frozen.elapsed()
    );
    assert!(reason.contains("stopped answering"), "{reason}");
    sshd.freeze(false);
}

/// A pool whose host "test" is `127.0.0.1:port`, needing no sshd.
fn pool_for_port(port: u16) -> watchpost::transport::HostPool {
    let dir = std::env::temp_dir();
    let options = watchpost::transport::PoolOptions {
        known_hosts: Some(dir.join("watchpost-no-known-hosts")),
        ssh_config: None,
        agent: AgentSource::Off,
        default_identities: false,
        connect_timeout: Duration::from_secs(3),
        ..Default::default()
    };
    watchpost::transport::HostPool::new(
        std::collections::BTreeMap::from([(
            "test".to_string(),
            watchpost::transport::HostEntry::new(format!("nobody@127.0.0.1:{port}")),
        )]),
        options,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_reported_and_never_blocks() {
    let closed = ClosedPort::new();
    let t = pool_for_port(closed.port).transport("test").unwrap();
    let reason = wait_down(&t).await;
    assert_eq!(reason, "connection refused");
    let shown = t.status().borrow().describe("test");
    assert!(
        shown.starts_with("ssh test: connection refused, retrying in "),
        "{shown}"
    );
    let asked = Instant::now();
    let err = t.exec(&["true"]).await.unwrap_err();
    assert!(asked.elapsed() < Duration::from_millis(200));
    assert!(
        err.to_string()
            .starts_with("ssh test: connection refused, retrying in"),
        "{err}"
    );
    // Streams wait for the host instead of failing.
    let mut stream = t.stream(StreamSpec::fixed(&["true"]));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.recv())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_costs_callers_no_more_than_their_timeout() {
    // Accepts TCP, never says a word: the handshake hangs until connect_timeout.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(4) {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    let t = pool_for_port(port).transport("test").unwrap();
    let asked = Instant::now();
    let err = t
        .exec_timeout(&["true"], Duration::from_millis(800))
        .await
        .unwrap_err();
    let took = asked.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("connecting"), "{err}");
    let reason = wait_down(&t).await;
    assert!(reason.contains("handshake"), "{reason}");
}

/// Lines of a stream until `count` arrived, failing after `limit` with what came.
async fn lines_until(
    stream: &mut LineStream,
    seen: &mut Vec<String>,
    count: usize,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    while seen.len() < count {
        match next_line(stream, deadline.saturating_duration_since(Instant::now())).await {
            Some(line) => seen.push(line),
            None => panic!("only {seen:?} within {limit:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_file_survives_rotation_copytruncate_and_reconnect_without_repeats() {
    let mut sshd = sshd_or_skip!();
    let options = watchpost::transport::PoolOptions {
        keepalive: Duration::from_secs(1),
        dead_after: Duration::from_secs(3),
        backoff_max: Duration::from_secs(2),
        ..sshd.options()
    };
    let t = sshd
        .pool_with(sshd.entry("id_ed25519"), options)
        .transport("test")
        .unwrap();
    let log = sshd.dir().join("rotating.log");
    std::fs::write(&log, "old 1\nold 2\n").unwrap();
    let mut stream = t.follow_file(&log.to_string_lossy(), 1).await;
    let mut seen = Vec::new();
    lines_until(&mut stream, &mut seen, 1, WAIT).await;
    append(&log, "a 1\n");
    lines_until(&mut stream, &mut seen, 2, WAIT).await;

    // Rotation by rename: the writer's last line still goes to the old file, then the
    // new file is read from its start.
    let rotated = sshd.dir().join("rotating.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&rotated, "a 2 (late)\n");
    append(&log, "b 1\nb 2\n");
    lines_until(&mut stream, &mut seen, 5, WAIT).await;

    // The server dies; lines written meanwhile come once it is back, exactly once.
    sshd.kill();
    wait_down(&t).await;
    append(&log, "b 3\nb 4\n");
    sshd.start_again().unwrap();
    lines_until(&mut stream, &mut seen, 7, Duration::from_secs(10)).await;

    // copytruncate: the file is emptied in place and written again.
    std::fs::copy(&log, sshd.dir().join("rotating.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    append(&log, "c 1\n");
    lines_until(&mut stream, &mut seen, 8, WAIT).await;
    assert_eq!(
        seen,
        [
            "old 2",
            "a 1",
            "a 2 (late)",
            "b 1",
            "b 2",
            "b 3",
            "b 4",
            "c 1"
        ],
        "every line once, in order"
    );
    assert_eq!(next_line(&mut stream, Duration::from_secs(3)).await, None);
}
