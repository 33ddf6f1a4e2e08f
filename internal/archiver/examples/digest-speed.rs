//! Speed of `create`'s two digests (SHA-256 of the frame, xxHash32 of the content) computed
//! together by `archiver::digests::FrameDigests`, against `sha2` and `twox_hash` one after the
//! other, on 4 MiB raw / 2 MiB compressed blocks rotated through more memory than the caches:
//! `cargo run --release -p archiver --example digest-speed`.

use std::hash::Hasher;
use std::time::Instant;

use archiver::digests::FrameDigests;
use sha2::{Digest, Sha256};
use twox_hash::XxHash32;

const RAW: usize = 4 << 20;
const PACKED: usize = 2 << 20;
const BUFFERS: usize = 48;
const BLOCKS: usize = 256;

fn main() {
    let fill = |n: usize, k: usize| -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 2_654_435_761 + k) >> 13) as u8)
            .collect()
    };
    let raw: Vec<Vec<u8>> = (0..BUFFERS).map(|k| fill(RAW, k)).collect();
    let packed: Vec<Vec<u8>> = (0..BUFFERS).map(|k| fill(PACKED, k + 99)).collect();
    for _ in 0..3 {
        let t = Instant::now();
        let mut sha = Sha256::new();
        let mut xxh = XxHash32::with_seed(0);
        for k in 0..BLOCKS {
            sha.update(&packed[k % BUFFERS]);
            xxh.write(&raw[k % BUFFERS]);
        }
        let (a, b) = (<[u8; 32]>::from(sha.finalize()), xxh.finish_32());
        let apart = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut d = FrameDigests::new();
        for k in 0..BLOCKS {
            d.update(&packed[k % BUFFERS], &raw[k % BUFFERS]);
        }
        let together = t.elapsed().as_secs_f64();
        assert_eq!((d.frame_sha256(), d.content_checksum()), (a, b));
        println!(
            "{BLOCKS} blocks: one after the other {apart:.3} s, together {together:.3} s ({:+.0}%)",
            (together / apart - 1.0) * 100.0
        );
    }
}
