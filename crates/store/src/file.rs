//! A store in one directory, for the native node and the CLI: an append-only log of batches,
//! replayed into memory when opened.
//!
//! Each record is `len: u32 LE ‖ payload ‖ blake3(payload)`, written and fsynced before
//! `commit` returns. A torn or corrupt tail (a crash mid-write) was never acknowledged, so
//! opening drops it and truncates the file there; nothing acknowledged is lost.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{Batch, MemoryStore, Namespace, Op, Store, StoreError};

const LOG: &str = "store.log";

pub struct FileStore {
    path: PathBuf,
    log: std::cell::RefCell<File>,
    memory: MemoryStore,
}

fn io(context: &str, err: std::io::Error) -> StoreError {
    if err.kind() == std::io::ErrorKind::StorageFull {
        StoreError::QuotaExceeded
    } else {
        StoreError::Backend(format!("{context}: {err}"))
    }
}

/// Maps an I/O error on `path` to a store error naming it.
fn at(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| io(&path.display().to_string(), e)
}

fn encode(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::new();
    for op in batch.ops() {
        let (tag, ns, key, value) = match op {
            Op::Put { ns, key, value } => (1u8, ns, key, Some(value)),
            Op::Delete { ns, key } => (2u8, ns, key, None),
        };
        out.push(tag);
        out.push(Namespace::ALL.iter().position(|n| n == ns).expect("listed") as u8);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        if let Some(value) = value {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
    }
    out
}

fn decode(mut bytes: &[u8]) -> Option<Batch> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(head)
    }
    fn len(bytes: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?) as usize)
    }
    let mut batch = Batch::new();
    while !bytes.is_empty() {
        let tag = take(&mut bytes, 1)?[0];
        let ns = *Namespace::ALL.get(take(&mut bytes, 1)?[0] as usize)?;
        let n = len(&mut bytes)?;
        let key = take(&mut bytes, n)?;
        match tag {
            1 => {
                let n = len(&mut bytes)?;
                batch.put_mut(ns, key, take(&mut bytes, n)?.to_vec());
            }
            2 => batch.delete_mut(ns, key),
            _ => return None,
        }
    }
    Some(batch)
}

/// The log holds the node's key in plain text: the store's directory (and any parent it makes)
/// is the owner's alone, 0700, and the log 0600.
#[cfg(unix)]
mod private {
    use std::fs::{DirBuilder, OpenOptions, Permissions};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    pub const DIR: u32 = 0o700;
    pub const FILE: u32 = 0o600;

    pub fn create_dir(dir: &Path) -> std::io::Result<()> {
        DirBuilder::new().recursive(true).mode(DIR).create(dir)
    }

    pub fn open_options() -> OpenOptions {
        let mut options = OpenOptions::new();
        options.mode(FILE);
        options
    }

