//! Signing in: ssh-agent first, then key files (ed25519, ecdsa, rsa). An encrypted key
//! takes its passphrase from the variable named by `passphrase_env`, or from a prompt
//! before the TUI starts ([`super::HostPool::unlock_keys`]). Passwords are never used.

use super::target::SshTarget;
use super::{HostEntry, PoolOptions, home_dir};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ssh2::{ErrorCode, Session};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Asks for a key's passphrase.
pub trait PassphrasePrompt {
    fn passphrase(&mut self, key: &Path) -> std::io::Result<String>;
}

impl<F: FnMut(&Path) -> std::io::Result<String>> PassphrasePrompt for F {
    fn passphrase(&mut self, key: &Path) -> std::io::Result<String> {
        self(key)
    }
}

/// Reads a passphrase from the terminal (/dev/tty), without echo. For the CLI, before the
/// TUI takes the terminal.
pub fn prompt_passphrase_on_tty() -> impl PassphrasePrompt {
    |key: &Path| rpassword::prompt_password(format!("Enter passphrase for key {}: ", key.display()))
}

/// Passphrases given at the prompt, by key file.
#[derive(Clone, Default)]
pub(crate) struct Passphrases(Arc<Mutex<HashMap<PathBuf, String>>>);

impl Passphrases {
    pub fn get(&self, key: &Path) -> Option<String> {
        self.0.lock().unwrap().get(key).cloned()
    }
    pub fn set(&self, key: &Path, passphrase: String) {
        self.0.lock().unwrap().insert(key.to_path_buf(), passphrase);
    }
}

/// The key files to try for a host, in order: the entry's, ssh_config's IdentityFile,
/// else the `~/.ssh/id_*` defaults. Only files that exist.
pub(crate) fn identity_candidates(
    entry: &HostEntry,
    target: &SshTarget,
    options: &PoolOptions,
) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = entry
        .identity_files
        .iter()
        .chain(target.identity_files.iter())
        .cloned()
        .collect();
    if files.is_empty() && options.default_identities {
        let ssh = home_dir().join(".ssh");
        files = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|n| ssh.join(n))
            .collect();
    }
    let mut seen = Vec::new();
    files.retain(|f| {
        let keep = f.is_file() && !seen.contains(f);
        seen.push(f.clone());
        keep
    });
    files
}

/// True when a private key file (OpenSSH or PEM format) needs a passphrase.
pub(crate) fn is_encrypted(key_text: &str) -> bool {
    if key_text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || key_text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return true;
    }
    let Some(body) = pem_body(key_text, "OPENSSH PRIVATE KEY") else {
        return false;
    };
    let Ok(bytes) = STANDARD.decode(body) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher name as an SSH string: "none" when plain.
    let magic = b"openssh-key-v1\0";
    let Some(rest) = bytes.strip_prefix(magic.as_slice()) else {
        return false;
    };
    match read_string(rest) {
        Some(cipher) => cipher != b"none",
        None => false,
    }
}

fn pem_body(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    Some(text[start..stop].split_whitespace().collect())
}

fn read_string(bytes: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    bytes.get(4..4 + len)
}

/// The public key blob of `KEY.pub`, when there is one.
fn public_blob(key: &Path) -> Option<Vec<u8>> {
    let mut pub_path = key.as_os_str().to_owned();
    pub_path.push(".pub");
    let text = std::fs::read_to_string(PathBuf::from(pub_path)).ok()?;
    let b64 = text.split_whitespace().nth(1)?;
    STANDARD.decode(b64).ok()
}

fn pub_path(key: &Path) -> Option<PathBuf> {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    let p = PathBuf::from(p);
    p.is_file().then_some(p)
}

/// The agent's public key blobs (empty without an agent).
fn agent_blobs(options: &PoolOptions) -> Vec<Vec<u8>> {
    let Some(socket) = options.agent_socket() else {
        return Vec::new();
    };
    let Ok(session) = Session::new() else {
        return Vec::new();
    };
    let Ok(mut agent) = session.agent() else {
        return Vec::new();
    };
    if agent.set_identity_path(&socket).is_err()
        || agent.connect().is_err()
        || agent.list_identities().is_err()
    {
        return Vec::new();
    }
    let blobs = agent
        .identities()
        .map(|ids| ids.iter().map(|i| i.blob().to_vec()).collect())
        .unwrap_or_default();
    let _ = agent.disconnect();
    blobs
}

