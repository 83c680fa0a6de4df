//! Long-lived commands as streams of lines that survive reconnects.
//!
//! How no line is shown twice: the transport counts the complete lines (and their bytes)
//! it has handed to the stream's channel, and remembers the last resume token a line
//! carried (e.g. journald's `__CURSOR`). A partial line (no newline yet) and lines still
//! waiting in the transport's buffer when a connection drops are *not* counted. On a
//! restart the command is rebuilt from that [`Resume`], so it starts exactly after the
//! last line delivered: `tail -n +K -F` with K = first line + lines delivered, or
//! `journalctl --after-cursor=C`. Lines that arrived while the connection was down are
//! then read from the file or journal, so none is lost either.
//!
//! Limit: `tail -F` counts lines of the file it follows now; if the file is rotated while
//! the connection is down, the count no longer matches the new file and lines may be
//! skipped (never repeated from the old file's start past K).

use super::ExitStatus;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// What a stream has delivered so far, across restarts: what a command needs to resume.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// 0 the first time, then +1 at every restart (reconnect or exit).
    pub restarts: u32,
    /// Complete lines delivered.
    pub lines: u64,
    /// Bytes of those lines, newlines included (before any cut of an over-long line).
    pub bytes: u64,
    /// The last token a delivered line carried (see [`StreamSpec::with_token`]).
    pub token: Option<String>,
}

type CommandFn = dyn Fn(&Resume) -> Vec<String> + Send + Sync;
type TokenFn = dyn Fn(&[u8]) -> Option<String> + Send + Sync;

/// A long-lived command: how to (re)start it from a [`Resume`].
#[derive(Clone)]
pub struct StreamSpec {
    command: Arc<CommandFn>,
    token: Option<Arc<TokenFn>>,
    /// Longer lines are cut to this many bytes (`truncated: true`); default 1 MiB.
    pub max_line: usize,
    /// Restart the command when it exits (with backoff 1 s → 30 s); default true.
    pub restart_on_exit: bool,
    /// Events buffered for a slow reader before the transport stops reading (SSH flow
    /// control then holds the rest on the remote side); default 4096.
    pub capacity: usize,
}

impl fmt::Debug for StreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamSpec")
            .field("first_command", &(self.command)(&Resume::default()))
            .field("max_line", &self.max_line)
            .field("restart_on_exit", &self.restart_on_exit)
            .finish()
    }
}

impl StreamSpec {
    /// A stream whose command line (argv, quoted by the transport) is built from what was
    /// delivered so far.
    pub fn new(command: impl Fn(&Resume) -> Vec<String> + Send + Sync + 'static) -> Self {
        StreamSpec {
            command: Arc::new(command),
            token: None,
            max_line: 1024 * 1024,
            restart_on_exit: true,
            capacity: 4096,
        }
    }

    /// The same command every time: a restart repeats whatever it prints again.
    pub fn fixed<S: AsRef<str>>(args: &[S]) -> Self {
        let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
        StreamSpec::new(move |_| args.clone())
    }

    /// Picks a resume token out of each delivered line (e.g. a journald cursor).
    pub fn with_token(
        mut self,
        token: impl Fn(&[u8]) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.token = Some(Arc::new(token));
        self
    }

    pub fn restart_on_exit(mut self, restart: bool) -> Self {
        self.restart_on_exit = restart;
        self
    }

    pub fn max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// `tail -n +K -F -- PATH`, K = `first_line` + lines delivered: follows the file by
    /// name across rotation and resumes after the last line delivered.
    pub fn follow_file(path: impl Into<String>, first_line: u64) -> Self {
        let path = path.into();
        let first_line = first_line.max(1);
        StreamSpec::new(move |r| {
            vec![
                "tail".into(),
                "-n".into(),
                format!("+{}", first_line + r.lines),
                "-F".into(),
                "--".into(),
                path.clone(),
            ]
        })
    }