    /// Takes group and others' access away from a directory or log made before (by an older
    /// version, or by hand); says so once.
    pub fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
        let found = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if found & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "was {found:o}, open to others: now {mode:o}");
            std::fs::set_permissions(path, Permissions::from_mode(mode))?;
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod private {
    pub const DIR: u32 = 0;
    pub const FILE: u32 = 0;

    pub fn create_dir(dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    pub fn open_options() -> std::fs::OpenOptions {
        std::fs::OpenOptions::new()
    }

    pub fn tighten(_: &std::path::Path, _: u32) -> std::io::Result<()> {
        Ok(())
    }
}

impl FileStore {
    /// Opens the store in `dir` (created if missing, 0700), replaying every intact record.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        private::create_dir(dir).map_err(at(dir))?;
        private::tighten(dir, private::DIR).map_err(at(dir))?;
        let path = dir.join(LOG);
        let mut file = private::open_options()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(at(&path))?;
        private::tighten(&path, private::FILE).map_err(at(&path))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io("reading the log", e))?;
        let memory = MemoryStore::default();
        let mut intact = 0;
        let mut rest = bytes.as_slice();
        while rest.len() >= 4 {
            let n = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            let Some(record) = rest.get(4..4 + n + 32) else {
                break;
            };
            let (payload, sum) = record.split_at(n);
            if blake3::hash(payload).as_bytes() != sum {
                break;
            }
            let Some(batch) = decode(payload) else { break };
            memory.commit(batch).await?;
            rest = &rest[4 + n + 32..];
            intact += 4 + n + 32;
        }
        if intact < bytes.len() {
            tracing::warn!(path = %path.display(), dropped = bytes.len() - intact, "dropping a torn tail");
            file.set_len(intact as u64)
                .map_err(|e| io("truncating a torn tail", e))?;
        }
        Ok(Self {
            path,
            log: std::cell::RefCell::new(file),
            memory,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for FileStore {
    async fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.memory.get(ns, key).await
    }

    async fn scan_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.memory.scan_prefix(ns, prefix).await
    }

    async fn last_with_prefix(
        &self,
        ns: Namespace,
        prefix: &[u8],
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.memory.last_with_prefix(ns, prefix).await
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let payload = encode(&batch);
        let mut record = Vec::with_capacity(payload.len() + 36);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&payload);
        record.extend_from_slice(blake3::hash(&payload).as_bytes());
        {
            let mut log = self.log.borrow_mut();
            log.write_all(&record)
                .map_err(|e| io("appending to the log", e))?;
            log.sync_data().map_err(|e| io("syncing the log", e))?;
        }
        self.memory.commit(batch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use std::fs::OpenOptions;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tabnode-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn file_store_passes_the_conformance_suite() {
        let base = temp_dir("conformance");
        let n = std::cell::Cell::new(0);
        block_on(crate::conformance::run_all(|| {
            n.set(n.get() + 1);
            let dir = base.join(n.get().to_string());
            async move { FileStore::open(&dir).await.unwrap() }
        }));
        let _ = std::fs::remove_dir_all(base);
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_and_log_are_the_owners_alone_also_when_made_looser_before() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let home = temp_dir("private");
        let dir = home.join("store");
        let store = block_on(FileStore::open(&dir)).unwrap();
        block_on(store.commit(Batch::new().put(Namespace::Keys, b"k", b"secret".to_vec())))
            .unwrap();
        let log = store.path().to_owned();
        drop(store);
        assert_eq!(mode(&home), 0o700, "a parent it made");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&log), 0o600);

        let loose = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        loose(&dir, 0o755).unwrap();
        loose(&log, 0o644).unwrap();
        let store = block_on(FileStore::open(&dir)).unwrap();
        assert_eq!((mode(&dir), mode(&log)), (0o700, 0o600));
        assert_eq!(
            block_on(store.get(Namespace::Keys, b"k")).unwrap(),
            Some(b"secret".to_vec())
        );
        let _ = std::fs::remove_dir_all(home);
    }

    #[test]
    fn reopening_keeps_commits_and_drops_a_torn_tail() {
        let dir = temp_dir("reopen");
        let store = block_on(FileStore::open(&dir)).unwrap();
        block_on(store.commit(Batch::new().put(Namespace::State, b"a", b"1".to_vec()))).unwrap();
        block_on(
            store.commit(
                Batch::new()
                    .put(Namespace::State, b"b", b"2".to_vec())
                    .delete(Namespace::State, b"a"),
            ),
        )
        .unwrap();
        let path = store.path().to_owned();
        drop(store);
        // A crash mid-write leaves half a record behind.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(file);
        let store = block_on(FileStore::open(&dir)).unwrap();
        assert_eq!(block_on(store.get(Namespace::State, b"a")).unwrap(), None);
        assert_eq!(
            block_on(store.get(Namespace::State, b"b")).unwrap(),
            Some(b"2".to_vec())
        );
        block_on(store.commit(Batch::new().put(Namespace::State, b"c", b"3".to_vec()))).unwrap();
        drop(store);
        let store = block_on(FileStore::open(&dir)).unwrap();
        assert_eq!(
            block_on(store.get(Namespace::State, b"c")).unwrap(),
            Some(b"3".to_vec()),
            "writes after the cut survive"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
