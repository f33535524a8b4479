//! The data plane: clusters, their keys in memory, their database files, and the key operations
//! (create, open, lock, rotate, rewrap, re-encrypt, destroy).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use crate::docs::{self, check_name, FindOptions, UpdateResult};
use crate::error::{DataError, Result};
use crate::keyring::{sync_dir, DbKeyEntry, Keyring, MasterKeySet, PendingReencryption, WrappedMasterKey};
use crate::keys::{Key32, MasterKeyWrapper, WrapError, WrappedDbKey, WrapperId, KEY_LEN};
use crate::sqlcipher::{export, open_keyed};

const KEYRING_FILE: &str = "keyring";
const DB_DIR: &str = "db";
const DB_EXT: &str = "sqlite3";
const REENC_SUFFIX: &str = ".reenc";

/// Progress of a re-encryption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub databases_done: u64,
    pub databases_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// What `stats` reports about a cluster. Needs no key: works on a locked cluster too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterStats {
    pub cluster_id: String,
    pub open: bool,
    pub regions: Vec<String>,
    pub databases: u64,
    /// Database files (with their -wal/-shm) and the keyring.
    pub bytes_on_disk: u64,
    pub master_key_version: u32,
    pub wrapper: WrapperId,
    pub keyring_generation: u64,
    /// Set while a re-encryption is unfinished.
    pub reencryption: Option<Progress>,
    pub reencryption_target: Option<WrapperId>,
}

/// Points where a test can make the process die (`std::process::abort`) during re-encryption.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// New keys are in the keyring; no database switched yet.
    Prepared,
    /// The new file of this database is written and synced, not yet renamed into place.
    Exported(String),
    /// The new file replaced the old one; the keyring does not yet say so.
    Renamed(String),
    /// The keyring records this database as done.
    DatabaseDone(String),
}

#[doc(hidden)]
pub type CrashHook = Arc<dyn Fn(&CrashPoint) + Send + Sync>;

/// Every cluster's documents, encrypted at rest. Cheap to clone (shared state).
///
/// Document operations are synchronous (SQLite); call them from `spawn_blocking` in async code.
/// Key operations are `async` because they call the [`MasterKeyWrapper`] (KMS); their file work
/// (notably re-encryption) also runs inline, so run them on a task that may block.
///
/// One `DataPlane` per root directory and process.
#[derive(Clone)]
pub struct DataPlane {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    clusters: Mutex<HashMap<String, Arc<Cluster>>>,
    wrapper_calls: AtomicU64,
    crash_hook: Mutex<Option<CrashHook>>,
}

struct Cluster {
    id: String,
    dir: PathBuf,
    /// Serializes the key operations of this cluster.
    admin: tokio::sync::Mutex<()>,
    /// `None` while locked: no key in memory.
    state: Mutex<Option<OpenState>>,
}

struct OpenState {
    keyring: Keyring,
    /// Current master keys by region.
    masters: BTreeMap<String, Key32>,
    /// Master keys of an unfinished re-encryption's target, once unwrapped.
    pending_masters: Option<BTreeMap<String, Key32>>,
    /// Effective key of each database opened so far.
    db_keys: HashMap<String, Key32>,
    slots: HashMap<String, Arc<DbSlot>>,
}

/// One database's connection; its mutex serializes the operations on that database.
#[derive(Default)]
struct DbSlot {
    conn: Mutex<Option<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn context(cluster: &str, region: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("cluster".to_string(), cluster.to_string()), ("region".to_string(), region.to_string())])
}

fn wrap_error(cluster: &str, e: WrapError) -> DataError {
    match e {
        WrapError::Denied(reason) => DataError::KeyDenied { cluster: cluster.into(), reason },
        WrapError::Unavailable(reason) => DataError::KeyUnavailable { cluster: cluster.into(), reason },
        WrapError::Malformed(reason) => {
            DataError::Corrupt(format!("master key of cluster {cluster} does not unwrap: {reason}"))
        }
    }
}

fn wrap_entry(masters: &BTreeMap<String, Key32>, version: u32, cluster: &str, db: &str, key: &Key32) -> DbKeyEntry {
    DbKeyEntry {
        wrapped: masters
            .iter()
            .map(|(region, master)| {
                hex::encode(WrappedDbKey::wrap(master, version, region, cluster, db, key).to_bytes())
            })
            .collect(),
    }
}

