//! Our own LZ4 *block* compressor (the greedy "fast" strategy of C lz4 `-1`), written because
//! `lz4_flex` has no acceleration knob, the cheapest way to trade a little ratio for speed on a
//! two-core runner. Blocks are independent (no dictionary); reading stays with `lz4_flex`.
//!
//! Format facts relied on (lz4 `doc/lz4_Block_format.md`): a block is a run of sequences
//! `token | literal length bytes | literals | offset (u16 LE) | match length bytes`; the token's
//! high nibble is the literal length, its low nibble the match length minus 4 (15 = more bytes
//! follow, each 255 adds and the first byte < 255 ends). The last sequence is literals only. The
//! last 5 bytes are always literals, the last match starts at least 12 bytes before the end, so
//! inputs shorter than 13 bytes are a single literal run. Offsets are 1..=65535.
//!
//! Speed comes from the same places as in C lz4: a position table indexed by a multiplicative
//! hash of 5 bytes (one unaligned u64 load), the next position's hash computed while the current
//! candidate is checked, a skip step that grows with misses, trying the position right after a
//! match before searching again, match extension 8 bytes at a time, short literal runs copied
//! with one fixed-size 8/16-byte copy into output slack, and giving up as soon as the output would
//! not be smaller than the input (incompressible blocks are stored raw).
//!
//! One departure from C lz4 on large inputs: the table holds positions as u16, the low bits of
//! the position, the way C lz4 does only for inputs under 64 KiB. A match may reach at most
//! 65,535 bytes back, so the distance `(ip - slot) mod 2^16` recovers any candidate worth having
//! and an older one that aliases is rejected by the 4-byte check, as any hash collision is. Half
//! the bytes per slot buys twice the slots for the same cache: more matches found, fewer and
//! longer sequences. On this data the cost is per sequence (the chain match end -> hash -> table
//! -> candidate, and the unpredictable "does the next position match" branch), so finding more
//! makes it faster, and the ratio gained pays for a larger search step.
//!
//! Measured (`examples/lz4-speed.rs`, 4 MiB blocks, one core, interleaved with lz4_flex, against
//! the u32 table of 4096 slots this replaced), on the benchmark's SST files:
//!
//! | table | acceleration | speed vs lz4_flex | size vs `lz4 -1` |
//! |---|---|---|---|
//! | 4096 x u32 (16 KiB) | 1 | +2% | 0.00% |
//! | 4096 x u32 (16 KiB) | 2 | +4 to +6% | +2.39% |
//! | 8192 x u16 (16 KiB) | 2 | +5% | +0.16% |
//! | 8192 x u16 (16 KiB) | 3 | +8 to +9% | +2.27% |
//! | **16384 x u16 (32 KiB)** | **3** | **+11%** | **+0.81%** |
//! | 16384 x u16 (32 KiB) | 4 | +7% | +5.11% |
//! | 32768 x u16 (64 KiB) | 3 | +12% | +0.13% |
//!
//! On the logs, 16384 x u16 at acceleration 3 is 32% faster than lz4_flex for +0.07% size.
//! `create` runs the bold row; the 64 KiB table was no faster in the whole pipeline, where other
//! threads share the core's caches.
//!
//! Public so that the `lz4-speed` example and tests outside the crate can drive it directly.

use std::ptr;

/// log2 of the number of position-table slots: 16384 u16 slots = 32 KiB (see the module doc for
/// the measurements that chose it).
const HASH_LOG: u32 = 14;
const TABLE_LEN: usize = 1 << HASH_LOG;

/// Shortest match the format can express.
const MIN_MATCH: usize = 4;
/// The last match must start at least this many bytes before the end of the block.
const MF_LIMIT: usize = 12;
/// The last this many bytes are always literals.
const LAST_LITERALS: usize = 5;
/// Misses before the search step grows by one (C lz4's `LZ4_skipTrigger`).
const SKIP_TRIGGER: u32 = 6;
/// Bytes the hot path may write past the end of what it emits (fixed-size literal copies).
const SLACK: usize = 16;

/// A reusable LZ4 block compressor. Holds only its position table, so one per thread is enough
/// and reusing it across blocks costs a 32 KiB clear per block instead of an allocation.
pub struct Compressor {
    table: Box<[u16; TABLE_LEN]>,
    acceleration: u32,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    /// A compressor with C lz4's default acceleration (1); its larger table makes the output a
    /// little smaller than `lz4 -1`'s.
    pub fn new() -> Self {
        Self::with_acceleration(1)
    }

