//! `testnet-archiver sums DIR`: the SHA-256 and size of every regular file under a directory, so
//! a restored volume can be compared with its source from the same image (`kubectl exec`, or a
//! container after the init container), without a shell or coreutils in the image.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// One entry of the listing: a regular file's digest and size, or a symlink's target.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Entry {
    File { sha256: String, size_bytes: u64 },
    Symlink { symlink: String },
}

/// Every regular file and symlink below `root`, by path relative to it (directories are implied).
pub fn of_tree(root: &Path) -> std::io::Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
            out.insert(rel, Entry::Symlink { symlink: target });
        } else if ft.is_file() {
            let (sha256, size_bytes) = hash_file(&path)?;
            out.insert(rel, Entry::File { sha256, size_bytes });
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((catalog::hex(&h.finalize()), size))
}
