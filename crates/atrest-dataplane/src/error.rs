//! The data plane's typed errors. No message ever carries key bytes or document contents.

/// Everything the data plane can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cluster {0} not found")]
    ClusterNotFound(String),
    #[error("cluster {0} already exists")]
    ClusterExists(String),
    /// The cluster's keys are not in memory (never opened, or locked): reads and writes are refused.
    #[error("the keys of cluster {0} are not accessible: the cluster is locked")]
    KeyInaccessible(String),
    /// The key wrapper refused: the customer key is disabled, deleted, or access was revoked.
    #[error("access to the key of cluster {cluster} was denied: {reason}")]
    KeyDenied { cluster: String, reason: String },
    /// The key wrapper could not be reached; retrying may succeed.
    #[error("the key service for cluster {cluster} is unavailable: {reason}")]
    KeyUnavailable { cluster: String, reason: String },
    /// The cluster's keys were destroyed (crypto-shredded): its data can never be read again.
    #[error("the keys of cluster {0} were destroyed")]
    KeyDestroyed(String),
    /// A wrapper other than the one that wrapped the master keys was given.
    #[error("the master keys of cluster {cluster} are wrapped by {expected}, not by {given}")]
    WrongWrapper { cluster: String, expected: String, given: String },
    #[error("invalid {kind} name {name:?}: names match ^[A-Za-z0-9_-]{{1,64}}$")]
    InvalidName { kind: &'static str, name: String },
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    #[error("duplicate key: a document with _id {0} already exists")]
    DuplicateKey(String),
    #[error("{0} not found")]
    NotFound(String),
    /// Another key operation is in progress or pending (for example an unfinished re-encryption).
    #[error("cluster {cluster} is busy: {reason}")]
    Busy { cluster: String, reason: String },
    /// Stored bytes (keyring, wrapped key, database file) are malformed or do not authenticate.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("storage error: {0}")]
    Storage(String),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl From<std::io::Error> for DataError {
    fn from(e: std::io::Error) -> Self {
        DataError::Storage(e.to_string())
    }
}

impl From<rusqlite::Error> for DataError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
                DataError::Corrupt(format!("database file does not decrypt under its key: {e}"))
            }
            _ => DataError::Storage(e.to_string()),
        }
    }
}
