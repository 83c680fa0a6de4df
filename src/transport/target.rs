//! Where a host string connects to: `[user@]host[:port]`, `ssh://…`, or an alias from
//! ssh_config (HostName, User, Port, IdentityFile, ProxyJump), parsed with `ssh2-config`.

use ssh2_config::{ParseRule, SshConfig, SshParserError};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A resolved SSH destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// The name as written (alias or host), for messages.
    pub alias: String,
    /// The address connected to (ssh_config's HostName, else the alias).
    pub host: String,
    pub port: u16,
    pub user: String,
    /// IdentityFile entries from ssh_config, in order.
    pub identity_files: Vec<PathBuf>,
    /// The host this one is reached through (ProxyJump; the last hop of a chain).
    pub proxy_jump: Option<Box<SshTarget>>,
    pub connect_timeout: Option<Duration>,
}

impl SshTarget {
    /// `user@host:port` (with `[..]` around an IPv6 address).
    pub fn destination(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}@{}:{}", self.user, host, self.port)
    }

    /// What identifies one connection: destination and the jump chain.
    pub fn key(&self) -> String {
        match &self.proxy_jump {
            Some(jump) => format!("{} via {}", self.destination(), jump.key()),
            None => self.destination(),
        }
    }
}

/// Why a host string does not resolve to a destination. `Display` is the message a pane
/// and `watchpost validate` show.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{text:?} is not a valid ssh destination: {why}")]
    Destination { text: String, why: &'static str },
    #[error("cannot read ssh config {}: {error}", .path.display())]
    ReadConfig {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("ssh config {}: {error}", .path.display())]
    ParseConfig {
        path: PathBuf,
        error: SshParserError,
    },
    #[error("ProxyJump chain through {0:?} is too long (a loop?)")]
    JumpLoop(String),
    #[error("cannot tell the local user name: give user@host")]
    NoLocalUser,
}

/// A destination before ssh_config: what the user wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses `ssh://[user@]host[:port]`, `[user@]host[:port]`, `[user@][v6addr]:port`.
pub(crate) fn parse_destination(text: &str) -> Result<Destination, TargetError> {
    let original = text;
    let text = text.trim();
    let text = text.strip_prefix("ssh://").unwrap_or(text);
    let text = text.strip_suffix('/').unwrap_or(text);
    let bad = |why: &'static str| TargetError::Destination {
        text: original.to_string(),
        why,
    };
    if text.is_empty() {
        return Err(bad("empty"));
    }
    let (user, rest) = match text.rfind('@') {
        Some(at) => (Some(&text[..at]), &text[at + 1..]),
        None => (None, text),
    };
    if user.is_some_and(|u| u.is_empty()) {
        return Err(bad("empty user name"));
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(|| bad("unclosed ["))?;
        let host = &inner[..close];
        let after = &inner[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("unexpected text after ]")),
        };
        (host, port)
    } else if rest.matches(':').count() == 1 {
        let (h, p) = rest.split_once(':').unwrap();
        (h, Some(p))
    } else {
        // No colon, or a bare IPv6 address.
        (rest, None)
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad("the host name has characters a host name cannot have"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("the port is not a number from 1 to 65535")),
            Ok(p) => Some(p),
        },
    };
    Ok(Destination {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
    })
}

/// A parsed ssh_config (or none).
pub(crate) struct SshConfigFile {
    config: Option<SshConfig>,
}

impl SshConfigFile {
    pub fn empty() -> Self {
        SshConfigFile { config: None }
    }

    pub fn load(path: Option<&Path>) -> Result<Self, TargetError> {
        let Some(path) = path else {
            return Ok(SshConfigFile::empty());
        };
        let file = File::open(path).map_err(|error| TargetError::ReadConfig {
            path: path.to_path_buf(),
            error,
        })?;
        SshConfigFile::parse(&mut BufReader::new(file)).map_err(|error| TargetError::ParseConfig {
            path: path.to_path_buf(),
            error,
        })
    }

