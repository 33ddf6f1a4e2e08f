//! Terraform Registry documentation generated from what a tfplug provider serves.
//!
//! The schema is the source of truth for attributes (types, flags, defaults, validators,
//! replacement), examples come from HCL files that are themselves run by users, and only the
//! prose around them is hand-written in page templates. Generation is deterministic, so a test
//! can regenerate and compare with the committed `docs/` ([`Docs::stale`]).
//!
//! Layout produced, relative to the output directory (the registry's):
//! `index.md`, `resources/NAME.md`, `data-sources/NAME.md`, `ephemeral-resources/NAME.md`, where
//! NAME is the type name without the provider prefix (`testnet_storage_class` → `storage_class`).
//!
//! A template (`TEMPLATES/resources/NAME.md`, `TEMPLATES/index.md`, ...) is Markdown with an
//! optional front matter and placeholders:
//!
//! ```text
//! ---
//! description: One line for the page's front matter (default: the schema description's first paragraph)
//! example: examples/storage_class/main.tf
//! blocks: provider, resource.testnet_storage_class
//! import: testnet_storage_class.node_db testnet-ssd
//! ---
//! {{description}}   the schema's description
//! prose...
//! {{example}}       "## Example Usage" with the chosen blocks of the example file
//! {{schema}}        "## Schema"
//! {{import}}        "## Import" with a command and an import block per `import:` line
//! ```
//!
//! `blocks` selects top-level blocks of the example (`kind`, `kind.type` or `kind.type.name`;
//! default: every block but `terraform`); variables the chosen blocks use come along.

pub mod hcl;
pub mod schema_md;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tfplug::{Provider, Schema};

/// Why docs could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum DocgenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {path}: {reason}")]
    Template { path: PathBuf, reason: String },
    #[error("example {path} (used by {page}): {reason}")]
    Example {
        path: PathBuf,
        page: String,
        reason: String,
    },
}

/// Every generated page, by path relative to the docs directory (`resources/storage_class.md`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Docs {
    pub pages: BTreeMap<String, String>,
    /// Types documented without a template (so without example or import section).
    pub warnings: Vec<String>,
}

/// The directories whose `.md` files are all generated: a file there that is not generated any
/// more (a removed type) is stale too.
pub const GENERATED_DIRS: [&str; 3] = ["resources", "data-sources", "ephemeral-resources"];

/// What is wrong with one file of a committed docs directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    Missing(String),
    /// First differing line (1-based), the generated and the committed text of that line.
    Differs {
        path: String,
        line: usize,
        expected: String,
        found: String,
    },
    /// A page in a generated directory that the generator no longer makes.
    Extra(String),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Missing(p) => write!(f, "{p}: missing"),
            Stale::Differs {
                path,
                line,
                expected,
                found,
            } => write!(
                f,
                "{path}: differs from line {line}: generated {expected:?}, committed {found:?}"
            ),
            Stale::Extra(p) => write!(f, "{p}: no longer generated (type removed?)"),
        }
    }
}

/// Where templates and examples are.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Page templates (`index.md`, `resources/NAME.md`, ...).
    pub templates: PathBuf,
    /// What `example:` paths are relative to (the repository root).
    pub root: PathBuf,
}

/// Generates every page for `provider`.
pub fn generate<P: Provider>(provider: &P, src: &Sources) -> Result<Docs, DocgenError> {
    let name = provider.type_name();
    let mut docs = Docs::default();
    let mut pages: Vec<(String, String, &str, Schema)> = Vec::new();
    for r in provider.resources() {
        pages.push((
            "resources".into(),
            r.type_name().into(),
            "Resource",
            r.schema(),
        ));
    }
    for d in provider.data_sources() {
        pages.push((
            "data-sources".into(),
            d.type_name().into(),
            "Data Source",
            d.schema(),
        ));
    }
    for e in provider.ephemeral_resources() {
        pages.push((
            "ephemeral-resources".into(),
            e.type_name().into(),
            "Ephemeral Resource",
            e.schema(),
        ));
    }
    for (dir, type_name, kind, schema) in pages {
        let short = type_name
            .strip_prefix(&format!("{name}_"))
            .unwrap_or(&type_name)
            .to_string();
        let rel = format!("{dir}/{short}.md");
        let template = Template::load(&src.templates.join(&rel))?;
        if template.is_none() {
            docs.warnings.push(format!(
                "{type_name}: no template {} (page has no example)",
                src.templates.join(&rel).display()
            ));
        }
        let page = render_page(
            &PageInfo {
                title: format!("{type_name} {kind} - {name}"),
                heading: format!("{type_name} ({kind})"),
                page: rel.clone(),
            },
            &schema,
            template.as_ref(),
            src,
        )?;
        docs.pages.insert(rel, page);
    }
    let index = Template::load(&src.templates.join("index.md"))?;
    let page = render_page(
        &PageInfo {
            title: format!("{name} Provider"),
            heading: format!("{name} Provider"),
            page: "index.md".into(),
        },
        &provider.schema(),
        index.as_ref(),
        src,
    )?;
    docs.pages.insert("index.md".into(), page);
    Ok(docs)
}

