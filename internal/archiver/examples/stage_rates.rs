//! Per-stage single-core rates of the archiver's CPU work on real files, to see which stage
//! bounds the pipeline: `cargo run --release -p archiver --example stage_rates -- FILE...`.
//!
//! Rates are input bytes per second of *thread CPU time*, so they stay meaningful on a machine
//! where other work competes for the cores (wall time would not).

use std::hash::Hasher;
use std::io::Read;

use sha2::{Digest, Sha256};

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_now;

const BLOCK: usize = 4 * 1024 * 1024;

fn rate(label: &str, bytes: usize, secs: f64) {
    println!(
        "{label:<40} {:>8.0} MB/s per core ({:.3} s CPU for {:.1} MB)",
        bytes as f64 / 1e6 / secs,
        secs,
        bytes as f64 / 1e6
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut data = Vec::new();
    for path in std::env::args().skip(1) {
        std::fs::File::open(&path)?.read_to_end(&mut data)?;
    }
    if data.is_empty() {
        return Err("usage: stage_rates FILE... (files to read as sample input)".into());
    }
    let blocks: Vec<&[u8]> = data.chunks(BLOCK).collect();

    let mut table = lz4_flex::block::CompressTable::large();
    let mut scratch = vec![0u8; lz4_flex::block::get_maximum_output_size(BLOCK)];
    let mut compressed: Vec<Vec<u8>> = Vec::with_capacity(blocks.len());
    let t = cpu_now();
    for b in &blocks {
        let n = lz4_flex::block::compress_into_with_table(b, &mut scratch, &mut table)?;
        compressed.push(scratch[..n].to_vec());
    }
    let c = cpu_now() - t;
    let packed: usize = compressed.iter().map(Vec::len).sum();
    rate("lz4_flex compress (4 MiB blocks)", data.len(), c);
    println!(
        "{:<40} {:>8.3} (input / output)",
        "lz4_flex ratio",
        data.len() as f64 / packed as f64
    );

    let t = cpu_now();
    let mut sha = Sha256::new();
    for b in &compressed {
        sha.update(b);
    }
    let _ = sha.finalize();
    let s = cpu_now() - t;
    rate("sha256 of compressed (per input byte)", data.len(), s);
    rate("sha256 (per hashed byte)", packed, s);

    let t = cpu_now();
    let mut x = twox_hash::XxHash32::with_seed(0);
    for b in &blocks {
        x.write(b);
    }
    let _ = x.finish_32();
    rate("xxhash32 of uncompressed", data.len(), cpu_now() - t);

    let mut out = vec![0u8; BLOCK];
    let t = cpu_now();
    for (b, raw) in compressed.iter().zip(&blocks) {
        let n = lz4_flex::block::decompress_into(b, &mut out)?;
        if n != raw.len() {
            return Err("decompressed size differs".into());
        }
    }
    rate("lz4_flex decompress", data.len(), cpu_now() - t);

    let mut copy = vec![0u8; BLOCK];
    let t = cpu_now();
    for b in &blocks {
        copy[..b.len()].copy_from_slice(std::hint::black_box(b));
        std::hint::black_box(&mut copy);
    }
    rate("memcpy", data.len(), cpu_now() - t);
    Ok(())
}
