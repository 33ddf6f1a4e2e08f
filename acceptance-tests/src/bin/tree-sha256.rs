//! `tree-sha256 DIR`: prints `<sha256>  <path relative to DIR>` for every regular file below
//! DIR, sorted by path, and `link <path> -> <target>` for symlinks. Run in a pod (image from
//! `acceptance_tests::tree_image`) to see what a claim holds as pods see it.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
        let md = std::fs::symlink_metadata(&p)?;
        if md.file_type().is_symlink() {
            out.push(format!(
                "link {rel} -> {}",
                std::fs::read_link(&p)?.display()
            ));
        } else if md.is_dir() {
            walk(root, &p, out)?;
        } else {
            let mut h = Sha256::new();
            let mut f = std::fs::File::open(&p)?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            out.push(format!("{hex}  {rel}"));
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: tree-sha256 DIR");
        return std::process::ExitCode::from(2);
    };
    let root = Path::new(&dir);
    let mut out = Vec::new();
    if let Err(e) = walk(root, root, &mut out) {
        eprintln!("tree-sha256: {dir}: {e}");
        return std::process::ExitCode::from(1);
    }
    out.sort_by(|a, b| a.split("  ").nth(1).cmp(&b.split("  ").nth(1)));
    for l in out {
        println!("{l}");
    }
    std::process::ExitCode::SUCCESS
}