    pub fn parse(reader: &mut impl std::io::BufRead) -> Result<Self, SshParserError> {
        // Options watchpost does not use (UseKeychain, ControlMaster, ...) are fine.
        let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        let config = SshConfig::default().parse(reader, rules)?;
        Ok(SshConfigFile {
            config: Some(config),
        })
    }
}

/// Resolves a host string against ssh_config, following ProxyJump.
pub(crate) fn resolve(text: &str, config: &SshConfigFile) -> Result<SshTarget, TargetError> {
    resolve_depth(text, config, 0)
}

fn resolve_depth(
    text: &str,
    config: &SshConfigFile,
    depth: usize,
) -> Result<SshTarget, TargetError> {
    if depth > 8 {
        return Err(TargetError::JumpLoop(text.to_string()));
    }
    let dest = parse_destination(text)?;
    let params = config.config.as_ref().map(|c| c.query(&dest.host));
    let host = params
        .as_ref()
        .and_then(|p| p.host_name.clone())
        .map(|h| expand_tokens(&h, &dest.host))
        .unwrap_or_else(|| dest.host.clone());
    let port = dest
        .port
        .or_else(|| params.as_ref().and_then(|p| p.port))
        .unwrap_or(22);
    let user = match dest
        .user
        .clone()
        .or_else(|| params.as_ref().and_then(|p| p.user.clone()))
    {
        Some(user) => user,
        None => local_user_name()?,
    };
    let identity_files = params
        .as_ref()
        .and_then(|p| p.identity_file.clone())
        .unwrap_or_default();
    let connect_timeout = params.as_ref().and_then(|p| p.connect_timeout);
    let jumps: Vec<String> = params
        .as_ref()
        .and_then(|p| p.proxy_jump.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|j| j.trim().to_string())
        .filter(|j| !j.is_empty())
        .collect();
    let proxy_jump = if jumps.len() == 1 && jumps[0].eq_ignore_ascii_case("none") {
        None
    } else {
        // `ProxyJump a,b`: b is reached through a, the target through b.
        let mut previous: Option<SshTarget> = None;
        for jump in &jumps {
            let mut hop = resolve_depth(jump, config, depth + 1)?;
            if let Some(prev) = previous.take() {
                hop.proxy_jump = Some(Box::new(prev));
            }
            previous = Some(hop);
        }
        previous.map(Box::new)
    };
    Ok(SshTarget {
        alias: dest.host,
        host,
        port,
        user,
        identity_files,
        proxy_jump,
        connect_timeout,
    })
}

