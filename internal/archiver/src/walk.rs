//! One sorted walk of the source tree, applying include/exclude globs, so the archive lists
//! entries in the same order every time (reproducible bytes for identical trees). The walk
//! streams: it runs on its own thread just ahead of the tar writer.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};

use crate::ArchiveError;

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    File { size: u64 },
    Dir,
    Symlink { target: PathBuf },
}

/// One entry found by the walk, with the metadata that goes into its tar header.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path relative to the archived directory, `/`-separated.
    pub rel: PathBuf,
    pub abs: PathBuf,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
}

/// Compiled include or exclude globs. Patterns without `/` match an entry's name at any
/// depth (like `.gitignore`); patterns with `/` match the whole relative path.
#[derive(Debug, Default, Clone)]
pub(crate) struct Patterns {
    by_name: Option<GlobSet>,
    by_path: Option<GlobSet>,
}

impl Patterns {
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, ArchiveError> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let (mut n_names, mut n_paths) = (0, 0);
        for raw in patterns {
            let trimmed = raw.trim_end_matches('/');
            let (anchored, pat) = match trimmed.strip_prefix('/') {
                Some(rest) => (true, rest),
                None => (trimmed.contains('/'), trimmed),
            };
            if pat.is_empty() {
                return Err(ArchiveError::BadPattern {
                    pattern: raw.to_string(),
                    detail: "empty pattern".into(),
                });
            }
            let glob = globset::GlobBuilder::new(pat)
                .literal_separator(true)
                .build()
                .map_err(|e: globset::Error| ArchiveError::BadPattern {
                    pattern: raw.to_string(),
                    detail: e.kind().to_string(),
                })?;
            if anchored {
                paths.add(glob);
                n_paths += 1;
            } else {
                names.add(glob);
                n_names += 1;
            }
        }
        let build = |b: GlobSetBuilder, n: usize| -> Result<Option<GlobSet>, ArchiveError> {
            if n == 0 {
                return Ok(None);
            }
            b.build().map(Some).map_err(|e| ArchiveError::BadPattern {
                pattern: String::new(),
                detail: e.to_string(),
            })
        };
        Ok(Patterns {
            by_name: build(names, n_names)?,
            by_path: build(paths, n_paths)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_none() && self.by_path.is_none()
    }

    pub fn matches(&self, rel: &Path, name: &Path) -> bool {
        self.by_name.as_ref().is_some_and(|s| s.is_match(name))
            || self.by_path.as_ref().is_some_and(|s| s.is_match(rel))
    }
}

/// What the walk finds, in archive order.
pub(crate) enum Walked {
    Entry(Entry),
    /// Something skipped, said for a human (sockets, FIFOs, devices).
    Warning(String),
}

/// Walks `root` in archive order and hands each entry and warning to `sink` as soon as it is
/// found, so archiving starts with the first entry and a tree of millions of files is never held
/// in memory (only the names of the directories on the current path, each sorted). Returns the
/// sum of file sizes. An error from `sink` stops the walk and is returned as is.
pub(crate) fn walk(
    root: &Path,
    includes: &Patterns,
    excludes: &Patterns,
    sink: &mut dyn FnMut(Walked) -> Result<(), ArchiveError>,
) -> Result<u64, ArchiveError> {
    let mut w = Walker {
        includes,
        excludes,
        sink,
        emitted: 0,
        pending: Vec::new(),
        total: 0,
    };
    w.dir(root, Path::new(""), includes.is_empty())?;
    if w.emitted == 0 {
        return Err(ArchiveError::NothingToArchive {
            dir: root.to_path_buf(),
        });
    }
    Ok(w.total)
}

struct Walker<'a> {
    includes: &'a Patterns,
    excludes: &'a Patterns,
    sink: &'a mut dyn FnMut(Walked) -> Result<(), ArchiveError>,
    emitted: u64,
    /// Directories not yet emitted: with includes, a directory appears only when something
    /// inside it (or itself) is included.
    pending: Vec<Entry>,
    total: u64,
}

impl Walker<'_> {
    fn emit(&mut self, e: Entry) -> Result<(), ArchiveError> {
        for dir in self.pending.drain(..) {
            (self.sink)(Walked::Entry(dir))?;
            self.emitted += 1;
        }
        if let Kind::File { size } = e.kind {
            self.total += size;
        }
        self.emitted += 1;
        (self.sink)(Walked::Entry(e))
    }

    fn dir(&mut self, abs: &Path, rel: &Path, included: bool) -> Result<(), ArchiveError> {
        let unreadable = |source| ArchiveError::Unreadable {
            path: abs.to_path_buf(),
            source,
        };
        let mut names: Vec<OsString> = fs::read_dir(abs)
            .map_err(unreadable)?
            .map(|r| r.map(|d| d.file_name()))
            .collect::<Result<_, _>>()
            .map_err(unreadable)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child_abs = abs.join(&name);
            let child_rel = rel.join(&name);
            if self.excludes.matches(&child_rel, Path::new(&name)) {
                continue;
            }
            let md =
                fs::symlink_metadata(&child_abs).map_err(|source| ArchiveError::Unreadable {
                    path: child_abs.clone(),
                    source,
                })?;
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir
            } else if ft.is_file() {
                Kind::File { size: md.len() }
            } else if ft.is_symlink() {
                let target =
                    fs::read_link(&child_abs).map_err(|source| ArchiveError::Unreadable {
                        path: child_abs.clone(),
                        source,
                    })?;
                Kind::Symlink { target }
            } else {
                let what = if ft.is_socket() {
                    "socket"
                } else if ft.is_fifo() {
                    "FIFO"
                } else {
                    "device"
                };
                (self.sink)(Walked::Warning(format!(
                    "skipped {} ({what})",
                    child_abs.display()
                )))?;
                continue;
            };
            let entry = Entry {
                rel: child_rel.clone(),
                abs: child_abs.clone(),
                kind: kind.clone(),
                mode: md.mode() & 0o7777,
                uid: md.uid() as u64,
                gid: md.gid() as u64,
                mtime: md.mtime(),
            };
            let inc = included || self.includes.matches(&child_rel, Path::new(&name));
            if kind == Kind::Dir {
                let depth = self.pending.len();
                if inc {
                    self.emit(entry)?;
                } else {
                    self.pending.push(entry);
                }
                self.dir(&child_abs, &child_rel, inc)?;
                self.pending.truncate(depth);
            } else if inc {
                self.emit(entry)?;
            }
        }
        Ok(())
    }
}
