//! The local-directory store (`file:///abs/dir`): for tests, demos, and snapshot hosts that
//! serve a directory over HTTP.
//!
//! Objects are plain files under the root, so a web server can publish the directory as is.
//! Writes go to a temporary file in the target's directory, are re-read and compared with the
//! bytes sent, fsynced, and appear by atomic rename. Every rename happens under an exclusive
//! `flock` on `ROOT/.testnet-store.lock`, which makes preconditions hold across processes
//! (several publishers racing on one `base.json`).
//!
//! Versions are `MTIME_NS-SIZE-INODE` in hex. To make them change on every write even when two
//! writes land in the same timestamp tick (and the inode number is reused), each committed file
//! gets an mtime strictly greater than any the store handed out before: the last one is kept in
//! the lock file and bumped under the lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::{
    ByteStream, ObjectMeta, ObjectStore, Precondition, PutOptions, Result, StoreError, Version,
};

/// Names starting with this are the store's own (lock, temporary files): never listed, never
/// valid keys.
const RESERVED: &str = ".testnet-";
const LOCK_FILE: &str = ".testnet-store.lock";
/// Chunk size of `get_stream`: an LZ4 block then usually lies whole inside one chunk (no
/// gathering copy downstream); one is queued.
const GET_CHUNK: usize = 4 << 20;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A store over one local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

enum WriteMsg {
    Data(Bytes),
    /// The source ended normally; anything else closing the channel aborts the write.
    Finish,
}

fn io_err(url: &str, what: &str, e: io::Error) -> StoreError {
    StoreError::Io {
        url: url.to_string(),
        detail: format!("{what}: {e}"),
    }
}

impl LocalStore {
    /// Opens (creating if missing) the store rooted at the absolute directory `root`.
    pub fn open(root: &Path) -> Result<LocalStore> {
        let url = format!("file://{}", root.display());
        if !root.is_absolute() {
            return Err(StoreError::BadUrl {
                url,
                reason: "a file URL needs an absolute path".into(),
            });
        }
        fs::create_dir_all(root)
            .map_err(|e| io_err(&url, "cannot create the store directory", e))?;
        if !fs::metadata(root)
            .map_err(|e| io_err(&url, "cannot stat the store directory", e))?
            .is_dir()
        {
            return Err(StoreError::BadUrl {
                url,
                reason: "not a directory".into(),
            });
        }
        Ok(LocalStore {
            root: root.to_path_buf(),
        })
    }

    /// The directory this store writes into.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a key to its file, refusing keys that could leave the root or clash with the
    /// store's own files.
    fn path(&self, key: &str) -> Result<PathBuf> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: self.url(key),
            reason: reason.to_string(),
        };
        if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
            return Err(bad(
                "a key is a non-empty relative path without leading or trailing '/'",
            ));
        }
        let mut p = self.root.clone();
        for seg in key.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(bad("key segments may not be empty, '.' or '..'"));
            }
            if seg.starts_with(RESERVED) {
                return Err(bad(
                    "names starting with .testnet- are reserved by the local store",
                ));
            }
            if seg.contains('\0') {
                return Err(bad("keys may not contain NUL"));
            }
            p.push(seg);
        }
        Ok(p)
    }

    fn meta(key: &str, md: &fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: md.len(),
            version: version_of(md),
            sha256: None,
            content_type: None,
            confirmed: false,
        }
    }

    /// Runs `f` holding the store lock; `f` gets the lock file to read and bump the clock.
    fn locked<T>(&self, url: &str, f: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.root.join(LOCK_FILE))
            .map_err(|e| io_err(url, "cannot open the store lock", e))?;
        lock.lock()
            .map_err(|e| io_err(url, "cannot lock the store", e))?;
        let r = f(&mut lock);
        let _ = lock.unlock();
        r
    }

    fn commit(&self, key: &str, tmp: &Path, file: &File, opts: &PutOptions) -> Result<ObjectMeta> {
        let url = self.url(key);
        let dest = self.path(key)?;
        self.locked(&url, |lock| {
            let current = match fs::symlink_metadata(&dest) {
                Ok(md) => Some(md),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err(&url, "cannot stat", e)),
            };
            if current.as_ref().is_some_and(|md| md.is_dir()) {
                return Err(StoreError::Io {
                    url: url.clone(),
                    detail: "a directory exists at this key".into(),
                });
            }
            let ok = match (&opts.precondition, &current) {
                (Precondition::None, _) => true,
                (Precondition::IfAbsent, cur) => cur.is_none(),
                (Precondition::IfMatch(v), Some(md)) => version_of(md) == *v,
                (Precondition::IfMatch(_), None) => false,
            };
            if !ok {
                return Err(StoreError::PreconditionFailed { url: url.clone() });
            }
            let stamp =
                next_stamp(lock).map_err(|e| io_err(&url, "cannot update the store clock", e))?;
            file.set_modified(UNIX_EPOCH + Duration::from_nanos(stamp))
                .map_err(|e| io_err(&url, "cannot set mtime", e))?;
            fs::rename(tmp, &dest).map_err(|e| io_err(&url, "cannot rename into place", e))?;
            if let Some(parent) = dest.parent() {
                if let Ok(d) = File::open(parent) {
                    let _ = d.sync_all();
                }
            }
            let md = fs::symlink_metadata(&dest)
                .map_err(|e| io_err(&url, "cannot stat after rename", e))?;
            Ok(LocalStore::meta(key, &md))
        })
    }
}

