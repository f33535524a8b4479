//! Durable state: SQLite (WAL, synchronous=FULL). Every entity is one JSON row; a mutation is
//! committed before the response is sent. Key material is only ever stored sealed.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

pub const TABLES: &[&str] = &["accounts", "keys", "aliases", "roles", "endpoints", "meta"];

pub struct Store {
    conn: Connection,
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        for t in TABLES {
            conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, body TEXT NOT NULL)"))?;
        }
        Ok(Store { conn })
    }

    pub fn put<T: serde::Serialize>(&self, table: &str, id: &str, value: &T) -> anyhow::Result<()> {
        let body = serde_json::to_string(value)?;
        self.conn.execute(
            &format!(
                "INSERT INTO {table} (id, body) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET body = excluded.body"
            ),
            params![id, body],
        )?;
        Ok(())
    }

    pub fn delete(&self, table: &str, id: &str) -> anyhow::Result<()> {
        self.conn.execute(&format!("DELETE FROM {table} WHERE id = ?1"), params![id])?;
        Ok(())
    }

    pub fn get<T: serde::de::DeserializeOwned>(&self, table: &str, id: &str) -> anyhow::Result<Option<T>> {
        let body: Option<String> = self
            .conn
            .query_row(&format!("SELECT body FROM {table} WHERE id = ?1"), params![id], |r| r.get(0))
            .optional()?;
        Ok(match body {
            Some(b) => Some(serde_json::from_str(&b)?),
            None => None,
        })
    }

    pub fn all<T: serde::de::DeserializeOwned>(&self, table: &str) -> anyhow::Result<Vec<T>> {
        let mut stmt = self.conn.prepare(&format!("SELECT body FROM {table} ORDER BY rowid"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = vec![];
        for r in rows {
            out.push(serde_json::from_str(&r?)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        s.put("meta", "a", &serde_json::json!({"x": 1})).unwrap();
        s.put("meta", "a", &serde_json::json!({"x": 2})).unwrap();
        let v: serde_json::Value = s.get("meta", "a").unwrap().unwrap();
        assert_eq!(v["x"], 2);
        assert_eq!(s.all::<serde_json::Value>("meta").unwrap().len(), 1);
        s.delete("meta", "a").unwrap();
        assert!(s.get::<serde_json::Value>("meta", "a").unwrap().is_none());
    }
}
