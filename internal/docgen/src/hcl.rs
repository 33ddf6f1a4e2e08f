//! Just enough HCL to cut an example file into its top-level blocks, so one example file can
//! illustrate several pages (a data source page shows the `data` block, not the whole file).
//!
//! Not a parser: it tracks strings, template interpolations, comments and heredocs only to know
//! where each top-level block's braces close.

use std::collections::BTreeSet;

/// One top-level block with the comment lines directly above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopBlock {
    /// `kind` or `kind.label[.label]`, e.g. `resource.testnet_storage_class.ssd`, `provider.testnet`.
    pub key: String,
    /// The block's text, comments above it included, without a trailing newline.
    pub text: String,
}

impl TopBlock {
    /// True when `selector` names this block: `resource`, `resource.testnet_x` or the full key.
    pub fn matches(&self, selector: &str) -> bool {
        self.key == selector
            || (self.key.starts_with(selector) && self.key[selector.len()..].starts_with('.'))
    }
}

/// Where the scanner is inside an expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Inside `"..."`.
    Str,
    /// Inside `${ ... }` or `%{ ... }` of a string, with its own brace depth.
    Interp(u32),
}

/// Cuts `src` into top-level blocks. Comment lines separated from the next block by a blank line
/// (file headers) are dropped; so is anything that is not a block (top-level attributes do not
/// occur in Terraform files). Returns an error naming the line when braces do not balance.
pub fn split(src: &str) -> Result<Vec<TopBlock>, String> {
    let mut blocks = Vec::new();
    let mut pending_comments: Vec<&str> = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    let mut depth: i64 = 0;
    let mut stack: Vec<Frame> = Vec::new();
    let mut heredoc: Option<String> = None;
    let mut in_block_comment = false;

    for (n, line) in src.lines().enumerate() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            if let Some((_, lines)) = current.as_mut() {
                lines.push(line);
            }
            continue;
        }
        let trimmed = line.trim();
        if current.is_none() && depth == 0 && !in_block_comment {
            if trimmed.is_empty() {
                pending_comments.clear();
                continue;
            }
            if trimmed.starts_with('#') || trimmed.starts_with("//") {
                pending_comments.push(line);
                continue;
            }
            let key = block_key(trimmed).ok_or_else(|| {
                format!("line {}: expected a block header, found {trimmed:?}", n + 1)
            })?;
            let mut lines = std::mem::take(&mut pending_comments);
            lines.push(line);
            current = Some((key, lines));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
        // Scan the line for braces outside strings and comments.
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            let next = bytes.get(i + 1).copied();
            if in_block_comment {
                if c == b'*' && next == Some(b'/') {
                    in_block_comment = false;
                    i += 1;
                }
                i += 1;
                continue;
            }
            match stack.last().copied() {
                Some(Frame::Str) => match c {
                    b'\\' => i += 1,
                    b'"' => {
                        stack.pop();
                    }
                    b'$' | b'%' if next == Some(b'{') => {
                        stack.push(Frame::Interp(0));
                        i += 1;
                    }
                    _ => {}
                },
                top => {
                    let in_interp = matches!(top, Some(Frame::Interp(_)));
                    match c {
                        b'"' => stack.push(Frame::Str),
                        b'#' => break,
                        b'/' if next == Some(b'/') => break,
                        b'/' if next == Some(b'*') => {
                            in_block_comment = true;
                            i += 1;
                        }
                        b'<' if !in_interp && next == Some(b'<') => {
                            let rest = line[i + 2..].trim_start_matches('-');
                            let ident: String = rest
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            if !ident.is_empty() {
                                heredoc = Some(ident);
                                break;
                            }
                        }
                        b'{' => match stack.last_mut() {
                            Some(Frame::Interp(d)) => *d += 1,
                            _ => depth += 1,
                        },
                        b'}' => match stack.last_mut() {
                            Some(Frame::Interp(0)) => {
                                stack.pop();
                            }
                            Some(Frame::Interp(d)) => *d -= 1,
                            _ => {
                                depth -= 1;
                                if depth < 0 {
                                    return Err(format!("line {}: unbalanced `}}`", n + 1));
                                }
                            }
                        },
                        _ => {}
                    }
                }
            }
            i += 1;
        }
        if depth == 0 && stack.is_empty() && heredoc.is_none() {
            if let Some((key, lines)) = current.take() {
                blocks.push(TopBlock {
                    key,
                    text: lines.join("\n"),
                });
            }
        }
    }
    if let Some((key, _)) = current {
        return Err(format!("block {key} is not closed at the end of the file"));
    }
    Ok(blocks)
}