/// Hands out a commit mtime (ns since the epoch) strictly greater than every earlier one.
fn next_stamp(lock: &mut File) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    lock.seek(SeekFrom::Start(0))?;
    let last = match lock.read_exact(&mut buf) {
        Ok(()) => u64::from_le_bytes(buf),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
        Err(e) => return Err(e),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let stamp = now.max(last + 1);
    lock.write_all_at(&stamp.to_le_bytes(), 0)?;
    Ok(stamp)
}

fn version_of(md: &fs::Metadata) -> Version {
    let ns = (md.mtime() as i128) * 1_000_000_000 + md.mtime_nsec() as i128;
    Version(format!("{ns:x}-{:x}-{:x}", md.len(), md.ino()))
}

/// Removes the temporary file unless the write committed.
struct TmpGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What the re-read found.
enum Reread {
    Same { len: u64 },
    Differs { at: u64 },
}

/// How much written data may wait in the page cache before the disk is asked to start on it.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Starts writing a range of the file to disk without waiting for it, so that the fsync before
/// the rename (which makes the object durable) finds little left to do instead of the whole
/// object: on a 1 GB artifact that final wait was about 0.4 s with the CPUs idle.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only schedules writeback. A failure is harmless
    // (the fsync still writes everything), so its result is ignored.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Reads `sent.len()` bytes of `file` at `off` through `buf` and returns the file offset of the
/// first byte that differs from `sent`, if any.
fn first_difference(file: &File, off: u64, sent: &[u8], buf: &mut [u8]) -> io::Result<Option<u64>> {
    for (i, want) in sent.chunks(buf.len()).enumerate() {
        let at = off + (i * buf.len()) as u64;
        let got = &mut buf[..want.len()];
        file.read_exact_at(got, at)?;
        if got != want {
            let same = got.iter().zip(want).take_while(|(a, b)| a == b).count();
            return Ok(Some(at + same as u64));
        }
    }
    Ok(None)
}

