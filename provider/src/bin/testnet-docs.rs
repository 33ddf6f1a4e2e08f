//! `testnet-docs [--root DIR] [--check]`: writes the registry docs (`DIR/docs`) from the
//! provider's schemas, the templates in `DIR/docs-src` and the examples they name. `--check`
//! writes nothing and exits 1 when `docs/` is stale, listing the files.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut root = PathBuf::from(".");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--root" => match args.next() {
                Some(r) => root = r.into(),
                None => return usage("--root needs a directory"),
            },
            "-h" | "--help" => return usage(""),
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let sources = docgen::Sources {
        templates: root.join("docs-src"),
        root: root.clone(),
    };
    let docs = match docgen::generate(
        &terraform_provider_testnet::TestnetProvider::default(),
        &sources,
    ) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("testnet-docs: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &docs.warnings {
        eprintln!("testnet-docs: warning: {w}");
    }
    let out = root.join("docs");
    if check {
        match docs.stale(&out) {
            Ok(stale) if stale.is_empty() => ExitCode::SUCCESS,
            Ok(stale) => {
                for s in stale {
                    eprintln!("stale: docs/{s}");
                }
                eprintln!("run scripts/docs to regenerate");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("testnet-docs: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        match docs.write(&out) {
            Ok(()) => {
                println!("{} pages in {}", docs.pages.len(), out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("testnet-docs: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("testnet-docs: {problem}");
    }
    eprintln!("usage: testnet-docs [--root DIR] [--check]");
    if problem.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