    /// A compressor whose search step starts at `acceleration` (clamped to 1..=65536) instead of
    /// 1, like C lz4's `--fast=N`: faster and larger output as it grows (figures in the module
    /// doc).
    pub fn with_acceleration(acceleration: u32) -> Self {
        Compressor {
            table: Box::new([0; TABLE_LEN]),
            acceleration: acceleration.clamp(1, 65_536),
        }
    }

    /// Compresses `input` as one independent LZ4 block into the start of `out` and returns the
    /// compressed length, or `None` when the block would not come out smaller than `input` (the
    /// caller then stores it raw, as the frame format allows) or does not fit in `out`. With
    /// `out.len() >= max_output(input.len())` only the first reason applies.
    pub fn compress(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let limit = out.len().min(input.len().saturating_sub(1));
        self.compress_within(input, out, limit)
    }

    /// Like [`compress`](Self::compress) but keeps the block even when it is not smaller than
    /// the input; `None` only when it does not fit in `out`. For tests of the encoder itself.
    pub fn compress_any(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let limit = out.len();
        self.compress_within(input, out, limit)
    }

    /// Compresses with the output no longer than `limit <= out.len()` bytes.
    fn compress_within(&mut self, input: &[u8], out: &mut [u8], limit: usize) -> Option<usize> {
        // Positions are stored as u32 and offsets are checked against them; the frame never
        // gives more than 4 MiB, and anything that does not fit u32 is simply not compressed.
        if input.len() > u32::MAX as usize - 1 {
            return None;
        }
        if input.len() < MF_LIMIT + 1 {
            return last_literals(input, 0, out, 0, limit);
        }
        self.table.fill(0);
        // The hot path keeps `SLACK` bytes of `out` free for fixed-size copies.
        let hot_limit = limit.min(out.len().saturating_sub(SLACK));
        // SAFETY: `input.len() >= 13` (checked above), `hot_limit + SLACK <= out.len()` and
        // `limit <= out.len()`: the preconditions `compress_fast` documents.
        unsafe { self.compress_fast(input, out, hot_limit, limit) }
    }

