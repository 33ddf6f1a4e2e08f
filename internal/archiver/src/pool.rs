//! Fixed-size byte buffers recycled through a bounded channel and lent out as [`Bytes`] without
//! copying. A fresh multi-MiB allocation per chunk costs a page fault per 4 KiB touched (glibc
//! maps and unmaps large blocks); recycling keeps those pages resident and the copies at zero.

use bytes::Bytes;
use crossbeam_channel::{bounded, Receiver, Sender};

/// Buffers of one length. The pool holds at most `capacity` idle buffers: a buffer coming home
/// to a full pool is freed, so memory is bounded by the peak number in flight.
#[derive(Clone)]
pub(crate) struct BufPool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    len: usize,
}

impl BufPool {
    pub fn new(capacity: usize, len: usize) -> Self {
        let (tx, rx) = bounded(capacity);
        BufPool { tx, rx, len }
    }

    /// An idle buffer, or a new zeroed one; always `len` bytes long.
    pub fn take(&self) -> Vec<u8> {
        match self.rx.try_recv() {
            Ok(b) if b.len() == self.len => b,
            _ => vec![0u8; self.len],
        }
    }

    /// Lends the first `used` bytes of `buf` as `Bytes`; the buffer comes back when the last
    /// clone of those `Bytes` is dropped.
    pub fn share(&self, buf: Vec<u8>, used: usize) -> Bytes {
        Bytes::from_owner(Lent {
            buf,
            used,
            home: self.tx.clone(),
        })
    }
}

struct Lent {
    buf: Vec<u8>,
    used: usize,
    home: Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.used]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let _ = self.home.try_send(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_when_the_bytes_are_dropped() {
        let pool = BufPool::new(2, 16);
        let mut b = pool.take();
        b[..3].copy_from_slice(b"abc");
        let ptr = b.as_ptr();
        let shared = pool.share(b, 3);
        let clone = shared.clone();
        assert_eq!(&clone[..], b"abc");
        drop(shared);
        drop(clone);
        let again = pool.take();
        assert_eq!(again.as_ptr(), ptr, "the dropped buffer is reused");
        assert_eq!(again.len(), 16);
    }

    #[test]
    fn a_full_pool_frees_extra_buffers() {
        let pool = BufPool::new(1, 8);
        let a = pool.share(pool.take(), 8);
        let b = pool.share(pool.take(), 8);
        drop(a);
        drop(b); // the pool already holds one idle buffer: this one is freed
        assert_eq!(pool.rx.len(), 1);
    }
}
