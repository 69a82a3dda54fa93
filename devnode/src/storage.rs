//! Persistent chain store (redb) in the data dir: every block the node
//! accepted, by id, and the canonical tip. Each write is committed durably
//! before the block is announced, so a SIGKILLed node loses nothing it told
//! anyone about.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use crate::types::Block;

const BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("failed to open store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("failed to {op} in the store: {message}")]
    Io { op: &'static str, message: String },
    #[error(
        "data dir {dir} belongs to another testnet: its genesis is {found}, this config's is {expected}"
    )]
    WrongGenesis {
        dir: PathBuf,
        found: String,
        expected: String,
    },
}

fn io<E: std::fmt::Display>(op: &'static str) -> impl Fn(E) -> StorageError {
    move |e| StorageError::Io {
        op,
        message: e.to_string(),
    }
}

/// The node's store.
pub struct Storage {
    db: Database,
}

impl Storage {
    /// Opens (or creates) `dir/chain.redb` and checks it belongs to this
    /// genesis.
    pub fn open(dir: &Path, genesis_id: &str) -> Result<Self, StorageError> {
        let path = dir.join("chain.redb");
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let db = Database::create(&path).map_err(|e| StorageError::Open {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let write = db.begin_write().map_err(io("begin a write"))?;
        {
            let mut meta = write.open_table(META).map_err(io("open the meta table"))?;
            let found = meta
                .get("genesis")
                .map_err(io("read the genesis id"))?
                .map(|v| v.value().to_owned());
            match found {
                Some(found) if found != genesis_id => {
                    return Err(StorageError::WrongGenesis {
                        dir: dir.to_owned(),
                        found,
                        expected: genesis_id.to_owned(),
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert("genesis", genesis_id)
                        .map_err(io("write the genesis id"))?;
                }
            }
            write
                .open_table(BLOCKS)
                .map_err(io("open the blocks table"))?;
        }
        write.commit().map_err(io("commit"))?;
        Ok(Self { db })
    }

    /// Stores blocks and the canonical tip in one durable transaction.
    pub fn put(&self, blocks: &[&Block], tip: &str) -> Result<(), StorageError> {
        let write = self.db.begin_write().map_err(io("begin a write"))?;
        {
            let mut table = write
                .open_table(BLOCKS)
                .map_err(io("open the blocks table"))?;
            for block in blocks {
                let bytes = serde_json::to_vec(block).map_err(io("encode a block"))?;
                table
                    .insert(block.header.id.as_str(), bytes.as_slice())
                    .map_err(io("write a block"))?;
            }
            let mut meta = write.open_table(META).map_err(io("open the meta table"))?;
            meta.insert("tip", tip).map_err(io("write the tip"))?;
        }
        write.commit().map_err(io("commit"))
    }

    /// Every stored block (any order) and the stored tip.
    pub fn load(&self) -> Result<(Vec<Block>, Option<String>), StorageError> {
        let read = self.db.begin_read().map_err(io("begin a read"))?;
        let table = read
            .open_table(BLOCKS)
            .map_err(io("open the blocks table"))?;
        let mut blocks = Vec::new();
        for row in table.iter().map_err(io("scan blocks"))? {
            let (id, bytes) = row.map_err(io("read a block"))?;
            let block: Block =
                serde_json::from_slice(bytes.value()).map_err(|e| StorageError::Io {
                    op: "decode a block",
                    message: format!("block {}: {e}", id.value()),
                })?;
            blocks.push(block);
        }
        let meta = read.open_table(META).map_err(io("open the meta table"))?;
        let tip = meta
            .get("tip")
            .map_err(io("read the tip"))?
            .map(|v| v.value().to_owned());
        Ok((blocks, tip))
    }
}
