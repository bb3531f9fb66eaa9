//! The git version: parsed from `git --version`, detected once per process, and checked
//! against the oldest git batty supports.

use std::fmt;
use std::sync::OnceLock;

use super::{GitError, policy};
use crate::proc::Cmd;

/// The oldest git batty works with: Debian 11 ships 2.30, Ubuntu 22.04 2.34, Debian 12 2.39.
/// Every option batty passes exists in it, or is chosen by [`version`].
pub const MIN_VERSION: Version = Version::new(2, 30, 0);

/// How to get a newer git, for the one-line error.
pub(super) const UPGRADE: &str = "upgrade it with your package manager \
    (Debian/Ubuntu: a newer release or backports; macOS: `brew install git`) \
    or from https://git-scm.com/downloads";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// From `git --version`: `git version 2.39.5`, `git version 2.39.3 (Apple Git-146)`,
    /// `git version 2.45.2.windows.1`, `git version 2.46.0.rc0`.
    pub fn parse(text: &str) -> Option<Version> {
        let rest = text.trim().strip_prefix("git version ")?;
        let word = rest.split_whitespace().next()?;
        let mut parts = word.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Version::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The version once asked for: a process runs one git binary (the first `git` on PATH).
static DETECTED: OnceLock<Version> = OnceLock::new();

/// The version of the git on PATH, asked once per process.
pub fn version() -> Result<Version, GitError> {
    if let Some(v) = DETECTED.get() {
        return Ok(*v);
    }
    let cmd = policy(Cmd::new("git")).arg("--version");
    let out = cmd.read().map_err(|e| {
        if e.not_found() {
            GitError::NotInstalled
        } else {
            GitError::Failed {
                dir: std::path::PathBuf::from("."),
                source: Box::new(e),
            }
        }
    })?;
    let found = Version::parse(&out).ok_or_else(|| GitError::UnknownVersion {
        output: crate::config::one_line(&out),
    })?;
    Ok(*DETECTED.get_or_init(|| found))
}

/// The version of the git on PATH, or a one-line error naming the minimum and how to upgrade.
pub fn require_version() -> Result<Version, GitError> {
    check(version()?)
}

fn check(found: Version) -> Result<Version, GitError> {
    if found < MIN_VERSION {
        Err(GitError::TooOld { found })
    } else {
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_gits_print() {
        for (text, want) in [
            ("git version 2.39.5\n", Version::new(2, 39, 5)),
            ("git version 2.39.3 (Apple Git-146)", Version::new(2, 39, 3)),
            ("git version 2.45.2.windows.1", Version::new(2, 45, 2)),
            ("git version 2.46.0.rc0", Version::new(2, 46, 0)),
            ("git version 2.30", Version::new(2, 30, 0)),
        ] {
            assert_eq!(Version::parse(text), Some(want), "{text}");
        }
        for bad in ["", "hub version 2.14", "git version x.y", "git version 2"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn minimum_is_checked_and_named() {
        assert!(check(Version::new(2, 30, 0)).is_ok());
        assert!(check(Version::new(3, 0, 0)).is_ok());
        let err = check(Version::new(2, 29, 9)).unwrap_err().to_string();
        assert!(
            err.starts_with("git 2.29.9 is too old: batty needs git 2.30.0 or newer; upgrade"),
            "{err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(Version::new(2, 36, 0) > Version::new(2, 35, 9));
    }

    #[test]
    fn detects_the_git_on_path() {
        let v = version().unwrap();
        assert!(v >= MIN_VERSION, "{v}");
    }
}
