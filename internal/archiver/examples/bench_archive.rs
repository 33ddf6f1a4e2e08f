//! Benchmark driver used by `scripts/bench-archiver` until `testnet-archiver` exists:
//! `bench_archive DIR STORE_DIR [--full-verify]` archives DIR into a local store (which re-reads
//! and hashes what it wrote), compares checksums, optionally verifies the stored archive in full,
//! and prints `bytes_in compressed_bytes seconds`.

use std::sync::Arc;
use std::time::Instant;

use objstore::{LocalStore, ObjectStore, PutOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: bench_archive DIR STORE_DIR [--full-verify]");
        std::process::exit(2);
    }
    let full = args.iter().any(|a| a == "--full-verify");
    let store = Arc::new(LocalStore::open(std::path::Path::new(&args[2]))?);
    let t = Instant::now();
    let (stream, handle) = archiver::archive(std::path::Path::new(&args[1]), Default::default())?;
    let (put, summary) = tokio::join!(
        store.put_stream("bench.tar.lz4", stream, PutOptions::default()),
        handle.finish()
    );
    let (meta, summary) = (put?, summary?);
    if meta.sha256 != Some(summary.sha256) {
        return Err("store checksum differs from the archive checksum".into());
    }
    if full {
        let v = archiver::verify(store.get_stream("bench.tar.lz4").await?).await?;
        if v.sha256 != summary.sha256 {
            return Err("full verify read a different checksum".into());
        }
    }
    println!(
        "{} {} {:.3}",
        summary.uncompressed_bytes,
        summary.compressed_bytes,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
