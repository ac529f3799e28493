//! Manual tags: set by an operator with a reason, kept beside the automatic ones and never
//! touched by rules. Requests are files in `<data-dir>/manual_tags/inbox/` (written
//! atomically by `memberflow tag`), applied by the process that owns the data directory at
//! its next checkpoint and deleted by that checkpoint's manifest — so a request is applied
//! exactly once, also across a crash, and the CLI works while `run` holds the lock.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const INBOX: &str = "manual_tags/inbox";

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TagOp {
    Add,
    Remove,
}

/// One operator request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    pub op: TagOp,
    pub member_id: String,
    pub tag: String,
    pub reason: String,
    /// Microseconds since the epoch, when the operator asked.
    pub requested_at: i64,
}

impl TagRequest {
    /// Checks the request; returns what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.tag.is_empty() || !self.tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("tag {:?}: use letters, digits, '_' and '-'", self.tag));
        }
        if self.member_id.is_empty() {
            return Err("member_id is empty".into());
        }
        if self.reason.trim().is_empty() {
            return Err("a reason is required".into());
        }
        Ok(())
    }

    /// Writes the request into `data_dir`'s inbox (temporary name, then rename); returns
    /// the file.
    pub fn submit(&self, data_dir: &Path) -> std::io::Result<PathBuf> {
        let dir = data_dir.join(INBOX);
        std::fs::create_dir_all(&dir)?;
        let name = format!("{:020}-{}-{:08x}.json", self.requested_at, std::process::id(), rand::random::<u32>());
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        let path = dir.join(name);
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// Pending requests in `data_dir`'s inbox, oldest first, with their paths relative to the
/// data directory; unreadable files are returned as errors (relative path, problem).
pub fn pending(data_dir: &Path) -> Vec<(String, Result<TagRequest, String>)> {
    let Ok(entries) = std::fs::read_dir(data_dir.join(INBOX)) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let rel = format!("{INBOX}/{n}");
            let parsed = std::fs::read(data_dir.join(&rel))
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<TagRequest>(&b).map_err(|e| e.to_string()))
                .and_then(|r| r.check().map(|()| r));
            (rel, parsed)
        })
        .collect()
}
