//! Host keys checked against known_hosts the way OpenSSH does.
//!
//! libssh2 matches host names (plain, comma lists and hashed `|1|` entries); watchpost
//! asks it line by line which entries are about this host, then decides itself:
//! - `[host]:port` only for a port other than 22 (libssh2 alone would also accept a plain
//!   `host` entry for any port);
//! - host key algorithms already known for the host are preferred in the handshake, as
//!   OpenSSH does, so a host known by its RSA key is not reported as changed because
//!   libssh2 would rather have ed25519;
//! - `@revoked` keys are refused.

use crate::config::HostKeyPolicy;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ssh2::{CheckResult, HashType, KnownHostFileKind, Session};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The known_hosts files read, and the one written by accept-new.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownHostsFiles {
    pub user: PathBuf,
    pub global: Vec<PathBuf>,
}

impl KnownHostsFiles {
    pub fn only(path: PathBuf) -> Self {
        KnownHostsFiles {
            user: path,
            global: Vec::new(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.user).chain(self.global.iter())
    }
}

/// A known_hosts line about the host being checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownEntry {
    pub key_type: String,
    pub blob: Vec<u8>,
    pub file: PathBuf,
    pub line: usize,
    pub revoked: bool,
}

/// How OpenSSH writes the host in known_hosts: `host`, or `[host]:port` off port 22.
pub(crate) fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Every entry (from every file) whose host field matches `host`/`port`.
pub(crate) fn entries_for(files: &KnownHostsFiles, host: &str, port: u16) -> Vec<KnownEntry> {
    let mut entries = Vec::new();
    for file in files.all() {
        if let Ok(text) = std::fs::read_to_string(file) {
            entries.extend(entries_in(&text, file, host, port));
        }
    }
    entries
}

fn entries_in(text: &str, file: &Path, host: &str, port: u16) -> Vec<KnownEntry> {
    let Ok(session) = Session::new() else {
        return Vec::new();
    };
    let pattern = host_pattern(host, port);
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (revoked, rest) = match line.strip_prefix('@') {
            Some(marked) => match marked.split_once(char::is_whitespace) {
                Some(("revoked", rest)) => (true, rest.trim_start()),
                // @cert-authority and unknown markers: certificates are not used here.
                _ => continue,
            },
            None => (false, line),
        };
        let mut fields = rest.split_whitespace();
        let (Some(hosts), Some(key_type), Some(key_b64)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(blob) = STANDARD.decode(key_b64) else {
            continue;
        };
        // One entry at a time, so the answer is about this line alone. A key type libssh2
        // cannot parse (sk-*, certificates) cannot be what it negotiated either.
        let Ok(mut known) = session.known_hosts() else {
            return entries;
        };
        let probe_line = format!("{hosts} {key_type} {key_b64}");
        if known
            .read_str(&probe_line, KnownHostFileKind::OpenSSH)
            .is_err()
        {
            continue;
        }
        // Checked without a port so that libssh2 compares exactly the pattern OpenSSH would.
        if matches!(
            known.check(&pattern, b"watchpost-probe"),
            CheckResult::Mismatch
        ) {
            entries.push(KnownEntry {
                key_type: key_type.to_string(),
                blob,
                file: file.to_path_buf(),
                line: index + 1,
                revoked,
            });
        }
    }
    entries
}

/// The host key algorithms for `key_type` as libssh2 names them.
fn algorithms_for(key_type: &str) -> &'static [&'static str] {
    match key_type {
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ssh-dss" => &["ssh-dss"],
        _ => &[],
    }
}

/// Host key algorithm preference: the types known for this host first, then the rest.
pub(crate) fn host_key_preference(entries: &[KnownEntry], supported: &[&str]) -> Option<String> {
    let mut known: Vec<&str> = Vec::new();
    for entry in entries.iter().filter(|e| !e.revoked) {
        for alg in algorithms_for(&entry.key_type) {
            if supported.contains(alg) && !known.contains(alg) {
                known.push(alg);
            }
        }
    }
    if known.is_empty() {
        return None;
    }
    let rest = supported.iter().copied().filter(|a| !known.contains(a));
    let all: Vec<&str> = known.iter().copied().chain(rest).collect();
    Some(all.join(","))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Match,
    Unknown,
    Changed(KnownEntry),
    Revoked(KnownEntry),
}

/// Judges the key a server presented against the host's entries.
pub(crate) fn judge(entries: &[KnownEntry], blob: &[u8]) -> Verdict {
    if let Some(revoked) = entries.iter().find(|e| e.revoked && e.blob == blob) {
        return Verdict::Revoked(revoked.clone());
    }
    let valid: Vec<&KnownEntry> = entries.iter().filter(|e| !e.revoked).collect();
    if valid.iter().any(|e| e.blob == blob) {
        return Verdict::Match;
    }
    // The host is known, but not by this key. With the known key types preferred in the
    // handshake, a server that no longer offers them has changed identity too.
    match valid.first() {
        Some(first) => Verdict::Changed((*first).clone()),
        None => Verdict::Unknown,
    }
}

