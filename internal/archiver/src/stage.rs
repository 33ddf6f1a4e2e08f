//! All-or-nothing restores. An archive is extracted into a staging directory on the target's
//! filesystem and moved into place only after the caller has checked everything it read (the
//! archiver's LZ4 checksums and safe paths here, the published SHA-256 and file count in the
//! catalog). Whatever fails before that, or a cancellation, removes the staging directory and
//! leaves the target exactly as it was: a node, or an init container that retries, never starts
//! from half a state.
//!
//! Where the staging directory goes:
//! - beside the target (`<parent>/.<name>.restore-<id>`) in the common case; the commit is one
//!   `rename(2)`, or with `replace` three: target -> old, staging -> target, then the old tree
//!   is removed;
//! - inside the target (`<target>/.testnet-restore-<id>`) when the target is a mount point (a
//!   volume mounted at the data directory): a mount point cannot be renamed and its parent is
//!   another filesystem, so the commit moves the staged entries up one by one (each a rename on
//!   the same filesystem), rolling back on failure. A fresh filesystem's `lost+found` stays where
//!   it is: an empty one is not content, and it is never swapped away.
//!
//! Durability: when a restore returns, the restored tree is on disk, not only in the page cache
//! (an init container's node starts next, and a crash must not leave files that the commit
//! published but the disk never got). Large files are written with `O_DIRECT` as they are
//! extracted (`filewrite.rs`); one `syncfs(2)` of the target's filesystem before the commit then
//! flushes the rest (small files, tails, inodes, directories), and the directory the commit
//! renamed into is fsynced after it. A crash before that point leaves the target as it was and a
//! staging directory to remove.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{ArchiveError, ByteStream, ReadOptions, VerifySummary};

/// Prefix of staging directories created inside a mount-point target.
const INSIDE_STAGING: &str = ".testnet-restore-";
/// Prefix of the directory holding the old tree inside a mount-point target during a replace.
const INSIDE_OLD: &str = ".testnet-old-";
/// Entries a fresh filesystem carries at its root (ext4 on a GCE PD or an EBS volume): left in
/// place by a restore into a mount point, and not counted as content while empty.
const FS_ROOT_ENTRIES: &[&str] = &["lost+found"];

/// How a restore treats its target.
#[derive(Clone, Default)]
pub struct RestoreOptions {
    /// Swap the restored tree in for a target that already holds files; the old tree is removed
    /// only after the swap. Without it a non-empty target is refused.
    pub replace: bool,
    pub read: ReadOptions,
}

impl std::fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("replace", &self.replace)
            .field("read", &self.read)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Beside,
    Inside,
}

/// A fully read and checked archive waiting in its staging directory. [`StagedRestore::commit`]
/// moves it into place; dropping it instead removes the staging directory and leaves the target
/// untouched.
#[derive(Debug)]
pub struct StagedRestore {
    target: PathBuf,
    staging: Option<PathBuf>,
    layout: Layout,
    replace: bool,
    summary: VerifySummary,
    /// A file the caller added to the staged tree ([`StagedRestore::add_file`]); moved into
    /// place last, so that it is never there before the tree it describes.
    last: Option<OsString>,
}

/// Reads a whole archive into a staging directory for `into`. Refuses a non-empty target unless
/// `opts.replace`; on any error the staging directory is gone when this returns.
pub async fn stage(
    stream: ByteStream,
    into: &Path,
    opts: RestoreOptions,
) -> Result<StagedRestore, ArchiveError> {
    let (target, layout) = prepare(into, opts.replace)?;
    let staging = make_staging(&target, layout)?;
    // From here the guard removes the staging directory on every early return.
    let mut staged = StagedRestore {
        target,
        staging: Some(staging.clone()),
        layout,
        replace: opts.replace,
        summary: VerifySummary {
            sha256: [0; 32],
            compressed_bytes: 0,
            uncompressed_bytes: 0,
            file_count: 0,
        },
        last: None,
    };
    staged.summary = crate::read::run(stream, Some(staging.clone()), opts.read).await?;
    // Durable before visible: the commit's rename must never publish a tree whose file contents
    // a crash could still lose (ext4 would bring back empty files under the new names).
    let dir = staging.clone();
    tokio::task::spawn_blocking(move || sync_filesystem(&dir))
        .await
        .map_err(|e| ArchiveError::Internal {
            detail: format!("sync task failed: {e}"),
        })?
        .map_err(|source| ArchiveError::Write {
            path: staging,
            source,
        })?;
    Ok(staged)
}

