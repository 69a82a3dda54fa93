//! The state file of a live testnet: `<state dir>/nomos-script/testnets/<NAME>.json`, mode 0600
//! (it holds funded wallet keys), written by the supervisor and read by `ls`, `down`, `repl
//! --attach` and `gc`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Overrides the state dir (tests use a temp dir each).
pub const STATE_DIR_ENV: &str = "NOMOS_SCRIPT_STATE_DIR";

/// Where the supervisor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Evaluating the script or deploying.
    Starting,
    /// Serving its control API.
    Ready,
    /// Could not bring the testnet up (`error` says why); the supervisor exits.
    Failed,
    /// Tearing down.
    Stopping,
}

/// Contents of a state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveState {
    /// The name given to `up --name`.
    pub name: String,
    /// `local` or `compose`.
    pub deployer: String,
    /// Where it is in its life.
    pub status: Status,
    /// Why it failed to come up.
    pub error: Option<String>,
    /// The exit code `up` reports for that failure (2 script error, 3 infrastructure).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Pid of the supervisor process.
    pub supervisor_pid: u32,
    /// Base URL of its control API (`http://127.0.0.1:PORT`), once ready.
    pub control_url: Option<String>,
    /// The secret every control call must carry (hex), once ready; this file is its only record.
    #[serde(default)]
    pub control_secret: Option<String>,
    /// Run id labelling every resource (containers carry it as a label).
    pub run_id: Option<String>,
    /// Node API URLs, by index.
    pub node_urls: Vec<String>,
    /// Where the nodes (and monitoring) are; each renders as its `TESTNET_ENDPOINTS` line.
    #[serde(deserialize_with = "crate::deploy::endpoints_or_old_lines")]
    pub endpoints: Vec<crate::deploy::Endpoint>,
    /// Node process pids (local backend), for `down` when the supervisor is dead.
    pub pids: Vec<u32>,
    /// Container names (compose backend).
    pub containers: Vec<String>,
    /// Configs, data and logs of local nodes.
    pub run_dir: Option<PathBuf>,
    /// Hex secret keys of the funded wallets, by wallet index.
    pub wallet_keys: Vec<String>,
    /// The script it came from, and its `--set` parameters, for messages.
    pub script: Option<PathBuf>,
    /// Supervisor log file.
    pub log: PathBuf,
    /// Unix seconds at `up`.
    pub created_unix: u64,
}

impl LiveState {
    /// The control URL and secret of a ready testnet, or why there are none.
    pub fn control(&self) -> Result<(&str, &str), String> {
        match (self.status, &self.control_url, &self.control_secret) {
            (Status::Ready, Some(url), Some(secret)) => Ok((url, secret)),
            (Status::Ready, _, _) => Err(format!(
                "testnet `{}` records no control URL and secret (a state file of an older version?)",
                self.name
            )),
            (status, _, _) => Err(format!("testnet `{}` is not ready ({status:?})", self.name)),
        }
    }

    /// Whether the supervisor process still runs.
    pub fn supervisor_alive(&self) -> bool {
        pid_alive(self.supervisor_pid)
    }

    /// Seconds since `up`.
    pub fn age_secs(&self) -> u64 {
        now_unix().saturating_sub(self.created_unix)
    }
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // the state is the first field after the parenthesised command name
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// Errors of state file operations.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Name outside `[A-Za-z0-9_.-]`.
    #[error(
        "testnet name `{0}` is invalid: use 1-64 letters, digits, `-`, `_` or `.` (not starting with `.`)"
    )]
    BadName(String),
    /// No state file of that name.
    #[error("no live testnet named `{name}` (looked for {})", .path.display())]
    NotFound {
        /// The name asked for.
        name: String,
        /// The file looked for.
        path: PathBuf,
    },
    /// Filesystem error.
    #[error("failed to {what} {}: {source}", .path.display())]
    Io {
        /// What was attempted.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Unparsable file.
    #[error("state file {} is not valid: {message}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
}