fn env_passphrase(entry: &HostEntry) -> Option<String> {
    let name = entry.passphrase_env.as_deref()?;
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Prompts for the encrypted keys among `files` that nothing else unlocks.
pub(crate) fn unlock(
    files: &[PathBuf],
    entry: &HostEntry,
    options: &PoolOptions,
    passphrases: &Passphrases,
    prompt: &mut dyn PassphrasePrompt,
) -> Vec<PathBuf> {
    let mut agent: Option<Vec<Vec<u8>>> = None;
    let mut asked = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        if !is_encrypted(&text)
            || passphrases.get(file).is_some()
            || env_passphrase(entry).is_some()
        {
            continue;
        }
        let in_agent = agent.get_or_insert_with(|| agent_blobs(options));
        if public_blob(file).is_some_and(|b| in_agent.contains(&b)) {
            continue;
        }
        if let Ok(passphrase) = prompt.passphrase(file) {
            passphrases.set(file, passphrase);
            asked.push(file.clone());
        }
    }
    asked
}

/// Why signing in failed; `who` is `user@host`. `Display` is the message a pane shows.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("cannot ask {who} how to sign in: {}", .error.message())]
    Methods { who: String, error: ssh2::Error },
    #[error(
        "{who} only accepts {methods}; watchpost signs in with keys (ssh-agent or key files), never with passwords"
    )]
    NoPublicKey { who: String, methods: String },
    /// Every key was refused or unusable: each says why (`tried`).
    #[error("authentication failed for {who}: tried {}", .tried.join(", "))]
    Refused { who: String, tried: Vec<String> },
}

/// Why the agent's keys could not be tried.
#[derive(Debug, thiserror::Error)]
enum AgentError {
    #[error("{}", .0.message())]
    Agent(ssh2::Error),
    #[error("cannot connect ({})", .0.message())]
    Connect(ssh2::Error),
    #[error("cannot list keys ({})", .0.message())]
    List(ssh2::Error),
}

/// Authenticates a session (blocking mode). `Err` says what was tried.
pub(crate) fn authenticate(
    session: &Session,
    target: &SshTarget,
    entry: &HostEntry,
    options: &PoolOptions,
    passphrases: &Passphrases,
) -> Result<(), AuthError> {
    let user = target.user.as_str();
    let who = format!("{user}@{}", target.host);
    let methods = match session.auth_methods(user) {
        Ok(methods) => methods.to_string(),
        // "none" was accepted: nothing more to do.
        Err(_) if session.authenticated() => return Ok(()),
        Err(error) => return Err(AuthError::Methods { who, error }),
    };
    if !methods.split(',').any(|m| m == "publickey") {
        return Err(AuthError::NoPublicKey { who, methods });
    }
    let files = identity_candidates(entry, target, options);
    let mut tried: Vec<String> = Vec::new();

    if let Some(socket) = options.agent_socket() {
        match try_agent(session, user, &socket, &files) {
            Ok(true) => return Ok(()),
            Ok(false) => tried.push(format!("the agent's keys ({})", socket.display())),
            Err(e) => tried.push(format!("agent {}: {e}", socket.display())),
        }
    }
    for file in &files {
        if session.authenticated() {
            return Ok(());
        }
        let shown = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                tried.push(format!("{shown} (cannot read: {e})"));
                continue;
            }
        };
        let passphrase = if is_encrypted(&text) {
            match passphrases.get(file).or_else(|| env_passphrase(entry)) {
                Some(p) => Some(p),
                None => {
                    let hint = match &entry.passphrase_env {
                        Some(var) => format!("set {var}"),
                        None => "set passphrase_env for this host, or start watchpost in a terminal to be asked".into(),
                    };
                    tried.push(format!("{shown} (encrypted and no passphrase: {hint})"));
                    continue;
                }
            }
        } else {
            None
        };
        match session.userauth_pubkey_file(
            user,
            pub_path(file).as_deref(),
            file,
            passphrase.as_deref(),
        ) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => tried.push(format!("{shown} (not accepted)")),
            Err(e) => {
                let why = match e.code() {
                    ErrorCode::Session(-16) | ErrorCode::Session(-48) if passphrase.is_some() => {
                        "wrong passphrase or unreadable key"
                    }
                    ErrorCode::Session(-16) | ErrorCode::Session(-48) => {
                        "unreadable or unsupported key"
                    }
                    ErrorCode::Session(-18) | ErrorCode::Session(-19) => "refused by the server",
                    _ => e.message(),
                };
                tried.push(format!("{shown} ({why})"));
            }
        }
    }
    if session.authenticated() {
        return Ok(());
    }
    if tried.is_empty() {
        tried.push(
            "no agent and no key file (~/.ssh/id_ed25519, id_ecdsa, id_rsa or IdentityFile)".into(),
        );
    }
    Err(AuthError::Refused { who, tried })
}

