//! Long-lived commands as streams of lines that survive reconnects.
//!
//! How no line is shown twice: the transport counts the complete lines (and their bytes)
//! it has handed to the stream's channel, and remembers the last resume token a line
//! carried (e.g. journald's `__CURSOR`), or the header line a run printed first (see
//! [`StreamSpec::with_header`]). A partial line (no newline yet) and lines still waiting in
//! the transport's buffer when a connection drops are *not* counted. On a restart the
//! command is rebuilt from that [`Resume`], so it starts exactly after the last line
//! delivered: `journalctl --after-cursor=C`, or for a followed file the byte offset after
//! the last line delivered, in the same file (inode). Lines that arrived while the
//! connection was down are then read from the file or journal, so none is lost either.
//!
//! Following a file ([`StreamSpec::follow_file`]) is a small POSIX sh script (with GNU or
//! busybox `stat`, `tail`, `head`): its header line names the file's inode and the offset
//! it starts at; it ends (and is restarted) when the path leads to another file (rotation)
//! or the file got shorter (copytruncate), and the restart reads the new file from its
//! start. Nothing it printed before is printed again.
//! Limits: a file rotated while the connection is down is read from the new file's start
//! (lines written to the old one after the drop are not read); after a copytruncate, lines
//! are missed if the file grows past its old size before the restart (about a second).

use super::ExitStatus;
use crate::model::backoff::Backoff;
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
    /// The last token a delivered line carried (see [`StreamSpec::with_token`]), or the
    /// last header a run printed (see [`StreamSpec::with_header`]).
    pub token: Option<String>,
    /// `bytes` when `token` was set: `bytes - token_bytes` were delivered since.
    pub token_bytes: u64,
}

type CommandFn = dyn Fn(&Resume) -> Vec<String> + Send + Sync;
type TokenFn = dyn Fn(&[u8]) -> Option<String> + Send + Sync;