/// The type name at the start of an SSH public key blob.
pub(crate) fn blob_key_type(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// `SHA256:…` as OpenSSH prints it, from libssh2's hash of the presented key.
fn fingerprint(session: &Session) -> String {
    session
        .host_key_hash(HashType::Sha256)
        .map(|h| format!("SHA256:{}", STANDARD_NO_PAD.encode(h)))
        .unwrap_or_else(|| "(no fingerprint)".into())
}

fn type_label(key_type: &str) -> String {
    match key_type {
        "ssh-ed25519" => "ED25519".into(),
        "ssh-rsa" => "RSA".into(),
        "ssh-dss" => "DSA".into(),
        t if t.starts_with("ecdsa-") => "ECDSA".into(),
        t => t.to_string(),
    }
}

/// Prepares the handshake: prefer the key types known for the host.
pub(crate) fn prepare(session: &Session, entries: &[KnownEntry]) {
    let supported = session
        .supported_algs(ssh2::MethodType::HostKey)
        .unwrap_or_default();
    if let Some(prefs) = host_key_preference(entries, &supported) {
        let _ = session.method_pref(ssh2::MethodType::HostKey, &prefs);
    }
}

/// Why the key presented in the handshake is refused. `Display` is the message a pane
/// shows; `pattern` is the host as known_hosts writes it, `label` the key type ("ED25519")
/// and `fingerprint` its SHA256.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostKeyError {
    #[error("the server sent no host key")]
    NoKey,
    #[error(
        "the {label} host key of {pattern} ({fingerprint}) is marked @revoked in {} line {line}: refusing to connect",
        .file.display()
    )]
    Revoked {
        pattern: String,
        label: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    #[error(
        "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@ \
         {pattern} sent the {label} key {fingerprint}, which is not the key recorded in {} line {line}. \
         Someone could be eavesdropping on you right now (man-in-the-middle attack), or \
         the host key has just been changed. Refusing to connect. If the change is \
         expected, remove the old key with: ssh-keygen -R '{pattern}' -f {}",
        .file.display(),
        .file.display()
    )]
    Changed {
        pattern: String,
        label: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    #[error("cannot add the host key of {pattern} to {}: {error}", .file.display())]
    Append {
        pattern: String,
        file: PathBuf,
        error: std::io::Error,
    },
    /// Strict policy and a key no file knows: how to add it after checking.
    #[error(
        "the host key of {pattern} is not known ({label} key {fingerprint}, not in {}). \
         After checking that fingerprint, add it with: \
         ssh-keyscan {}{host} >> {} (or set host_key = \"accept-new\" for this host)",
        .file.display(),
        port_flag(*.port),
        .file.display()
    )]
    Unknown {
        pattern: String,
        label: String,
        fingerprint: String,
        host: String,
        port: u16,
        file: PathBuf,
    },
}

/// `ssh-keyscan`'s `-p PORT ` off port 22.
fn port_flag(port: u16) -> String {
    if port == 22 {
        String::new()
    } else {
        format!("-p {port} ")
    }
}

/// Checks the key presented in the handshake (and with accept-new, records a new one).
pub(crate) fn verify(
    session: &Session,
    host: &str,
    port: u16,
    files: &KnownHostsFiles,
    entries: &[KnownEntry],
    policy: HostKeyPolicy,
) -> Result<(), HostKeyError> {
    let (blob, _) = session.host_key().ok_or(HostKeyError::NoKey)?;
    let key_type = blob_key_type(blob).unwrap_or_else(|| "unknown".into());
    let pattern = host_pattern(host, port);
    let label = type_label(&key_type);
    let fingerprint = fingerprint(session);
    match judge(entries, blob) {
        Verdict::Match => Ok(()),
        Verdict::Revoked(entry) => Err(HostKeyError::Revoked {
            pattern,
            label,
            fingerprint,
            file: entry.file,
            line: entry.line,
        }),
        Verdict::Changed(entry) => Err(HostKeyError::Changed {
            pattern,
            label,
            fingerprint,
            file: entry.file,
            line: entry.line,
        }),
        Verdict::Unknown => match policy {
            HostKeyPolicy::AcceptNew => {
                append(&files.user, &pattern, &key_type, blob).map_err(|error| {
                    HostKeyError::Append {
                        pattern: pattern.clone(),
                        file: files.user.clone(),
                        error,
                    }
                })
            }
            HostKeyPolicy::Strict => Err(HostKeyError::Unknown {
                pattern,
                label,
                fingerprint,
                host: host.to_string(),
                port,
                file: files.user.clone(),
            }),
        },
    }
}