    /// `journalctl -f -o json` for these units (all when empty), starting with the last
    /// `backlog` entries and resuming after the last cursor delivered.
    pub fn journal<S: AsRef<str>>(units: &[S], backlog: u32) -> Self {
        let units: Vec<String> = units.iter().map(|u| u.as_ref().to_string()).collect();
        StreamSpec::new(move |r| {
            let mut args: Vec<String> = ["journalctl", "--no-pager", "-o", "json", "-f"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            for unit in &units {
                args.push("-u".into());
                args.push(unit.clone());
            }
            match &r.token {
                Some(cursor) => {
                    args.push("--lines=all".into());
                    args.push(format!("--after-cursor={cursor}"));
                }
                None => args.push(format!("--lines={backlog}")),
            }
            args
        })
        .with_token(journal_cursor)
    }

    /// The argv for a (re)start.
    pub fn command_for(&self, resume: &Resume) -> Vec<String> {
        (self.command)(resume)
    }

    pub(crate) fn token_of(&self, line: &[u8]) -> Option<String> {
        self.token.as_ref().and_then(|t| t(line))
    }
}

/// `__CURSOR` of a `journalctl -o json` line.
pub fn journal_cursor(line: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    value.get("__CURSOR")?.as_str().map(str::to_string)
}

/// What a stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// The command (re)started; `restarts` is 0 the first time.
    Started { restarts: u32 },
    /// One line without its newline (raw bytes: decode and sanitize before showing).
    Line { text: Vec<u8>, truncated: bool },
    /// The command ended. It is restarted after `retry_in`, or the stream ends (`None`).
    Exited {
        status: ExitStatus,
        stderr: String,
        retry_in: Option<Duration>,
    },
    /// The connection dropped; the command resumes after the reconnect.
    Interrupted { reason: String },
}

/// A stream of [`StreamEvent`]s. Dropping it stops the remote command.
pub struct LineStream {
    rx: mpsc::Receiver<StreamEvent>,
    _close: Option<Box<dyn Send + Sync>>,
}

impl fmt::Debug for LineStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineStream").finish_non_exhaustive()
    }
}

impl LineStream {
    pub(crate) fn new(
        rx: mpsc::Receiver<StreamEvent>,
        close: Option<Box<dyn Send + Sync>>,
    ) -> Self {
        LineStream { rx, _close: close }
    }

    /// The next event; `None` when the stream has ended.
    pub async fn recv(&mut self) -> Option<StreamEvent> {
        self.rx.recv().await
    }

    /// The next line, skipping the other events.
    pub async fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let StreamEvent::Line { text, .. } = self.rx.recv().await? {
                return Some(text);
            }
        }
    }
}

impl futures::Stream for LineStream {
    type Item = StreamEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// One line cut out of a byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SplitLine {
    pub text: Vec<u8>,
    pub truncated: bool,
    /// Bytes it took in the stream, newline included.
    pub raw_len: usize,
}

/// Splits chunks into lines, keeping at most `max` bytes of any line.
#[derive(Debug)]
pub(crate) struct Splitter {
    buf: Vec<u8>,
    max: usize,
    raw_len: usize,
    cut: bool,
}

impl Splitter {
    pub fn new(max: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            max: max.max(1),
            raw_len: 0,
            cut: false,
        }
    }

    pub fn push(&mut self, mut data: &[u8], out: &mut VecDeque<SplitLine>) {
        while let Some(pos) = data.iter().position(|b| *b == b'\n') {
            self.take(&data[..pos]);
            self.raw_len += pos + 1;
            out.push_back(self.emit());
            data = &data[pos + 1..];
        }
        self.take(data);
        self.raw_len += data.len();
    }

    /// The last line when the stream ended without a newline.
    pub fn finish(&mut self) -> Option<SplitLine> {
        (self.raw_len > 0).then(|| self.emit())
    }

    fn take(&mut self, part: &[u8]) {
        let room = self.max.saturating_sub(self.buf.len());
        if part.len() > room {
            self.buf.extend_from_slice(&part[..room]);
            self.cut = true;
        } else {
            self.buf.extend_from_slice(part);
        }
    }

    fn emit(&mut self) -> SplitLine {
        let line = SplitLine {
            text: std::mem::take(&mut self.buf),
            truncated: self.cut,
            raw_len: self.raw_len,
        };
        self.raw_len = 0;
        self.cut = false;
        line
    }
}