fn unwrap_entry(
    entry: &DbKeyEntry,
    masters: &BTreeMap<String, Key32>,
    version: u32,
    cluster: &str,
    db: &str,
) -> Result<Key32> {
    for hex_blob in &entry.wrapped {
        let Ok(bytes) = hex::decode(hex_blob) else { continue };
        let Ok(w) = WrappedDbKey::parse(&bytes) else { continue };
        if w.master_version != version {
            continue;
        }
        if let Some(master) = masters.get(&w.region) {
            if let Some(k) = w.unwrap(master, cluster, db) {
                return Ok(k);
            }
        }
    }
    Err(DataError::Corrupt(format!("no wrapped key of database {db} unwraps under master key version {version}")))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Cluster {
    fn keyring_path(&self) -> PathBuf {
        self.dir.join(KEYRING_FILE)
    }
    fn db_dir(&self) -> PathBuf {
        self.dir.join(DB_DIR)
    }
    fn db_path(&self, db: &str) -> PathBuf {
        self.db_dir().join(format!("{db}.{DB_EXT}"))
    }

    /// The keyring: the in-memory copy when open, else the file.
    fn current_keyring(&self) -> Result<Keyring> {
        if let Some(st) = lock(&self.state).as_ref() {
            return Ok(st.keyring.clone());
        }
        match Keyring::load(&self.keyring_path())? {
            Some(kr) => Ok(kr),
            None => Err(DataError::ClusterNotFound(self.id.clone())),
        }
    }

    /// Applies `f` to the newest keyring and stores it durably (in memory too when open).
    /// Callers hold the admin lock, or the state lock is what serializes them (open clusters).
    fn update_keyring(&self, f: impl FnOnce(&mut Keyring) -> Result<()>) -> Result<Keyring> {
        let mut guard = lock(&self.state);
        let mut kr = match guard.as_ref() {
            Some(st) => st.keyring.clone(),
            None => Keyring::load(&self.keyring_path())?.ok_or_else(|| DataError::ClusterNotFound(self.id.clone()))?,
        };
        f(&mut kr)?;
        kr.generation += 1;
        self.store_successor(&kr)?;
        if let Some(st) = guard.as_mut() {
            st.keyring = kr.clone();
        }
        Ok(kr)
    }

    /// Stores `kr`, the successor of the keyring this process read (one generation before),
    /// unless another process replaced the file meanwhile (replicas sharing the directory: one
    /// re-wrapped the master keys): then `Busy`, and the cluster is re-opened before a retry,
    /// instead of writing back the keyring as it was.
    fn store_successor(&self, kr: &Keyring) -> Result<()> {
        let on_disk = Keyring::load(&self.keyring_path())?.map(|d| d.generation);
        if on_disk.is_some_and(|g| g + 1 != kr.generation) {
            return Err(DataError::Busy {
                cluster: self.id.clone(),
                reason: "its keyring was changed by another process; it is re-opened shortly".into(),
            });
        }
        kr.store(&self.keyring_path())
    }
}

impl OpenState {
    /// The key the database's file is under now (`None`: the database does not exist yet).
    fn db_key(&mut self, cluster: &str, db: &str) -> Result<Option<Key32>> {
        if let Some(k) = self.db_keys.get(db) {
            return Ok(Some(k.duplicate()));
        }
        let key = match &self.keyring.reencryption {
            Some(p) if p.done.contains(db) => {
                let masters =
                    self.pending_masters.as_ref().ok_or_else(|| DataError::KeyInaccessible(cluster.into()))?;
                let entry = p.databases.get(db).ok_or_else(|| DataError::Corrupt(format!("no new key for {db}")))?;
                unwrap_entry(entry, masters, p.target.version, cluster, db)?
            }
            _ => match self.keyring.databases.get(db) {
                Some(entry) => {
                    let version = self.keyring.masters.as_ref().map(|m| m.version).unwrap_or(0);
                    unwrap_entry(entry, &self.masters, version, cluster, db)?
                }
                None => return Ok(None),
            },
        };
        self.db_keys.insert(db.to_string(), key.duplicate());
        Ok(Some(key))
    }

    /// The new key of a database in an unfinished re-encryption, when its masters are unwrapped.
    fn pending_db_key(&self, cluster: &str, db: &str) -> Option<Key32> {
        let p = self.keyring.reencryption.as_ref()?;
        let masters = self.pending_masters.as_ref()?;
        unwrap_entry(p.databases.get(db)?, masters, p.target.version, cluster, db).ok()
    }
}

impl DataPlane {
    /// A data plane keeping its clusters under `root` (`<root>/<clusterId>/keyring`,
    /// `<root>/<clusterId>/db/<database>.sqlite3`). Opens nothing: clusters start locked.
    pub fn new(root: PathBuf) -> Self {
        DataPlane {
            inner: Arc::new(Inner {
                root,
                clusters: Mutex::new(HashMap::new()),
                wrapper_calls: AtomicU64::new(0),
                crash_hook: Mutex::new(None),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Wrap and unwrap calls this data plane made to any [`MasterKeyWrapper`] (KMS calls).
    pub fn wrapper_calls(&self) -> u64 {
        self.inner.wrapper_calls.load(Ordering::SeqCst)
    }

    #[doc(hidden)]
    pub fn set_crash_hook(&self, hook: Option<CrashHook>) {
        *lock(&self.inner.crash_hook) = hook;
    }

    fn crash_point(&self, point: CrashPoint) {
        let hook = lock(&self.inner.crash_hook).clone();
        if let Some(hook) = hook {
            hook(&point);
        }
    }

    fn cluster(&self, id: &str) -> Result<Arc<Cluster>> {
        check_name("cluster", id)?;
        let mut map = lock(&self.inner.clusters);
        Ok(map
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(Cluster {
                    id: id.to_string(),
                    dir: self.inner.root.join(id),
                    admin: tokio::sync::Mutex::new(()),
                    state: Mutex::new(None),
                })
            })
            .clone())
    }

    async fn wrap_master(
        &self,
        cluster: &str,
        wrapper: &dyn MasterKeyWrapper,
        region: &str,
        version: u32,
        key: &Key32,
    ) -> Result<WrappedMasterKey> {
        self.inner.wrapper_calls.fetch_add(1, Ordering::SeqCst);
        let blob = wrapper.wrap(key.expose(), &context(cluster, region)).await.map_err(|e| wrap_error(cluster, e))?;
        Ok(WrappedMasterKey {
            region: region.to_string(),
            version,
            wrapper: wrapper.describe(),
            blob: hex::encode(blob),
        })
    }

    async fn unwrap_master(
        &self,
        cluster: &str,
        wrapper: &dyn MasterKeyWrapper,
        m: &WrappedMasterKey,
    ) -> Result<Key32> {
        let blob = hex::decode(&m.blob).map_err(|_| DataError::Corrupt("wrapped master key is not hex".into()))?;
        self.inner.wrapper_calls.fetch_add(1, Ordering::SeqCst);
        let pt = wrapper.unwrap(&blob, &context(cluster, &m.region)).await.map_err(|e| wrap_error(cluster, e))?;
        Key32::from_slice(&pt).ok_or_else(|| DataError::Corrupt(format!("master key is not {KEY_LEN} bytes")))
    }

    async fn new_masters(
        &self,
        cluster: &str,
        wrapper: &dyn MasterKeyWrapper,
        regions: &[String],
        version: u32,
    ) -> Result<(BTreeMap<String, Key32>, MasterKeySet)> {
        let mut plain = BTreeMap::new();
        let mut keys = Vec::new();
        for region in regions {
            let key = Key32::random();
            keys.push(self.wrap_master(cluster, wrapper, region, version, &key).await?);
            plain.insert(region.clone(), key);
        }
        Ok((plain, MasterKeySet { version, wrapper: wrapper.describe(), keys }))
    }

    async fn unwrap_set(
        &self,
        cluster: &str,
        wrapper: &dyn MasterKeyWrapper,
        set: &MasterKeySet,
    ) -> Result<BTreeMap<String, Key32>> {
        let given = wrapper.describe();
        if !given.same_key(&set.wrapper) {
            return Err(DataError::WrongWrapper {
                cluster: cluster.into(),
                expected: set.wrapper.to_string(),
                given: given.to_string(),
            });
        }
        let mut out = BTreeMap::new();
        for m in &set.keys {
            out.insert(m.region.clone(), self.unwrap_master(cluster, wrapper, m).await?);
        }
        Ok(out)
    }

    // ----- clusters -------------------------------------------------------------------------

    /// Creates the cluster's master keys (one per region, wrapped by `wrapper`) and stores its
    /// keyring durably. The cluster is left open. A destroyed cluster's id can be reused.
    pub async fn create_cluster(
        &self,
        cluster_id: &str,
        regions: &[&str],
        wrapper: &dyn MasterKeyWrapper,
    ) -> Result<()> {
        let cluster = self.cluster(cluster_id)?;
        let mut region_list: Vec<String> = Vec::new();
        for r in regions {
            check_name("region", r)?;
            if !region_list.iter().any(|x| x == r) {
                region_list.push(r.to_string());
            }
        }
        if region_list.is_empty() {
            return Err(DataError::InvalidName { kind: "region", name: String::new() });
        }
        let _admin = cluster.admin.lock().await;
        if let Some(kr) = Keyring::load(&cluster.keyring_path()).ok().flatten() {
            if kr.masters.is_some() {
                return Err(DataError::ClusterExists(cluster_id.into()));
            }
        } else if cluster.keyring_path().exists() {
            return Err(DataError::ClusterExists(cluster_id.into()));
        }
        let (plain, set) = self.new_masters(cluster_id, wrapper, &region_list, 1).await?;
        fs::create_dir_all(&self.inner.root)?;
        fs::create_dir_all(&cluster.dir)?;
        if cluster.db_dir().exists() {
            // Left over from a destroyed cluster whose files were not all removed.
            fs::remove_dir_all(cluster.db_dir())?;
        }
        fs::create_dir_all(cluster.db_dir())?;
        sync_dir(&self.inner.root)?;
        sync_dir(&cluster.dir)?;
        let kr = Keyring {
            cluster_id: cluster_id.into(),
            generation: 1,
            regions: region_list,
            masters: Some(set),
            databases: BTreeMap::new(),
            reencryption: None,
        };
        kr.store(&cluster.keyring_path())?;
        *lock(&cluster.state) = Some(OpenState {
            keyring: kr,
            masters: plain,
            pending_masters: None,
            db_keys: HashMap::new(),
            slots: HashMap::new(),
        });
        Ok(())
    }

    /// Unwraps the cluster's master keys with `wrapper` and keeps them in memory; database keys
    /// are unwrapped (locally) on first use. Already open: nothing to do. A refusing wrapper
    /// gives `KeyDenied` (or `KeyUnavailable`) and leaves the data on disk untouched.
    pub async fn open_cluster(&self, cluster_id: &str, wrapper: &dyn MasterKeyWrapper) -> Result<()> {
        let cluster = self.cluster(cluster_id)?;
        let _admin = cluster.admin.lock().await;
        self.open_locked(&cluster, wrapper).await
    }

    async fn open_locked(&self, cluster: &Cluster, wrapper: &dyn MasterKeyWrapper) -> Result<()> {
        if let Some(st) = lock(&cluster.state).as_ref() {
            // Already open: no KMS call, but a wrong wrapper is still reported.
            if let Some(set) = &st.keyring.masters {
                let given = wrapper.describe();
                if !given.same_key(&set.wrapper) {
                    return Err(DataError::WrongWrapper {
                        cluster: cluster.id.clone(),
                        expected: set.wrapper.to_string(),
                        given: given.to_string(),
                    });
                }
            }
            return Ok(());
        }
        let kr =
            Keyring::load(&cluster.keyring_path())?.ok_or_else(|| DataError::ClusterNotFound(cluster.id.clone()))?;
        if kr.cluster_id != cluster.id {
            return Err(DataError::Corrupt("keyring belongs to another cluster".into()));
        }
        let set = kr.masters.as_ref().ok_or_else(|| DataError::KeyDestroyed(cluster.id.clone()))?;
        let masters = self.unwrap_set(&cluster.id, wrapper, set).await?;
        *lock(&cluster.state) = Some(OpenState {
            keyring: kr,
            masters,
            pending_masters: None,
            db_keys: HashMap::new(),
            slots: HashMap::new(),
        });
        Ok(())
    }

    /// Drops every unwrapped key of the cluster (zeroized) and closes its connections; reads and
    /// writes then fail with `KeyInaccessible` until it is opened again. Idempotent: true if it
    /// was open.
    pub fn lock_cluster(&self, cluster_id: &str) -> Result<bool> {
        let cluster = self.cluster(cluster_id)?;
        let state = lock(&cluster.state).take();
        let was_open = state.is_some();
        drop(state);
        Ok(was_open)
    }

    /// Whether another process changed the keyring of this open cluster since it was opened here
    /// (several replicas share the data-plane directory); the caller locks and re-opens it.
    pub fn keyring_changed_elsewhere(&self, cluster_id: &str) -> Result<bool> {
        let cluster = self.cluster(cluster_id)?;
        let Some(mine) = lock(&cluster.state).as_ref().map(|st| st.keyring.generation) else { return Ok(false) };
        Ok(Keyring::load(&cluster.keyring_path())?.is_some_and(|kr| kr.generation != mine))
    }

    pub fn is_open(&self, cluster_id: &str) -> bool {
        self.cluster(cluster_id).map(|c| lock(&c.state).is_some()).unwrap_or(false)
    }

    /// A key validity check: unwraps one master key with `wrapper` (one KMS call). When the
    /// wrapper answers `Denied` the cluster is locked at once and `KeyDenied` returned.
    pub async fn verify_key(&self, cluster_id: &str, wrapper: &dyn MasterKeyWrapper) -> Result<()> {
        let cluster = self.cluster(cluster_id)?;
        let kr = cluster.current_keyring()?;
        let set = kr.masters.as_ref().ok_or_else(|| DataError::KeyDestroyed(cluster_id.into()))?;
        let first = set.keys.first().ok_or_else(|| DataError::Corrupt("no master key".into()))?;
        match self.unwrap_master(cluster_id, wrapper, first).await {
            Ok(_) => Ok(()),
            Err(e @ DataError::KeyDenied { .. }) => {
                self.lock_cluster(cluster_id)?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The clusters under the root (directories with a keyring), destroyed ones included.
    pub fn list_clusters(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.inner.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                if docs::valid_name(name) && entry.path().join(KEYRING_FILE).exists() {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Crypto-shredding: locks the cluster, overwrites its keyring with zeros and replaces it
    /// durably with a tombstone holding no key, then deletes the database files.
    pub async fn destroy_cluster(&self, cluster_id: &str) -> Result<()> {
        let cluster = self.cluster(cluster_id)?;
        let _admin = cluster.admin.lock().await;
        drop(lock(&cluster.state).take());
        let path = cluster.keyring_path();
        let kr = Keyring::load(&path)?.ok_or_else(|| DataError::ClusterNotFound(cluster_id.into()))?;
        if kr.masters.is_some() {
            // Best effort on file systems that overwrite in place; the rename below is what counts.
            let len = file_len(&path) as usize;
            if let Ok(mut f) = fs::OpenOptions::new().write(true).open(&path) {
                use std::io::Write;
                let _ = f.write_all(&vec![0u8; len]);
                let _ = f.sync_all();
            }
        }
        let tombstone = Keyring {
            cluster_id: cluster_id.into(),
            generation: kr.generation + 1,
            regions: kr.regions,
            masters: None,
            databases: BTreeMap::new(),
            reencryption: None,
        };
        tombstone.store(&path)?;
        if cluster.db_dir().exists() {
            fs::remove_dir_all(cluster.db_dir())?;
        }
        sync_dir(&cluster.dir)?;
        Ok(())
    }

    /// Database count, bytes on disk, key versions. Needs no key.
    pub fn stats(&self, cluster_id: &str) -> Result<ClusterStats> {
        let cluster = self.cluster(cluster_id)?;
        let (kr, open) = {
            let st = lock(&cluster.state);
            match st.as_ref() {
                Some(s) => (s.keyring.clone(), true),
                None => (
                    Keyring::load(&cluster.keyring_path())?
                        .ok_or_else(|| DataError::ClusterNotFound(cluster_id.into()))?,
                    false,
                ),
            }
        };
        let set = kr.masters.as_ref().ok_or_else(|| DataError::KeyDestroyed(cluster_id.into()))?;
        let mut bytes = file_len(&cluster.keyring_path());
        if let Ok(entries) = fs::read_dir(cluster.db_dir()) {
            for e in entries.flatten() {
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        let mut names: std::collections::BTreeSet<&String> = kr.databases.keys().collect();
        if let Some(p) = &kr.reencryption {
            names.extend(p.databases.keys());
        }
        Ok(ClusterStats {
            cluster_id: cluster_id.into(),
            open,
            regions: kr.regions.clone(),
            databases: names.len() as u64,
            bytes_on_disk: bytes,
            master_key_version: set.version,
            wrapper: set.wrapper.clone(),
            keyring_generation: kr.generation,
            reencryption: kr.reencryption.as_ref().map(progress_of),
            reencryption_target: kr.reencryption.as_ref().map(|p| p.target.wrapper.clone()),
        })
    }

    // ----- documents ------------------------------------------------------------------------

    /// Runs `f` on the database's connection, opening it (and, with `create`, creating its key
    /// and file) as needed. `Ok(None)`: the database does not exist and `create` is false.
    fn with_db<T>(
        &self,
        cluster_id: &str,
        db: &str,
        create: bool,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<Option<T>> {
        check_name("database", db)?;
        let cluster = self.cluster(cluster_id)?;
        let slot = {
            let mut st = lock(&cluster.state);
            let st = st.as_mut().ok_or_else(|| DataError::KeyInaccessible(cluster_id.into()))?;
            st.slots.entry(db.to_string()).or_default().clone()
        };
        let mut guard = lock(&slot.conn);
        if lock(&cluster.state).is_none() {
            // Locked while we waited: close and refuse.
            drop(guard.take());
            return Err(DataError::KeyInaccessible(cluster_id.into()));
        }
        if guard.is_none() {
            let path = cluster.db_path(db);
            let (key, pending) = {
                let mut st = lock(&cluster.state);
                let st = st.as_mut().ok_or_else(|| DataError::KeyInaccessible(cluster_id.into()))?;
                let key = match st.db_key(cluster_id, db)? {
                    Some(k) => k,
                    None if create => self.create_db_key(&cluster, st, db)?,
                    None => return Ok(None),
                };
                (key, st.pending_db_key(cluster_id, db))
            };
            if !create && !path.exists() {
                return Ok(None);
            }
            let conn = match open_keyed(&path, &key, create) {
                Ok(c) => c,
                // An interrupted re-encryption may have switched this file already.
                Err(DataError::Corrupt(_)) if pending.is_some() => {
                    open_keyed(&path, pending.as_ref().unwrap_or(&key), false)?
                }
                Err(e) => return Err(e),
            };
            *guard = Some(conn);
        }
        let conn = guard.as_mut().ok_or_else(|| DataError::KeyInaccessible(cluster_id.into()))?;
        f(conn).map(Some)
    }

    /// A new database key, stored durably in the keyring before any file uses it.
    fn create_db_key(&self, cluster: &Cluster, st: &mut OpenState, db: &str) -> Result<Key32> {
        let key = Key32::random();
        let mut kr = st.keyring.clone();
        if let Some(p) = kr.reencryption.as_mut() {
            let masters = st.pending_masters.as_ref().ok_or_else(|| DataError::KeyInaccessible(cluster.id.clone()))?;
            p.databases.insert(db.into(), wrap_entry(masters, p.target.version, &cluster.id, db, &key));
            p.done.insert(db.into());
        } else {
            let version =
                kr.masters.as_ref().map(|m| m.version).ok_or_else(|| DataError::KeyDestroyed(cluster.id.clone()))?;
            kr.databases.insert(db.into(), wrap_entry(&st.masters, version, &cluster.id, db, &key));
        }
        kr.generation += 1;
        cluster.store_successor(&kr)?;
        st.keyring = kr;
        st.db_keys.insert(db.into(), key.duplicate());
        Ok(key)
    }

    fn check_coll(coll: &str) -> Result<()> {
        check_name("collection", coll)
    }

    /// Inserts one document (an object); assigns `_id` (a 24-hex ObjectId string) when absent.
    pub fn insert_one(&self, cluster_id: &str, db: &str, coll: &str, doc: Value) -> Result<Value> {
        let mut ids = self.insert_docs(cluster_id, db, coll, vec![doc])?;
        ids.pop().ok_or_else(|| DataError::Storage("no id returned".into()))
    }

    /// Inserts an array of documents in one transaction (all or nothing); returns their ids.
    pub fn insert_many(&self, cluster_id: &str, db: &str, coll: &str, docs: Value) -> Result<Vec<Value>> {
        match docs {
            Value::Array(items) => self.insert_docs(cluster_id, db, coll, items),
            _ => Err(DataError::InvalidDocument("insert_many takes an array of documents".into())),
        }
    }

    fn insert_docs(&self, cluster_id: &str, db: &str, coll: &str, docs: Vec<Value>) -> Result<Vec<Value>> {
        Self::check_coll(coll)?;
        if docs.is_empty() {
            return Err(DataError::InvalidDocument("no documents to insert".into()));
        }
        self.with_db(cluster_id, db, true, |c| docs::insert(c, coll, docs))?
            .ok_or_else(|| DataError::Storage("database was not created".into()))
    }

    /// Documents equal to `filter` on the given fields (`{}`: all), sorted, skipped, limited.
    pub fn find(
        &self,
        cluster_id: &str,
        db: &str,
        coll: &str,
        filter: &Value,
        opts: &FindOptions,
    ) -> Result<Vec<Value>> {
        Self::check_coll(coll)?;
        Ok(self.with_db(cluster_id, db, false, |c| docs::find(c, coll, filter, opts))?.unwrap_or_default())
    }

    pub fn find_one(&self, cluster_id: &str, db: &str, coll: &str, filter: &Value) -> Result<Option<Value>> {
        Ok(self.find(cluster_id, db, coll, filter, &FindOptions::default().limit(1))?.pop())
    }

    pub fn count(&self, cluster_id: &str, db: &str, coll: &str, filter: &Value) -> Result<u64> {
        Self::check_coll(coll)?;
        Ok(self.with_db(cluster_id, db, false, |c| docs::count(c, coll, filter))?.unwrap_or(0))
    }

    /// Applies `{"$set": {...}, "$unset": {...}}` to the first matching document.
    pub fn update_one(
        &self,
        cluster_id: &str,
        db: &str,
        coll: &str,
        filter: &Value,
        update: &Value,
    ) -> Result<UpdateResult> {
        Self::check_coll(coll)?;
        Ok(self
            .with_db(cluster_id, db, false, |c| docs::update_one(c, coll, filter, update))?
            .unwrap_or(UpdateResult { matched: 0, modified: 0 }))
    }

    pub fn delete_one(&self, cluster_id: &str, db: &str, coll: &str, filter: &Value) -> Result<u64> {
        Self::check_coll(coll)?;
        Ok(self.with_db(cluster_id, db, false, |c| docs::delete(c, coll, filter, false))?.unwrap_or(0))
    }

    pub fn delete_many(&self, cluster_id: &str, db: &str, coll: &str, filter: &Value) -> Result<u64> {
        Self::check_coll(coll)?;
        Ok(self.with_db(cluster_id, db, false, |c| docs::delete(c, coll, filter, true))?.unwrap_or(0))
    }

    /// The cluster's databases (names are metadata: they are in the keyring and file names).
    pub fn list_databases(&self, cluster_id: &str) -> Result<Vec<String>> {
        let kr = self.cluster(cluster_id)?.current_keyring()?;
        let mut names: Vec<String> = kr.databases.keys().cloned().collect();
        if let Some(p) = &kr.reencryption {
            names.extend(p.databases.keys().cloned());
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub fn list_collections(&self, cluster_id: &str, db: &str) -> Result<Vec<String>> {
        Ok(self.with_db(cluster_id, db, false, |c| docs::list_collections(c))?.unwrap_or_default())
    }

    /// Drops a collection; `false` when it did not exist.
    pub fn drop_collection(&self, cluster_id: &str, db: &str, coll: &str) -> Result<bool> {
        Self::check_coll(coll)?;
        Ok(self.with_db(cluster_id, db, false, |c| docs::drop_collection(c, coll))?.unwrap_or(false))
    }

    // ----- key rotation ---------------------------------------------------------------------

    /// New master keys (version + 1, wrapped by `wrapper`); every database key re-wrapped under
    /// them. Database files are not touched. The cluster must be open. Returns the new version.
    pub async fn rotate_master_key(&self, cluster_id: &str, wrapper: &dyn MasterKeyWrapper) -> Result<u32> {
        let cluster = self.cluster(cluster_id)?;
        let _admin = cluster.admin.lock().await;
        let (regions, version) = {
            let st = lock(&cluster.state);
            let st = st.as_ref().ok_or_else(|| DataError::KeyInaccessible(cluster_id.into()))?;
            if st.keyring.reencryption.is_some() {
                return Err(DataError::Busy {
                    cluster: cluster_id.into(),
                    reason: "a re-encryption is unfinished".into(),
                });
            }
            let set = st.keyring.masters.as_ref().ok_or_else(|| DataError::KeyDestroyed(cluster_id.into()))?;
            (st.keyring.regions.clone(), set.version + 1)
        };
        let (plain, set) = self.new_masters(cluster_id, wrapper, &regions, version).await?;
        let mut guard = lock(&cluster.state);
        let st = guard.as_mut().ok_or_else(|| DataError::KeyInaccessible(cluster_id.into()))?;
        let old_version = st.keyring.masters.as_ref().map(|m| m.version).unwrap_or(0);
        let mut kr = st.keyring.clone();
        for (db, entry) in kr.databases.iter_mut() {
            let key = unwrap_entry(entry, &st.masters, old_version, cluster_id, db)?;
            *entry = wrap_entry(&plain, version, cluster_id, db, &key);
        }
        kr.masters = Some(set);
        kr.generation += 1;
        cluster.store_successor(&kr)?;
        st.keyring = kr;
        st.masters = plain;
        Ok(version)
    }

    /// A change of customer key: the master keys are unwrapped with `old` and wrapped with `new`.
    /// Nothing else changes (same master keys, database keys and files). Works locked or open.
    pub async fn rewrap_master_key(
        &self,
        cluster_id: &str,
        old: &dyn MasterKeyWrapper,
        new: &dyn MasterKeyWrapper,
    ) -> Result<()> {
        let cluster = self.cluster(cluster_id)?;
        let _admin = cluster.admin.lock().await;
        let kr = cluster.current_keyring()?;
        if kr.reencryption.is_some() {
            return Err(DataError::Busy { cluster: cluster_id.into(), reason: "a re-encryption is unfinished".into() });
        }
        let set = kr.masters.clone().ok_or_else(|| DataError::KeyDestroyed(cluster_id.into()))?;
        let plain = self.unwrap_set(cluster_id, old, &set).await?;
        if let Some(st) = lock(&cluster.state).as_ref() {
            let same = st.masters.iter().all(|(r, k)| plain.get(r).is_some_and(|p| p.expose() == k.expose()));
            if !same {
                return Err(DataError::Corrupt("unwrapped master keys differ from those in use".into()));
            }
        }
        let mut keys = Vec::new();
        for m in &set.keys {
            let key = plain.get(&m.region).ok_or_else(|| DataError::Corrupt("region".into()))?;
            keys.push(self.wrap_master(cluster_id, new, &m.region, m.version, key).await?);
        }
        cluster.update_keyring(|kr| {
            let masters = kr.masters.as_mut().ok_or_else(|| DataError::KeyDestroyed(cluster_id.into()))?;
            masters.wrapper = new.describe();
            masters.keys = keys;
            Ok(())
        })?;
        Ok(())
    }

    // ----- re-encryption --------------------------------------------------------------------

    /// Switches the cluster to `new_wrapper` with new master keys and a new key per database,
    /// copying each database into a new file under its new key (database by database, atomic
    /// rename), recording progress in the keyring. Calling it again after a crash finishes an
    /// unfinished re-encryption (the cluster must be open; see [`Self::resume_reencryption`]).
    /// Reads and writes go on meanwhile; those of the database being copied wait for it.
    pub async fn reencrypt(
        &self,
        cluster_id: &str,
        new_wrapper: &dyn MasterKeyWrapper,
        progress: impl Fn(Progress) + Send + Sync,
    ) -> Result<Progress> {
        let cluster = self.cluster(cluster_id)?;
        let _admin = cluster.admin.lock().await;
        self.reencrypt_locked(&cluster, new_wrapper, &progress).await
    }

    /// Opens the cluster with `old_wrapper` if needed, then finishes (or starts) a re-encryption
    /// to `new_wrapper`. Idempotent: when the cluster is already under `new_wrapper`'s key (a
    /// switch that finished before a crash), it only opens it with `new_wrapper`.
    pub async fn resume_reencryption(
        &self,
        cluster_id: &str,
        old_wrapper: &dyn MasterKeyWrapper,
        new_wrapper: &dyn MasterKeyWrapper,
        progress: impl Fn(Progress) + Send + Sync,
    ) -> Result<Progress> {
        let cluster = self.cluster(cluster_id)?;
        let _admin = cluster.admin.lock().await;
        let kr = cluster.current_keyring()?;
        let (old_id, new_id) = (old_wrapper.describe(), new_wrapper.describe());
        let current = kr.masters.as_ref().ok_or_else(|| DataError::KeyDestroyed(cluster_id.into()))?;
        if kr.reencryption.is_none() && !old_id.same_key(&new_id) && current.wrapper.same_key(&new_id) {
            self.open_locked(&cluster, new_wrapper).await?;
            let n = kr.databases.len() as u64;
            let bytes = kr.databases.keys().map(|db| file_len(&cluster.db_path(db))).sum();
            let done = Progress { databases_done: n, databases_total: n, bytes_done: bytes, bytes_total: bytes };
            progress(done);
            return Ok(done);
        }
        self.open_locked(&cluster, old_wrapper).await?;
        self.reencrypt_locked(&cluster, new_wrapper, &progress).await
    }

    async fn reencrypt_locked(
        &self,
        cluster: &Cluster,
        new_wrapper: &dyn MasterKeyWrapper,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Progress> {
        let id = cluster.id.as_str();
        let (pending, regions, next_version) = {
            let st = lock(&cluster.state);
            let st = st.as_ref().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
            let set = st.keyring.masters.as_ref().ok_or_else(|| DataError::KeyDestroyed(id.into()))?;
            (
                st.keyring.reencryption.clone().map(|p| (p, st.pending_masters.is_some())),
                st.keyring.regions.clone(),
                set.version + 1,
            )
        };
        match pending {
            None => {
                let (plain, target) = self.new_masters(id, new_wrapper, &regions, next_version).await?;
                let mut guard = lock(&cluster.state);
                let st = guard.as_mut().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
                let mut kr = st.keyring.clone();
                let mut databases = BTreeMap::new();
                let mut bytes_total = 0;
                for db in kr.databases.keys() {
                    let key = Key32::random();
                    databases.insert(db.clone(), wrap_entry(&plain, next_version, id, db, &key));
                    bytes_total += file_len(&cluster.db_path(db));
                }
                kr.reencryption = Some(PendingReencryption {
                    target,
                    databases,
                    done: Default::default(),
                    bytes_total,
                    bytes_done: 0,
                });
                kr.generation += 1;
                cluster.store_successor(&kr)?;
                st.keyring = kr;
                st.pending_masters = Some(plain);
                drop(guard);
                self.crash_point(CrashPoint::Prepared);
            }
            Some((p, unwrapped)) => {
                if !new_wrapper.describe().same_key(&p.target.wrapper) {
                    return Err(DataError::Busy {
                        cluster: id.into(),
                        reason: format!("a re-encryption to {} is unfinished", p.target.wrapper),
                    });
                }
                if !unwrapped {
                    let plain = self.unwrap_set(id, new_wrapper, &p.target).await?;
                    let mut guard = lock(&cluster.state);
                    let st = guard.as_mut().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
                    st.pending_masters = Some(plain);
                }
            }
        }
        loop {
            let (next, now) = {
                let st = lock(&cluster.state);
                let st = st.as_ref().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
                let p = st
                    .keyring
                    .reencryption
                    .as_ref()
                    .ok_or_else(|| DataError::Storage("re-encryption vanished".into()))?;
                (st.keyring.databases.keys().find(|db| !p.done.contains(*db)).cloned(), progress_of(p))
            };
            // Called without any lock held: the callback may use the data plane.
            progress(now);
            match next {
                Some(db) => self.switch_database(cluster, &db)?,
                None => break,
            }
        }
        let mut guard = lock(&cluster.state);
        let st = guard.as_mut().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
        let mut kr = st.keyring.clone();
        let p = kr.reencryption.take().ok_or_else(|| DataError::Storage("re-encryption vanished".into()))?;
        let done = Progress { bytes_done: p.bytes_total, ..progress_of(&p) };
        kr.masters = Some(p.target);
        kr.databases = p.databases;
        kr.generation += 1;
        cluster.store_successor(&kr)?;
        st.keyring = kr;
        st.masters = st.pending_masters.take().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
        st.db_keys.clear();
        Ok(done)
    }

    /// Copies one database into a new file under its new key and swaps it in.
    fn switch_database(&self, cluster: &Cluster, db: &str) -> Result<()> {
        let id = cluster.id.as_str();
        let slot = {
            let mut st = lock(&cluster.state);
            let st = st.as_mut().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
            st.slots.entry(db.to_string()).or_default().clone()
        };
        let mut guard = lock(&slot.conn);
        let (old_key, new_key) = {
            let mut st = lock(&cluster.state);
            let st = st.as_mut().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
            let new_key = st.pending_db_key(id, db).ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
            (st.db_key(id, db)?, new_key)
        };
        let path = cluster.db_path(db);
        let tmp = with_suffix(&path, REENC_SUFFIX);
        for leftover in
            [tmp.clone(), with_suffix(&tmp, "-journal"), with_suffix(&tmp, "-wal"), with_suffix(&tmp, "-shm")]
        {
            if leftover.exists() {
                fs::remove_file(&leftover)?;
            }
        }
        let size = file_len(&path);
        if path.exists() {
            if guard.is_none() {
                let old_key = old_key.ok_or_else(|| DataError::Corrupt(format!("no key for database {db}")))?;
                match open_keyed(&path, &old_key, false) {
                    Ok(c) => *guard = Some(c),
                    Err(DataError::Corrupt(_)) => {
                        // Renamed into place before a crash: already under the new key.
                        *guard = Some(open_keyed(&path, &new_key, false)?);
                        return self.mark_done(cluster, db, size, new_key);
                    }
                    Err(e) => return Err(e),
                }
            }
            let conn = guard.as_ref().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
            export(conn, &tmp, &new_key)?;
            fs::File::open(&tmp)?.sync_all()?;
            self.crash_point(CrashPoint::Exported(db.into()));
            if let Some(conn) = guard.take() {
                if let Err((conn, e)) = conn.close() {
                    *guard = Some(conn);
                    return Err(e.into());
                }
            }
            let wal = with_suffix(&path, "-wal");
            if file_len(&wal) > 0 {
                return Err(DataError::Storage(format!(
                    "{} still has a write-ahead log; another connection is open",
                    db
                )));
            }
            for f in [wal, with_suffix(&path, "-shm")] {
                if f.exists() {
                    fs::remove_file(f)?;
                }
            }
            fs::rename(&tmp, &path)?;
            sync_dir(&cluster.db_dir())?;
            self.crash_point(CrashPoint::Renamed(db.into()));
            *guard = Some(open_keyed(&path, &new_key, false)?);
        }
        self.mark_done(cluster, db, size, new_key)
    }

    fn mark_done(&self, cluster: &Cluster, db: &str, size: u64, new_key: Key32) -> Result<()> {
        let id = cluster.id.as_str();
        {
            let mut guard = lock(&cluster.state);
            let st = guard.as_mut().ok_or_else(|| DataError::KeyInaccessible(id.into()))?;
            let mut kr = st.keyring.clone();
            let p = kr.reencryption.as_mut().ok_or_else(|| DataError::Storage("re-encryption vanished".into()))?;
            p.done.insert(db.into());
            p.bytes_done += size;
            kr.generation += 1;
            cluster.store_successor(&kr)?;
            st.keyring = kr;
            st.db_keys.insert(db.into(), new_key);
        }
        self.crash_point(CrashPoint::DatabaseDone(db.into()));
        Ok(())
    }
}

fn progress_of(p: &PendingReencryption) -> Progress {
    Progress {
        databases_done: p.done.len() as u64,
        databases_total: p.databases.len() as u64,
        bytes_done: p.bytes_done.min(p.bytes_total),
        bytes_total: p.bytes_total,
    }
}

#[cfg(test)]
impl DataPlane {
    /// Every plaintext key of the cluster held in memory (master, pending master, database).
    pub(crate) fn keys_in_memory_for_test(&self, cluster_id: &str) -> Vec<Vec<u8>> {
        let cluster = self.cluster(cluster_id).expect("cluster");
        let mut guard = lock(&cluster.state);
        let mut out = Vec::new();
        if let Some(st) = guard.as_mut() {
            out.extend(st.masters.values().map(|k| k.expose().to_vec()));
            if let Some(p) = &st.pending_masters {
                out.extend(p.values().map(|k| k.expose().to_vec()));
            }
            let mut names: Vec<String> = st.keyring.databases.keys().cloned().collect();
            if let Some(p) = &st.keyring.reencryption {
                names.extend(p.databases.keys().cloned());
            }
            for db in names {
                if let Ok(Some(k)) = st.db_key(cluster_id, &db) {
                    out.push(k.expose().to_vec());
                }
                if let Some(k) = st.pending_db_key(cluster_id, &db) {
                    out.push(k.expose().to_vec());
                }
            }
        }
        out
    }
}
