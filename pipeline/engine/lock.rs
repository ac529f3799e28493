//! One `run` per data directory: an OS file lock on `<data-dir>/.lock`.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Held for the life of the process; the OS releases it on exit, also after `kill -9`.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory {dir} is in use by another memberflow process ({holder}); lock file {lock}")]
    Busy { dir: PathBuf, lock: PathBuf, holder: String },
    #[error("cannot lock data directory {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io { dir: dir.to_path_buf(), source };
        fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(".lock");
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default().trim().to_string();
                return Err(LockError::Busy { dir: dir.to_path_buf(), lock: path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        writeln!(file, "pid {} since {}", std::process::id(), chrono::Utc::now().to_rfc3339()).map_err(io)?;
        Ok(Self { _file: file })
    }
}