/// The script behind [`StreamSpec::follow_file`]. `$1` the path; `$2` the inode and `$3`
/// the offset to resume at (empty the first time); `$4` how many of the last lines to start
/// with when there is nothing to resume (empty: from the start of the file). It prints
/// `watchpost-follow INODE OFFSET` first (and with `$5` = `measure`, only that), then the
/// file from OFFSET on, through a descriptor it keeps open: every second what was appended
/// (no process while nothing changes). It exits 0 when the file got shorter, or when the
/// path leads to another file, after a second's grace and a last read of the old file for
/// the writer's last lines; the restart then reads the new file from its start.
const FOLLOW_SCRIPT: &str = r#"f=$1 want=$2 at=$3 back=$4 mode=$5
look() { s=$(stat -L -c '%i %s' -- "$f" 2>/dev/null) || s=; i2=${s% *} m=${s#* }; }
look
if [ -z "$i2" ]; then
  [ "$mode" = measure ] && exit 0
  while sleep 1; look; [ -z "$i2" ]; do :; done
  want= back=
fi
i=$i2 n=$m
if [ -n "$want" ]; then
  if [ "$i" = "$want" ] && [ "$n" -ge "$at" ]; then start=$at; else start=0; fi
elif [ -n "$back" ]; then
  w=1048576
  [ "$w" -gt "$n" ] && w=$n
  b=$(( $(tail -c "+$((n - w + 1))" -- "$f" | head -c "$w" | tail -n "$back" | wc -c) ))
  if [ "$b" -ge "$w" ] && [ "$w" -lt "$n" ]; then
    s=$(( $(tail -c "+$((n - w + 1))" -- "$f" | head -n 1 | wc -c) ))
    b=$((w - s))
  fi
  start=$((n - b))
else
  start=0
fi
printf 'watchpost-follow %s %s\n' "$i" "$start"
[ "$mode" = measure ] && exit 0
exec 3<"$f" || exit 1
tail -c "+$((start + 1))" <&3
while sleep 1; do
  look
  if [ "$i2" != "$i" ]; then
    sleep 1
    cat <&3
    exit 0
  fi
  [ "$m" -lt "$n" ] && exit 0
  [ "$m" -gt "$n" ] && cat <&3
  n=$m
done"#;

/// The header of [`FOLLOW_SCRIPT`] as a token: "INODE OFFSET".
fn follow_header(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix("watchpost-follow ")?;
    let (inode, offset) = rest.split_once(' ')?;
    inode.parse::<u64>().ok()?;
    offset.parse::<u64>().ok()?;
    Some(rest.to_string())
}

/// The one-shot command that measures where following `path` with its last `backlog`
/// lines starts: it prints the header `watchpost-follow INODE OFFSET` (nothing for a
/// missing file); see [`parse_follow_start`].
pub(crate) fn follow_start_command(path: &str, backlog: u64) -> Vec<String> {
    super::script_command(
        FOLLOW_SCRIPT,
        &[path, "", "", &backlog.to_string(), "measure"],
    )
}

/// The inode and offset [`follow_start_command`] printed.
pub(crate) fn parse_follow_start(stdout: &[u8]) -> Option<(String, u64)> {
    let line = stdout.split(|b| *b == b'\n').next()?;
    let token = follow_header(line)?;
    let (inode, offset) = token.split_once(' ')?;
    Some((inode.to_string(), offset.parse().ok()?))
}

/// Where a followed file resumes: its inode and the offset after the last line delivered.
fn follow_resume(resume: &Resume) -> Option<(String, u64)> {
    let (inode, offset) = resume.token.as_deref()?.split_once(' ')?;
    let offset: u64 = offset.parse().ok()?;
    Some((
        inode.to_string(),
        offset + resume.bytes.saturating_sub(resume.token_bytes),
    ))
}

/// A long-lived command: how to (re)start it from a [`Resume`].
#[derive(Clone)]
pub struct StreamSpec {
    command: Arc<CommandFn>,
    token: Option<Arc<TokenFn>>,
    header: Option<Arc<TokenFn>>,
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
            header: None,
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
    pub(crate) fn with_token(
        mut self,
        token: impl Fn(&[u8]) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.token = Some(Arc::new(token));
        self
    }

    /// The first line of every run is the command's own header, not output: it is not
    /// delivered, and `header` makes it the resume token (with `token_bytes` set, so the
    /// next run knows how much was delivered after it). `Started` comes with the header,
    /// when the command really runs (a slow login shell has had its say by then).
    pub(crate) fn with_header(
        mut self,
        header: impl Fn(&[u8]) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.header = Some(Arc::new(header));
        self
    }

    /// Follows a file like `tail -F`, starting with its last `backlog` lines: by name
    /// across rotation and copytruncate, resuming after the last line delivered (see the
    /// module docs). A missing file is waited for and read from its start.
    pub fn follow_file(path: impl Into<String>, backlog: u64) -> Self {
        Self::follow(path.into(), Some(backlog))
    }

    /// [`StreamSpec::follow_file`] from the file's first line (a file that just appeared).
    pub(crate) fn follow_file_from_start(path: impl Into<String>) -> Self {
        Self::follow(path.into(), None)
    }

    /// [`StreamSpec::follow_file`] from `offset` of the file with `inode` (as measured by
    /// [`follow_start_command`]); from its start if the path leads to another file by then.
    pub(crate) fn follow_file_at(path: impl Into<String>, inode: &str, offset: u64) -> Self {
        Self::follow_from(path.into(), None, Some((inode.to_string(), offset)))
    }

    fn follow(path: String, backlog: Option<u64>) -> Self {
        Self::follow_from(path, backlog, None)
    }

    fn follow_from(path: String, backlog: Option<u64>, at: Option<(String, u64)>) -> Self {
        StreamSpec::new(move |r| {
            let (inode, offset) = match follow_resume(r).or_else(|| at.clone()) {
                Some((inode, offset)) => (inode, offset.to_string()),
                None => (String::new(), String::new()),
            };
            let backlog = backlog.map(|b| b.to_string()).unwrap_or_default();
            super::script_command(FOLLOW_SCRIPT, &[path.as_str(), &inode, &offset, &backlog])
        })
        .with_header(follow_header)
    }

    /// The argv for a (re)start.
    pub(crate) fn command_for(&self, resume: &Resume) -> Vec<String> {
        (self.command)(resume)
    }

    pub(crate) fn token_of(&self, line: &[u8]) -> Option<String> {
        self.token.as_ref().and_then(|t| t(line))
    }

    /// Whether a run's first line is a header (see [`StreamSpec::with_header`]).
    pub(crate) fn has_header(&self) -> bool {
        self.header.is_some()
    }

    /// Takes a run's header line into the resume.
    pub(crate) fn take_header(&self, resume: &mut Resume, line: &[u8]) {
        if let Some(token) = self.header.as_ref().and_then(|h| h(line)) {
            resume.token = Some(token);
            resume.token_bytes = resume.bytes;
        }
    }

    /// Counts a line handed to the reader.
    pub(crate) fn count(&self, resume: &mut Resume, line: &SplitLine) {
        let token = self.token_of(&line.text);
        resume.lines += 1;
        resume.bytes += line.raw_len as u64;
        if token.is_some() {
            resume.token = token;
            resume.token_bytes = resume.bytes;
        }
    }
}

/// What a stream yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// The command (re)started (for a stream with a header: printed its header);
    /// `restarts` is 0 the first time.
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

/// Backoff between restarts of a command that keeps exiting: 1 s doubling to 30 s, from
/// 1 s again after a run of 30 s.
pub(crate) fn exit_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
        .healthy_after(Duration::from_secs(30))
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
    fn follow_file_resumes_after_the_last_byte_delivered_in_the_same_file() {
        let spec = StreamSpec::follow_file("/var/log/app log.jsonl", 200);
        let first = spec.command_for(&Resume::default());
        assert_eq!(&first[..2], ["sh", "-c"]);
        assert_eq!(&first[3..], ["sh", "/var/log/app log.jsonl", "", "", "200"]);
        let mut resume = Resume::default();
        spec.take_header(&mut resume, b"watchpost-follow 4242 1000");
        let line = |n: usize| SplitLine {
            text: vec![b'x'; n],
            truncated: false,
            raw_len: n + 1,
        };
        spec.count(&mut resume, &line(9));
        spec.count(&mut resume, &line(19));
        assert_eq!(resume.lines, 2);
        assert_eq!(
            &spec.command_for(&resume)[4..],
            ["/var/log/app log.jsonl", "4242", "1030", "200"]
        );
        // A forged header inside the output is only a line.
        let mut forged = resume.clone();
        spec.count(
            &mut forged,
            &SplitLine {
                text: b"watchpost-follow 1 0".to_vec(),
                truncated: false,
                raw_len: 21,
            },
        );
        assert_eq!(&spec.command_for(&forged)[5..7], ["4242", "1051"]);
        assert!(follow_header(b"watchpost-follow x 1").is_none());
        let fresh = StreamSpec::follow_file_from_start("/a");
        assert_eq!(
            &fresh.command_for(&Resume::default())[4..],
            ["/a", "", "", ""]
        );
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