/// `resource "a" "b" {` → `resource.a.b`; `None` when the line does not open a block.
fn block_key(header: &str) -> Option<String> {
    let (head, _) = header.split_once('{')?;
    let mut parts = Vec::new();
    let mut rest = head.trim();
    let kind: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    if kind.is_empty() {
        return None;
    }
    rest = rest[kind.len()..].trim_start();
    parts.push(kind);
    while !rest.is_empty() {
        let label = if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"')?;
            let l = &r[..end];
            rest = r[end + 1..].trim_start();
            l.to_string()
        } else {
            let l: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            if l.is_empty() {
                return None;
            }
            rest = rest[l.len()..].trim_start();
            l
        };
        parts.push(label);
    }
    Some(parts.join("."))
}

/// The blocks of `blocks` that `selectors` name, in file order, plus every `variable` block the
/// chosen ones refer to (`var.NAME`), so an excerpt never uses an undeclared variable.
pub fn select(blocks: &[TopBlock], selectors: &[String]) -> Vec<TopBlock> {
    let mut keep: BTreeSet<usize> = blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| selectors.iter().any(|s| b.matches(s)))
        .map(|(i, _)| i)
        .collect();
    let used_vars: BTreeSet<String> = keep
        .iter()
        .flat_map(|&i| var_refs(&blocks[i].text))
        .collect();
    for (i, b) in blocks.iter().enumerate() {
        if let Some(name) = b.key.strip_prefix("variable.") {
            if used_vars.contains(name) {
                keep.insert(i);
            }
        }
    }
    keep.into_iter().map(|i| blocks[i].clone()).collect()
}

fn var_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("var.") {
        let before = rest[..pos].chars().last();
        let after = &rest[pos + 4..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"# File header, dropped.

terraform {
  required_providers {
    testnet = { source = "testnet-infra/testnet" }
  }
}

variable "network" {
  type    = string
  default = "devnet"
}

variable "unused" {
  type = string
}

# Attached to the resource.
resource "testnet_storage_class" "ssd" {
  name = "${var.network}-ssd-${lookup({ a = "}" }, "a", "{")}"
  # a comment with a brace {
  tier = "ssd" // another }
  /* block { comment */
  script = <<-EOT
    echo "{"
  EOT
}

data "testnet_snapshot" "latest" {
  network = "x"
}

output "url" {
  value = data.testnet_snapshot.latest.url
}
"#;

    #[test]
    fn splits_into_top_level_blocks_with_their_comments() {
        let blocks = split(SRC).unwrap();
        let keys: Vec<&str> = blocks.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "terraform",
                "variable.network",
                "variable.unused",
                "resource.testnet_storage_class.ssd",
                "data.testnet_snapshot.latest",
                "output.url"
            ]
        );
        let res = &blocks[3].text;
        assert!(
            res.starts_with("# Attached to the resource.\nresource "),
            "{res}"
        );
        assert!(res.ends_with("  EOT\n}"), "{res}");
        assert!(!blocks[0].text.contains("File header"));
    }

    #[test]
    fn selection_adds_the_variables_used() {
        let blocks = split(SRC).unwrap();
        let picked = select(&blocks, &["resource.testnet_storage_class".to_string()]);
        let keys: Vec<&str> = picked.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(
            keys,
            ["variable.network", "resource.testnet_storage_class.ssd"]
        );
        let picked = select(&blocks, &["data".to_string(), "output".to_string()]);
        let keys: Vec<&str> = picked.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, ["data.testnet_snapshot.latest", "output.url"]);
    }

    #[test]
    fn selector_matches_whole_key_segments_only() {
        let b = TopBlock {
            key: "resource.testnet_network_lock.x".into(),
            text: String::new(),
        };
        assert!(b.matches("resource.testnet_network_lock"));
        assert!(!b.matches("resource.testnet_network"));
        assert!(b.matches("resource"));
    }

    #[test]
    fn unbalanced_files_are_errors() {
        assert!(split("resource \"a\" \"b\" {\n  x = 1\n")
            .unwrap_err()
            .contains("not closed"));
        assert!(split("}\n").is_err());
        assert!(split("x = 1\n").unwrap_err().contains("line 1"));
    }
}
