//! A small connection pool: idle clients in a stack, a semaphore bounding how many exist.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use atrest_core::{Error, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::{Client, Config, NoTls};

pub struct Pool {
    config: Config,
    idle: Mutex<Vec<Client>>,
    permits: Arc<Semaphore>,
}

pub struct Conn<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(config: Config, size: usize) -> Pool {
        Pool { config, idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(size)) }
    }

    /// An idle connection, or a new one while fewer than `size` exist.
    pub async fn get(&self) -> Result<Conn<'_>> {
        let permit = self.permits.clone().acquire_owned().await.map_err(Error::internal)?;
        let reused = {
            let mut idle = self.idle.lock().map_err(|_| Error::internal("store pool poisoned"))?;
            std::iter::from_fn(|| idle.pop()).find(|c| !c.is_closed())
        };
        let client = match reused {
            Some(c) => c,
            None => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(super::pg_err)?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "PostgreSQL connection closed");
                    }
                });
                client
            }
        };
        Ok(Conn { client: Some(client), pool: self, _permit: permit })
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if !c.is_closed() {
                if let Ok(mut idle) = self.pool.idle.lock() {
                    idle.push(c);
                }
            }
        }
    }
}

impl Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("a pooled client until dropped")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("a pooled client until dropped")
    }
}