/// Writes every dirty page and inode of the filesystem holding `dir` to disk: one `syncfs(2)`
/// for the whole restored tree instead of an fsync per file.
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let d = fs::File::open(dir)?;
    // SAFETY: syncfs takes any open descriptor on the filesystem; `d` is open for the call.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl StagedRestore {
    /// What was read: compare it with the published metadata before committing.
    pub fn summary(&self) -> &VerifySummary {
        &self.summary
    }

    /// The directory the restore went into, until it is committed or dropped.
    pub fn staging_dir(&self) -> Option<&Path> {
        self.staging.as_deref()
    }

    /// The directory the restored tree will be moved to.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes a file at the root of the staged tree, replacing any entry of that name the archive
    /// brought (never following it), so it moves into place with the tree, and last: for a note
    /// about the restore itself, such as the catalog's restore marker.
    pub fn add_file(&mut self, name: &str, contents: &[u8]) -> Result<(), ArchiveError> {
        use std::io::Write as _;
        let staging = self.staging.clone().ok_or_else(|| ArchiveError::Internal {
            detail: "file added to a committed restore".into(),
        })?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(ArchiveError::Internal {
                detail: format!("{name:?} is not a file name"),
            });
        }
        let path = staging.join(name);
        let write = |source: io::Error| ArchiveError::Write {
            path: path.clone(),
            source,
        };
        match fs::symlink_metadata(&path) {
            Ok(md) if md.is_dir() => remove_tree(&path).map_err(write)?,
            Ok(_) => fs::remove_file(&path).map_err(write)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(write(e)),
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(write)?;
        f.write_all(contents).map_err(write)?;
        f.sync_all().map_err(write)?;
        self.last = Some(OsString::from(name));
        Ok(())
    }

    /// Moves the restored tree into place. On error the target is as it was (the old tree moved
    /// back where a replace had moved it) and the staging directory is removed.
    pub fn commit(mut self) -> Result<VerifySummary, ArchiveError> {
        let staging = self.staging.clone().ok_or_else(|| ArchiveError::Internal {
            detail: "restore committed twice".into(),
        })?;
        match self.layout {
            Layout::Beside => self.commit_beside(&staging)?,
            Layout::Inside => self.commit_inside(&staging)?,
        }
        // The renames that put the tree in place, on disk too.
        let moved_in = match self.layout {
            Layout::Beside => parent_of(&self.target),
            Layout::Inside => self.target.clone(),
        };
        sync_dir(&moved_in).map_err(|source| ArchiveError::Write {
            path: moved_in,
            source,
        })?;
        Ok(self.summary.clone())
    }

    fn commit_beside(&mut self, staging: &Path) -> Result<(), ArchiveError> {
        let target = self.target.clone();
        let fail = |source: io::Error| ArchiveError::Write {
            path: target.clone(),
            source,
        };
        match fs::symlink_metadata(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::rename(staging, &target).map_err(fail)?;
            }
            Err(e) => return Err(fail(e)),
            Ok(md) => {
                if is_empty_dir(&target, Layout::Beside).map_err(fail)? {
                    keep_owner_and_mode(staging, &md);
                    // rename(2) replaces an empty directory in one step.
                    fs::rename(staging, &target).map_err(fail)?;
                } else if !self.replace {
                    // Someone filled the target while the archive was read.
                    return Err(ArchiveError::TargetNotEmpty { dir: target });
                } else {
                    keep_owner_and_mode(staging, &md);
                    let old = sibling(&target, "old")?;
                    fs::rename(&target, &old).map_err(fail)?;
                    if let Err(e) = fs::rename(staging, &target) {
                        // Put the old tree back before reporting.
                        let _ = fs::rename(&old, &target);
                        return Err(fail(e));
                    }
                    self.staging = None;
                    if let Err(e) = remove_tree(&old) {
                        tracing::warn!(dir = %old.display(), error = %e,
                            "restore: the replaced tree could not be removed");
                    }
                }
            }
        }
        self.staging = None;
        Ok(())
    }

    fn commit_inside(&mut self, staging: &Path) -> Result<(), ArchiveError> {
        let target = self.target.clone();
        let fail = |source: io::Error| ArchiveError::Write {
            path: target.clone(),
            source,
        };
        let own = |name: &OsString| {
            let s = name.to_string_lossy();
            s.starts_with(INSIDE_STAGING) || s.starts_with(INSIDE_OLD)
        };
        let kept = |n: &OsString| FS_ROOT_ENTRIES.contains(&n.to_string_lossy().as_ref());
        if !self.replace && !is_empty_dir(&target, Layout::Inside).map_err(fail)? {
            // Someone filled the target while the archive was read.
            return Err(ArchiveError::TargetNotEmpty { dir: target });
        }
        let existing: Vec<OsString> = list(&target)
            .map_err(fail)?
            .into_iter()
            .filter(|n| !own(n) && !kept(n))
            .collect();
        // The staged entries, the caller's added file last; a `lost+found` the archive brought
        // does not displace the filesystem's own.
        let mut incoming: Vec<OsString> = list(staging)
            .map_err(fail)?
            .into_iter()
            .filter(|n| !(kept(n) && target.join(n).exists()))
            .collect();
        incoming.sort_by_key(|n| Some(n) == self.last.as_ref());
        let old = target.join(format!("{INSIDE_OLD}{}", unique()));
        let mut moved_out: Vec<OsString> = Vec::new();
        let mut moved_in: Vec<OsString> = Vec::new();
        let result = (|| -> io::Result<()> {
            if !existing.is_empty() {
                fs::create_dir(&old)?;
                for n in &existing {
                    fs::rename(target.join(n), old.join(n))?;
                    moved_out.push(n.clone());
                }
            }
            for n in incoming {
                fs::rename(staging.join(&n), target.join(&n))?;
                moved_in.push(n);
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Undo in reverse: the staged entries go back to staging (removed by the guard), the
            // old ones come back.
            for n in moved_in.iter().rev() {
                let _ = fs::rename(target.join(n), staging.join(n));
            }
            for n in moved_out.iter().rev() {
                let _ = fs::rename(old.join(n), target.join(n));
            }
            let _ = fs::remove_dir(&old);
            return Err(fail(e));
        }
        self.staging = None;
        if let Err(e) = remove_tree(staging) {
            tracing::warn!(dir = %staging.display(), error = %e,
                "restore: the staging directory could not be removed");
        }
        if !existing.is_empty() {
            if let Err(e) = remove_tree(&old) {
                tracing::warn!(dir = %old.display(), error = %e,
                    "restore: the replaced tree could not be removed");
            }
        }
        Ok(())
    }
}

impl Drop for StagedRestore {
    fn drop(&mut self) {
        if let Some(dir) = self.staging.take() {
            if let Err(e) = remove_tree(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "restore: the staging directory could not be removed");
            }
        }
    }
}

