//! `LsmError`: why an engine operation failed, with the file and offset.

use std::path::PathBuf;

use kv_types::StorageError;

/// Why an [`LsmStorage`](crate::LsmStorage) operation failed.
///
/// Every corruption variant names the file and the byte offset, so an
/// operator can find the damage. None of them is ever skipped silently: a
/// record that fails a check is never returned and never reported as absent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LsmError {
    /// The operating system refused a read or a write.
    #[error("I/O error while trying to {op} {path}: {source}")]
    Io {
        /// What the engine was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored checksum does not match the bytes it covers.
    #[error(
        "checksum mismatch in {file} at offset {offset}: stored {expected:#010x}, computed {got:#010x}"
    )]
    ChecksumMismatch {
        /// The file holding the damaged bytes.
        file: PathBuf,
        /// Offset of the damaged block or record.
        offset: u64,
        /// The checksum stored on disk.
        expected: u32,
        /// The checksum of the bytes read.
        got: u32,
    },
    /// A file does not end with the expected magic number.
    #[error("{file} is not a {what} file (bad magic {got:#018x})")]
    BadMagic {
        /// The file.
        file: PathBuf,
        /// What kind of file was expected.
        what: &'static str,
        /// The magic number found.
        got: u64,
    },
    /// A file was written by a format version this build cannot read.
    #[error("{file} has format version {version}, this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The version found.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Bytes that passed their checksum do not decode, or a structure is
    /// inconsistent (an offset past the end of a file, an unsorted index).
    #[error("corrupt {file} at offset {offset}: {detail}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Where the problem was found.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A key, value or metadata is larger than the engine accepts.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// "key", "value" or "meta".
        what: &'static str,
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The engine was closed, or an earlier write or background failure
    /// stopped it.
    #[error("storage is closed{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed {
        /// Why the engine stopped, when it stopped on a failure.
        reason: Option<String>,
    },
    /// Another process (or another engine in this one) has the directory
    /// open.
    #[error("{} is in use: another engine holds its LOCK file", dir.display())]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// An option is out of its allowed range.
    #[error("invalid option {name}: {detail}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl LsmError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        file: impl Into<PathBuf>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        Self::Corrupt {
            file: file.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// Whether this error says stored data is damaged (as opposed to an I/O
    /// failure, a limit, or a closed engine).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Self::ChecksumMismatch { .. }
                | Self::BadMagic { .. }
                | Self::UnsupportedVersion { .. }
                | Self::Corrupt { .. }
        )
    }
}

impl From<LsmError> for StorageError {
    fn from(e: LsmError) -> Self {
        match e {
            LsmError::Io { op, path, source } => StorageError::Io(std::io::Error::new(
                source.kind(),
                format!("{op} {}: {source}", path.display()),
            )),
            LsmError::TooLarge { what, len, max } => StorageError::TooLarge { what, len, max },
            LsmError::Closed { .. } => StorageError::Closed,
            e if e.is_corruption() => StorageError::Corruption {
                detail: e.to_string(),
            },
            e => StorageError::Other(Box::new(e)),
        }
    }
}