impl Docs {
    /// Writes every page under `out` and removes pages of generated directories that are no
    /// longer generated. Files are rewritten only when their content changes.
    pub fn write(&self, out: &Path) -> Result<(), DocgenError> {
        for (rel, text) in &self.pages {
            let path = out.join(rel);
            if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
                continue;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        }
        for extra in self.extra_files(out)? {
            let path = out.join(&extra);
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    /// What differs between these pages and the docs directory `out`; empty when fresh.
    pub fn stale(&self, out: &Path) -> Result<Vec<Stale>, DocgenError> {
        let mut stale = Vec::new();
        for (rel, text) in &self.pages {
            let path = out.join(rel);
            match std::fs::read_to_string(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    stale.push(Stale::Missing(rel.clone()))
                }
                Err(e) => return Err(io(&path, e)),
                Ok(found) if found != *text => {
                    let (line, expected, found) = first_difference(text, &found);
                    stale.push(Stale::Differs {
                        path: rel.clone(),
                        line,
                        expected,
                        found,
                    });
                }
                Ok(_) => {}
            }
        }
        stale.extend(self.extra_files(out)?.into_iter().map(Stale::Extra));
        Ok(stale)
    }

    fn extra_files(&self, out: &Path) -> Result<Vec<String>, DocgenError> {
        let mut extra = Vec::new();
        for dir in GENERATED_DIRS {
            let path = out.join(dir);
            let entries = match std::fs::read_dir(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                other => other.map_err(|e| io(&path, e))?,
            };
            for entry in entries {
                let entry = entry.map_err(|e| io(&path, e))?;
                let file = entry.file_name().to_string_lossy().into_owned();
                let rel = format!("{dir}/{file}");
                if file.ends_with(".md") && !self.pages.contains_key(&rel) {
                    extra.push(rel);
                }
            }
        }
        extra.sort();
        Ok(extra)
    }
}

fn io(path: &Path, source: std::io::Error) -> DocgenError {
    DocgenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn first_difference(expected: &str, found: &str) -> (usize, String, String) {
    let mut e = expected.lines();
    let mut f = found.lines();
    let mut n = 1;
    loop {
        match (e.next(), f.next()) {
            (Some(a), Some(b)) if a == b => n += 1,
            (None, None) => return (n, String::new(), "(trailing newline)".into()),
            (a, b) => {
                return (
                    n,
                    a.unwrap_or("(end of file)").to_string(),
                    b.unwrap_or("(end of file)").to_string(),
                )
            }
        }
    }
}

/// A parsed page template.
#[derive(Debug, Default)]
struct Template {
    description: Option<String>,
    example: Option<PathBuf>,
    blocks: Vec<String>,
    /// (address, import ID)
    imports: Vec<(String, String)>,
    body: String,
}

impl Template {
    fn load(path: &Path) -> Result<Option<Template>, DocgenError> {
        let text = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.map_err(|e| io(path, e))?,
        };
        Template::parse(path, &text).map(Some)
    }

    fn parse(path: &Path, text: &str) -> Result<Template, DocgenError> {
        let bad = |reason: String| DocgenError::Template {
            path: path.to_path_buf(),
            reason,
        };
        let mut t = Template::default();
        let body = if let Some(rest) = text.strip_prefix("---\n") {
            let (front, body) = rest
                .split_once("\n---\n")
                .ok_or_else(|| bad("front matter opened with --- is not closed".into()))?;
            for (i, line) in front.lines().enumerate() {
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let (k, v) = line.split_once(':').ok_or_else(|| {
                    bad(format!(
                        "front matter line {}: expected `key: value`",
                        i + 2
                    ))
                })?;
                let v = v.trim();
                match k.trim() {
                    "description" => t.description = Some(v.to_string()),
                    "example" => t.example = Some(PathBuf::from(v)),
                    "blocks" => {
                        t.blocks = v
                            .split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    }
                    "import" => {
                        let (addr, id) = v
                            .split_once(' ')
                            .ok_or_else(|| bad(format!("import {v:?}: expected `ADDRESS ID`")))?;
                        t.imports.push((addr.to_string(), id.trim().to_string()));
                    }
                    other => {
                        return Err(bad(format!(
                        "unknown front matter key {other:?} (description, example, blocks, import)"
                    )))
                    }
                }
            }
            body
        } else {
            text
        };
        t.body = body.trim().to_string();
        let mut rest = t.body.as_str();
        while let Some(start) = rest.find("{{") {
            let tail = &rest[start..];
            let end = tail.find("}}").map(|e| e + 2).unwrap_or(tail.len());
            let token = &tail[..end];
            if !["{{description}}", "{{example}}", "{{schema}}", "{{import}}"].contains(&token) {
                return Err(bad(format!("unknown placeholder {token}")));
            }
            rest = &tail[end..];
        }
        if !t.body.contains("{{schema}}") {
            return Err(bad("no {{schema}} placeholder".into()));
        }
        if t.example.is_some() && !t.body.contains("{{example}}") {
            return Err(bad(
                "`example:` is set but the body has no {{example}}".into()
            ));
        }
        if !t.imports.is_empty() && !t.body.contains("{{import}}") {
            return Err(bad("`import:` is set but the body has no {{import}}".into()));
        }
        Ok(t)
    }
}

struct PageInfo {
    title: String,
    heading: String,
    /// Relative path of the page, for error messages.
    page: String,
}

fn render_page(
    info: &PageInfo,
    schema: &Schema,
    template: Option<&Template>,
    src: &Sources,
) -> Result<String, DocgenError> {
    let description = schema.block.description.trim().to_string();
    let summary = template
        .and_then(|t| t.description.clone())
        .unwrap_or_else(|| {
            description
                .split("\n\n")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        });
    let mut out = format!(
        "---\npage_title: \"{}\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n\n# {}\n\n",
        info.title, summary, info.heading
    );
    let body = match template {
        None => "{{description}}\n\n{{schema}}".to_string(),
        Some(t) => t.body.clone(),
    };
    let example = match template {
        Some(t) => match &t.example {
            Some(p) => example_section(t, p, src, &info.page)?,
            None => String::new(),
        },
        None => String::new(),
    };
    let import = template.map(import_section).unwrap_or_default();
    let body = body
        .replace("{{description}}", &description)
        .replace("{{example}}", example.trim_end())
        .replace("{{schema}}", schema_md::render(&schema.block).trim_end())
        .replace("{{import}}", import.trim_end());
    out.push_str(body.trim());
    out.push('\n');
    Ok(collapse_blank_lines(&out))
}

/// Runs of blank lines (an empty description or section leaves them) become one, except inside
/// fenced code, where the example's own layout is kept.
fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    let mut blank_run = 0;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if line.trim().is_empty() && !in_code {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn example_section(
    t: &Template,
    rel: &Path,
    src: &Sources,
    page: &str,
) -> Result<String, DocgenError> {
    let path = src.root.join(rel);
    let err = |reason: String| DocgenError::Example {
        path: rel.to_path_buf(),
        page: page.to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
    let blocks = hcl::split(&text).map_err(err)?;
    let chosen = if t.blocks.is_empty() {
        blocks
            .into_iter()
            .filter(|b| b.key != "terraform")
            .collect()
    } else {
        for s in &t.blocks {
            if !blocks.iter().any(|b| b.matches(s)) {
                return Err(err(format!("no top-level block matches {s:?}")));
            }
        }
        hcl::select(&blocks, &t.blocks)
    };
    let code = chosen
        .iter()
        .map(|b| b.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok(format!("## Example Usage\n\n```terraform\n{code}\n```\n"))
}

fn import_section(t: &Template) -> String {
    if t.imports.is_empty() {
        return String::new();
    }
    let mut out = String::from("## Import\n\nWith the `terraform import` command:\n\n```shell\n");
    for (addr, id) in &t.imports {
        out.push_str(&format!("terraform import {addr} {id}\n"));
    }
    out.push_str("```\n\nor, from Terraform 1.5, with an `import` block:\n\n```terraform\n");
    let (addr, id) = &t.imports[0];
    out.push_str(&format!(
        "import {{\n  to = {addr}\n  id = {id:?}\n}}\n```\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_runs_collapse_outside_code_only() {
        let text = "a\n\n\n\nb\n```terraform\nx = 1\n\n\ny = 2\n```\n\n\nc\n";
        assert_eq!(
            collapse_blank_lines(text),
            "a\n\nb\n```terraform\nx = 1\n\n\ny = 2\n```\n\nc\n"
        );
    }

    #[test]
    fn first_difference_names_line_and_both_texts() {
        assert_eq!(
            first_difference("a\nb\nc\n", "a\nB\nc\n"),
            (2, "b".to_string(), "B".to_string())
        );
        assert_eq!(
            first_difference("a\nb\n", "a\n"),
            (2, "b".to_string(), "(end of file)".to_string())
        );
    }
}
