//! The key-value service shared by `kv_server` and `kv_client`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rpc_runtime::rpc_service;
use serde::{Deserialize, Serialize};

/// Why a key-value operation failed.
#[derive(Debug, Serialize, Deserialize)]
pub enum KvError {
    /// The key is not in the store.
    NoSuchKey(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NoSuchKey(key) => write!(f, "no such key: {key}"),
        }
    }
}

/// A small in-memory key-value store.
#[rpc_service(name = "example.KeyValue")]
pub trait KeyValue {
    /// Stores `value` under `key` and returns the value it replaced.
    async fn put(&self, key: String, value: String) -> Option<String>;
    /// The value under `key`, if any.
    async fn get(&self, key: String) -> Option<String>;
    /// Removes `key` and returns its value.
    async fn delete(&self, key: String) -> Result<String, KvError>;
    /// Every key, in order.
    async fn keys(&self) -> Vec<String>;
}

/// The server's implementation: a map behind a mutex.
#[derive(Default)]
pub struct Store {
    map: Mutex<BTreeMap<String, String>>,
}

impl Store {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KeyValue for Store {
    async fn put(&self, key: String, value: String) -> Option<String> {
        self.map().insert(key, value)
    }
    async fn get(&self, key: String) -> Option<String> {
        self.map().get(&key).cloned()
    }
    async fn delete(&self, key: String) -> Result<String, KvError> {
        self.map().remove(&key).ok_or(KvError::NoSuchKey(key))
    }
    async fn keys(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }
}
