//! Reading a bundle: gunzip and untar in memory, under a cap on the bytes unpacked, then check
//! the manifest against the files it names. Nothing touches a disk.

use std::collections::BTreeMap;
use std::io::{self, Read};

use flate2::read::GzDecoder;
use serde::Deserialize;

/// What gzip data starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where the manifest sits in the archive.
const MANIFEST: &str = "manifest.json";

/// The wasm's path when the manifest names none (as merod reads it).
const DEFAULT_WASM: &str = "app.wasm";

/// Room for the manifest, the ABI, migrations and the archive's own headers beside the largest
/// module the runtime accepts.
pub const UNPACKED_MARGIN: usize = 4 * 1024 * 1024;

/// Most bytes a bundle may unpack to (the tar stream, headers included).
pub fn max_unpacked_bytes() -> usize {
    tabnode_runtime::Limits::default().max_module_size + UNPACKED_MARGIN
}

/// Why a bundle was refused. Nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a bundle: a bundle (.mpk) is gzip data, this is not")]
    NotGzip,
    #[error("the bundle is not a readable gzipped tar: {0}")]
    Unreadable(String),
    #[error("the bundle unpacks to more than {max} bytes")]
    TooLarge { max: usize },
    #[error("the bundle holds {path:?}, which is not a plain file")]
    NotAFile { path: String },
    #[error("the bundle holds a path that is absolute or leaves the bundle: {path:?}")]
    UnsafePath { path: String },
    #[error("the bundle holds {path:?} twice")]
    Duplicate { path: String },
    #[error("the bundle has no manifest.json")]
    NoManifest,
    #[error("manifest.json is invalid: {0}")]
    BadManifest(String),
    #[error("manifest.json names {path:?} ({what}), which the bundle does not hold")]
    MissingFile { what: &'static str, path: String },
    #[error("manifest.json says {path:?} is {declared} bytes, it is {actual}")]
    SizeMismatch {
        path: String,
        declared: u64,
        actual: u64,
    },
    #[error("manifest.json's signature is refused: {0}")]
    BadSignature(String),
    #[error("{path:?} (the ABI) is not JSON: {reason}")]
    BadAbi { path: String, reason: String },
}

impl BundleError {
    /// A short, stable name for callers to match on (what JS sees as `error.name`): every
    /// refusal of a bundle is one kind, the message says which.
    pub fn kind(&self) -> &'static str {
        "BadBundle"
    }
}

/// A file the manifest names: the wasm, the ABI, a migration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Artifact {
    pub path: String,
    /// Its size in bytes; 0 when the packer could not tell (Calimero's build scripts write 0
    /// then), otherwise checked.
    #[serde(default)]
    pub size: u64,
}

/// The fields of `manifest.json` a node acts on; others (metadata, links, interfaces, the
/// signature) are kept in [`Bundle::manifest_json`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The manifest format's version.
    pub version: String,
    /// The app's package name, e.g. `com.calimero.kv-store`.
    pub package: String,
    pub app_version: String,
    pub min_runtime_version: String,
    pub wasm: Option<Artifact>,
    pub abi: Option<Artifact>,
    #[serde(default)]
    pub migrations: Vec<Artifact>,
}

/// A checked bundle: its manifest, the wasm and the ABI it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub manifest: Manifest,
    /// The manifest as written.
    pub manifest_json: serde_json::Value,
    /// The did:key that signed the manifest (checked); `None` for an unsigned bundle.
    pub signer_id: Option<String>,
    pub wasm: Vec<u8>,
    /// The ABI's bytes (JSON), if the manifest names one.
    pub abi: Option<Vec<u8>>,
}

/// Whether `bytes` are gzip data: what tells a bundle from a bare wasm module (by content, not
/// by file name).
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

impl Bundle {
    /// Unpacks and checks a bundle, reading at most [`max_unpacked_bytes`].
    pub fn unpack(bytes: &[u8]) -> Result<Self, BundleError> {
        Self::unpack_capped(bytes, max_unpacked_bytes())
    }

