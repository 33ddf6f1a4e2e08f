//! The two digests `create` needs, computed together: SHA-256 of the frame bytes (the artifact's
//! identity) and xxHash32 of the tar bytes inside it (the LZ4 frame's content checksum).
//!
//! Why together: both are chains of dependent instructions that leave most of a core's execution
//! units idle (SHA-256 waits on `sha256rnds2`, xxHash32 on one multiply-rotate-multiply per lane).
//! Fed in small alternating pieces, one SHA-256 block then the matching share of xxHash32, the
//! core runs both chains at once. Measured with `examples/digest-speed.rs` on the benchmark
//! runner (SHA-256 of 512 MiB plus xxHash32 of 1 GiB, more than the caches hold): 0.58 s one
//! after the other, 0.44 s together. In `create` on the 2 GiB benchmark set, against xxHash32 on
//! the tar thread right after each read: 6.03 -> 5.87 CPU s, 3.09 -> 3.02 s (6 rounds each,
//! interleaved). Done in the stage that already sees every block in order with both its
//! compressed and its raw bytes.
//!
//! SHA-256 uses `sha2`'s block function (with its run-time detection of the SHA instructions) and
//! does only the buffering and padding of FIPS 180-4 §5.1.1 here. xxHash32 is written out from
//! the xxHash specification (`doc/xxhash_spec.md`): four lanes over 16-byte stripes, then the
//! length, the tail and the avalanche. Both are checked against `sha2::Sha256` and `twox_hash`
//! on every length and split in the tests.
//!
//! Public so that the `digest-speed` example can drive it directly.

use sha2::block_api::compress256;

/// SHA-256 blocks per step of the interleaved loop. Measured 1, 2, 4, 8: 0.44, 0.47, 0.50,
/// 0.54 s; the finer the interleave, the more of the two chains overlaps.
const SHA_BLOCKS_PER_STEP: usize = 1;

/// SHA-256 of one byte stream and xxHash32 (seed 0) of another, advanced together.
pub struct FrameDigests {
    sha: Sha256Stream,
    xxh: Xxh32Stream,
}

impl Default for FrameDigests {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDigests {
    pub fn new() -> Self {
        FrameDigests {
            sha: Sha256Stream::new(),
            xxh: Xxh32Stream::new(),
        }
    }

    /// Bytes of the frame that carry no content (the frame header and trailer).
    pub fn frame_only(&mut self, frame: &[u8]) {
        self.update(frame, &[]);
    }

    /// The next bytes of the frame (`frame`) and of the content (`content`); the two need not be
    /// related in length, though a block and its raw bytes interleave best.
    pub fn update(&mut self, frame: &[u8], content: &[u8]) {
        let frame = self.sha.lead_in(frame);
        let content = self.xxh.lead_in(content);
        let (blocks, frame_tail) = frame.as_chunks::<64>();
        let (stripes, content_tail) = content.as_chunks::<16>();
        // Spread the stripes evenly over the steps so both chains end together.
        let steps = blocks.len().div_ceil(SHA_BLOCKS_PER_STEP).max(1);
        let per_step = stripes.len().div_ceil(steps);
        let mut rest = stripes;
        for step in blocks.chunks(SHA_BLOCKS_PER_STEP) {
            self.sha.blocks(step);
            let (now, later) = rest.split_at(per_step.min(rest.len()));
            self.xxh.stripes(now);
            rest = later;
        }
        self.xxh.stripes(rest);
        self.sha.keep(frame_tail);
        self.xxh.keep(content_tail);
    }

    /// The content checksum over everything passed as content so far.
    pub fn content_checksum(&self) -> u32 {
        self.xxh.digest()
    }

    /// The SHA-256 of everything passed as frame bytes.
    pub fn frame_sha256(&self) -> [u8; 32] {
        self.sha.digest()
    }
}

/// SHA-256 with its own partial-block buffer, so the caller can feed whole blocks in between.
/// It and `Xxh32Stream` each buffer their own tail: one generic buffer for both measured 2-3%
/// slower in `create`, though not in `examples/digest-speed.rs`.
struct Sha256Stream {
    state: [u32; 8],
    buf: [u8; 64],
    fill: usize,
    /// Bytes absorbed, in whole blocks and in `buf`.
    len: u64,
}

/// FIPS 180-4 §5.3.3.
const SHA256_INIT: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

impl Sha256Stream {
    fn new() -> Self {
        Sha256Stream {
            state: SHA256_INIT,
            buf: [0; 64],
            fill: 0,
            len: 0,
        }
    }

