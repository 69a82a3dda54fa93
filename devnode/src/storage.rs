//! Persistent chain store (redb) in the data dir: every block the node
//! accepted, by id, and the canonical tip. Each write is committed durably
//! before the block is announced, so a SIGKILLed node loses nothing it told
//! anyone about, unless a disk fault says otherwise ([`DiskFaults`]): the
//! last N block writes held back as not yet durable (a SIGKILL loses them,
//! a clean stop flushes them), or a full disk (every write fails with
//! ENOSPC until it is reverted).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use redb::{Database, ReadableTable, TableDefinition};
use serde::Serialize;

use crate::types::Block;

const BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Most block writes a disk fault may hold back (beyond that it is a typo).
pub const MAX_UNFLUSHED: usize = 10_000;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("failed to open store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("failed to {op} in the store: {message}")]
    Io { op: &'static str, message: String },
    /// The disk is full (testing fault `disk_full`): the write was not made.
    #[error("disk full: failed to {op} in the store {path}: {source}")]
    Full {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
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

/// The disk faults in force (set from the config's `testing` section at start and from the
/// testing surface at run time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DiskFaults {
    /// The last this many block writes are not durable yet: a SIGKILL loses them.
    pub unflushed_blocks: usize,
    /// Every write fails with ENOSPC.
    pub full: bool,
    /// The disk fills up (`full` turns on) when a block of this height is to be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_at_height: Option<u64>,
}

/// What the store reports about itself (testing surface `GET /test/disk`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskStatus {
    #[serde(flatten)]
    pub faults: DiskFaults,
    /// Blocks written but not durable now (a SIGKILL would lose them).
    pub pending_blocks: usize,
    /// Height of the highest durable block.
    pub durable_height: u64,
    /// Height of the chain the store held when the node started.
    pub reloaded_height: u64,
    /// Block writes refused because the disk was full.
    pub write_failures: u64,
    /// The last write error, if any.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Durability {
    faults: DiskFaults,
    /// Writes held back, oldest first: each block with the tip as of its write.
    pending: VecDeque<(Block, String)>,
    durable_height: u64,
    reloaded_height: u64,
    write_failures: u64,
    last_error: Option<String>,
    /// The full disk was logged (once per fault).
    reported: bool,
}

/// The node's store.
pub struct Storage {
    db: Database,
    path: PathBuf,
    state: Mutex<Durability>,
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
        Ok(Self {
            db,
            path,
            state: Mutex::new(Durability::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, Durability> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ENOSPC a full disk answers.
    fn full(&self, st: &mut Durability, op: &'static str) -> StorageError {
        let e = StorageError::Full {
            op,
            path: self.path.clone(),
            source: std::io::Error::from_raw_os_error(28),
        };
        st.write_failures += 1;
        st.last_error = Some(e.to_string());
        e
    }

    /// Stores blocks and the canonical tip. Durable at once, unless the last
    /// `unflushed_blocks` writes are held back (then the oldest beyond that
    /// are committed now); refused with [`StorageError::Full`] on a full disk.
    pub fn put(&self, blocks: &[&Block], tip: &str) -> Result<(), StorageError> {
        let mut st = self.state();
        if st.faults.full {
            return Err(self.full(&mut st, "write blocks"));
        }
        for b in blocks {
            st.pending.push_back(((*b).clone(), tip.to_owned()));
        }
        let keep = st.faults.unflushed_blocks;
        self.commit_pending(&mut st, keep)
    }

    /// Commits the pending writes beyond the newest `keep`, in one transaction.
    fn commit_pending(&self, st: &mut Durability, keep: usize) -> Result<(), StorageError> {
        let n = st.pending.len().saturating_sub(keep);
        if n == 0 {
            return Ok(());
        }
        if st.faults.full {
            return Err(self.full(st, "flush blocks"));
        }
        let write = self.db.begin_write().map_err(io("begin a write"))?;
        let mut height = st.durable_height;
        {
            let mut table = write
                .open_table(BLOCKS)
                .map_err(io("open the blocks table"))?;
            let mut tip = None;
            for (block, t) in st.pending.iter().take(n) {
                let bytes = serde_json::to_vec(block).map_err(io("encode a block"))?;
                table
                    .insert(block.header.id.as_str(), bytes.as_slice())
                    .map_err(io("write a block"))?;
                height = height.max(block.header.height);
                tip = Some(t.as_str());
            }
            let mut meta = write.open_table(META).map_err(io("open the meta table"))?;
            if let Some(tip) = tip {
                meta.insert("tip", tip).map_err(io("write the tip"))?;
            }
        }
        write.commit().map_err(io("commit"))?;
        st.pending.drain(..n);
        st.durable_height = height;
        Ok(())
    }

    /// Sets the disk faults; fewer held-back writes commit the excess now (none: all of them),
    /// once the disk has room.
    pub fn set_faults(&self, faults: DiskFaults) -> Result<DiskStatus, StorageError> {
        let mut st = self.state();
        let was_full = st.faults.full;
        st.faults = faults;
        if !faults.full {
            st.last_error = None;
            st.reported = false;
            if was_full {
                tracing::info!("disk has room again: writes resume");
            }
        }
        // on a full disk what is held back stays so until there is room
        let flushed = if faults.full {
            Ok(())
        } else {
            let keep = faults.unflushed_blocks;
            self.commit_pending(&mut st, keep)
        };
        drop(st);
        flushed.map(|()| self.status())
    }

    /// Commits every held-back write (a clean stop).
    pub fn flush(&self) -> Result<(), StorageError> {
        let mut st = self.state();
        self.commit_pending(&mut st, 0)
    }

    /// Why a block of `height` cannot be written now (the disk is full, or fills up at this
    /// height), logged once per fault; None when it can.
    pub fn refuses(&self, height: u64) -> Option<StorageError> {
        let mut st = self.state();
        if !st.faults.full && st.faults.full_at_height.is_some_and(|h| height >= h) {
            st.faults.full = true;
        }
        if !st.faults.full {
            return None;
        }
        let e = self.full(&mut st, "write a block");
        if !st.reported {
            st.reported = true;
            tracing::error!(
                height,
                "{e}: the node stops following and producing until the disk has room"
            );
        }
        Some(e)
    }

    /// The faults in force and what they did.
    pub fn status(&self) -> DiskStatus {
        let st = self.state();
        DiskStatus {
            faults: st.faults,
            pending_blocks: st.pending.len(),
            durable_height: st.durable_height,
            reloaded_height: st.reloaded_height,
            write_failures: st.write_failures,
            last_error: st.last_error.clone(),
        }
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
        let height = blocks.iter().map(|b| b.header.height).max().unwrap_or(0);
        let mut st = self.state();
        st.durable_height = height;
        st.reloaded_height = height;
        Ok((blocks, tip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::BlockHeader;

    fn block(height: u64) -> Block {
        Block {
            header: BlockHeader {
                id: format!("b{height}"),
                parent: format!("b{}", height.saturating_sub(1)),
                slot: height,
                height,
                leader: String::new(),
                proof: String::new(),
                tx_root: String::new(),
                signature: String::new(),
            },
            transactions: Vec::new(),
        }
    }

    fn heights(s: &Storage) -> Vec<u64> {
        let mut h: Vec<u64> = s
            .load()
            .unwrap()
            .0
            .iter()
            .map(|b| b.header.height)
            .collect();
        h.sort_unstable();
        h
    }

    #[test]
    fn held_back_writes_are_lost_without_a_flush_and_kept_with_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), "g").unwrap();
        s.set_faults(DiskFaults {
            unflushed_blocks: 3,
            ..DiskFaults::default()
        })
        .unwrap();
        for h in 1..=5 {
            s.put(&[&block(h)], &format!("b{h}")).unwrap();
        }
        let st = s.status();
        assert_eq!((st.pending_blocks, st.durable_height), (3, 2));
        // a SIGKILL: the process ends without the flush
        drop(s);
        let s = Storage::open(dir.path(), "g").unwrap();
        assert_eq!(heights(&s), vec![1, 2], "the last 3 writes are gone");
        assert_eq!(s.status().reloaded_height, 2);
        s.set_faults(DiskFaults {
            unflushed_blocks: 2,
            ..DiskFaults::default()
        })
        .unwrap();
        s.put(&[&block(3), &block(4)], "b4").unwrap();
        s.flush().unwrap();
        drop(s);
        let s = Storage::open(dir.path(), "g").unwrap();
        assert_eq!(heights(&s), vec![1, 2, 3, 4], "a clean stop flushes");
    }

    #[test]
    fn a_full_disk_refuses_writes_with_enospc_until_reverted() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), "g").unwrap();
        s.put(&[&block(1)], "b1").unwrap();
        s.set_faults(DiskFaults {
            full_at_height: Some(3),
            ..DiskFaults::default()
        })
        .unwrap();
        assert!(s.refuses(2).is_none(), "not full below the height");
        s.put(&[&block(2)], "b2").unwrap();
        assert!(s.refuses(3).is_some(), "full from the height on");
        let e = s.put(&[&block(3)], "b3").unwrap_err();
        assert!(matches!(e, StorageError::Full { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("disk full") && text.contains("os error 28"),
            "{text}"
        );
        let st = s.status();
        assert!(st.faults.full);
        assert_eq!(st.write_failures, 2);
        assert_eq!(st.last_error.as_deref(), Some(text.as_str()));
        s.set_faults(DiskFaults::default()).unwrap();
        s.put(&[&block(3)], "b3").unwrap();
        assert_eq!(heights(&s), vec![1, 2, 3]);
        // writes held back when the disk fills stay so until it has room, then are committed
        s.set_faults(DiskFaults {
            unflushed_blocks: 2,
            ..DiskFaults::default()
        })
        .unwrap();
        s.put(&[&block(4), &block(5)], "b5").unwrap();
        s.set_faults(DiskFaults {
            unflushed_blocks: 0,
            full: true,
            full_at_height: None,
        })
        .unwrap();
        assert_eq!(s.status().pending_blocks, 2);
        s.set_faults(DiskFaults::default()).unwrap();
        assert_eq!(s.status().pending_blocks, 0);
        assert_eq!(heights(&s), vec![1, 2, 3, 4, 5]);
        assert_eq!(s.status().last_error, None);
    }
}
