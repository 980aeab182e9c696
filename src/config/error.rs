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

/// 1-based line and column (in characters) of a byte offset. Scans the text up to the offset:
/// for many offsets into one text, build a [`LineIndex`] once instead.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(text, offset)
}

/// Where each line of a text starts, so that a position is found by bisection and a scan of its
/// own line only: resolving every item of a large configuration stays linear in its size.
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of the start of each line (the first is 0).
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of byte `offset` of `text` (the text indexed).
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, text[start..offset].chars().count() + 1)
    }
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
        // The index agrees with a plain scan at every offset, multi-byte characters included.
        let t = "a\nbé\n\nxyz\u{1F600}q\n";
        let index = super::LineIndex::new(t);
        for offset in (0..=t.len() + 2).filter(|&o| o > t.len() || t.is_char_boundary(o)) {
            let o = offset.min(t.len());
            let before = &t[..o];
            let line = before.matches('\n').count() + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            let want = (line, before[start..].chars().count() + 1);
            assert_eq!(index.line_col(t, offset), want, "offset {offset}");
        }
    }
}
