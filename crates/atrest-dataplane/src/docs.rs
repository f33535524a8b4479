//! Documents in one (already keyed) database connection: a collection is a table
//! `"c_<name>" (_id TEXT PRIMARY KEY, doc TEXT)`, `_id` holding the canonical JSON of the id.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::OnceLock;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::error::{DataError, Result};

/// Largest document accepted (as MongoDB: 16 MiB of serialized JSON here).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// `^[A-Za-z0-9_-]{1,64}$`, for cluster, region, database and collection names.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<()> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(DataError::InvalidName { kind, name: name.chars().take(100).collect() })
    }
}

fn table(coll: &str) -> String {
    // `coll` is checked against ^[A-Za-z0-9_-]{1,64}$, so quoting is enough.
    format!("\"c_{coll}\"")
}

pub(crate) fn collection_exists(conn: &Connection, coll: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [format!("c_{coll}")], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(crate) fn list_collections(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.into_iter().filter_map(|n| n.strip_prefix("c_").map(str::to_string)).collect())
}

/// A new ObjectId as 24 lowercase hex digits: 4-byte seconds, 5 random bytes per process,
/// 3-byte counter.
pub fn new_object_id() -> String {
    static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    let process = PROCESS.get_or_init(|| {
        let mut b = [0u8; 5];
        rand::rngs::OsRng.fill_bytes(&mut b);
        b
    });
    let counter = COUNTER.get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0xff_ffff));
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0);
    let n = counter.fetch_add(1, AtomicOrdering::Relaxed) & 0xff_ffff;
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    bytes[4..9].copy_from_slice(process);
    bytes[9..].copy_from_slice(&n.to_be_bytes()[1..]);
    hex::encode(bytes)
}

/// Canonical text of an `_id` (its JSON, integral floats as integers): the primary key.
fn id_key(id: &Value) -> Result<String> {
    let canon = canonical_number(id);
    match &canon {
        Value::Array(_) => Err(DataError::InvalidDocument("_id cannot be an array".into())),
        v => serde_json::to_string(v).map_err(|e| DataError::InvalidDocument(e.to_string())),
    }
}

fn canonical_number(v: &Value) -> Value {
    if let Value::Number(n) = v {
        if let Some(f) = n.as_f64() {
            if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 {
                return Value::from(f as i64);
            }
        }
    }
    v.clone()
}

