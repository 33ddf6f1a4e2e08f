//! Attribute paths: where in a configuration a diagnostic points.

use std::fmt;

/// One step of an [`AttributePath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An attribute of an object or block.
    Attr(String),
    /// An element of a map, by key.
    Key(String),
    /// An element of a list or tuple, by index.
    Index(i64),
}

/// A path from the top of a resource's configuration to one value, e.g. `labels["app"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributePath(pub Vec<Step>);

impl AttributePath {
    /// The path of a top-level attribute.
    pub fn attr(name: impl Into<String>) -> Self {
        AttributePath(vec![Step::Attr(name.into())])
    }
    /// This path followed by an attribute.
    pub fn then_attr(&self, name: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Step::Attr(name.into()));
        p
    }
    /// This path followed by a map key.
    pub fn then_key(&self, key: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(Step::Key(key.into()));
        p
    }
    /// This path followed by a list index.
    pub fn then_index(&self, i: i64) -> Self {
        let mut p = self.clone();
        p.0.push(Step::Index(i));
        p
    }
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(a) if i == 0 => f.write_str(a)?,
                Step::Attr(a) => write!(f, ".{a}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}
