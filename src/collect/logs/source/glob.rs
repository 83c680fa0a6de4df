//! What following files by pattern shares, on this machine (`files`) and on a host
//! (`remote`): which patterns are globs, the files an expansion found, and which of them
//! are followed when there are more than a source may follow.

use std::path::PathBuf;
use std::time::SystemTime;

/// Whether a configured path is a glob (expanded again as files come and go) rather than
/// one path.
pub(crate) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// A regular file a pattern matched. `Id` is its identity, which a rotated file keeps
/// under its new name: device and inode here, the inode on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found<Id> {
    /// Which pattern matched it (its index in the source's list).
    pub pattern: usize,
    pub path: PathBuf,
    pub id: Id,
    pub modified: SystemTime,
}

/// Keeps the `keep` most recently modified of `files` (one not found yet counts as the
/// newest; otherwise the order stays) and says how many were left out.
pub(crate) fn keep_newest<T>(
    files: &mut Vec<T>,
    keep: usize,
    modified: impl Fn(&T) -> Option<SystemTime>,
) -> usize {
    let over = files.len().saturating_sub(keep);
    if over > 0 {
        files.sort_by_key(|f| {
            let modified = modified(f);
            std::cmp::Reverse((modified.is_none(), modified))
        });
        files.truncate(keep);
    }
    over
}
