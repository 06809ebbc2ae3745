//! The in-memory backend, for tests and `--storage memory`.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::{
    Change, KeyRange, OnCommit, ReadFn, ReadTxn, ScanVisitor, Store, StoreError, WriteFn,
    WriteOutcome, WriteTxn,
};

/// A store that keeps everything in memory and loses it on exit.
pub struct MemoryStore {
    data: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
    changes: Mutex<VecDeque<Change>>,
    writer: tokio::sync::Mutex<()>,
    seq: watch::Sender<u64>,
    closed: std::sync::atomic::AtomicBool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            data: RwLock::new(BTreeMap::new()),
            changes: Mutex::new(VecDeque::new()),
            writer: tokio::sync::Mutex::new(()),
            seq: watch::channel(0).0,
            closed: Default::default(),
        }
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }
}

fn bounds(range: &KeyRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        Bound::Included(range.start.as_slice()),
        match &range.end {
            Some(end) => Bound::Excluded(end.as_slice()),
            None => Bound::Unbounded,
        },
    )
}

fn scan_map(
    map: &BTreeMap<Vec<u8>, Vec<u8>>,
    range: &KeyRange,
    reverse: bool,
    visit: &mut ScanVisitor<'_>,
) {
    if range
        .end
        .as_deref()
        .is_some_and(|end| end <= range.start.as_slice())
    {
        return;
    }
    let iter = map.range::<[u8], _>(bounds(range));
    if reverse {
        for (k, v) in iter.rev() {
            if visit(k, v).is_break() {
                return;
            }
        }
    } else {
        for (k, v) in iter {
            if visit(k, v).is_break() {
                return;
            }
        }
    }
}

struct Snapshot<'a>(&'a BTreeMap<Vec<u8>, Vec<u8>>);

impl ReadTxn for Snapshot<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(
        &self,
        range: &KeyRange,
        reverse: bool,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), StoreError> {
        scan_map(self.0, range, reverse, visit);
        Ok(())
    }
}

/// Buffered writes over the committed map.
struct Overlay<'a> {
    base: &'a BTreeMap<Vec<u8>, Vec<u8>>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    change: Option<Vec<u8>>,
    on_commit: Option<OnCommit>,
}

impl ReadTxn for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.base.get(key).cloned()),
        }
    }

    fn scan(
        &self,
        range: &KeyRange,
        reverse: bool,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), StoreError> {
        let mut merged: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
        if range
            .end
            .as_deref()
            .is_none_or(|end| end > range.start.as_slice())
        {
            for (k, v) in self.base.range::<[u8], _>(bounds(range)) {
                merged.insert(k, v);
            }
            for (k, v) in self.writes.range::<[u8], _>(bounds(range)) {
                match v {
                    Some(v) => merged.insert(k, v),
                    None => merged.remove(k.as_slice()),
                };
            }
        }
        let iter: Box<dyn Iterator<Item = (&&[u8], &&[u8])>> = if reverse {
            Box::new(merged.iter().rev())
        } else {
            Box::new(merged.iter())
        };
        for (k, v) in iter {
            if visit(k, v).is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl WriteTxn for Overlay<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }

    fn set_change(&mut self, payload: Vec<u8>) {
        self.change = Some(payload);
        self.on_commit = None;
    }

    fn set_change_with(&mut self, payload: Vec<u8>, on_commit: OnCommit) {
        self.change = Some(payload);
        self.on_commit = Some(on_commit);
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn read_boxed(&self, f: ReadFn) -> Result<(), StoreError> {
        self.check_open()?;
        let data = self.data.read();
        f(&Snapshot(&data))
    }

    async fn write_boxed(&self, mut f: WriteFn) -> Result<Option<u64>, StoreError> {
        self.check_open()?;
        let _writer = self.writer.lock().await;
        let (writes, change, on_commit) = {
            let data = self.data.read();
            let mut overlay = Overlay {
                base: &data,
                writes: BTreeMap::new(),
                change: None,
                on_commit: None,
            };
            match f(&mut overlay)? {
                WriteOutcome::Rollback => return Ok(None),
                WriteOutcome::Commit => (overlay.writes, overlay.change, overlay.on_commit),
            }
        };
        let mut data = self.data.write();
        for (k, v) in writes {
            match v {
                Some(v) => data.insert(k, v),
                None => data.remove(&k),
            };
        }
        let seq = change.map(|payload| {
            let seq = *self.seq.borrow() + 1;
            self.changes.lock().push_back(Change { seq, payload });
            if let Some(on_commit) = on_commit {
                on_commit(seq);
            }
            self.seq.send_replace(seq);
            seq
        });
        Ok(seq)
    }

    async fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.check_open()?;
        let changes = self.changes.lock();
        Ok(changes
            .iter()
            .filter(|c| c.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn prune_changes(&self, before: u64) -> Result<(), StoreError> {
        self.check_open()?;
        let mut changes = self.changes.lock();
        while changes.front().is_some_and(|c| c.seq < before) {
            changes.pop_front();
        }
        Ok(())
    }

    fn watch(&self) -> watch::Receiver<u64> {
        self.seq.subscribe()
    }

    async fn close(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().await;
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}
