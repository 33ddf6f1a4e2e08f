//! docgen over a small provider: page layout, schema facts, templates and staleness.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use tfplug::schema::validators::one_of;
use tfplug::{
    Attribute, Block, BlockNesting, Context, DataSource, Diagnostics, NestedBlock, Nesting,
    Private, Provider, Resource, Schema, Value,
};

struct Demo;
struct Widget;
struct Lookup;

#[async_trait]
impl Provider for Demo {
    fn type_name(&self) -> &'static str {
        "demo"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .describe("A demo provider.")
                .attr(Attribute::string("endpoint").optional().describe("Where."))
                .attr(
                    Attribute::string("password")
                        .optional()
                        .sensitive()
                        .describe("Secret."),
                )
                .block(
                    NestedBlock::new(
                        "auth",
                        BlockNesting::List,
                        Block::new()
                            .describe("Credentials.")
                            .attr(Attribute::string("user").required().describe("Who.")),
                    )
                    .max_items(1),
                ),
        )
    }
    async fn configure(&self, _: &Context, _: &Value, _: &mut Diagnostics) {}
    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(Widget)]
    }
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![Arc::new(Lookup)]
    }
}

#[async_trait]
impl Resource for Widget {
    fn type_name(&self) -> &'static str {
        "demo_widget"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .describe("A widget.\n\nSecond paragraph.")
                .attr(
                    Attribute::string("name")
                        .required()
                        .requires_replace()
                        .describe("Name of the widget."),
                )
                .attr(
                    Attribute::string("size")
                        .default("small")
                        .validate(one_of(["small", "large"]))
                        .describe("How big."),
                )
                .attr(
                    Attribute::bool("fast")
                        .default(false)
                        .describe("Fast; default `false`."),
                )
                .attr(
                    Attribute::string("old")
                        .optional()
                        .deprecated("Use `name`.")
                        .describe("Old name."),
                )
                .attr(
                    Attribute::string("api_key")
                        .optional()
                        .write_only()
                        .describe("A key."),
                )
                .attr(
                    Attribute::nested(
                        "rules",
                        Nesting::List,
                        vec![
                            Attribute::string("port").required().describe("Port."),
                            Attribute::string_map("tags").optional().describe("Tags."),
                        ],
                    )
                    .optional()
                    .describe("Rules."),
                )
                .attr(Attribute::string("id").computed().describe("Identifier.")),
        )
    }
    async fn create(
        &self,
        _: &Context,
        p: &Value,
        _: &Value,
        _: &mut Private,
        _: &mut Diagnostics,
    ) -> Option<Value> {
        Some(p.clone())
    }
    async fn read(
        &self,
        _: &Context,
        s: &Value,
        _: &mut Private,
        _: &mut Diagnostics,
    ) -> Option<Value> {
        Some(s.clone())
    }
    async fn update(
        &self,
        _: &Context,
        _: &Value,
        p: &Value,
        _: &Value,
        _: &mut Private,
        _: &mut Diagnostics,
    ) -> Option<Value> {
        Some(p.clone())
    }
    async fn delete(&self, _: &Context, _: &Value, _: &Private, _: &mut Diagnostics) {}
}

#[async_trait]
impl DataSource for Lookup {
    fn type_name(&self) -> &'static str {
        "demo_lookup"
    }
    fn schema(&self) -> Schema {
        Schema::new(
            Block::new()
                .describe("Looks a widget up.")
                .attr(Attribute::string("name").required().describe("Name."))
                .attr(Attribute::number("count").computed().describe("How many.")),
        )
    }
    async fn read(&self, _: &Context, c: &Value, _: &mut Diagnostics) -> Option<Value> {
        Some(c.clone())
    }
}

const EXAMPLE: &str = r#"terraform {
  required_providers {
    demo = { source = "example/demo" }
  }
}

variable "size" {
  type = string
}

# The widget.
resource "demo_widget" "w" {
  name = "w1"
  size = var.size
}

data "demo_lookup" "l" {
  name = demo_widget.w.name
}
"#;

const WIDGET_TEMPLATE: &str = "---
description: Widgets, short.
example: examples/demo/main.tf
blocks: resource.demo_widget
import: demo_widget.w w1
---
{{description}}

Hand-written prose.

{{example}}

{{schema}}

{{import}}

The ID is the name.
";

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("examples/demo/main.tf", EXAMPLE);
    w("docs-src/resources/widget.md", WIDGET_TEMPLATE);
    w(
        "docs-src/index.md",
        "---\nexample: examples/demo/main.tf\nblocks: terraform\n---\n{{description}}\n\n{{example}}\n\n{{schema}}\n",
    );
    dir
}

fn sources(root: &Path) -> docgen::Sources {
    docgen::Sources {
        templates: root.join("docs-src"),
        root: root.to_path_buf(),
    }
}