    /// The compression loop proper, on raw pointers.
    ///
    /// # Safety
    /// `input.len() >= MF_LIMIT + 1`, `input.len() < u32::MAX`, `hot_limit + SLACK <= out.len()`,
    /// `limit <= out.len()`.
    ///
    /// Bounds argument, used throughout: a search position `ip` is always `<= len - MF_LIMIT`
    /// (`mflimit_plus_one = len - 11` is the first position never searched), so the 8-byte hash
    /// load at `ip` ends by `len - 4`. A candidate is `ip - d` for a distance `d` in
    /// `1..=min(ip, 65535)` (checked where it is read from the table), so `m < ip` and loads at
    /// a candidate are in bounds whenever the same load at `ip` is. Match extension stops at `match_limit = len - LAST_LITERALS`. Every
    /// sequence is written only after checking that its exact size fits `hot_limit`; the only
    /// bytes written beyond the exact size are the tail of one 8/16-byte literal copy or one
    /// length byte that is written unconditionally and then not counted, all within `SLACK`.
    ///
    /// Correctness of the output (not only memory safety) rests on: candidates are verified
    /// (4 equal bytes, distance 1..=65535) before use, and matches end by `match_limit`.
    #[inline(never)]
    unsafe fn compress_fast(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        hot_limit: usize,
        limit: usize,
    ) -> Option<usize> {
        let len = input.len();
        let src = input.as_ptr();
        let dst = out.as_mut_ptr();
        let table = self.table.as_mut_ptr();
        let mflimit_plus_one = len - MF_LIMIT + 1;
        let match_limit = len - LAST_LITERALS;
        let start_search = (self.acceleration as usize) << SKIP_TRIGGER;

        let mut op = 0usize;
        let mut anchor = 0usize;
        // The first byte can only start literals; remember it as a candidate for later.
        *table.add(hash_at(src, 0)) = 0;
        let mut ip = 1usize;
        let mut forward_h = hash_at(src, ip);

        'sequences: loop {
            // --- Find a match: `ip` and a candidate `m < ip` with the same 4 bytes. ---
            let mut m: usize;
            {
                let mut forward_ip = ip;
                let mut step = 1usize;
                let mut search = start_search;
                loop {
                    let h = forward_h;
                    ip = forward_ip;
                    forward_ip += step;
                    step = search >> SKIP_TRIGGER;
                    search += 1;
                    if forward_ip > mflimit_plus_one {
                        break 'sequences;
                    }
                    // `h < TABLE_LEN` (hash_at's range); `forward_ip <= len - 11`, so its 8-byte
                    // hash load is in bounds.
                    let d = (ip as u16).wrapping_sub(*table.add(h)) as usize;
                    forward_h = hash_at(src, forward_ip);
                    *table.add(h) = ip as u16;
                    if d == 0 || d > ip {
                        continue;
                    }
                    m = ip - d;
                    // `m < ip <= len - 12`: both 4-byte loads are in bounds.
                    if read_u32(src.add(m)) == read_u32(src.add(ip)) {
                        break;
                    }
                }
            }

            // --- Extend backwards over literals that also match. ---
            while ip > anchor && m > 0 && *src.add(ip - 1) == *src.add(m - 1) {
                ip -= 1;
                m -= 1;
            }

            // --- Literals: token, length bytes, the bytes themselves. ---
            let lit_len = ip - anchor;
            let mut token_pos = op;
            // Exact size of token, literal length bytes, literals and offset; the match length
            // bytes are checked once the match is measured.
            if op + 1 + lit_len / 255 + 1 + lit_len + 2 > hot_limit {
                return None;
            }
            op += 1;
            op = write_token_length(dst, token_pos, op, lit_len, 4);
            copy_literals(src.add(anchor), dst.add(op), lit_len, anchor + 16 <= len);
            op += lit_len;

            // --- The match, then as long as the position right after it matches too, more
            // matches without literals. ---
            loop {
                // `0 < ip - m <= 65535`, checked where `m` was taken from the table.
                let offset = (ip - m) as u16;
                ptr::copy_nonoverlapping(offset.to_le_bytes().as_ptr(), dst.add(op), 2);
                op += 2;
                let extra = count_match(src, ip + MIN_MATCH, m + MIN_MATCH, match_limit);
                ip += MIN_MATCH + extra;
                if op + 1 + extra / 255 > hot_limit {
                    return None;
                }
                op = write_token_length(dst, token_pos, op, extra, 0);
                anchor = ip;
                if ip >= mflimit_plus_one {
                    break 'sequences;
                }
                // Remember a position inside the match, as C lz4 does, then try the position
                // right after the match before searching again. `ip <= len - 12`.
                *table.add(hash_at(src, ip - 2)) = (ip - 2) as u16;
                let h = hash_at(src, ip);
                let d = (ip as u16).wrapping_sub(*table.add(h)) as usize;
                *table.add(h) = ip as u16;
                let usable = (d != 0) & (d <= ip);
                // An unusable slot points `m` at `ip` itself: the load stays in bounds and the
                // whole test is one branch (`&`, not `&&`), whose outcome is what the predictor
                // must learn.
                m = if usable { ip - d } else { ip };
                if usable & (read_u32(src.add(m)) == read_u32(src.add(ip))) {
                    if op + 1 + 2 > hot_limit {
                        return None;
                    }
                    token_pos = op;
                    *dst.add(token_pos) = 0;
                    op += 1;
                    continue;
                }
                break;
            }
            ip += 1;
            forward_h = hash_at(src, ip);
        }
        last_literals(input, anchor, out, op, limit)
    }
}

/// Largest output of [`Compressor::compress`] for `len` input bytes plus the slack its hot path
/// writes into: C lz4's `LZ4_COMPRESSBOUND` plus [`SLACK`].
pub fn max_output(len: usize) -> usize {
    len + len / 255 + 16 + SLACK
}

/// Writes the final literal run `input[anchor..]` at `out[op..]` with exact bounds checks and
/// returns the total length, or `None` if it would exceed `limit` (which is `<= out.len()`).
fn last_literals(
    input: &[u8],
    anchor: usize,
    out: &mut [u8],
    mut op: usize,
    limit: usize,
) -> Option<usize> {
    let lits = &input[anchor..];
    let n = lits.len();
    if op + 1 + (n + 255 - 15) / 255 + n > limit {
        return None;
    }
    if n >= 15 {
        *out.get_mut(op)? = 15 << 4;
        op += 1;
        let mut rest = n - 15;
        while rest >= 255 {
            *out.get_mut(op)? = 255;
            op += 1;
            rest -= 255;
        }
        *out.get_mut(op)? = rest as u8;
        op += 1;
    } else {
        *out.get_mut(op)? = (n as u8) << 4;
        op += 1;
    }
    out.get_mut(op..op + n)?.copy_from_slice(lits);
    Some(op + n)
}

