//! Writing files so that a crash never leaves a half-written one: every file goes to a temporary
//! name in the same folder and is renamed over the target, which is atomic on POSIX filesystems.

use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically (temp file in the same folder + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tweedie-").suffix(".tmp");
    // a temp file is created 0600; results are files like any other: 0666 less the umask
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    #[cfg(test)]
    full_disk::check()?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // the rename itself survives a power cut only once the folder is synced
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON file written by [`write_json`]; text that does not parse as `T` is an
/// `InvalidData` error carrying serde's message (line and column).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<T> {
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Appends one JSON object as a line (JSON Lines). Appends of one short line are atomic enough
/// for a log: a crash loses at most the line being written.
pub fn append_json_line<T: Serialize + ?Sized>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_string(value).map_err(std::io::Error::other)?;
    line.push('\n');
    #[cfg(test)]
    full_disk::check()?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())
}

/// A third-party error message on one line (some parsers' span several, with carets under
/// the offending text): the tool's errors are one line naming the input.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What to do after `e`, for messages that end in it: a full disk is the one failure of a long
/// run that the user fixes and then simply continues.
pub fn advice(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::StorageFull {
        "; free some space and run the command again (a run or study: with --resume, from its \
         last checkpoint, which is intact)"
    } else {
        ""
    }
}

/// A full disk, for tests: once armed on a thread, that thread's writes succeed `writes` more
/// times and then fail as the OS fails them on a full filesystem (ENOSPC), after the temp file
/// is created, as a real one would.
#[cfg(test)]
pub(crate) mod full_disk {
    use std::cell::Cell;

    thread_local! {
        static LEFT: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Fills this thread's disk after `writes` more writes (`None`: room again).
    pub(crate) fn fill_after(writes: Option<usize>) {
        LEFT.with(|f| f.set(writes));
    }

    pub(super) fn check() -> std::io::Result<()> {
        LEFT.with(|left| match left.get() {
            Some(0) => Err(std::io::Error::from_raw_os_error(28)), // ENOSPC
            Some(n) => {
                left.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_bad_json_is_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        write_json(&path, &vec![1.5f64, 2.0]).unwrap();
        assert_eq!(read_json::<Vec<f64>>(&path).unwrap(), [1.5, 2.0]);
        std::fs::write(&path, "{ not json").unwrap();
        let err = read_json::<Vec<f64>>(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_json(&p, &serde_json::json!({"x": 1})).unwrap();
        write_json(&p, &serde_json::json!({"x": 2})).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["x"], 2);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    /// Results get the mode any new file gets here (0644 under the usual umask 022), not the
    /// temp file's 0600.
    #[cfg(unix)]
    #[test]
    fn atomic_writes_have_the_usual_file_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("a.json");
        write_json(&ours, &1).unwrap();
        let plain = dir.path().join("b.txt");
        std::fs::write(&plain, "1").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&plain));
        assert_eq!(mode(&ours) & 0o600, 0o600);
    }
}
