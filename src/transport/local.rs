//! The local transport: commands run directly (no shell), streams restart with the same
//! resume rules as over SSH.

use super::stream::{Splitter, Tail, exit_backoff};
use super::{ExitStatus, LineStream, Output, Resume, StreamEvent, StreamSpec, TransportError};
use std::collections::VecDeque;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus {
        code: status.code(),
        signal: status.signal().map(signal_name),
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGHUP => "HUP".into(),
        libc::SIGINT => "INT".into(),
        libc::SIGQUIT => "QUIT".into(),
        libc::SIGKILL => "KILL".into(),
        libc::SIGSEGV => "SEGV".into(),
        libc::SIGPIPE => "PIPE".into(),
        libc::SIGTERM => "TERM".into(),
        libc::SIGABRT => "ABRT".into(),
        other => other.to_string(),
    }
}

pub(crate) async fn exec<S: AsRef<str>>(
    args: &[S],
    timeout: Duration,
) -> Result<Output, TransportError> {
    let program = args[0].as_ref();
    let mut command = Command::new(program);
    command
        .args(args[1..].iter().map(|a| a.as_ref()))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(timeout, command.output()).await {
        Err(_) => Err(TransportError::Timeout {
            host: "local".into(),
            what: format!("{program:?}"),
            after: timeout,
        }),
        Ok(Err(e)) => Err(TransportError::Io(format!("cannot run {program:?}: {e}"))),
        Ok(Ok(out)) => Ok(Output {
            stdout: out.stdout,
            stderr: out.stderr,
            status: exit_status(out.status),
        }),
    }
}

pub(crate) fn stream(spec: StreamSpec) -> LineStream {
    let (tx, rx) = mpsc::channel(spec.capacity.max(1));
    tokio::spawn(run_stream(spec, tx));
    LineStream::new(rx, None)
}

async fn run_stream(spec: StreamSpec, tx: mpsc::Sender<StreamEvent>) {
    let mut resume = Resume::default();
    let mut backoff = exit_backoff();
    loop {
        let args = spec.command_for(&resume);
        let Some(program) = args.first() else {
            return;
        };
        let started = Instant::now();
        let mut child = match Command::new(program)
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let retry = spec
                    .restart_on_exit
                    .then(|| backoff.after_run(Duration::ZERO));
                let event = StreamEvent::Exited {
                    status: ExitStatus::default(),
                    stderr: format!("cannot run {program:?}: {e}"),
                    retry_in: retry,
                };
                if tx.send(event).await.is_err() {
                    return;
                }
                match retry {
                    Some(wait) => {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => continue,
                            _ = tx.closed() => return,
                        }
                    }
                    None => return,
                }
            }
        };
        // A command with a header has started when its header comes.
        if !spec.has_header()
            && tx
                .send(StreamEvent::Started {
                    restarts: resume.restarts,
                })
                .await
                .is_err()
        {
            return;
        }
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let mut splitter = Splitter::new(spec.max_line);
        let mut lines = VecDeque::new();
        let mut err_tail = Tail::default();
        let mut out_buf = vec![0u8; 64 * 1024];
        let mut err_buf = vec![0u8; 4096];
        let (mut out_open, mut err_open) = (true, true);
        let mut header_due = spec.has_header();
        while out_open || err_open {
            tokio::select! {
                read = stdout.read(&mut out_buf), if out_open => match read {
                    Ok(0) | Err(_) => {
                        out_open = false;
                        if let Some(last) = splitter.finish() {
                            lines.push_back(last);
                        }
                    }
                    Ok(n) => splitter.push(&out_buf[..n], &mut lines),
                },
                read = stderr.read(&mut err_buf), if err_open => match read {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => err_tail.push(&err_buf[..n]),
                },
                _ = tx.closed() => return,
            }
            while let Some(line) = lines.pop_front() {
                if header_due {
                    spec.take_header(&mut resume, &line.text);
                    header_due = false;
                    let started = StreamEvent::Started {
                        restarts: resume.restarts,
                    };
                    if tx.send(started).await.is_err() {
                        return;
                    }
                    continue;
                }
                spec.count(&mut resume, &line);
                let event = StreamEvent::Line {
                    text: line.text,
                    truncated: line.truncated,
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
        let status = match child.wait().await {
            Ok(status) => exit_status(status),
            Err(_) => ExitStatus::default(),
        };
        let retry = spec
            .restart_on_exit
            .then(|| backoff.after_run(started.elapsed()));
        let event = StreamEvent::Exited {
            status,
            stderr: err_tail.text(),
            retry_in: retry,
        };
        if tx.send(event).await.is_err() {
            return;
        }
        let Some(wait) = retry else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tx.closed() => return,
        }
        resume.restarts += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exec_runs_without_a_shell() {
        let out = exec(
            &["echo", "x; touch /nonexistent/pwned"],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout_text(), "x; touch /nonexistent/pwned\n");
        let out = exec(
            &["sh", "-c", "echo err >&2; exit 3"],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(out.status.code, Some(3));
        assert_eq!(out.stderr_text(), "err\n");
        let err = exec(&["sleep", "5"], Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_local_stream_resumes_after_exit_without_repeating() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        std::fs::write(&file, "a\nb\n").unwrap();
        let path = file.to_string_lossy().into_owned();
        // `head -n 1` exits after each line, so every line needs a resumed restart.
        let spec = StreamSpec::new(move |r| {
            vec![
                "sh".into(),
                "-c".into(),
                "tail -n +\"$1\" -- \"$2\" | head -n 1".into(),
                "sh".into(),
                (1 + r.lines).to_string(),
                path.clone(),
            ]
        });
        let mut stream = stream(spec);
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lines.len() < 2 && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), stream.recv()).await {
                Ok(Some(StreamEvent::Line { text, .. })) => lines.push(text),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        assert_eq!(lines, vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