    /// [`Bundle::unpack`] with a cap of `max` unpacked bytes.
    pub fn unpack_capped(bytes: &[u8], max: usize) -> Result<Self, BundleError> {
        if !is_bundle(bytes) {
            return Err(BundleError::NotGzip);
        }
        let mut files = read_files(bytes, max)?;
        let manifest_bytes = files.remove(MANIFEST).ok_or(BundleError::NoManifest)?;
        let manifest_json: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| BundleError::BadManifest(e.to_string()))?;
        let manifest: Manifest = serde_json::from_value(manifest_json.clone())
            .map_err(|e| BundleError::BadManifest(e.to_string()))?;
        manifest.check()?;
        let signer_id =
            crate::signature::verify(&manifest_json).map_err(BundleError::BadSignature)?;

        let wasm_path = manifest.wasm.as_ref().map_or(DEFAULT_WASM, |w| &w.path);
        let wasm = take_named(&mut files, "the wasm", wasm_path, manifest.wasm.as_ref())?;
        let abi = match &manifest.abi {
            Some(artifact) => {
                let abi = take_named(&mut files, "the ABI", &artifact.path, Some(artifact))?;
                serde_json::from_slice::<serde_json::Value>(&abi).map_err(|e| {
                    BundleError::BadAbi {
                        path: artifact.path.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Some(abi)
            }
            None => None,
        };
        for migration in &manifest.migrations {
            take_named(&mut files, "a migration", &migration.path, Some(migration))?;
        }
        Ok(Self {
            manifest,
            manifest_json,
            signer_id,
            wasm,
            abi,
        })
    }
}

impl Manifest {
    fn check(&self) -> Result<(), BundleError> {
        for (field, value) in [
            ("package", &self.package),
            ("appVersion", &self.app_version),
        ] {
            if value.trim().is_empty() {
                return Err(BundleError::BadManifest(format!("`{field}` is empty")));
            }
        }
        let named = self.wasm.iter().chain(&self.abi).chain(&self.migrations);
        for artifact in named {
            normalise(&artifact.path)?;
        }
        Ok(())
    }
}

/// Takes the file at `path` (as the manifest wrote it) out of `files`, its size checked
/// against what the manifest declares.
fn take_named(
    files: &mut BTreeMap<String, Vec<u8>>,
    what: &'static str,
    path: &str,
    artifact: Option<&Artifact>,
) -> Result<Vec<u8>, BundleError> {
    let bytes = files
        .remove(&normalise(path)?)
        .ok_or_else(|| BundleError::MissingFile {
            what,
            path: path.to_owned(),
        })?;
    let declared = artifact.map_or(0, |a| a.size);
    if declared != 0 && declared != bytes.len() as u64 {
        return Err(BundleError::SizeMismatch {
            path: path.to_owned(),
            declared,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// A path inside the bundle in one form (`./a/b` is `a/b`); absolute paths and `..` refused.
fn normalise(path: &str) -> Result<String, BundleError> {
    let unsafe_path = || BundleError::UnsafePath {
        path: path.to_owned(),
    };
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err(unsafe_path());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(unsafe_path()),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(unsafe_path());
    }
    Ok(parts.join("/"))
}

/// Every plain file of the archive by normalised path, reading at most `max` unpacked bytes.
fn read_files(bytes: &[u8], max: usize) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let too_large = |e: &io::Error| e.kind() == io::ErrorKind::FileTooLarge;
    let unreadable = |e: io::Error| {
        if too_large(&e) {
            BundleError::TooLarge { max }
        } else {
            BundleError::Unreadable(e.to_string())
        }
    };
    let stream = Capped {
        inner: GzDecoder::new(bytes),
        left: max as u64,
    };
    let mut archive = tar::Archive::new(stream);
    let mut files = BTreeMap::new();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        // Directories, and pax global headers (some tar writers add one), hold no file.
        if kind.is_dir() || kind.is_pax_global_extensions() {
            continue;
        }
        if !kind.is_file() {
            return Err(BundleError::NotAFile { path: raw });
        }
        let path = normalise(&raw)?;
        if entry.size() > max as u64 {
            return Err(BundleError::TooLarge { max });
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(unreadable)?;
        if files.insert(path, data).is_some() {
            return Err(BundleError::Duplicate { path: raw });
        }
    }
    Ok(files)
}

/// A reader that fails with [`io::ErrorKind::FileTooLarge`] past `left` bytes: bounds what a
/// small compressed bundle can make this node unpack (a gzip bomb), files skipped included.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte past the cap tells "more than `left`" from "exactly `left`".
        let want = buf.len().min((self.left as usize).saturating_add(1));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "the bundle unpacks past its cap",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