/// Writes the chunks it receives, re-reads each written range on a second thread and compares it
/// with what was sent, fsyncs, then commits. Runs on a blocking thread.
fn write_and_commit(
    store: LocalStore,
    key: String,
    mut rx: mpsc::Receiver<WriteMsg>,
    opts: PutOptions,
) -> Result<ObjectMeta> {
    let url = store.url(&key);
    let dest = store.path(&key)?;
    let parent = dest.parent().unwrap_or(&store.root).to_path_buf();
    fs::create_dir_all(&parent)
        .map_err(|e| io_err(&url, "cannot create the parent directory", e))?;
    let tmp = parent.join(format!(
        "{RESERVED}tmp-{}-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_err(&url, "cannot create a temporary file", e))?;
    let mut guard = TmpGuard {
        path: tmp.clone(),
        armed: true,
    };
    // The re-read runs one chunk behind the writer, on its own thread, and compares what the
    // file holds with the very chunk the caller handed over (shared, not copied): equal means the
    // file holds exactly what was sent. A byte comparison costs less than a checksum of both
    // sides, and the caller has already hashed the same bytes with SHA-256. Skipped when the
    // caller reads it all back. Two chunks in flight at most: each one held here is a buffer
    // the caller's pool cannot reuse.
    let confirm = !opts.full_read_follows;
    let (range_tx, range_rx) = std::sync::mpsc::sync_channel::<(u64, Bytes)>(2);
    let verifier = if confirm {
        let reread = file
            .try_clone()
            .map_err(|e| io_err(&url, "cannot reopen the temporary file", e))?;
        Some(
            std::thread::Builder::new()
                .name("objstore-local-reread".into())
                .spawn(move || -> io::Result<Reread> {
                    let mut buf = vec![0u8; 1 << 20];
                    let mut total = 0u64;
                    while let Ok((off, sent)) = range_rx.recv() {
                        if let Some(at) = first_difference(&reread, off, &sent, &mut buf)? {
                            return Ok(Reread::Differs { at });
                        }
                        total += sent.len() as u64;
                    }
                    Ok(Reread::Same { len: total })
                })
                .map_err(|e| io_err(&url, "cannot start the re-read thread", e))?,
        )
    } else {
        drop(range_rx);
        None
    };

    let mut written = 0u64;
    let mut flushed = 0u64;
    let mut finished = false;
    let mut write_err = None;
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            WriteMsg::Data(b) => {
                if let Err(e) = file.write_all(&b) {
                    write_err = Some(io_err(&url, "cannot write", e));
                    break;
                }
                let len = b.len() as u64;
                // A closed channel means the re-read stopped early; its answer says why.
                if confirm && range_tx.send((written, b)).is_err() {
                    break;
                }
                written += len;
                if written - flushed >= WRITEBACK_STEP {
                    start_writeback(&file, flushed, written - flushed);
                    flushed = written;
                }
            }
            WriteMsg::Finish => {
                finished = true;
                break;
            }
        }
    }
    drop(range_tx);
    let reread = verifier.map(|v| v.join());
    if let Some(e) = write_err {
        return Err(e);
    }
    let reread_len = match reread {
        Some(Ok(Ok(Reread::Same { len }))) => len,
        Some(Ok(Ok(Reread::Differs { at }))) => {
            return Err(StoreError::ChecksumMismatch {
                url,
                detail: format!("the file re-read differs from the bytes sent, first at byte {at}"),
            })
        }
        Some(Ok(Err(e))) => return Err(io_err(&url, "re-reading the written file failed", e)),
        Some(Err(_)) => {
            return Err(StoreError::Io {
                url,
                detail: "the re-read thread panicked".into(),
            })
        }
        None => written,
    };
    if !finished {
        // Cancelled or the source failed: the caller reports why; the guard removes the file.
        return Err(StoreError::Cancelled { url });
    }
    file.sync_all()
        .map_err(|e| io_err(&url, "fsync failed", e))?;
    let on_disk = file
        .metadata()
        .map_err(|e| io_err(&url, "cannot stat the temporary file", e))?
        .len();
    if reread_len != written || on_disk != written {
        return Err(StoreError::ChecksumMismatch {
            url,
            detail: format!("{written} bytes sent, {on_disk} on disk, {reread_len} re-read"),
        });
    }
    let mut meta = store.commit(&key, &tmp, &file, &opts)?;
    guard.armed = false;
    meta.confirmed = confirm;
    meta.content_type = opts.content_type.clone();
    Ok(meta)
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    fn url(&self, key: &str) -> String {
        format!("file://{}/{}", self.root.display(), key)
    }

    async fn put_bytes(&self, key: &str, data: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        let body: ByteStream = Box::pin(futures::stream::iter([Ok(data)]));
        self.put_stream(key, body, opts).await
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        let url = self.url(key);
        self.path(key)?;
        let (tx, rx) = mpsc::channel::<WriteMsg>(4);
        let cancel = opts.cancel.clone();
        let writer = {
            let store = self.clone();
            let key = key.to_string();
            tokio::task::spawn_blocking(move || write_and_commit(store, key, rx, opts))
        };
        let cancelled = async {
            match &cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(cancelled);
        let mut failure = None;
        loop {
            let item = tokio::select! {
                biased;
                _ = &mut cancelled => { failure = Some(StoreError::Cancelled { url: url.clone() }); break; }
                item = body.next() => item,
            };
            match item {
                Some(Ok(b)) => {
                    if b.is_empty() {
                        continue;
                    }
                    let sent = tokio::select! {
                        biased;
                        _ = &mut cancelled => { failure = Some(StoreError::Cancelled { url: url.clone() }); break; }
                        r = tx.send(WriteMsg::Data(b)) => r,
                    };
                    if sent.is_err() {
                        break; // the writer failed; its error is below
                    }
                }
                Some(Err(e)) => {
                    failure = Some(StoreError::Io {
                        url: url.clone(),
                        detail: format!("the source stream failed: {e}"),
                    });
                    break;
                }
                None => {
                    let _ = tx.send(WriteMsg::Finish).await;
                    break;
                }
            }
        }
        drop(tx);
        let result = writer.await.map_err(|e| StoreError::Io {
            url: url.clone(),
            detail: format!("writer task failed: {e}"),
        })?;
        match failure {
            Some(f) => Err(f),
            None => result,
        }
    }

    async fn get_bytes(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let path = self.path(key)?;
        let url = self.url(key);
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let mut f = open_object(&path, &url)?;
            let md = f.metadata().map_err(|e| io_err(&url, "cannot stat", e))?;
            let mut data = Vec::with_capacity(md.len() as usize);
            f.read_to_end(&mut data)
                .map_err(|e| io_err(&url, "cannot read", e))?;
            let mut meta = LocalStore::meta(&key, &md);
            meta.sha256 = Some(Sha256::digest(&data).into());
            Ok((Bytes::from(data), meta))
        })
        .await
        .map_err(|e| StoreError::Io {
            url: self.url(""),
            detail: format!("reader task failed: {e}"),
        })?
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let path = self.path(key)?;
        let url = self.url(key);
        let u = url.clone();
        let mut f = tokio::task::spawn_blocking(move || open_object(&path, &u))
            .await
            .map_err(|e| StoreError::Io {
                url: url.clone(),
                detail: format!("open task failed: {e}"),
            })??;
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(1);
        std::thread::Builder::new()
            .name("objstore-local-get".into())
            .spawn(move || loop {
                // Large pieces: an LZ4 block then usually lies whole inside one (no gathering
                // copy downstream). Read into fresh capacity: nothing is zeroed first.
                let mut buf = Vec::with_capacity(GET_CHUNK);
                let r = loop {
                    match io::Read::by_ref(&mut f)
                        .take((GET_CHUNK - buf.len()) as u64)
                        .read_to_end(&mut buf)
                    {
                        Ok(_) => break Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                if let Err(e) = r {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                if buf.is_empty() {
                    return;
                }
                let last = buf.len() < GET_CHUNK;
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() || last {
                    return;
                }
            })
            .map_err(|e| io_err(&url, "cannot start the reader thread", e))?;
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.path(key)?;
        match tokio::fs::symlink_metadata(&path).await {
            Ok(md) if md.is_file() => Ok(Some(LocalStore::meta(key, &md))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&self.url(key), "cannot stat", e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let url = self.url(key);
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            store.locked(&url, |_| match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(&url, "cannot delete", e)),
            })
        })
        .await
        .map_err(|e| StoreError::Io {
            url: self.url(key),
            detail: format!("delete task failed: {e}"),
        })?
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        let url = self.url(&prefix);
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            list_dir(&root, "", &prefix, &mut out).map_err(|e| io_err(&url, "cannot list", e))?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Io {
            url: self.url(""),
            detail: format!("list task failed: {e}"),
        })?
    }
}

