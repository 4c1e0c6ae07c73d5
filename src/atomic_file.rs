//! Whole-file writes: every file the engine writes (models, checkpoints, pictures, synthetic data
//! sets, a resumed run's log) appears complete or not at all, so a crash, a full disk or Ctrl-C
//! never leaves half a file where a whole one was, and nothing but a regular file is ever replaced.
//!
//! - **Targets.** A target is a regular file, a name that does not exist yet, or a symbolic link,
//!   which is followed (to any depth): the file it points to is replaced, the link stays. Anything
//!   else (a directory, a device such as `/dev/null`, a FIFO, a socket) is refused, before any
//!   byte is written; [`check_output`] does the same checks up front, so that a command can refuse
//!   a bad path before hours of work rather than after.
//! - **Writes.** The bytes go to a temporary file in the target's own directory (a rename only
//!   stays atomic within one file system), which is flushed and synced, then renamed over the
//!   target; the directory is synced after the rename so that the new name survives a power cut.
//!   A replaced file keeps its permission bits. On any error the temporary file is removed and the
//!   previous target, if any, is untouched.
//! - **Temporary files** are named `.NAME.PID.N.tmp` beside the target `NAME`. They never outlive
//!   the process: dropped on every error path, and removed by
//!   [`exit_removing_temporaries`], which the command line's signal handler calls before it exits
//!   at once. Only `kill -9` (or a power cut) can leave one behind; the next write to the same
//!   target (and [`check_output`]) removes the temporary files of that target whose PID names no
//!   running process. (A PID is only meaningful on one machine: two machines writing the same
//!   target on a shared file system could remove each other's temporaries; do not do that.)

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an output path cannot be written. Messages name the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(
        "{path} is {kind}, not a regular file; collabgpu only replaces regular files (whole, through a \
         temporary file and a rename), so give the path of a regular file or of one to create"
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "{path}: the directory {dir} does not exist; create it (mkdir -p {dir}) or choose another path"
    )]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("{path}: cannot create files in {dir} ({source}); choose a directory you can write to")]
    NotWritable {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// At most this many symbolic links are followed, as Linux does (`ELOOP`).
const MAX_LINKS: usize = 40;

/// The file a write to `path` replaces: symbolic links followed, the directory canonical (so two
/// spellings of one file compare equal), the file name kept. The file itself need not exist, but
/// its directory must.
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current)?;
                current = match link.is_absolute() {
                    true => link,
                    false => directory_of(&current).join(link),
                };
            }
            _ => {
                let Some(name) = current.file_name() else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("{} names no file (it ends in `..` or `/`)", path.display()),
                    ));
                };
                let dir = directory_of(&current).canonicalize()?;
                return Ok(dir.join(name));
            }
        }
    }
    Err(std::io::Error::other(format!(
        "{}: more than {MAX_LINKS} levels of symbolic links",
        path.display()
    )))
}

