//! atrest's data plane: every cluster's documents, encrypted at rest under an envelope key
//! hierarchy rooted in the customer's KMS key (or a service key for provider `NONE`).
//!
//! ```text
//! customer CMK (KMS) or service key
//!   └─ wraps (MasterKeyWrapper, context {cluster, region}) node master keys, one per region
//!        └─ wrap (AES-256-GCM, AAD = header, cluster, database) database keys, one per database
//!             └─ key (raw, no KDF) one SQLCipher file per database: pages, WAL and journals
//! ```
//!
//! On disk, under the root: `<clusterId>/keyring` (wrapped keys only, replaced atomically and
//! durably) and `<clusterId>/db/<database>.sqlite3` (+ `-wal`, `-shm`; `.reenc` while a
//! re-encryption copies it). Plaintext keys live only in memory, in [`Key32`] (zeroized on drop,
//! redacted `Debug`), while the cluster is open.

#[doc(hidden)]
pub mod baseline;
mod docs;
mod error;
mod keyring;
mod keys;
mod plane;
mod sqlcipher;

pub use docs::{new_object_id, valid_name, FindOptions, UpdateResult, MAX_DOCUMENT_BYTES};
pub use error::{DataError, Result};
pub use keyring::{DbKeyEntry, Keyring, MasterKeySet, PendingReencryption, WrappedMasterKey};
pub use keys::{
    canonical_context, parse_service_blob, CountingWrapper, FormatError, Key32, MasterKeyWrapper, ServiceKeyWrapper,
    WrapError, WrappedDbKey, WrapperId, ALG_AES256_GCM, DB_KEY_FORMAT_V1, KEY_LEN, SERVICE_BLOB_V1,
};
pub use plane::{ClusterStats, CrashHook, CrashPoint, DataPlane, Progress};
pub use sqlcipher::cipher_version;

#[cfg(test)]
mod tests;