fn open_object(path: &Path, url: &str) -> Result<File> {
    match File::open(path) {
        Ok(f) => {
            let md = f.metadata().map_err(|e| io_err(url, "cannot stat", e))?;
            if md.is_file() {
                Ok(f)
            } else {
                Err(StoreError::NotFound {
                    url: url.to_string(),
                })
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
            url: url.to_string(),
        }),
        Err(e) => Err(io_err(url, "cannot open", e)),
    }
}

fn list_dir(dir: &Path, key_prefix: &str, want: &str, out: &mut Vec<ObjectMeta>) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with(RESERVED) {
            continue;
        }
        let key = format!("{key_prefix}{name}");
        let md = match fs::symlink_metadata(entry.path()) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // deleted meanwhile
            Err(e) => return Err(e),
        };
        if md.is_dir() {
            let sub = format!("{key}/");
            if sub.starts_with(want) || want.starts_with(&sub) {
                list_dir(&entry.path(), &sub, want, out)?;
            }
        } else if md.is_file() && key.starts_with(want) {
            out.push(LocalStore::meta(&key, &md));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The re-read catches a file that no longer holds what was sent, wherever the change is,
    /// including across the read buffer's boundaries.
    #[test]
    fn first_difference_finds_the_changed_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let sent: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut buf = vec![0u8; 1000];
        for at in [0usize, 999, 1000, 1001, 5555, 9999] {
            let mut on_disk = sent.clone();
            on_disk[at] ^= 0x40;
            fs::write(&path, [b"xyz".as_slice(), &on_disk].concat()).unwrap();
            let f = File::open(&path).unwrap();
            assert_eq!(
                first_difference(&f, 3, &sent, &mut buf).unwrap(),
                Some(3 + at as u64),
                "byte {at} changed"
            );
        }
        fs::write(&path, [b"xyz".as_slice(), &sent].concat()).unwrap();
        let f = File::open(&path).unwrap();
        assert_eq!(first_difference(&f, 3, &sent, &mut buf).unwrap(), None);
        // A file shorter than what was sent is an error, never a match.
        fs::write(&path, &sent[..500]).unwrap();
        let f = File::open(&path).unwrap();
        assert!(first_difference(&f, 0, &sent, &mut buf).is_err());
    }
}