    /// Tops up a partly filled buffer from `data` and returns what is left, which then starts on
    /// a block boundary (or is empty).
    fn lead_in<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        if self.fill == 0 {
            return data;
        }
        let n = data.len().min(64 - self.fill);
        self.buf[self.fill..self.fill + n].copy_from_slice(&data[..n]);
        self.fill += n;
        self.len += n as u64;
        if self.fill == 64 {
            compress256(&mut self.state, std::slice::from_ref(&self.buf));
            self.fill = 0;
        }
        &data[n..]
    }

    /// Whole blocks; `lead_in` has emptied the buffer whenever there are any.
    fn blocks(&mut self, blocks: &[[u8; 64]]) {
        if blocks.is_empty() {
            return;
        }
        debug_assert_eq!(self.fill, 0);
        compress256(&mut self.state, blocks);
        self.len += 64 * blocks.len() as u64;
    }

    /// Fewer than 64 bytes that end the input so far; only called with an empty buffer.
    fn keep(&mut self, tail: &[u8]) {
        if tail.is_empty() {
            return;
        }
        debug_assert_eq!(self.fill, 0);
        self.buf[..tail.len()].copy_from_slice(tail);
        self.fill = tail.len();
        self.len += tail.len() as u64;
    }

    /// Padding (a 1 bit, zeros, the length in bits as a big-endian u64) and the final state.
    fn digest(&self) -> [u8; 32] {
        let mut state = self.state;
        let mut last = [[0u8; 64]; 2];
        let flat = last.as_flattened_mut();
        flat[..self.fill].copy_from_slice(&self.buf[..self.fill]);
        flat[self.fill] = 0x80;
        let blocks = if self.fill < 56 { 1 } else { 2 };
        flat[blocks * 64 - 8..blocks * 64].copy_from_slice(&(self.len * 8).to_be_bytes());
        compress256(&mut state, &last[..blocks]);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

const P1: u32 = 0x9E37_79B1;
const P2: u32 = 0x85EB_CA77;
const P3: u32 = 0xC2B2_AE3D;
const P4: u32 = 0x27D4_EB2F;
const P5: u32 = 0x1656_67B1;

/// xxHash32 with seed 0, buffering less than a stripe between calls.
struct Xxh32Stream {
    lanes: [u32; 4],
    buf: [u8; 16],
    fill: usize,
    len: u64,
}

#[inline(always)]
fn xxh_round(acc: u32, input: u32) -> u32 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(13)
        .wrapping_mul(P1)
}

impl Xxh32Stream {
    fn new() -> Self {
        Xxh32Stream {
            lanes: [P1.wrapping_add(P2), P2, 0, 0u32.wrapping_sub(P1)],
            buf: [0; 16],
            fill: 0,
            len: 0,
        }
    }

    fn lead_in<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        if self.fill == 0 {
            return data;
        }
        let n = data.len().min(16 - self.fill);
        self.buf[self.fill..self.fill + n].copy_from_slice(&data[..n]);
        self.fill += n;
        self.len += n as u64;
        if self.fill == 16 {
            let stripe = self.buf;
            self.rounds(&[stripe]);
            self.fill = 0;
        }
        &data[n..]
    }

    fn stripes(&mut self, stripes: &[[u8; 16]]) {
        if stripes.is_empty() {
            return;
        }
        debug_assert_eq!(self.fill, 0);
        self.rounds(stripes);
        self.len += 16 * stripes.len() as u64;
    }

    #[inline(always)]
    fn rounds(&mut self, stripes: &[[u8; 16]]) {
        let [mut a, mut b, mut c, mut d] = self.lanes;
        for s in stripes {
            let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
            a = xxh_round(a, w(0));
            b = xxh_round(b, w(4));
            c = xxh_round(c, w(8));
            d = xxh_round(d, w(12));
        }
        self.lanes = [a, b, c, d];
    }

    fn keep(&mut self, tail: &[u8]) {
        if tail.is_empty() {
            return;
        }
        debug_assert_eq!(self.fill, 0);
        self.buf[..tail.len()].copy_from_slice(tail);
        self.fill = tail.len();
        self.len += tail.len() as u64;
    }

