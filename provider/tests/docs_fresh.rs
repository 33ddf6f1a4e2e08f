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
