//! The committed registry docs (`docs/`) are what the generator makes from the current schemas,
//! templates (`docs-src/`) and examples. Fails after a description, example or template changes
//! until `scripts/docs` is run and `docs/` committed.

use std::path::Path;

#[test]
fn committed_docs_are_generated_from_the_current_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let sources = docgen::Sources {
        templates: root.join("docs-src"),
        root: root.clone(),
    };
    let provider = terraform_provider_testnet::TestnetProvider::default();
    let docs = docgen::generate(&provider, &sources).expect("generate docs");

    // Every type has a page with an example, and every resource an import section.
    for (page, text) in &docs.pages {
        assert!(
            text.contains("## Example Usage\n\n```terraform\n"),
            "{page} has no example"
        );
        if page.starts_with("resources/") {
            assert!(
                text.contains("\nterraform import testnet_"),
                "{page} has no import section"
            );
        }
    }
    assert!(docs.warnings.is_empty(), "{:?}", docs.warnings);

    // Regenerate into a temporary directory: the written tree must equal the committed one.
    let tmp = tempfile::tempdir().expect("tempdir");
    docs.write(tmp.path()).expect("write docs");
    assert!(docs.stale(tmp.path()).expect("compare").is_empty());

    let stale = docs.stale(&root.join("docs")).expect("compare with docs/");
    assert!(
        stale.is_empty(),
        "docs/ is stale:\n{}\nRun scripts/docs and commit docs/.",
        stale
            .iter()
            .map(|s| format!("  docs/{s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Links between pages (and to the guide) and to nested-schema anchors resolve, in the generated
/// pages and in the hand-written guides beside them.
#[test]
fn links_in_docs_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let docs_dir = root.join("docs");
    let mut pages = Vec::new();
    let mut dirs = vec![docs_dir.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read docs dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                pages.push(p);
            }
        }
    }
    assert!(pages.len() >= 9, "{pages:?}");
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("read page");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let dest = if file.is_empty() {
                page.clone()
            } else {
                page.parent().expect("page dir").join(file)
            };
            let ok = match std::fs::read_to_string(&dest) {
                Err(_) => false,
                Ok(_) if anchor.is_empty() => true,
                Ok(t) => t.contains(&format!("<a id=\"{anchor}\"></a>")),
            };
            if !ok {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