pub(crate) fn insert(conn: &mut Connection, coll: &str, docs: Vec<Value>) -> Result<Vec<Value>> {
    let mut prepared = Vec::with_capacity(docs.len());
    for doc in docs {
        let mut obj = match doc {
            Value::Object(m) => m,
            _ => return Err(DataError::InvalidDocument("a document must be a JSON object".into())),
        };
        check_field_names(&obj)?;
        let id = match obj.get("_id") {
            Some(id) => id.clone(),
            None => {
                let id = Value::String(new_object_id());
                obj.insert("_id".into(), id.clone());
                id
            }
        };
        let key = id_key(&id)?;
        let text = serde_json::to_string(&Value::Object(obj)).map_err(|e| DataError::InvalidDocument(e.to_string()))?;
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(DataError::InvalidDocument(format!(
                "document is {} bytes, more than {MAX_DOCUMENT_BYTES}",
                text.len()
            )));
        }
        prepared.push((id, key, text));
    }
    let tx = conn.transaction()?;
    tx.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {} (_id TEXT PRIMARY KEY, doc TEXT NOT NULL)", table(coll)))?;
    let mut ids = Vec::with_capacity(prepared.len());
    {
        let mut stmt = tx.prepare(&format!("INSERT INTO {} (_id, doc) VALUES (?1, ?2)", table(coll)))?;
        for (id, key, text) in prepared {
            match stmt.execute(params![key, text]) {
                Ok(_) => ids.push(id),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(DataError::DuplicateKey(key));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    tx.commit()?;
    Ok(ids)
}

fn check_field_names(obj: &Map<String, Value>) -> Result<()> {
    for k in obj.keys() {
        if k.starts_with('$') {
            return Err(DataError::InvalidDocument(format!(
                "top-level field names cannot start with '$': {:?}",
                k.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// An equality filter on top-level (or dotted) fields.
struct Filter {
    conds: Vec<(String, Value)>,
    id: Option<String>,
}

fn parse_filter(filter: &Value) -> Result<Filter> {
    let obj = match filter {
        Value::Object(m) => m,
        Value::Null => return Ok(Filter { conds: Vec::new(), id: None }),
        _ => return Err(DataError::InvalidFilter("a filter must be a JSON object".into())),
    };
    let mut conds = Vec::new();
    let mut id = None;
    for (k, v) in obj {
        if k.is_empty() || k.starts_with('$') {
            return Err(DataError::InvalidFilter(format!(
                "unsupported field or operator {:?}: only equality on fields is supported",
                k.chars().take(64).collect::<String>()
            )));
        }
        if let Value::Object(inner) = v {
            if let Some(op) = inner.keys().find(|k| k.starts_with('$')) {
                return Err(DataError::InvalidFilter(format!(
                    "operator {:?} is not supported: only equality is",
                    op.chars().take(64).collect::<String>()
                )));
            }
        }
        if k == "_id" {
            id = Some(id_key(v).map_err(|_| DataError::InvalidFilter("_id cannot be an array".into()))?);
        }
        conds.push((k.clone(), v.clone()));
    }
    Ok(Filter { conds, id })
}

fn get_path<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    if !path.contains('.') {
        return None;
    }
    let mut cur = doc;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn matches(doc: &Value, filter: &Filter) -> bool {
    filter.conds.iter().all(|(path, expected)| match get_path(doc, path) {
        None => expected.is_null(),
        Some(actual) => {
            values_equal(actual, expected)
                || matches!(actual, Value::Array(items) if items.iter().any(|x| values_equal(x, expected)))
        }
    })
}

fn type_rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        Some(Value::Object(_)) => 4,
        Some(Value::Array(_)) => 5,
        Some(Value::Bool(_)) => 6,
    }
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        },
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for (a, b) in x.iter().zip(y) {
                let o = compare_values(Some(a), Some(b));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y) {
                let o = ka.cmp(kb).then_with(|| compare_values(Some(va), Some(vb)));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => Ordering::Equal,
    }
}

/// `{field: 1|-1}` (one field), or `[{a: 1}, {b: -1}]` for several (JSON objects are unordered).
fn parse_sort(sort: &Value) -> Result<Vec<(String, bool)>> {
    fn one(m: &Map<String, Value>, out: &mut Vec<(String, bool)>) -> Result<()> {
        for (k, v) in m {
            let asc = match v.as_i64() {
                Some(1) => true,
                Some(-1) => false,
                _ => return Err(DataError::InvalidFilter(format!("sort direction for {k:?} must be 1 or -1"))),
            };
            if k.is_empty() || k.starts_with('$') {
                return Err(DataError::InvalidFilter("invalid sort field".into()));
            }
            out.push((k.clone(), asc));
        }
        Ok(())
    }
    let mut out = Vec::new();
    match sort {
        Value::Null => {}
        Value::Object(m) if m.len() <= 1 => one(m, &mut out)?,
        Value::Object(_) => {
            return Err(DataError::InvalidFilter(
                "sort on several fields: pass an array such as [{\"a\": 1}, {\"b\": -1}]".into(),
            ))
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) => one(m, &mut out)?,
                    _ => return Err(DataError::InvalidFilter("sort items must be objects".into())),
                }
            }
        }
        _ => return Err(DataError::InvalidFilter("sort must be an object or an array".into())),
    }
    Ok(out)
}

/// Options of `find`.
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    /// `{field: 1|-1}` or `[{a: 1}, {b: -1}]`.
    pub sort: Option<Value>,
    /// At most this many documents (`None` or 0: all).
    pub limit: Option<usize>,
    pub skip: Option<usize>,
}

impl FindOptions {
    pub fn sort(mut self, sort: Value) -> Self {
        self.sort = Some(sort);
        self
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn skip(mut self, skip: usize) -> Self {
        self.skip = Some(skip);
        self
    }
}

fn parse_doc(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| DataError::Corrupt(format!("stored document: {e}")))
}

/// Calls `f` with (rowid, document) for every document matching `filter`, in insertion order,
/// until `f` returns false.
fn scan(conn: &Connection, coll: &str, filter: &Filter, mut f: impl FnMut(i64, Value) -> Result<bool>) -> Result<()> {
    if !collection_exists(conn, coll)? {
        return Ok(());
    }
    if let Some(key) = &filter.id {
        let row: Option<(i64, String)> = conn
            .query_row(&format!("SELECT rowid, doc FROM {} WHERE _id = ?1", table(coll)), [key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((rowid, text)) = row {
            let doc = parse_doc(&text)?;
            if matches(&doc, filter) {
                f(rowid, doc)?;
            }
        }
        return Ok(());
    }
    let mut stmt = conn.prepare(&format!("SELECT rowid, doc FROM {} ORDER BY rowid", table(coll)))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        let text: String = row.get(1)?;
        let doc = parse_doc(&text)?;
        if matches(&doc, filter) && !f(rowid, doc)? {
            break;
        }
    }
    Ok(())
}

pub(crate) fn find(conn: &Connection, coll: &str, filter: &Value, opts: &FindOptions) -> Result<Vec<Value>> {
    let filter = parse_filter(filter)?;
    let sort = match &opts.sort {
        Some(s) => parse_sort(s)?,
        None => Vec::new(),
    };
    let skip = opts.skip.unwrap_or(0);
    let limit = opts.limit.filter(|&l| l > 0);
    let mut out = Vec::new();
    if sort.is_empty() {
        let mut skipped = 0;
        scan(conn, coll, &filter, |_, doc| {
            if skipped < skip {
                skipped += 1;
                return Ok(true);
            }
            out.push(doc);
            Ok(limit.is_none_or(|l| out.len() < l))
        })?;
        return Ok(out);
    }
    scan(conn, coll, &filter, |_, doc| {
        out.push(doc);
        Ok(true)
    })?;
    out.sort_by(|a, b| {
        for (field, asc) in &sort {
            let o = compare_values(get_path(a, field), get_path(b, field));
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let out = out.into_iter().skip(skip);
    Ok(match limit {
        Some(l) => out.take(l).collect(),
        None => out.collect(),
    })
}

pub(crate) fn count(conn: &Connection, coll: &str, filter: &Value) -> Result<u64> {
    let filter = parse_filter(filter)?;
    if filter.conds.is_empty() {
        if !collection_exists(conn, coll)? {
            return Ok(0);
        }
        let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", table(coll)), [], |r| r.get(0))?;
        return Ok(n as u64);
    }
    let mut n = 0;
    scan(conn, coll, &filter, |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// What `update_one` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateResult {
    pub matched: u64,
    pub modified: u64,
}

fn set_path(doc: &mut Map<String, Value>, path: &str, value: Value) -> Result<()> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(DataError::InvalidUpdate(format!("invalid field path {path:?}")));
    }
    let mut cur = doc;
    for part in &parts[..parts.len() - 1] {
        let entry = cur.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        cur = entry.as_object_mut().ok_or_else(|| {
            DataError::InvalidUpdate(format!("cannot create field {path:?}: {part:?} is not an object"))
        })?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn unset_path(doc: &mut Map<String, Value>, path: &str) {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = doc;
    for part in &parts[..parts.len() - 1] {
        match cur.get_mut(*part).and_then(Value::as_object_mut) {
            Some(next) => cur = next,
            None => return,
        }
    }
    cur.remove(parts[parts.len() - 1]);
}

fn apply_update(doc: &Value, update: &Value) -> Result<Value> {
    let ops = update
        .as_object()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| DataError::InvalidUpdate("an update is a non-empty object such as {\"$set\": {...}}".into()))?;
    let mut out = doc.as_object().cloned().unwrap_or_default();
    for (op, fields) in ops {
        let fields = fields.as_object().ok_or_else(|| DataError::InvalidUpdate(format!("{op} takes an object")))?;
        for (path, value) in fields {
            if path == "_id" || path.starts_with("_id.") {
                if op == "$set" && get_path(doc, "_id").is_some_and(|id| values_equal(id, value)) {
                    continue;
                }
                return Err(DataError::InvalidUpdate("_id is immutable".into()));
            }
            if path.is_empty() || path.starts_with('$') {
                return Err(DataError::InvalidUpdate(format!("invalid field {path:?}")));
            }
            match op.as_str() {
                "$set" => set_path(&mut out, path, value.clone())?,
                "$unset" => unset_path(&mut out, path),
                other => {
                    return Err(DataError::InvalidUpdate(format!(
                        "operator {:?} is not supported: use $set or $unset",
                        other.chars().take(64).collect::<String>()
                    )))
                }
            }
        }
    }
    Ok(Value::Object(out))
}

pub(crate) fn update_one(conn: &mut Connection, coll: &str, filter: &Value, update: &Value) -> Result<UpdateResult> {
    let filter = parse_filter(filter)?;
    // Validate the update even when nothing matches.
    apply_update(&Value::Object(Map::new()), update).map(|_| ())?;
    let mut found = None;
    scan(conn, coll, &filter, |rowid, doc| {
        found = Some((rowid, doc));
        Ok(false)
    })?;
    let Some((rowid, doc)) = found else {
        return Ok(UpdateResult { matched: 0, modified: 0 });
    };
    let new = apply_update(&doc, update)?;
    if new == doc {
        return Ok(UpdateResult { matched: 1, modified: 0 });
    }
    let text = serde_json::to_string(&new).map_err(|e| DataError::InvalidDocument(e.to_string()))?;
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(DataError::InvalidDocument("updated document is too large".into()));
    }
    conn.execute(&format!("UPDATE {} SET doc = ?1 WHERE rowid = ?2", table(coll)), params![text, rowid])?;
    Ok(UpdateResult { matched: 1, modified: 1 })
}

pub(crate) fn delete(conn: &mut Connection, coll: &str, filter: &Value, many: bool) -> Result<u64> {
    let filter = parse_filter(filter)?;
    let mut rowids = Vec::new();
    scan(conn, coll, &filter, |rowid, _| {
        rowids.push(rowid);
        Ok(many)
    })?;
    if rowids.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(&format!("DELETE FROM {} WHERE rowid = ?1", table(coll)))?;
        for rowid in &rowids {
            stmt.execute([rowid])?;
        }
    }
    tx.commit()?;
    Ok(rowids.len() as u64)
}

pub(crate) fn drop_collection(conn: &Connection, coll: &str) -> Result<bool> {
    if !collection_exists(conn, coll)? {
        return Ok(false);
    }
    conn.execute_batch(&format!("DROP TABLE {}", table(coll)))?;
    Ok(true)
}