    fn digest(&self) -> u32 {
        let [a, b, c, d] = self.lanes;
        let mut acc = if self.len >= 16 {
            a.rotate_left(1)
                .wrapping_add(b.rotate_left(7))
                .wrapping_add(c.rotate_left(12))
                .wrapping_add(d.rotate_left(18))
        } else {
            P5
        };
        // The specification adds the length modulo 2^32.
        acc = acc.wrapping_add(self.len as u32);
        let (words, bytes) = self.buf[..self.fill].as_chunks::<4>();
        for w in words {
            acc = acc
                .wrapping_add(u32::from_le_bytes(*w).wrapping_mul(P3))
                .rotate_left(17)
                .wrapping_mul(P4);
        }
        for &byte in bytes {
            acc = acc
                .wrapping_add(u32::from(byte).wrapping_mul(P5))
                .rotate_left(11)
                .wrapping_mul(P1);
        }
        acc ^= acc >> 15;
        acc = acc.wrapping_mul(P2);
        acc ^= acc >> 13;
        acc = acc.wrapping_mul(P3);
        acc ^ (acc >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::hash::Hasher;
    use twox_hash::XxHash32;

    /// `n` pseudo-random bytes: SHA-256 of (seed, counter), block after block.
    fn data(n: usize, seed: u64) -> Vec<u8> {
        (0u64..)
            .flat_map(|i| Sha256::digest([seed.to_le_bytes(), i.to_le_bytes()].concat()))
            .take(n)
            .collect()
    }

    fn reference(frame: &[u8], content: &[u8]) -> ([u8; 32], u32) {
        let mut x = XxHash32::with_seed(0);
        x.write(content);
        (Sha256::digest(frame).into(), x.finish_32())
    }

    #[test]
    fn every_length_up_to_three_blocks_in_one_call() {
        for n in 0..=200 {
            let f = data(n, 1);
            let c = data(n * 2 + n % 7, 2);
            let mut d = FrameDigests::new();
            d.update(&f, &c);
            assert_eq!(
                (d.frame_sha256(), d.content_checksum()),
                reference(&f, &c),
                "length {n}"
            );
        }
    }

    #[test]
    fn any_split_gives_the_same_digests() {
        let f = data(5000, 3);
        let c = data(11_000, 4);
        let want = reference(&f, &c);
        // Pieces of awkward, varying sizes, including empty ones and frame-only calls.
        for cut in [1usize, 3, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000] {
            let mut d = FrameDigests::new();
            let (mut fi, mut ci, mut k) = (0, 0, 0usize);
            while fi < f.len() || ci < c.len() {
                k += 1;
                let fn_ = (cut + k % 5).min(f.len() - fi);
                let cn = (2 * cut + k % 11).min(c.len() - ci);
                if k % 4 == 0 {
                    d.frame_only(&f[fi..fi + fn_]);
                    fi += fn_;
                } else {
                    d.update(&f[fi..fi + fn_], &c[ci..ci + cn]);
                    fi += fn_;
                    ci += cn;
                }
            }
            assert_eq!((d.frame_sha256(), d.content_checksum()), want, "cut {cut}");
        }
    }

    #[test]
    fn known_vectors() {
        // FIPS 180-2 appendix B.1 and the xxHash32 of the empty input with seed 0.
        let mut d = FrameDigests::new();
        d.frame_only(b"abc");
        assert_eq!(
            d.frame_sha256()[..8],
            [0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea]
        );
        assert_eq!(d.content_checksum(), 0x02CC_5D05);
    }

    #[test]
    fn large_blocks_match() {
        let c = data(4 << 20, 5);
        let f = data((2 << 20) + 13, 6);
        let mut d = FrameDigests::new();
        d.frame_only(&f[..7]);
        d.update(&f[7..], &c);
        d.update(&f[..100], &c[..4099]);
        let mut all_f = f.clone();
        all_f.extend_from_slice(&f[..100]);
        let mut all_c = c.clone();
        all_c.extend_from_slice(&c[..4099]);
        assert_eq!(
            (d.frame_sha256(), d.content_checksum()),
            reference(&all_f, &all_c)
        );
    }
}