/// Resolves the target (following a symlink to a directory) and checks it may be restored into.
fn prepare(into: &Path, replace: bool) -> Result<(PathBuf, Layout), ArchiveError> {
    let write = |source: io::Error| ArchiveError::Write {
        path: into.to_path_buf(),
        source,
    };
    match fs::metadata(into) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(into).is_ok() {
                return Err(ArchiveError::NotADirectory {
                    dir: into.to_path_buf(),
                });
            }
            let parent = parent_of(into);
            fs::create_dir_all(&parent).map_err(|source| ArchiveError::Write {
                path: parent.clone(),
                source,
            })?;
            let parent = fs::canonicalize(&parent).map_err(write)?;
            let name = into
                .file_name()
                .ok_or_else(|| ArchiveError::NotADirectory {
                    dir: into.to_path_buf(),
                })?;
            Ok((parent.join(name), Layout::Beside))
        }
        Err(e) => Err(write(e)),
        Ok(md) if !md.is_dir() => Err(ArchiveError::NotADirectory {
            dir: into.to_path_buf(),
        }),
        Ok(md) => {
            let target = fs::canonicalize(into).map_err(write)?;
            let layout = match fs::metadata(parent_of(&target)) {
                Ok(p) if p.dev() == md.dev() && target.parent().is_some() => Layout::Beside,
                _ => Layout::Inside,
            };
            if !replace && !is_empty_dir(&target, layout).map_err(write)? {
                return Err(ArchiveError::TargetNotEmpty { dir: target });
            }
            Ok((target, layout))
        }
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn make_staging(target: &Path, layout: Layout) -> Result<PathBuf, ArchiveError> {
    let dir = match layout {
        Layout::Beside => sibling(target, "restore")?,
        Layout::Inside => target.join(format!("{INSIDE_STAGING}{}", unique())),
    };
    fs::create_dir(&dir).map_err(|source| ArchiveError::Write {
        path: dir.clone(),
        source,
    })?;
    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
    Ok(dir)
}

