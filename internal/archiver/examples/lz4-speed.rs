//! Single-core speed and ratio of our LZ4 block compressor against lz4_flex on real files, in
//! the archiver's 4 MiB blocks:
//! `cargo run --release -p archiver --example lz4-speed -- [--rounds N] [--accel A] FILE...`.
//!
//! The two sides run interleaved (ours, lz4_flex, ours, ...) for N rounds so that load from
//! other work on the machine hits both alike; rates are input bytes per second of *thread CPU
//! time* and the median round is reported. If C lz4 is installed, `lz4 -b1 -B7 FILE` is run
//! once per file for reference (its own timing, wall clock).

use std::io::Read;
use std::process::Command;

use archiver::lz4block::{max_output, Compressor};

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_now;

const BLOCK: usize = 4 * 1024 * 1024;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Compresses every block once and returns (CPU seconds, total compressed bytes as stored in a
/// frame: raw size for blocks that do not shrink).
fn run(
    blocks: &[&[u8]],
    out: &mut [u8],
    mut f: impl FnMut(&[u8], &mut [u8]) -> Option<usize>,
) -> (f64, usize) {
    let t = cpu_now();
    let mut packed = 0;
    for b in blocks {
        packed += match f(b, out) {
            Some(n) if n < b.len() => n,
            _ => b.len(),
        };
    }
    (cpu_now() - t, packed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rounds = 7usize;
    let mut accels = vec![1u32];
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().ok_or("--rounds N")?.parse()?,
            "--accel" => {
                accels = args
                    .next()
                    .ok_or("--accel A[,B..]")?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        return Err("usage: lz4-speed [--rounds N] [--accel A[,B..]] FILE...".into());
    }
    let lz4_cli = Command::new("lz4").arg("--version").output().is_ok();
    let mut out = vec![0u8; max_output(BLOCK).max(lz4_flex::block::get_maximum_output_size(BLOCK))];
    for path in &files {
        let mut data = Vec::new();
        std::fs::File::open(path)?.read_to_end(&mut data)?;
        let blocks: Vec<&[u8]> = data.chunks(BLOCK).collect();
        let mb = data.len() as f64 / 1e6;
        println!(
            "{path}: {mb:.1} MB, {} blocks, {rounds} rounds (median)",
            blocks.len()
        );

        let mut table = lz4_flex::block::CompressTable::large();
        let mut ours: Vec<Compressor> = accels
            .iter()
            .map(|&a| Compressor::with_acceleration(a))
            .collect();
        let labels: Vec<String> = accels.iter().map(|a| format!("ours accel={a}")).collect();
        let mut t_flex = Vec::new();
        let mut t_ours = vec![Vec::new(); ours.len()];
        let mut size_flex = 0;
        let mut size_ours = vec![0; ours.len()];
        for _ in 0..rounds {
            for (i, c) in ours.iter_mut().enumerate() {
                let (t, n) = run(&blocks, &mut out, |b, o| c.compress(b, o));
                t_ours[i].push(t);
                size_ours[i] = n;
            }
            let (t, n) = run(&blocks, &mut out, |b, o| {
                lz4_flex::block::compress_into_with_table(b, o, &mut table).ok()
            });
            t_flex.push(t);
            size_flex = n;
        }
        let flex_rate = mb / median(&mut t_flex);
        println!(
            "  {:<20} {:>8.0} MB/s per core  {:>12} bytes  ratio {:.4}",
            "lz4_flex",
            flex_rate,
            size_flex,
            data.len() as f64 / size_flex as f64
        );
        for (i, a) in labels.iter().enumerate() {
            let rate = mb / median(&mut t_ours[i]);
            println!(
                "  {:<20} {:>8.0} MB/s per core  {:>12} bytes  ratio {:.4}  speed {:+.1}%  size {:+.2}%",
                a,
                rate,
                size_ours[i],
                data.len() as f64 / size_ours[i] as f64,
                (rate / flex_rate - 1.0) * 100.0,
                (size_ours[i] as f64 / size_flex as f64 - 1.0) * 100.0
            );
        }
        if lz4_cli {
            let o = Command::new("lz4").args(["-b1", "-B7", path]).output()?;
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            // The benchmark redraws its line with '\r'; the last state is the result.
            let last = text
                .rsplit(['\r', '\n'])
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let last = text
                .rsplit(['\r', '\n'])
                .find(|l| l.contains("MB/s"))
                .unwrap_or(last);
            println!("  {:<20} {}", "C lz4 -b1 -B7", last.trim());
        }
    }
    Ok(())
}