/// `path`'s directory, `.` for a bare name.
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// What a non-regular file is, for messages ("a directory", "a character device", ...).
fn kind_of(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_char_device() {
            return Some("a character device");
        }
        if file_type.is_block_device() {
            return Some("a block device");
        }
        if file_type.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// `Some(kind)` when `target` (already resolved) exists and is not a regular file.
fn non_regular(target: &Path) -> std::io::Result<Option<&'static str>> {
    match std::fs::symlink_metadata(target) {
        Ok(meta) => Ok(kind_of(meta.file_type())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks, before any work, that [`write_atomically`] can write `path`: its directory exists and
/// takes new files (a temporary file is created and removed there), and an existing target is a
/// regular file or a link to one. Removes stale temporary files of the target (see the module
/// documentation). Returns the resolved target ([`resolve`]).
pub fn check_output(path: &Path) -> Result<PathBuf, OutputError> {
    let target = resolve(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => OutputError::NoDirectory {
            path: path.to_path_buf(),
            dir: link_directory(path),
        },
        _ => OutputError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(kind) = non_regular(&target).map_err(io)? {
        return Err(OutputError::NotAFile {
            path: described(path, &target),
            kind,
        });
    }
    remove_stale_temporaries(&target);
    let dir = directory_of(&target);
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    Temporary::create(dir, &name).map_err(|source| OutputError::NotWritable {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    })?;
    Ok(target)
}

/// The directory a missing-directory message names: that of the last link followed.
fn link_directory(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::read_link(&current) {
            Ok(link) if link.is_absolute() => current = link,
            Ok(link) => current = directory_of(&current).join(link),
            Err(_) => break,
        }
    }
    directory_of(&current).to_path_buf()
}

/// `path`, with the file it resolves to when that differs (a link).
fn described(path: &Path, target: &Path) -> PathBuf {
    let same = path.canonicalize().ok().as_deref() == Some(target) && !is_link(path);
    match same || path == target {
        true => path.to_path_buf(),
        false => PathBuf::from(format!("{} (-> {})", path.display(), target.display())),
    }
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Writes `path` with what `fill` writes into the buffered temporary file, atomically.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let target = resolve(path)?;
    refuse_non_regular(path, &target)?;
    remove_stale_temporaries(&target);
    let dir = directory_of(&target);
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let mut temporary = Temporary::create(dir, &name)?;
    if let Ok(meta) = std::fs::metadata(&target) {
        // A replaced file keeps its mode (a model shared with a group stays shared).
        let _ = temporary.file().set_permissions(meta.permissions());
    }
    {
        let mut out = BufWriter::with_capacity(1 << 20, temporary.file());
        fill(&mut out)?;
        out.flush()?;
    }
    temporary.file().sync_all()?;
    // Checked again just before the rename: the target may have changed while the bytes went out.
    refuse_non_regular(path, &target)?;
    temporary.persist(&target)?;
    // Not every platform can open a directory for syncing; the rename itself has happened.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn refuse_non_regular(path: &Path, target: &Path) -> std::io::Result<()> {
    match non_regular(target)? {
        Some(kind) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            OutputError::NotAFile {
                path: described(path, target),
                kind,
            }
            .to_string(),
        )),
        None => Ok(()),
    }
}

/// [`write_atomically`] for bytes already in memory.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, |out| out.write_all(bytes))
}

/// The temporary files this process has open, by path: what [`exit_removing_temporaries`] removes.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Numbers the temporary files of this process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes this process's temporary files and exits with `code`, for a signal handler that ends
/// the process at once. The registry stays locked until the process is gone, so no new temporary
/// file can appear meanwhile; a write whose temporary was removed under it fails, unseen.
pub fn exit_removing_temporaries(code: i32) -> ! {
    let mut live = live();
    for path in live.drain(..) {
        let _ = std::fs::remove_file(path);
    }
    std::process::exit(code)
}

/// A temporary file `.NAME.PID.N.tmp`, registered in [`LIVE`] from before it exists until it is
/// renamed or removed; dropping it removes it.
struct Temporary {
    path: PathBuf,
    file: Option<File>,
}

impl Temporary {
    fn create(dir: &Path, name: &str) -> std::io::Result<Temporary> {
        let pid = std::process::id();
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{pid}.{n}.tmp"));
            let mut live = live();
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    live.push(path.clone());
                    return Ok(Temporary {
                        path,
                        file: Some(file),
                    });
                }
                // Left by an earlier process of the same PID: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until persisted or dropped")
    }

    /// Renames the file to `target`.
    fn persist(mut self, target: &Path) -> std::io::Result<()> {
        drop(self.file.take());
        std::fs::rename(&self.path, target)?;
        unregister(&self.path);
        // Renamed: nothing left for `drop` to remove.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        drop(self.file.take());
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
            unregister(&self.path);
        }
    }
}

fn unregister(path: &Path) {
    live().retain(|p| p != path);
}

