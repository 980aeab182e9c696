//! Configuration errors that name the place: file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::zone::ZoneError;

/// One problem with the configuration or a file it names.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// A problem at a place in the configuration file.
    #[error("{}:{line}:{column}: {message}", file.display())]
    At {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A file could not be read at all.
    #[error("{}: {message}", file.display())]
    Io { file: PathBuf, message: String },
    /// A problem in a zone file.
    #[error("{0}")]
    Zone(ZoneError),
}

impl ConfigError {
    /// An error at byte `offset` of `text`, the contents of `file`.
    pub fn at(file: &Path, text: &str, offset: usize, message: String) -> Self {
        let (line, column) = line_col(text, offset);
        ConfigError::At {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
    }

    pub fn io(file: &Path, message: String) -> Self {
        ConfigError::Io {
            file: file.to_path_buf(),
            message,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Every problem found in one load; never empty.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn one(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    #[test]
    fn line_and_column() {
        let t = "a\nbc\né d";
        assert_eq!(super::line_col(t, 0), (1, 1));
        assert_eq!(super::line_col(t, 3), (2, 2));
        assert_eq!(super::line_col(t, t.find('d').unwrap()), (3, 3));
    }
}
