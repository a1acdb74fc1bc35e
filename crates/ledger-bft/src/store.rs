//! Decided blocks with their commit certificates, on disk.
//!
//! One JSON line per height, appended and synced before the replica acknowledges the
//! decision to consensus, so an acknowledged block survives kill -9. A torn last line (a
//! crash mid-append) is cut off on open; anything else out of order refuses to open.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use hallmark_ledger::block::Block;
use serde::{Deserialize, Serialize};

use crate::codec::WireCertificate;

/// A decided block and the certificate that decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DecidedBlock {
    pub block: Block,
    pub certificate: WireCertificate,
}

/// Why the block store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("block store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("block store {path} line {line}: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("block {found} appended after height {last}")]
    OutOfOrder { last: u64, found: u64 },
}

/// The append-only file of decided blocks (all of them kept in memory as well, for sync
/// and reads).
pub struct BlockStore {
    path: PathBuf,
    file: File,
    blocks: Vec<DecidedBlock>,
}

impl BlockStore {
    /// Opens (or creates) `dir/blocks.jsonl`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("blocks.jsonl");
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let mut blocks: Vec<DecidedBlock> = Vec::new();
        let mut good_len = 0u64;
        let mut torn = false;
        {
            let mut reader = BufReader::new(&file);
            let mut line = String::new();
            let mut number = 0usize;
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(io)?;
                if n == 0 {
                    break;
                }
                number += 1;
                let complete = line.ends_with('\n');
                match serde_json::from_str::<DecidedBlock>(line.trim_end()) {
                    Ok(d) if complete => {
                        let expected = blocks.last().map_or(1, |b| b.block.height + 1);
                        if d.block.height != expected {
                            return Err(StoreError::Corrupt {
                                path: path.clone(),
                                line: number,
                                reason: format!(
                                    "height {} where {expected} was expected",
                                    d.block.height
                                ),
                            });
                        }
                        good_len += n as u64;
                        blocks.push(d);
                    }
                    // Only the last line may be torn: a crash mid-append.
                    _ => {
                        let rest = reader.fill_buf().map_err(io)?.is_empty();
                        if !rest {
                            return Err(StoreError::Corrupt {
                                path: path.clone(),
                                line: number,
                                reason: "unparseable line before the end".into(),
                            });
                        }
                        torn = true;
                        break;
                    }
                }
            }
        }
        if torn {
            tracing::warn!(path = %path.display(), "cutting a torn last block record");
            file.set_len(good_len).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
        }
        Ok(Self { path, file, blocks })
    }

    /// Appends the next decided block and syncs it to disk.
    pub fn append(&mut self, decided: DecidedBlock) -> Result<(), StoreError> {
        let last = self.height();
        if decided.block.height != last + 1 {
            return Err(StoreError::OutOfOrder {
                last,
                found: decided.block.height,
            });
        }
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(&decided).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.blocks.push(decided);
        Ok(())
    }

    /// The last decided height (0 before the first block).
    pub fn height(&self) -> u64 {
        self.blocks.last().map_or(0, |b| b.block.height)
    }

    /// The block decided at `height`.
    pub fn get(&self, height: u64) -> Option<&DecidedBlock> {
        let index = usize::try_from(height.checked_sub(1)?).ok()?;
        self.blocks.get(index)
    }

    /// Every decided block, from height 1.
    pub fn blocks(&self) -> &[DecidedBlock] {
        &self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{BlockId, Height};
    use malachitebft_app_channel::app::types::core::Round;

    fn decided(height: u64) -> DecidedBlock {
        DecidedBlock {
            block: Block {
                height,
                prev_hash: "00".repeat(32),
                time_ms: height as i64,
                txs: vec![],
                state_root: "11".repeat(32),
                log_root: "22".repeat(32),
                log_size: 0,
            },
            certificate: WireCertificate {
                height: Height(height),
                round: Round::new(0),
                value_id: BlockId([height as u8; 32]),
                signatures: vec![],
            },
        }
    }

    #[test]
    fn a_torn_last_record_is_cut_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = BlockStore::open(dir.path()).unwrap();
            s.append(decided(1)).unwrap();
            s.append(decided(2)).unwrap();
            assert!(matches!(
                s.append(decided(4)),
                Err(StoreError::OutOfOrder { last: 2, found: 4 })
            ));
        }
        // A crash mid-append leaves half a line.
        let path = dir.path().join("blocks.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"block\":{\"height\":3,").unwrap();
        drop(f);
        let mut s = BlockStore::open(dir.path()).unwrap();
        assert_eq!(s.height(), 2);
        s.append(decided(3)).unwrap();
        drop(s);
        let s = BlockStore::open(dir.path()).unwrap();
        assert_eq!(s.height(), 3);
        assert_eq!(s.get(3).unwrap(), &decided(3));
        assert!(s.get(0).is_none() && s.get(4).is_none());
    }

    #[test]
    fn a_damaged_record_before_the_end_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = BlockStore::open(dir.path()).unwrap();
            s.append(decided(1)).unwrap();
            s.append(decided(2)).unwrap();
        }
        let path = dir.path().join("blocks.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"height\":1", "\"height\":1x", 1)).unwrap();
        assert!(matches!(
            BlockStore::open(dir.path()),
            Err(StoreError::Corrupt { line: 1, .. })
        ));
        // And a gap in heights is corruption too, not something to skip.
        std::fs::write(&path, text.lines().nth(1).unwrap().to_string() + "\n").unwrap();
        assert!(matches!(
            BlockStore::open(dir.path()),
            Err(StoreError::Corrupt { line: 1, .. })
        ));
    }
}
