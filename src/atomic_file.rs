//! Files replaced whole: a crash leaves either the old file or the new one, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `<path>.tmp` in the same directory with `mode` (before any byte is in it), syncs it,
/// renames it over `path` and syncs the directory so the rename itself survives power loss.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = write_synced(&tmp, contents, mode).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        // Leave nothing behind but the old file.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn write_synced(tmp: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    // A leftover temporary file may have another mode: start afresh.
    let _ = fs::remove_file(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    file.write_all(contents)?;
    file.sync_all()
}