/// Keeps the last `limit` bytes written (a command's stderr, for messages).
#[derive(Debug, Default)]
pub(crate) struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    const LIMIT: usize = 4096;

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > Self::LIMIT {
            let cut = self.buf.len() - Self::LIMIT;
            self.buf.drain(..cut);
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).trim().to_string()
    }
}

/// Backoff between restarts of a command that keeps exiting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExitBackoff {
    next: Duration,
}

impl Default for ExitBackoff {
    fn default() -> Self {
        ExitBackoff {
            next: Duration::from_secs(1),
        }
    }
}

impl ExitBackoff {
    /// The wait before the next start, given how long the command ran.
    pub fn after_run(&mut self, ran: Duration) -> Duration {
        if ran > Duration::from_secs(30) {
            self.next = Duration::from_secs(1);
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(30));
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<SplitLine>, Option<SplitLine>) {
        let mut s = Splitter::new(max);
        let mut out = VecDeque::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        let last = s.finish();
        (out.into_iter().collect(), last)
    }

    #[test]
    fn lines_across_chunks() {
        let (lines, last) = split(&[b"one\ntw", b"o\n", b"\nthree"], 100);
        let texts: Vec<&[u8]> = lines.iter().map(|l| l.text.as_slice()).collect();
        assert_eq!(texts, vec![&b"one"[..], b"two", b""]);
        assert_eq!(lines[1].raw_len, 4);
        assert_eq!(last.unwrap().text, b"three");
    }

    #[test]
    fn long_lines_are_cut_but_counted_whole() {
        let big = vec![b'x'; 10_000];
        let (lines, last) = split(&[&big[..4000], &big[4000..], b"\nok\n"], 16);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text.len(), 16);
        assert!(lines[0].truncated);
        assert_eq!(lines[0].raw_len, 10_001);
        assert!(!lines[1].truncated);
        assert!(last.is_none());
    }

    #[test]
    fn follow_file_resumes_after_the_last_line_delivered() {
        let spec = StreamSpec::follow_file("/var/log/app log.jsonl", 101);
        assert_eq!(
            spec.command_for(&Resume::default()),
            vec!["tail", "-n", "+101", "-F", "--", "/var/log/app log.jsonl"]
        );
        let resume = Resume {
            restarts: 1,
            lines: 5,
            ..Resume::default()
        };
        assert_eq!(spec.command_for(&resume)[2], "+106");
    }

    #[test]
    fn journal_resumes_after_the_cursor() {
        let spec = StreamSpec::journal(&["tmws.service"], 50);
        let first = spec.command_for(&Resume::default());
        assert!(first.contains(&"--lines=50".to_string()), "{first:?}");
        assert!(first.windows(2).any(|w| w == ["-u", "tmws.service"]));
        let line = br#"{"__CURSOR":"s=abc;i=12","MESSAGE":"x"}"#;
        let cursor = spec.token_of(line).unwrap();
        assert_eq!(cursor, "s=abc;i=12");
        let again = spec.command_for(&Resume {
            token: Some(cursor),
            ..Resume::default()
        });
        assert!(
            again.contains(&"--after-cursor=s=abc;i=12".to_string()),
            "{again:?}"
        );
        assert!(spec.token_of(b"not json").is_none());
    }

    #[test]
    fn exit_backoff_grows_and_resets() {
        let mut b = ExitBackoff::default();
        assert_eq!(b.after_run(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(b.after_run(Duration::ZERO), Duration::from_secs(2));
        for _ in 0..10 {
            b.after_run(Duration::ZERO);
        }
        assert_eq!(b.after_run(Duration::ZERO), Duration::from_secs(30));
        assert_eq!(b.after_run(Duration::from_secs(60)), Duration::from_secs(1));
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; 5000]);
        t.push(b"the end\n");
        assert_eq!(t.text().len(), 4096 - 1);
        assert!(t.text().ends_with("the end"));
    }
}