/// ssh_config's `%h` (the name as given) and `%%` in HostName.
fn expand_tokens(value: &str, original: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(original),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The local login name, the default remote user as with OpenSSH.
pub(crate) fn local_user_name() -> Result<String, TargetError> {
    if let Some(user) = std::env::var_os("USER").or_else(|| std::env::var_os("LOGNAME")) {
        let user = user.to_string_lossy().into_owned();
        if !user.is_empty() {
            return Ok(user);
        }
    }
    if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
        return Ok(user.name);
    }
    Err(TargetError::NoLocalUser)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(user: Option<&str>, host: &str, port: Option<u16>) -> Destination {
        Destination {
            user: user.map(str::to_string),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn destinations_in_every_form() {
        assert_eq!(parse_destination("prod").unwrap(), dest(None, "prod", None));
        assert_eq!(
            parse_destination("ssh://deploy@10.0.0.5:2222").unwrap(),
            dest(Some("deploy"), "10.0.0.5", Some(2222))
        );
        assert_eq!(
            parse_destination("deploy@db.example.org").unwrap(),
            dest(Some("deploy"), "db.example.org", None)
        );
        assert_eq!(
            parse_destination("ssh://[::1]:22/").unwrap(),
            dest(None, "::1", Some(22))
        );
        assert_eq!(
            parse_destination("fe80::1").unwrap(),
            dest(None, "fe80::1", None)
        );
        for bad in [
            "",
            "ssh://",
            "@host",
            "host:0",
            "host:99999",
            "host:x",
            "-oProxyCommand=x",
            "a b",
            "[::1",
        ] {
            assert!(parse_destination(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            parse_destination("host:0").unwrap_err().to_string(),
            "\"host:0\" is not a valid ssh destination: the port is not a number from 1 to 65535"
        );
    }

    fn config(text: &str) -> SshConfigFile {
        SshConfigFile::parse(&mut text.as_bytes()).unwrap()
    }

    #[test]
    fn alias_takes_hostname_user_port_identity_from_config() {
        let cfg = config(
            "Host prod\n  HostName 192.0.2.10\n  User deploy\n  Port 2200\n  IdentityFile /keys/prod_ed25519\n  UseKeychain yes\n\nHost *\n  User fallback\n",
        );
        let t = resolve("ssh://prod", &cfg).unwrap();
        assert_eq!(t.host, "192.0.2.10");
        assert_eq!(t.user, "deploy");
        assert_eq!(t.port, 2200);
        assert_eq!(t.identity_files, vec![PathBuf::from("/keys/prod_ed25519")]);
        assert_eq!(t.alias, "prod");
        assert!(t.proxy_jump.is_none());
        // What is written beats the config.
        let t = resolve("root@prod:22", &cfg).unwrap();
        assert_eq!((t.user.as_str(), t.port), ("root", 22));
        // Host * applies to anything else.
        let t = resolve("other", &cfg).unwrap();
        assert_eq!(
            (t.host.as_str(), t.user.as_str(), t.port),
            ("other", "fallback", 22)
        );
    }

    #[test]
    fn proxy_jump_chains_resolve_through_the_config() {
        let cfg = config(
            "Host target\n  HostName 10.1.2.3\n  ProxyJump hop2\n\nHost hop2\n  HostName 10.0.0.2\n  User j2\n  ProxyJump j1@hop1:2201\n\nHost hop1\n  HostName 198.51.100.1\n\nHost direct\n  ProxyJump none\n",
        );
        let t = resolve("u@target", &cfg).unwrap();
        let hop2 = t.proxy_jump.as_deref().unwrap();
        assert_eq!((hop2.host.as_str(), hop2.user.as_str()), ("10.0.0.2", "j2"));
        let hop1 = hop2.proxy_jump.as_deref().unwrap();
        assert_eq!(
            (hop1.host.as_str(), hop1.user.as_str(), hop1.port),
            ("198.51.100.1", "j1", 2201)
        );
        assert!(hop1.proxy_jump.is_none());
        assert_eq!(
            t.key(),
            "u@10.1.2.3:22 via j2@10.0.0.2:22 via j1@198.51.100.1:2201"
        );
        assert!(resolve("direct", &cfg).unwrap().proxy_jump.is_none());

        let cfg = config("Host c\n  ProxyJump a,b\n");
        let t = resolve("x@c", &cfg).unwrap();
        let b = t.proxy_jump.as_deref().unwrap();
        assert_eq!(b.alias, "b");
        assert_eq!(b.proxy_jump.as_deref().unwrap().alias, "a");
    }

    #[test]
    fn proxy_jump_loops_are_refused() {
        let cfg = config("Host loop\n  ProxyJump loop\n");
        let err = resolve("loop", &cfg).unwrap_err().to_string();
        assert_eq!(
            err,
            "ProxyJump chain through \"loop\" is too long (a loop?)"
        );
    }

    #[test]
    fn hostname_tokens_expand() {
        assert_eq!(expand_tokens("%h.internal", "web1"), "web1.internal");
        assert_eq!(expand_tokens("100%%", "x"), "100%");
    }

    #[test]
    fn no_config_file_means_defaults() {
        let t = resolve("admin@host.example:2022", &SshConfigFile::empty()).unwrap();
        assert_eq!(t.destination(), "admin@host.example:2022");
        assert!(t.identity_files.is_empty());
    }
}
