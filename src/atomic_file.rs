//! Whole-file writes: every file the engine writes (models, checkpoints, synthetic data sets)
//! appears complete or not at all, so a crash, a full disk or Ctrl-C never leaves half a file
//! where a whole one was.
//!
//! The bytes go to a temporary file in the target's own directory (a rename only stays atomic
//! within one file system), which is flushed and synced, then renamed over the target; the
//! directory is synced after the rename so that the new name survives a power cut. On any error
//! the temporary file is removed (`tempfile` deletes it on drop), and the previous target, if
//! any, is untouched.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `path` with what `fill` writes into the buffered temporary file, atomically.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    {
        let mut out = BufWriter::with_capacity(1 << 20, temporary.as_file_mut());
        fill(&mut out)?;
        out.flush()?;
    }
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|e| e.error)?;
    // Not every platform can open a directory for syncing; the rename itself has happened.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// [`write_atomically`] for bytes already in memory.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, |out| out.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bin");
        write_bytes_atomically(&path, b"old").unwrap();
        let failed = write_atomically(&path, |out| {
            out.write_all(b"half a new fi")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("model.bin")]);
    }

    #[test]
    fn a_whole_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        write_bytes_atomically(&path, b"first").unwrap();
        write_bytes_atomically(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    }
}