/// Sets a length in the token's nibble at `shift` (4: literals, 0: match) and writes the
/// continuation bytes at `dst[op..]` if it needs them; returns the new `op`. Lengths under
/// 15 + 255 (nearly all) take no branch on whether a continuation byte is needed: the byte is
/// always written and only counted when it belongs to the output.
///
/// # Safety
/// `dst[token_pos]` and `dst[op..op + value / 255 + 1]` are writable, and the token byte was
/// already written (with 0 in the nibble at `shift`).
#[inline(always)]
unsafe fn write_token_length(
    dst: *mut u8,
    token_pos: usize,
    op: usize,
    value: usize,
    shift: u32,
) -> usize {
    if value < 15 + 255 {
        let t = dst.add(token_pos);
        if shift == 4 {
            *t = (value.min(15) as u8) << 4;
        } else {
            *t |= value.min(15) as u8;
        }
        *dst.add(op) = value.wrapping_sub(15) as u8;
        op + (value >= 15) as usize
    } else {
        let t = dst.add(token_pos);
        if shift == 4 {
            *t = 15 << 4;
        } else {
            *t |= 15;
        }
        let rest = value - 15;
        let full = rest / 255;
        ptr::write_bytes(dst.add(op), 255, full);
        *dst.add(op + full) = (rest - full * 255) as u8;
        op + full + 1
    }
}

/// Copies `n` literal bytes. Runs of up to 16 bytes take one fixed 8- or 16-byte copy.
///
/// # Safety
/// `dst[..n.max(16)]` is writable. `src[..n]` is readable, and the literals end at a match start
/// `<= len - MF_LIMIT`, so reading 8 bytes for a run of 0..=8 (ending by match start + 8) or 16
/// for a run of 9..=16 (ending by match start + 7) stays inside the input; `room_16`
/// (`src + 16` within the input) is checked again so the argument does not rest on the caller.
#[inline(always)]
unsafe fn copy_literals(src: *const u8, dst: *mut u8, n: usize, room_16: bool) {
    if n <= 8 && room_16 {
        ptr::copy_nonoverlapping(src, dst, 8);
    } else if n <= 16 && room_16 {
        ptr::copy_nonoverlapping(src, dst, 16);
    } else {
        ptr::copy_nonoverlapping(src, dst, n);
    }
}

/// Number of bytes equal at `src[ip..]` and `src[m..]` (with `m < ip`), not reaching `limit`.
///
/// # Safety
/// `m < ip`, `limit <= input length`.
#[inline(always)]
unsafe fn count_match(src: *const u8, mut ip: usize, mut m: usize, limit: usize) -> usize {
    let start = ip;
    while ip + 8 <= limit {
        let diff = read_u64(src.add(ip)) ^ read_u64(src.add(m));
        if diff != 0 {
            return ip - start + (diff.trailing_zeros() / 8) as usize;
        }
        ip += 8;
        m += 8;
    }
    if ip + 4 <= limit && read_u32(src.add(ip)) == read_u32(src.add(m)) {
        ip += 4;
        m += 4;
    }
    if ip + 2 <= limit
        && ptr::read_unaligned(src.add(ip) as *const u16)
            == ptr::read_unaligned(src.add(m) as *const u16)
    {
        ip += 2;
        m += 2;
    }
    if ip < limit && *src.add(ip) == *src.add(m) {
        ip += 1;
    }
    ip - start
}

/// Table index for the 5 bytes at `p + pos` (C lz4's 64-bit hash: the low 5 bytes of a
/// little-endian load, shifted to the top, times a large odd constant, top bits kept).
///
/// # Safety
/// `p[pos..pos + 8]` is readable.
#[inline(always)]
unsafe fn hash_at(p: *const u8, pos: usize) -> usize {
    let v = read_u64(p.add(pos));
    ((v << 24).wrapping_mul(889_523_592_379) >> (64 - HASH_LOG)) as usize
}

