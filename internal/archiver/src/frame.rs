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

/// Compresses one block with our compressor ([`crate::lz4block`]) straight into `out` after
/// its 4-byte size prefix, and returns how many bytes of `out` the block takes. `out` must be
/// [`out_len`] long; it is reused from block to block, so it is never cleared or reallocated.
/// The block is stored uncompressed when compression would not make it smaller, as the format
/// requires.
pub(crate) fn encode_block(
    input: &[u8],
    compressor: &mut crate::lz4block::Compressor,
    out: &mut [u8],
) -> usize {
    let compressed = compressor.compress(input, &mut out[4..]);
    finish_block(input, compressed, out)
}

/// Writes the size prefix for a block whose compressed form (if any) is already at `out[4..]`,
/// or stores `input` raw after it; returns the bytes used.
fn finish_block(input: &[u8], compressed: Option<usize>, out: &mut [u8]) -> usize {
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
/// compressor's worst case (which is larger than the block stored raw).
pub(crate) fn out_len() -> usize {
    4 + crate::lz4block::max_output(BLOCK_SIZE).max(BLOCK_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    /// A whole frame (several 4 MiB blocks of different kinds, a short last block, one block
    /// stored raw) written with our compressor, decoded by C lz4 and by lz4_flex.
    #[test]
    fn frame_from_our_compressor_decodes_with_lz4_cli_and_lz4_flex() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut data = Vec::new();
        // Text-like block, a random (incompressible) block, zeros, records, a short tail.
        while data.len() < BLOCK_SIZE {
            let w = next() % 20;
            data.extend_from_slice(format!("height={} peer=p{} ok ", w * 7, w).as_bytes());
        }
        data.truncate(BLOCK_SIZE);
        data.extend((0..BLOCK_SIZE).map(|_| next() as u8));
        data.extend(std::iter::repeat_n(0u8, BLOCK_SIZE));
        while data.len() < 4 * BLOCK_SIZE + 123_457 {
            let k = next();
            data.extend_from_slice(format!("4 b3tfp5p7{:016x}", k % 100_000).as_bytes());
            data.extend_from_slice(&k.to_le_bytes());
            data.extend_from_slice(b" 9i7864 p374z43 tub48i");
        }

        let mut frame = header().to_vec();
        let mut c = crate::lz4block::Compressor::new();
        let mut out = vec![0u8; out_len()];
        let mut raw_blocks = 0;
        for block in data.chunks(BLOCK_SIZE) {
            let used = encode_block(block, &mut c, &mut out);
            if out[3] & 0x80 != 0 {
                raw_blocks += 1;
            }
            frame.extend_from_slice(&out[..used]);
        }
        assert_eq!(raw_blocks, 1, "only the random block is stored raw");
        let mut x = XxHash32::with_seed(0);
        x.write(&data);
        frame.extend_from_slice(&trailer(x.finish_32()));
        assert!(frame.len() < data.len() * 3 / 4);

        let mut flex = Vec::new();
        lz4_flex::frame::FrameDecoder::new(&frame[..])
            .read_to_end(&mut flex)
            .expect("lz4_flex reads the frame");
        assert!(flex == data, "lz4_flex decodes other bytes");

        let Ok(mut child) = Command::new("lz4")
            .args(["-d", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("NOTICE: `lz4` not installed; skipping the C lz4 decode check");
            return;
        };
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = std::thread::spawn(move || stdin.write_all(&frame));
        let output = child.wait_with_output().expect("lz4 runs");
        writer
            .join()
            .expect("writer thread")
            .expect("frame written to lz4");
        assert!(
            output.status.success(),
            "lz4 -d failed: {:?}",
            output.status
        );
        assert!(output.stdout == data, "lz4 -d decodes other bytes");
    }
}
