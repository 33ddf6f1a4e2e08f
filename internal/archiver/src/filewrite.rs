//! Writing restored files on a thread of their own, large files with `O_DIRECT`.
//!
//! On this kind of machine (a VM, ext4 on virtio) copying data into the page cache costs about
//! 2 CPU seconds per GiB in the kernel, more than hashing, decompressing and checking together,
//! and a restore must reach the disk anyway before it is committed (see `stage.rs`). Direct I/O
//! hands the buffers to the device instead (about 900 MB/s here for 4 MiB writes). The tar
//! thread fills 4 KiB-aligned buffers and queues them; this thread writes them, so waiting for
//! the device overlaps with hashing and decompression. A file's unaligned tail, small files, and
//! filesystems that refuse `O_DIRECT` (tmpfs) are written through the page cache.
//!
//! Mode and mtime are set here after a file's last write, which would otherwise move its mtime.

use std::alloc::{self, Layout};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_channel::{bounded, Receiver, Sender};

/// Alignment of buffers, offsets and lengths of direct writes (the page size; the disk needs 512).
pub(crate) const ALIGN: usize = 4096;
/// Bytes per queued buffer.
pub(crate) const BUF_LEN: usize = 4 << 20;
/// Buffers circulating between the tar thread and the writer: one filling, two queued.
const BUFS: usize = 3;
/// Files at least this large are written with `O_DIRECT`.
pub(crate) const DIRECT_MIN: u64 = 1 << 20;

/// A zero-initialised, `ALIGN`-aligned heap buffer of `BUF_LEN` bytes.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
}

// SAFETY: the buffer is uniquely owned heap memory.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn layout() -> Layout {
        Layout::from_size_align(BUF_LEN, ALIGN).expect("constant layout")
    }

    fn new() -> AlignedBuf {
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(Self::layout()) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(Self::layout()));
        AlignedBuf { ptr }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: BUF_LEN initialised bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), BUF_LEN) }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), BUF_LEN) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout()) }
    }
}

/// A file being restored, shared by the jobs that fill it.
pub(crate) struct OpenFile {
    file: File,
    /// Relative path, for errors.
    rel: PathBuf,
    direct: AtomicBool,
}

