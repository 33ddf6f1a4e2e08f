//! The LZ4 frame format pieces we write by hand so that independent 4 MiB blocks can be
//! compressed on several cores and still form one standard frame (readable by `lz4 -d`).

use std::hash::Hasher;

use twox_hash::XxHash32;

/// Uncompressed size of every block but the last: the frame's maximum block size (4 MiB).
pub(crate) const BLOCK_SIZE: usize = 4 * 1024 * 1024;

const MAGIC: u32 = 0x184D_2204;
/// Version 01, independent blocks, no block checksums, no content size, content checksum.
const FLG: u8 = 0b0110_0100;
/// Block maximum size code 7 = 4 MiB.
const BD: u8 = 0b0111_0000;

/// The 7-byte frame header.
pub(crate) fn header() -> [u8; 7] {
    let mut h = [0u8; 7];
    h[..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4] = FLG;
    h[5] = BD;
    let mut x = XxHash32::with_seed(0);
    x.write(&h[4..6]);
    h[6] = ((x.finish_32() >> 8) & 0xFF) as u8;
    h
}

/// End mark followed by the content checksum (xxHash32 of all uncompressed bytes).
pub(crate) fn trailer(content_checksum: u32) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[4..].copy_from_slice(&content_checksum.to_le_bytes());
    t
}

/// Compresses one block straight into `out` after its 4-byte size prefix, and returns how many
/// bytes of `out` the block takes. `out` must be [`out_len`] long; it is reused from block to
/// block, so it is never cleared or reallocated. The block is stored uncompressed when
/// compression would not make it smaller, as the format requires.
pub(crate) fn encode_block(
    input: &[u8],
    table: &mut lz4_flex::block::CompressTable,
    out: &mut [u8],
) -> usize {
    let compressed = lz4_flex::block::compress_into_with_table(input, &mut out[4..], table).ok();
    match compressed {
        Some(n) if n < input.len() => {
            out[..4].copy_from_slice(&(n as u32).to_le_bytes());
            4 + n
        }
        _ => {
            out[..4].copy_from_slice(&(input.len() as u32 | 0x8000_0000).to_le_bytes());
            out[4..4 + input.len()].copy_from_slice(input);
            4 + input.len()
        }
    }
}

/// Length of the output buffer `encode_block` needs for a full block: the size prefix plus the
/// worst case of LZ4 (which is larger than the block stored raw).
pub(crate) fn out_len() -> usize {
    4 + lz4_flex::block::get_maximum_output_size(BLOCK_SIZE).max(BLOCK_SIZE)
}