/// The per-user state dir: `$NOMOS_SCRIPT_STATE_DIR`, else `$XDG_STATE_HOME/nomos-script`, else
/// `~/.local/state/nomos-script`.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("nomos-script");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".local/state/nomos-script")
}

/// Where state files live.
pub fn testnets_dir() -> PathBuf {
    state_dir().join("testnets")
}

/// Checks a testnet name (it becomes a file name).
pub fn check_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadName(name.to_owned()))
    }
}

/// Path of the state file of `name`.
pub fn state_path(name: &str) -> PathBuf {
    testnets_dir().join(format!("{name}.json"))
}

/// Path of the supervisor log of `name`.
pub fn log_path(name: &str) -> PathBuf {
    testnets_dir().join(format!("{name}.log"))
}

fn create_dirs(dir: &Path) -> Result<(), StateError> {
    std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
        what: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

/// Writes `state` to `path` atomically (temp file + rename), mode 0600.
pub fn write_state(path: &Path, state: &LiveState) -> Result<(), StateError> {
    if let Some(dir) = path.parent() {
        create_dirs(dir)?;
    }
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let text = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let io = |what, source| StateError::Io {
        what,
        path: tmp.clone(),
        source,
    };
    // A fresh file (a stale temp file, or a link planted in its place, is removed first; O_EXCL
    // follows no link) created 0600, and set 0600 again in case the umask or a filesystem changed it: the rename then
    // replaces the state file with one only its owner can read, whatever the old one's mode.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove stale", e)),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", e))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("chmod", e))?;
    f.write_all(&text).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|source| StateError::Io {
        what: "rename into",
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a state file.
pub fn read_state(path: &Path) -> Result<LiveState, StateError> {
    let text = std::fs::read_to_string(path).map_err(|source| StateError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Reads the state of the testnet `name`.
pub fn load(name: &str) -> Result<LiveState, StateError> {
    check_name(name)?;
    let path = state_path(name);
    if !path.exists() {
        return Err(StateError::NotFound {
            name: name.to_owned(),
            path,
        });
    }
    read_state(&path)
}

/// Every state file, sorted by name; unreadable ones come back as errors beside their path.
pub fn list() -> Vec<(PathBuf, Result<LiveState, StateError>)> {
    let dir = testnets_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let s = read_state(&p);
            (p, s)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Removes the state file and the supervisor log of `name` (missing files are fine).
pub fn remove(name: &str) -> Result<(), StateError> {
    for path in [state_path(name), log_path(name)] {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StateError::Io {
                    what: "remove",
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("demo-1.a_b").is_ok());
        for bad in ["", ".hidden", "a/b", "x y", &"n".repeat(65)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(e.contains("is invalid"), "{e}");
        }
    }

    #[test]
    fn state_files_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/x.json");
        let s = LiveState {
            name: "x".into(),
            deployer: "local".into(),
            status: Status::Ready,
            error: None,
            exit_code: None,
            supervisor_pid: std::process::id(),
            control_url: Some("http://127.0.0.1:1".into()),
            control_secret: Some("ab".repeat(32)),
            run_id: None,
            node_urls: vec![],
            endpoints: vec![],
            pids: vec![1],
            containers: vec![],
            run_dir: None,
            wallet_keys: vec!["ab".into()],
            script: None,
            log: dir.path().join("x.log"),
            created_unix: now_unix(),
        };
        // a state file, and a stale temp file, that someone left readable by all
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        for p in [&path, &tmp] {
            std::fs::write(p, "{}").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        write_state(&path, &s).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!tmp.exists());
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let back = read_state(&path).unwrap();
        assert_eq!(back.wallet_keys, s.wallet_keys);
        assert_eq!(
            back.control().unwrap(),
            ("http://127.0.0.1:1", "ab".repeat(32).as_str())
        );
        assert!(back.supervisor_alive());
        assert!(!pid_alive(u32::MAX - 1));
    }
}