/// `<parent>/.<name>.<what>-<unique>`: hidden, on the target's filesystem, and clearly ours.
fn sibling(target: &Path, what: &str) -> Result<PathBuf, ArchiveError> {
    let name = target
        .file_name()
        .ok_or_else(|| ArchiveError::NotADirectory {
            dir: target.to_path_buf(),
        })?
        .to_string_lossy();
    Ok(parent_of(target).join(format!(".{name}.{what}-{}", unique())))
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos:08x}", std::process::id())
}

fn list(dir: &Path) -> io::Result<Vec<OsString>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect()
}

/// Whether a target directory holds nothing a restore would mix with. Inside a mount point, our
/// own leftovers and an empty `lost+found` do not count.
fn is_empty_dir(dir: &Path, layout: Layout) -> io::Result<bool> {
    Ok(list(dir)?.iter().all(|n| {
        let s = n.to_string_lossy();
        layout == Layout::Inside
            && (s.starts_with(INSIDE_STAGING)
                || s.starts_with(INSIDE_OLD)
                || (FS_ROOT_ENTRIES.contains(&s.as_ref()) && holds_nothing(&dir.join(n))))
    }))
}

/// Whether a filesystem's `lost+found` is empty. One this process may not read (root's 0700,
/// seen by an init container running as a node's user) counts as empty: fsck fills it only after
/// a crash, and a restore never touches it either way.
fn holds_nothing(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
    }
}

/// The restored tree takes the mode and owner of the directory it replaces, so a data directory
/// prepared for a node's user stays that user's. Best effort: only root may give files away.
fn keep_owner_and_mode(staging: &Path, old: &fs::Metadata) {
    let _ = fs::set_permissions(staging, fs::Permissions::from_mode(old.mode() & 0o7777));
    let _ = std::os::unix::fs::chown(staging, Some(old.uid()), Some(old.gid()));
}

/// Removes a tree, making read-only directories writable first when that is what stops it.
pub(crate) fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(dir);
            match fs::remove_dir_all(dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        }
    }
}

fn make_writable(dir: &Path) {
    let Ok(md) = fs::symlink_metadata(dir) else {
        return;
    };
    if !md.is_dir() {
        return;
    }
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            make_writable(&e.path());
        }
    }
}
