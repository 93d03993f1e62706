//! One writer per folder: a run (or study) folder in use by one process is refused to a second,
//! with the other's process id, while a lock left by a process that no longer exists (killed,
//! crashed, machine rebooted) is taken over. The lock is `.tweedie.lock` holding
//! `pid@host`, created with `O_EXCL` and removed when the holder drops it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of locking a folder.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the folder.
    #[error(
        "{dir} is in use by process {holder}; wait for it to finish (or stop it), then run again"
    )]
    Held {
        /// The folder.
        dir: PathBuf,
        /// `pid@host` of the holder.
        holder: String,
    },
    /// The lock file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A held lock; dropping it releases the folder.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether `holder` (`pid@host`) names a process that may still run. A process on another
/// host cannot be checked from here: it counts as alive.
fn alive(holder: &str) -> bool {
    let Some((pid, h)) = holder.trim().split_once('@') else {
        return false; // unreadable: a half-written lock of a process that died writing it
    };
    if h != host() {
        return true;
    }
    match pid.parse::<u32>() {
        Ok(pid) if pid == std::process::id() => true,
        Ok(pid) => {
            Path::new("/proc").join(pid.to_string()).exists() || !Path::new("/proc/self").exists()
        }
        Err(_) => false,
    }
}

impl FolderLock {
    /// The lock file of `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(".tweedie.lock")
    }

    /// Locks `dir` (creating it), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock, LockError> {
        let path = Self::path_in(dir);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let me = format!("{}@{}", std::process::id(), host());
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(me.as_bytes()).map_err(io)?;
                    return Ok(FolderLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    if alive(&holder) {
                        return Err(LockError::Held {
                            dir: dir.to_path_buf(),
                            holder: holder.trim().to_string(),
                        });
                    }
                    // stale: its process is gone
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io(e)),
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(LockError::Held {
            dir: dir.to_path_buf(),
            holder: std::fs::read_to_string(&path).unwrap_or_default(),
        })
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_folder_is_refused_and_a_stale_lock_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FolderLock::acquire(dir.path()).unwrap();
        // this process holds it: a second acquisition names us
        match FolderLock::acquire(dir.path()).unwrap_err() {
            LockError::Held { holder, .. } => {
                assert!(
                    holder.starts_with(&std::process::id().to_string()),
                    "{holder}"
                )
            }
            e => panic!("{e}"),
        }
        drop(lock);
        assert!(!FolderLock::path_in(dir.path()).exists());
        // a lock of a process that does not exist (pid beyond pid_max) is stale
        std::fs::write(
            FolderLock::path_in(dir.path()),
            format!("4294967295@{}", host()),
        )
        .unwrap();
        let _again = FolderLock::acquire(dir.path()).unwrap();
        // a lock from another machine cannot be checked: it holds
        drop(_again);
        std::fs::write(FolderLock::path_in(dir.path()), "1@some-other-host").unwrap();
        assert!(FolderLock::acquire(dir.path()).is_err());
    }
}