/// Little-endian unaligned load (value order matters for `trailing_zeros` and the hash).
#[inline(always)]
unsafe fn read_u64(p: *const u8) -> u64 {
    u64::from_le(ptr::read_unaligned(p as *const u64))
}

#[inline(always)]
unsafe fn read_u32(p: *const u8) -> u32 {
    ptr::read_unaligned(p as *const u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64* stream, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Decodes `block` with the block format's rules enforced (every offset within what has
    /// been produced, the last sequence literals only, the last 5 bytes literals, the last match
    /// starting at least 12 bytes before the end) and returns the bytes, or what was broken.
    /// Independent of lz4_flex, whose unchecked decoder trusts its input.
    fn strict_decode(block: &[u8]) -> Result<Vec<u8>, String> {
        fn length(block: &[u8], i: &mut usize, mut n: usize) -> Result<usize, String> {
            if n == 15 {
                loop {
                    let b = *block.get(*i).ok_or("length runs past the block")?;
                    *i += 1;
                    n += b as usize;
                    if b != 255 {
                        break;
                    }
                }
            }
            Ok(n)
        }
        let mut out = Vec::new();
        let mut i = 0;
        let mut last_match_start = None;
        loop {
            let token = *block.get(i).ok_or("block ends before a token")?;
            i += 1;
            let lits = length(block, &mut i, (token >> 4) as usize)?;
            let l = block
                .get(i..i + lits)
                .ok_or("literals run past the block")?;
            out.extend_from_slice(l);
            i += lits;
            if i == block.len() {
                if token & 15 != 0 {
                    return Err("last sequence has a match length".into());
                }
                if let Some(start) = last_match_start {
                    if lits < LAST_LITERALS {
                        return Err(format!("last literal run is {lits} bytes, under 5"));
                    }
                    if start + MF_LIMIT > out.len() {
                        return Err(format!("last match starts at {start} of {}", out.len()));
                    }
                }
                return Ok(out);
            }
            let off = block.get(i..i + 2).ok_or("offset runs past the block")?;
            let off = u16::from_le_bytes([off[0], off[1]]) as usize;
            i += 2;
            if off == 0 || off > out.len() {
                return Err(format!("offset {off} at output position {}", out.len()));
            }
            let ml = length(block, &mut i, (token & 15) as usize)? + MIN_MATCH;
            last_match_start = Some(out.len());
            let from = out.len() - off;
            for k in 0..ml {
                let b = out[from + k];
                out.push(b);
            }
        }
    }

    /// Compresses with `compress_any` into a buffer followed by guard bytes, checks the guard,
    /// the format rules and the round trip through both decoders, and returns the size.
    fn round_trip(c: &mut Compressor, input: &[u8]) -> usize {
        let cap = max_output(input.len());
        let mut buf = vec![0xA5u8; cap + 64];
        let n = c
            .compress_any(input, &mut buf[..cap])
            .unwrap_or_else(|| panic!("{} bytes did not fit max_output", input.len()));
        assert!(
            buf[cap..].iter().all(|&b| b == 0xA5),
            "wrote past the output slice"
        );
        let block = &buf[..n];
        let strict = strict_decode(block).unwrap_or_else(|e| panic!("len {}: {e}", input.len()));
        assert!(
            strict == input,
            "strict decode differs, len {}",
            input.len()
        );
        let flex = lz4_flex::block::decompress(block, input.len()).expect("lz4_flex decodes it");
        assert!(
            flex == input,
            "lz4_flex decode differs, len {}",
            input.len()
        );
        n
    }

    fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "block",
            "peer",
            "height",
            "validator",
            "INFO",
            "WARN",
            "round",
            "commit",
            "hash",
            "0x3fa2",
            "ms",
            "=",
            " ",
            "\n",
            "applied",
            "proposal",
            "2026-11-21T05:",
            "ok",
        ];
        let mut v = Vec::with_capacity(n + 32);
        while v.len() < n {
            v.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
            v.push(b' ');
        }
        v.truncate(n);
        v
    }

    /// Records like the benchmark's SST files: a shared key prefix, a counter, 8 random bytes,
    /// some words.
    fn sst_like(rng: &mut Rng, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 128);
        let mut key = 0x6e9_41f0u64;
        while v.len() < n {
            v.extend_from_slice(format!("4 b3tfp5p7{:016x}", key).as_bytes());
            key += 1 + rng.below(300) as u64;
            v.extend_from_slice(&rng.bytes(8));
            let n = 10 + rng.below(40);
            let t = text(rng, n);
            v.extend_from_slice(&t);
        }
        v.truncate(n);
        v
    }

    #[test]
    fn every_short_length_round_trips() {
        let mut c = Compressor::new();
        let mut rng = Rng(7);
        for len in 0..=20 {
            for input in [
                vec![0u8; len],
                rng.bytes(len),
                (0..len).map(|i| b"abc"[i % 3]).collect::<Vec<u8>>(),
            ] {
                let n = round_trip(&mut c, &input);
                if len < 13 {
                    // All literals: token, then the bytes (no length byte needed under 15).
                    assert_eq!(n, 1 + len);
                }
            }
        }
    }

    #[test]
    fn shapes_of_data_round_trip() {
        let mut c = Compressor::new();
        let mut rng = Rng(11);
        let four = 4 * 1024 * 1024;
        let zeros = vec![0u8; four];
        assert!(
            round_trip(&mut c, &zeros) < four / 200,
            "a zero block must shrink to ~nothing"
        );
        let random = rng.bytes(four);
        round_trip(&mut c, &random);
        let t = text(&mut rng, four);
        assert!(round_trip(&mut c, &t) < four / 2);
        let s = sst_like(&mut rng, four);
        assert!(round_trip(&mut c, &s) < four * 3 / 4);
        // Long runs of different bytes, then a long run at the very end.
        let mut runs = Vec::new();
        for k in 0..40u8 {
            let n = 1 + rng.below(70_000);
            runs.extend(std::iter::repeat_n(k, n));
        }
        round_trip(&mut c, &runs);
        // A repeat that runs exactly to the end (the match must stop 5 bytes short), and one
        // ending at every distance from the end.
        let unit = rng.bytes(100);
        for tail in 0..30 {
            let mut v = rng.bytes(50);
            v.extend_from_slice(&unit);
            v.extend_from_slice(&unit);
            v.extend_from_slice(&rng.bytes(tail));
            round_trip(&mut c, &v);
        }
    }

    /// The acceleration `create` uses must keep archives within the 5% of `lz4 -1`'s size the
    /// snapshot tooling accepts (lz4_flex's output is the size of `lz4 -1`'s).
    #[test]
    fn create_acceleration_stays_within_five_percent_of_lz4() {
        let mut rng = Rng(23);
        let four = 4 * 1024 * 1024;
        let mut fast = Compressor::with_acceleration(crate::create::ACCELERATION);
        for (what, data) in [
            ("sst", sst_like(&mut rng, four)),
            ("text", text(&mut rng, four)),
        ] {
            let mut out = vec![0u8; max_output(data.len())];
            let ours = fast.compress(&data, &mut out).expect("compressible") as f64;
            let flex = lz4_flex::block::compress(&data).len() as f64;
            assert!(
                ours <= flex * 1.05,
                "{what}: {ours} bytes at acceleration {}, lz4_flex {flex}",
                crate::create::ACCELERATION
            );
            round_trip(&mut fast, &data);
        }
    }

    #[test]
    fn compress_stores_raw_when_it_does_not_pay() {
        let mut c = Compressor::new();
        let mut rng = Rng(3);
        let mut out = vec![0u8; max_output(1 << 20)];
        let random = rng.bytes(1 << 20);
        assert_eq!(c.compress(&random, &mut out), None);
        for len in 0..13 {
            assert_eq!(c.compress(&vec![0u8; len], &mut out), None, "len {len}");
        }
        let zeros = vec![0u8; 1 << 20];
        let n = c.compress(&zeros, &mut out).expect("zeros compress");
        assert_eq!(
            lz4_flex::block::decompress(&out[..n], zeros.len()).unwrap(),
            zeros
        );
        // Compressible data into an output too small for it: None, never a partial block.
        let t = text(&mut rng, 100_000);
        let full = c.compress(&t, &mut out).expect("text compresses");
        for cap in [0, 1, 15, 16, 17, full / 2, full - 1] {
            let mut small = vec![0u8; cap];
            assert_eq!(c.compress(&t, &mut small), None, "cap {cap}");
        }
    }

    #[test]
    fn any_output_size_is_safe() {
        // Every output capacity either fails cleanly or yields a valid block that fits.
        let mut c = Compressor::new();
        let mut rng = Rng(5);
        for input in [text(&mut rng, 3000), rng.bytes(700), vec![9u8; 2000]] {
            for cap in 0..max_output(input.len()) + 2 {
                let mut buf = vec![0x5Au8; cap + 32];
                if let Some(n) = c.compress_any(&input, &mut buf[..cap]) {
                    assert!(n <= cap);
                    assert_eq!(strict_decode(&buf[..n]).unwrap(), input);
                }
                assert!(
                    buf[cap..].iter().all(|&b| b == 0x5A),
                    "cap {cap}: wrote past out"
                );
            }
        }
    }

    #[test]
    fn pseudo_random_inputs_round_trip() {
        let mut rng = Rng(0x5eed_1234);
        let mut cs: Vec<Compressor> = [1, 1, 2, 3, 8, 0, u32::MAX]
            .into_iter()
            .map(Compressor::with_acceleration)
            .collect();
        for round in 0..400 {
            let len = match rng.below(4) {
                0 => rng.below(64),
                1 => rng.below(4096),
                2 => rng.below(70_000),
                _ => rng.below(300_000),
            };
            let mut v: Vec<u8> = Vec::with_capacity(len + 256);
            while v.len() < len {
                match rng.below(5) {
                    0 => {
                        let n = 1 + rng.below(40);
                        v.extend(rng.bytes(n));
                    }
                    1 if !v.is_empty() => {
                        // Copy of earlier data, sometimes farther back than 64 KiB, sometimes
                        // overlapping itself.
                        let from = rng.below(v.len());
                        let n = 1 + rng.below(300);
                        for k in 0..n {
                            let b = v[from + k];
                            v.push(b);
                        }
                    }
                    2 => {
                        let b = rng.next() as u8;
                        let n = 1 + rng.below(500);
                        v.extend(std::iter::repeat_n(b, n));
                    }
                    _ => {
                        let n = 1 + rng.below(200);
                        let t = text(&mut rng, n);
                        v.extend(t);
                    }
                }
            }
            v.truncate(len);
            let i = round % cs.len();
            round_trip(&mut cs[i], &v);
        }
    }

    #[test]
    fn acceleration_one_is_no_larger_than_lz4_flex_on_snapshot_like_data() {
        // C lz4 -1's parse with a table of more slots: never more than lz4_flex's output (which
        // is lz4 -1's), give or take 0.1%.
        let mut rng = Rng(99);
        let data = sst_like(&mut rng, 4 * 1024 * 1024);
        let mut out = vec![0u8; max_output(data.len())];
        let ours = Compressor::new().compress(&data, &mut out).unwrap();
        let flex = lz4_flex::block::compress(&data).len();
        assert!(
            ours as f64 <= flex as f64 * 1.001,
            "ours {ours} bytes, lz4_flex {flex} bytes"
        );
    }

    /// The table keeps only the low 16 bits of each position. A slot written exactly 64 KiB (or
    /// any multiple) earlier reads as distance 0 and one written farther back aliases to a
    /// nearer position: neither may become a match, while a repeat 65,535 bytes back still must.
    #[test]
    fn distances_around_64_kib() {
        // A random 64-byte motif every `period` bytes with zeros between: the zeros become a few
        // long matches, so the motif's table slot survives from one repeat to the next.
        let periodic = |rng: &mut Rng, period: usize| {
            let motif = rng.bytes(64);
            let mut data = Vec::new();
            while data.len() < 700_000 {
                data.extend_from_slice(&motif);
                data.resize(data.len() + period - 64, 0);
            }
            data
        };
        let mut rng = Rng(64);
        let mut sizes = Vec::new();
        for period in [65_534usize, 65_535, 65_536, 65_537, 131_072, 196_607] {
            for accel in [1, crate::create::ACCELERATION] {
                let mut c = Compressor::with_acceleration(accel);
                let n = round_trip(&mut c, &periodic(&mut rng, period));
                if accel == 1 {
                    sizes.push((period, n));
                }
            }
        }
        let size = |p: usize| {
            sizes
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, n)| *n)
                .unwrap()
        };
        // Ten repeats, each about 60 bytes smaller as a match than as literals.
        assert!(
            size(65_535) + 400 < size(65_536),
            "repeats 65,535 bytes apart were not found: {sizes:?}"
        );
        assert!(
            size(65_534) + 400 < size(65_536),
            "repeats 65,534 bytes apart were not found: {sizes:?}"
        );
    }
}