#[test]
fn resource_page_has_front_matter_example_schema_and_import() {
    let dir = tree();
    let docs = docgen::generate(&Demo, &sources(dir.path())).unwrap();
    let keys: Vec<&str> = docs.pages.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["data-sources/lookup.md", "index.md", "resources/widget.md"]
    );
    // The data source has no template: documented from its schema, with a warning.
    assert_eq!(docs.warnings.len(), 1, "{:?}", docs.warnings);
    assert!(docs.warnings[0].contains("demo_lookup"));

    let page = &docs.pages["resources/widget.md"];
    assert!(page.starts_with(
        "---\npage_title: \"demo_widget Resource - demo\"\nsubcategory: \"\"\ndescription: |-\n  Widgets, short.\n---\n\n# demo_widget (Resource)\n\nA widget.\n\nSecond paragraph.\n\nHand-written prose.\n\n## Example Usage\n\n```terraform\nvariable \"size\" {"
    ), "{page}");
    // The chosen block with its comment, not the data source or the terraform block.
    assert!(
        page.contains("# The widget.\nresource \"demo_widget\" \"w\" {"),
        "{page}"
    );
    assert!(!page.contains("data \"demo_lookup\""));
    assert!(!page.contains("required_providers"));

    let lines = [
        "### Required\n\n- `name` (String) Name of the widget. Changing it forces replacement.\n",
        "- `size` (String) How big. One of `small`, `large`. Defaults to `\"small\"`.",
        // The description already states its default: no second sentence.
        "- `fast` (Boolean) Fast; default `false`.\n",
        "- `old` (String, Deprecated) **Deprecated** Use `name`. Old name.\n",
        "- `api_key` (String, Write-only) A key. Write-only: sent to the provider, never stored in plan or state.\n",
        "- `rules` (Attributes List) Rules. (see [below for nested schema](#nestedatt--rules))\n",
        "### Read-Only\n\n- `id` (String) Identifier.\n",
        "<a id=\"nestedatt--rules\"></a>\n### Nested Schema for `rules`\n\nRequired:\n\n- `port` (String) Port.\n\nOptional:\n\n- `tags` (Map of String) Tags.\n",
        "## Import\n\nWith the `terraform import` command:\n\n```shell\nterraform import demo_widget.w w1\n```",
        "import {\n  to = demo_widget.w\n  id = \"w1\"\n}\n```\n\nThe ID is the name.\n",
    ];
    for l in lines {
        assert!(page.contains(l), "missing {l:?} in:\n{page}");
    }
    // Optional attributes come after Required and before Read-Only.
    let (r, o, ro) = (
        page.find("### Required").unwrap(),
        page.find("### Optional").unwrap(),
        page.find("### Read-Only").unwrap(),
    );
    assert!(r < o && o < ro);

    let index = &docs.pages["index.md"];
    assert!(index.contains("# demo Provider\n\nA demo provider."));
    assert!(index.contains("required_providers"));
    assert!(index.contains("- `password` (String, Sensitive) Secret."));
    assert!(index.contains(
        "- `auth` (Block List, Max: 1) Credentials. (see [below for nested schema](#nestedblock--auth))"
    ));
    assert!(index.contains("### Nested Schema for `auth`\n\nRequired:\n\n- `user` (String) Who."));

    let lookup = &docs.pages["data-sources/lookup.md"];
    assert!(lookup.contains("# demo_lookup (Data Source)\n\nLooks a widget up.\n\n## Schema"));
}

#[test]
fn generation_is_deterministic() {
    let dir = tree();
    let a = docgen::generate(&Demo, &sources(dir.path())).unwrap();
    let b = docgen::generate(&Demo, &sources(dir.path())).unwrap();
    assert_eq!(a, b);
}

#[test]
fn stale_reports_missing_changed_and_removed_pages_and_write_fixes_them() {
    let dir = tree();
    let docs = docgen::generate(&Demo, &sources(dir.path())).unwrap();
    let out = dir.path().join("docs");
    let stale = docs.stale(&out).unwrap();
    assert_eq!(stale.len(), 3);
    assert!(stale.iter().all(|s| matches!(s, docgen::Stale::Missing(_))));

    docs.write(&out).unwrap();
    assert!(docs.stale(&out).unwrap().is_empty());

    // A hand edit of a generated page, and a page of a type that no longer exists.
    let widget = out.join("resources/widget.md");
    let edited = std::fs::read_to_string(&widget)
        .unwrap()
        .replace("How big.", "How large.");
    std::fs::write(&widget, edited).unwrap();
    std::fs::write(out.join("resources/gone.md"), "old").unwrap();
    std::fs::write(out.join("notes.txt"), "not a page").unwrap();
    let stale = docs.stale(&out).unwrap();
    assert_eq!(stale.len(), 2, "{stale:?}");
    match &stale[0] {
        docgen::Stale::Differs {
            path,
            expected,
            found,
            ..
        } => {
            assert_eq!(path, "resources/widget.md");
            assert!(expected.contains("How big.") && found.contains("How large."));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(stale[1], docgen::Stale::Extra("resources/gone.md".into()));

    docs.write(&out).unwrap();
    assert!(docs.stale(&out).unwrap().is_empty());
    assert!(!out.join("resources/gone.md").exists());
    assert!(
        out.join("notes.txt").exists(),
        "files outside generated dirs are left alone"
    );
}

#[test]
fn template_mistakes_are_errors_naming_the_file() {
    let cases = [
        ("{{description}}\n", "no {{schema}}"),
        ("---\nexample: examples/demo/main.tf\n---\n{{schema}}\n", "no {{example}}"),
        ("---\nimport: demo_widget.w\n---\n{{schema}}\n{{import}}\n", "expected `ADDRESS ID`"),
        ("---\ncolour: blue\n---\n{{schema}}\n", "unknown front matter key \"colour\""),
        ("{{schema}}\n{{sechma}}\n", "unknown placeholder {{sechma}}"),
        (
            "---\nexample: examples/demo/main.tf\nblocks: resource.demo_gadget\n---\n{{example}}\n{{schema}}\n",
            "no top-level block matches \"resource.demo_gadget\"",
        ),
        ("---\nexample: examples/none/main.tf\n---\n{{example}}\n{{schema}}\n", "examples/none/main.tf"),
    ];
    for (template, expected) in cases {
        let dir = tree();
        std::fs::write(dir.path().join("docs-src/resources/widget.md"), template).unwrap();
        let err = docgen::generate(&Demo, &sources(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{template:?}: {err}");
        assert!(
            err.contains("widget"),
            "error does not name the page: {err}"
        );
    }
}