/// Appends one `pattern type base64` line, creating ~/.ssh (0700) and the file (0600).
pub(crate) fn append(
    file: &Path,
    pattern: &str,
    key_type: &str,
    blob: &[u8],
) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let needs_newline = std::fs::read(file)
        .map(|bytes| bytes.last().is_some_and(|b| *b != b'\n'))
        .unwrap_or(false);
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)?;
    let line = format!(
        "{}{pattern} {key_type} {}\n",
        if needs_newline { "\n" } else { "" },
        STANDARD.encode(blob)
    );
    out.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(key_type: &str, fill: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((key_type.len() as u32).to_be_bytes());
        b.extend(key_type.as_bytes());
        b.extend(32u32.to_be_bytes());
        b.extend([fill; 32]);
        b
    }

    fn line(hosts: &str, key_type: &str, fill: u8) -> String {
        format!(
            "{hosts} {key_type} {}",
            STANDARD.encode(blob(key_type, fill))
        )
    }

    #[test]
    fn policy_values() {
        assert_eq!(HostKeyPolicy::parse(None).unwrap(), HostKeyPolicy::Strict);
        assert_eq!(
            HostKeyPolicy::parse(Some("strict")).unwrap(),
            HostKeyPolicy::Strict
        );
        assert_eq!(
            HostKeyPolicy::parse(Some("accept-new")).unwrap(),
            HostKeyPolicy::AcceptNew
        );
        assert!(HostKeyPolicy::parse(Some("no")).is_err());
    }

    #[test]
    fn a_port_other_than_22_needs_the_bracketed_form() {
        let text = [
            line("10.0.0.1", "ssh-ed25519", 1),
            line("[10.0.0.1]:2222", "ssh-ed25519", 2),
            line("other.example,10.0.0.9", "ssh-ed25519", 3),
            "# a comment".to_string(),
            "garbage".to_string(),
        ]
        .join("\n");
        let file = Path::new("/k");
        let on_22 = entries_in(&text, file, "10.0.0.1", 22);
        assert_eq!(on_22.len(), 1);
        assert_eq!(on_22[0].line, 1);
        let on_2222 = entries_in(&text, file, "10.0.0.1", 2222);
        assert_eq!(on_2222.len(), 1);
        assert_eq!(on_2222[0].line, 2);
        assert_eq!(judge(&on_2222, &blob("ssh-ed25519", 2)), Verdict::Match);
        assert!(matches!(
            judge(&on_2222, &blob("ssh-ed25519", 1)),
            Verdict::Changed(e) if e.line == 2
        ));
        // Comma lists match each name.
        assert_eq!(entries_in(&text, file, "10.0.0.9", 22).len(), 1);
        assert!(entries_in(&text, file, "10.0.0.2", 22).is_empty());
        assert_eq!(judge(&[], &blob("ssh-ed25519", 1)), Verdict::Unknown);
    }

    #[test]
    fn revoked_keys_are_refused_even_when_also_listed() {
        let text = format!(
            "@revoked {}\n{}\n@cert-authority *.example {}\n",
            line("*", "ssh-ed25519", 7).replacen('*', "db.example", 1),
            line("db.example", "ssh-ed25519", 7),
            line("", "ssh-rsa", 9).trim()
        );
        let entries = entries_in(&text, Path::new("/k"), "db.example", 22);
        assert_eq!(entries.len(), 2);
        assert!(matches!(
            judge(&entries, &blob("ssh-ed25519", 7)),
            Verdict::Revoked(e) if e.line == 1
        ));
    }

    #[test]
    fn known_key_types_come_first_in_the_handshake() {
        let file = Path::new("/k");
        let entries = entries_in(&line("h", "ssh-rsa", 1), file, "h", 22);
        let supported = [
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
        ];
        assert_eq!(
            host_key_preference(&entries, &supported).unwrap(),
            "rsa-sha2-512,rsa-sha2-256,ssh-rsa,ssh-ed25519,ecdsa-sha2-nistp256"
        );
        assert_eq!(host_key_preference(&[], &supported), None);
    }

    #[test]
    fn blob_type_is_read_from_the_key() {
        assert_eq!(
            blob_key_type(&blob("ssh-ed25519", 0)).as_deref(),
            Some("ssh-ed25519")
        );
        assert_eq!(blob_key_type(&[0, 0, 0, 9, b'x']), None);
    }

    #[test]
    fn append_adds_one_line_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("known_hosts");
        append(
            &file,
            "[127.0.0.1]:2222",
            "ssh-ed25519",
            &blob("ssh-ed25519", 4),
        )
        .unwrap();
        std::fs::write(
            &file,
            format!("{}# no newline", std::fs::read_to_string(&file).unwrap()),
        )
        .unwrap();
        append(&file, "h2", "ssh-ed25519", &blob("ssh-ed25519", 5)).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAA"));
        assert_eq!(lines[1], "# no newline");
        let entries = entries_in(&text, &file, "127.0.0.1", 2222);
        assert_eq!(judge(&entries, &blob("ssh-ed25519", 4)), Verdict::Match);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "known_hosts must not be group/world accessible"
        );
    }
}