/// Removes the temporary files `.NAME.PID.N.tmp` of `target` (resolved) whose PID names no running
/// process: what a `kill -9` left. Returns how many it removed. Errors are ignored: a temporary
/// that cannot be removed costs disk space, not correctness.
pub fn remove_stale_temporaries(target: &Path) -> usize {
    let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return 0;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(directory_of(target)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(temporary_pid)
        else {
            continue;
        };
        if pid != std::process::id()
            && !process_alive(pid)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// The PID of a temporary's `PID.N`.
fn temporary_pid(rest: &str) -> Option<u32> {
    let (pid, n) = rest.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether `pid` names a running process (of any user) on this machine.
#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a way to ask, every PID counts as running: stale temporaries stay.
#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

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
        assert_eq!(names(dir.path()), ["model.bin"]);
        assert!(!live().iter().any(|p| p.starts_with(dir.path())));
    }

    #[test]
    fn a_whole_write_replaces_the_file_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        write_bytes_atomically(&path, b"first").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        write_bytes_atomically(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
        }
        assert_eq!(names(dir.path()), ["m"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_followed_and_its_target_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/model.st");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.st");
        std::os::unix::fs::symlink("real/model.st", &link).unwrap();
        write_bytes_atomically(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(names(&dir.path().join("real")), ["model.st"]);
        // A dangling link creates its target.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("real/fresh.st", &dangling).unwrap();
        write_bytes_atomically(&dangling, b"fresh").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("real/fresh.st")).unwrap(),
            b"fresh"
        );
        assert_eq!(
            resolve(&link).unwrap(),
            target.canonicalize().unwrap(),
            "both spellings resolve alike"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn directories_fifos_and_link_loops_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let err = check_output(&sub).unwrap_err().to_string();
        assert!(err.contains("is a directory, not a regular file"), "{err}");
        assert!(write_bytes_atomically(&sub, b"x").is_err());
        assert!(sub.is_dir());

        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let link = dir.path().join("to-fifo");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let err = check_output(&link).unwrap_err().to_string();
        assert!(err.contains("a FIFO") && err.contains("to-fifo"), "{err}");
        let err = write_bytes_atomically(&link, b"x").unwrap_err().to_string();
        assert!(err.contains("a FIFO"), "{err}");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

        let a = dir.path().join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let err = check_output(&a).unwrap_err().to_string();
        assert!(err.contains("symbolic links"), "{err}");

        let err = check_output(&dir.path().join("missing/m.st"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not exist") && err.contains("mkdir"),
            "{err}"
        );
        let mut names = names(dir.path());
        names.sort();
        assert_eq!(names, ["a", "b", "fifo", "sub", "to-fifo"]);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.st");
        // PIDs above the kernel's maximum (4194304) name no process.
        let stale = dir.path().join(".m.st.999999999.0.tmp");
        std::fs::write(&stale, b"half").unwrap();
        // Our own, and another target's, are not touched.
        let own = dir
            .path()
            .join(format!(".m.st.{}.77.tmp", std::process::id()));
        std::fs::write(&own, b"mine").unwrap();
        let other = dir.path().join(".other.999999999.0.tmp");
        std::fs::write(&other, b"other").unwrap();
        let unrelated = dir.path().join(".m.st.notes.tmp");
        std::fs::write(&unrelated, b"user's").unwrap();
        check_output(&path).unwrap();
        assert!(!stale.exists());
        assert!(own.exists() && other.exists() && unrelated.exists());
        #[cfg(target_os = "linux")]
        {
            // PID 1 is always running.
            let running = dir.path().join(".m.st.1.0.tmp");
            std::fs::write(&running, b"busy").unwrap();
            write_bytes_atomically(&path, b"whole").unwrap();
            assert!(running.exists());
        }
    }

    #[test]
    fn exit_cleanup_knows_every_open_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let temporary = Temporary::create(dir.path(), "x").unwrap();
        let path = temporary.path.clone();
        assert!(live().contains(&path));
        drop(temporary);
        assert!(!path.exists());
        assert!(!live().contains(&path));
    }
}