/// Tries every agent key, those matching the configured key files first.
fn try_agent(
    session: &Session,
    user: &str,
    socket: &Path,
    files: &[PathBuf],
) -> Result<bool, AgentError> {
    let mut agent = session.agent().map_err(AgentError::Agent)?;
    agent.set_identity_path(socket).map_err(AgentError::Agent)?;
    agent.connect().map_err(AgentError::Connect)?;
    agent.list_identities().map_err(AgentError::List)?;
    let mut identities = agent.identities().map_err(AgentError::Agent)?;
    let preferred: Vec<Vec<u8>> = files.iter().filter_map(|f| public_blob(f)).collect();
    identities.sort_by_key(|i| !preferred.contains(&i.blob().to_vec()));
    let mut ok = false;
    for identity in &identities {
        if agent.userauth(user, identity).is_ok() && session.authenticated() {
            ok = true;
            break;
        }
    }
    let _ = agent.disconnect();
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test-only throwaway keys (never used anywhere): the same ed25519 key, plain and
    // encrypted with the passphrase "test".
    const PLAIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDMyiEpvXkdbKomUxS90eYwkkBhJGqfwOM9pRc213c0WQAAAJA868QlPOvE
JQAAAAtzc2gtZWQyNTUxOQAAACDMyiEpvXkdbKomUxS90eYwkkBhJGqfwOM9pRc213c0WQ
AAAED4IPx3NQwEp637K0jfrm2BmArTkkyftqPRxESlFP+3rczKISm9eR1sqiZTFL3R5jCS
QGEkap/A4z2lFzbXdzRZAAAACHRlc3Qta2V5AQIDBAU=
-----END OPENSSH PRIVATE KEY-----
";
    const ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAdoa/dGj
BrHCkTSmQdUOXjAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIMzKISm9eR1sqiZT
FL3R5jCSQGEkap/A4z2lFzbXdzRZAAAAkAq/LtXz9hXBYq5PHFcSDVcszJnwm5NIxuxeEO
u3FlXUQjnk4uV2lzXZE3NaTJXCnWnA1SuCshwYw9ROvKx74DGV+PbQhIdjTIguufkAjf3b
lD30IUCbPpWrDm8L12G+UqcJz39UG4pSgtU1fZg+CNkBvn3d43HvE1QckIJ0giqckLE3bL
brhcW3Ex0EKag0mw==
-----END OPENSSH PRIVATE KEY-----
";

    #[test]
    fn encrypted_keys_are_recognised() {
        assert!(!is_encrypted(PLAIN));
        assert!(is_encrypted(ENCRYPTED));
        assert!(is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        ));
        assert!(is_encrypted(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ));
        assert!(!is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        ));
        assert!(!is_encrypted("not a key"));
    }

    #[test]
    fn only_encrypted_keys_without_a_passphrase_are_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        let locked = dir.path().join("locked");
        std::fs::write(&plain, PLAIN).unwrap();
        std::fs::write(&locked, ENCRYPTED).unwrap();
        let options = PoolOptions {
            agent: super::super::AgentSource::Off,
            ..PoolOptions::default()
        };
        let passphrases = Passphrases::default();
        let entry = HostEntry::new("x@y");
        let mut asked_for = Vec::new();
        let mut prompt = |key: &Path| {
            asked_for.push(key.to_path_buf());
            Ok("test".to_string())
        };
        let files = vec![plain.clone(), locked.clone()];
        let asked = unlock(&files, &entry, &options, &passphrases, &mut prompt);
        assert_eq!(asked, vec![locked.clone()]);
        assert_eq!(asked_for, vec![locked.clone()]);
        assert_eq!(passphrases.get(&locked).as_deref(), Some("test"));
        // Known now: not asked again.
        let mut never = |_: &Path| -> std::io::Result<String> { panic!("asked twice") };
        assert!(unlock(&files, &entry, &options, &passphrases, &mut never).is_empty());
        // A prompt that cannot read (no terminal) leaves the key locked, no error.
        let fresh = Passphrases::default();
        let mut no_tty = |_: &Path| -> std::io::Result<String> {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no tty"))
        };
        assert!(unlock(&files, &entry, &options, &fresh, &mut no_tty).is_empty());
        assert!(fresh.get(&locked).is_none());
        // With passphrase_env naming a variable that is set, nothing is asked. (PATH is
        // always set; the tests never change the environment.)
        let with_env = HostEntry {
            passphrase_env: Some("PATH".into()),
            ..HostEntry::new("x@y")
        };
        let mut never = |_: &Path| -> std::io::Result<String> { panic!("the env var has it") };
        assert!(unlock(&files, &with_env, &options, &fresh, &mut never).is_empty());
        assert_eq!(env_passphrase(&with_env), std::env::var("PATH").ok());
    }

    #[test]
    fn candidates_are_existing_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, PLAIN).unwrap();
        std::fs::write(&b, PLAIN).unwrap();
        let mut entry = HostEntry::new("x@y");
        entry.identity_files = vec![b.clone(), dir.path().join("missing"), a.clone(), b.clone()];
        let target =
            super::super::target::resolve("x@y", &super::super::target::SshConfigFile::empty())
                .unwrap();
        let options = PoolOptions::default();
        assert_eq!(identity_candidates(&entry, &target, &options), vec![b, a]);
    }
}