impl OpenFile {
    pub(crate) fn new(file: File, rel: PathBuf, direct: bool) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            file,
            rel,
            direct: AtomicBool::new(direct),
        })
    }

    /// Leaves direct I/O for the rest of the file (an unaligned tail, or a refused write).
    fn end_direct(&self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with integer arguments.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        self.direct.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Appends `data` (which starts `ALIGN`-aligned in memory and in the file while direct).
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut off = 0;
        while off < data.len() {
            let rest = &data[off..];
            let direct = self.direct.load(Ordering::Relaxed);
            let n = if direct {
                rest.len() & !(ALIGN - 1)
            } else {
                rest.len()
            };
            if n == 0 {
                self.end_direct()?;
                continue;
            }
            match (&self.file).write(&rest[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => off += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Alignment refused after all: the page cache takes the rest.
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => self.end_direct()?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

enum Job {
    Data {
        file: Arc<OpenFile>,
        buf: AlignedBuf,
        len: usize,
    },
    Finish {
        file: Arc<OpenFile>,
        mode: u32,
        mtime: Option<SystemTime>,
    },
}

/// Why the writer stopped: the file and the error.
pub(crate) type WriteFailure = (PathBuf, io::Error);

/// The writer thread and its buffers, as the tar thread sees them.
pub(crate) struct FileWriter {
    jobs: Option<Sender<Job>>,
    free: Receiver<AlignedBuf>,
    spare: Option<AlignedBuf>,
    thread: Option<std::thread::JoinHandle<Result<(), WriteFailure>>>,
}

impl FileWriter {
    pub(crate) fn start() -> io::Result<FileWriter> {
        let (jobs_tx, jobs_rx) = bounded::<Job>(BUFS);
        let (free_tx, free_rx) = bounded::<AlignedBuf>(BUFS);
        for _ in 0..BUFS {
            let _ = free_tx.send(AlignedBuf::new());
        }
        let thread = std::thread::Builder::new()
            .name("archiver-write".into())
            .spawn(move || write_loop(jobs_rx, free_tx))?;
        Ok(FileWriter {
            jobs: Some(jobs_tx),
            free: free_rx,
            spare: None,
            thread: Some(thread),
        })
    }

    /// A writer that has stopped (or never started): takes nothing, reports nothing.
    pub(crate) fn idle() -> FileWriter {
        FileWriter {
            jobs: None,
            free: crossbeam_channel::never(),
            spare: None,
            thread: None,
        }
    }

    /// A buffer to fill; `None` once the writer has stopped (see [`FileWriter::finish`]).
    pub(crate) fn buffer(&mut self) -> Option<AlignedBuf> {
        self.spare.take().or_else(|| self.free.recv().ok())
    }

    /// Returns an unused buffer.
    pub(crate) fn give_back(&mut self, buf: AlignedBuf) {
        self.spare = Some(buf);
    }

    /// Queues `len` bytes of `buf` for `file`; false once the writer has stopped.
    pub(crate) fn write(&self, file: &Arc<OpenFile>, buf: AlignedBuf, len: usize) -> bool {
        self.send(Job::Data {
            file: file.clone(),
            buf,
            len,
        })
    }

    /// Queues the file's mode and mtime, set after its last write; false once stopped.
    pub(crate) fn close(&self, file: Arc<OpenFile>, mode: u32, mtime: Option<SystemTime>) -> bool {
        self.send(Job::Finish { file, mode, mtime })
    }

    fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }

    /// Waits for every queued write; the first failure, if any.
    pub(crate) fn finish(mut self) -> Result<(), WriteFailure> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), WriteFailure> {
        self.jobs = None;
        match self.thread.take().map(|t| t.join()) {
            None => Ok(()),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err((
                PathBuf::new(),
                io::Error::other("the file writer thread panicked"),
            )),
        }
    }
}

impl Drop for FileWriter {
    /// A failed or cancelled restore stops the writer before its staging directory goes.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn write_loop(jobs: Receiver<Job>, free: Sender<AlignedBuf>) -> Result<(), WriteFailure> {
    for job in jobs {
        match job {
            Job::Data { file, buf, len } => {
                file.append(&buf.as_slice()[..len])
                    .map_err(|e| (file.rel.clone(), e))?;
                let _ = free.send(buf);
            }
            Job::Finish { file, mode, mtime } => {
                let f = &file.file;
                let r = f
                    .set_permissions(fs::Permissions::from_mode(mode))
                    .and_then(|()| mtime.map_or(Ok(()), |t| f.set_modified(t)));
                r.map_err(|e| (file.rel.clone(), e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    fn roundtrip(len: usize, direct: bool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let open = |flags| {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(flags)
                .open(&path)
        };
        let (f, direct) = match open(if direct { libc::O_DIRECT } else { 0 }) {
            Ok(f) => (f, direct),
            Err(_) => (open(0).expect("open"), false),
        };
        let want: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let file = OpenFile::new(f, PathBuf::from("f"), direct);
        let mut w = FileWriter::start().expect("start");
        for piece in want.chunks(BUF_LEN) {
            let mut buf = w.buffer().expect("buffer");
            buf.as_mut_slice()[..piece.len()].copy_from_slice(piece);
            assert!(w.write(&file, buf, piece.len()));
        }
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
        assert!(w.close(file, 0o640, Some(t)));
        w.finish().expect("written");
        assert_eq!(fs::read(&path).expect("read"), want);
        let md = fs::metadata(&path).expect("stat");
        assert_eq!(md.permissions().mode() & 0o7777, 0o640);
        assert_eq!(md.modified().expect("mtime"), t);
    }

    #[test]
    fn direct_writes_keep_bytes_tails_mode_and_mtime() {
        for len in [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 3,
            BUF_LEN,
            BUF_LEN + 4097,
            2 * BUF_LEN + 1,
        ] {
            roundtrip(len, true);
            roundtrip(len, false);
        }
    }
}
