//! The host side of the ABI, written once for every engine: one method per import of
//! calimero-sys 0.10 over a per-call [`HostState`] and the guest's memory ([`GuestMemory`]).
//! An engine only forwards each import to [`HostState::call`] (see `wasmi_engine.rs` and, in
//! the page, `browser_engine.rs`).
//!
//! Guest values cross as calimero-sys lays them out (little-endian, 64-bit fields): a `Buffer` is
//! `{ptr: u64, len: u64}`, a `Location` is `{file: Buffer, line: u32, column: u32}`, an `Event` is
//! `{kind: Buffer, data: Buffer}`, a `ValueReturn` is `{tag: u64 (0 = Ok, 1 = Err), value: Buffer}`.
//! Pointers to these structs (`Ref<T>`) and register ids arrive as `i64`; `Bool` returns as `i32`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use crate::{
    Call, ContextRequest, Event, Limits, NotLoaded, Outcome, RuntimeError, StateView, ViewKind,
    Views, WriteSet, XCallRequest,
};

/// The guest's linear memory during one host call.
pub(crate) trait GuestMemory {
    /// Copies `out.len()` bytes from `ptr`; `false` if out of bounds.
    fn read(&self, ptr: usize, out: &mut [u8]) -> bool;
    /// Copies `data` to `ptr`; `false` if out of bounds.
    fn write(&mut self, ptr: usize, data: &[u8]) -> bool;
}

/// A memory the engine lends as a byte slice (wasmi).
pub(crate) struct SliceMemory<'a>(pub(crate) &'a mut [u8]);

impl GuestMemory for SliceMemory<'_> {
    fn read(&self, ptr: usize, out: &mut [u8]) -> bool {
        match ptr
            .checked_add(out.len())
            .and_then(|end| self.0.get(ptr..end))
        {
            Some(bytes) => {
                out.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    fn write(&mut self, ptr: usize, data: &[u8]) -> bool {
        match ptr
            .checked_add(data.len())
            .and_then(|end| self.0.get_mut(ptr..end))
        {
            Some(bytes) => {
                bytes.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

/// What an import returns to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returns {
    Nothing,
    I32,
    I64,
}

macro_rules! imports {
    ($($variant:ident = $name:literal ($arity:tt) -> $returns:ident,)*) => {
        /// An import of calimero-sys 0.10's `"env"` module. Every parameter is an `i64`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Import { $($variant,)* }

        impl Import {
            pub(crate) const ALL: &'static [Import] = &[$(Import::$variant,)*];

            pub(crate) fn name(self) -> &'static str {
                match self { $(Import::$variant => $name,)* }
            }

            /// How many `i64` parameters it takes.
            pub(crate) fn arity(self) -> usize {
                match self { $(Import::$variant => $arity,)* }
            }

            pub(crate) fn returns(self) -> Returns {
                match self { $(Import::$variant => Returns::$returns,)* }
            }
        }

        /// Every import calimero-sys 0.10 declares in module `"env"`; a module may import only these.
        pub const IMPORTS: &[&str] = &[$($name,)*];

        /// Calls macro `$m` with the list of imports as given here (the browser engine makes
        /// one exported function per import from it).
        #[allow(unused_macros)]
        macro_rules! for_each_import {
            ($m:ident) => { $m! { $($variant = $name ($arity) -> $returns,)* } };
        }
        #[allow(unused_imports)]
        pub(crate) use for_each_import;
    };
}

imports! {
    Panic = "panic" (1) -> Nothing,
    PanicUtf8 = "panic_utf8" (2) -> Nothing,
    RegisterLen = "register_len" (1) -> I64,
    ReadRegister = "read_register" (2) -> I32,
    ContextId = "context_id" (1) -> Nothing,
    ExecutorId = "executor_id" (1) -> Nothing,
    Input = "input" (1) -> Nothing,
    ValueReturn = "value_return" (1) -> Nothing,
    LogUtf8 = "log_utf8" (1) -> Nothing,
    Emit = "emit" (1) -> Nothing,
    EmitWithHandler = "emit_with_handler" (2) -> Nothing,
    XCall = "xcall" (1) -> Nothing,
    Commit = "commit" (2) -> Nothing,
    StorageRead = "storage_read" (2) -> I32,
    StorageRemove = "storage_remove" (2) -> I32,
    StorageWrite = "storage_write" (3) -> I32,
    PrivateStorageRead = "private_storage_read" (2) -> I32,
    PrivateStorageRemove = "private_storage_remove" (2) -> I32,
    PrivateStorageWrite = "private_storage_write" (2) -> I32,
    Fetch = "fetch" (5) -> I32,
    RandomBytes = "random_bytes" (1) -> Nothing,
    TimeNow = "time_now" (1) -> Nothing,
    Ed25519Verify = "ed25519_verify" (3) -> I32,
    SendProposal = "send_proposal" (2) -> Nothing,
    ApproveProposal = "approve_proposal" (1) -> Nothing,
    ContextCreate = "context_create" (4) -> Nothing,
    ContextDelete = "context_delete" (1) -> Nothing,
    ContextAddMember = "context_add_member" (1) -> Nothing,
    ContextRemoveMember = "context_remove_member" (1) -> Nothing,
    ContextIsMember = "context_is_member" (1) -> I32,
    ContextMembers = "context_members" (1) -> Nothing,
    ContextResolveAlias = "context_resolve_alias" (2) -> I32,
    BlobCreate = "blob_create" (0) -> I64,
    BlobOpen = "blob_open" (1) -> I64,
    BlobRead = "blob_read" (2) -> I64,
    BlobWrite = "blob_write" (2) -> I64,
    BlobClose = "blob_close" (2) -> I32,
    BlobAnnounceToContext = "blob_announce_to_context" (2) -> I32,
}

impl Import {
    pub(crate) fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|i| i.name() == name)
    }
}

type Result<T> = std::result::Result<T, RuntimeError>;

fn abi(message: impl Into<String>) -> RuntimeError {
    RuntimeError::BadAbiUse(message.into())
}

fn limit(message: impl Into<String>) -> RuntimeError {
    RuntimeError::LimitExceeded(message.into())
}

/// The longest protocol name or alias a guest may pass.
const MAX_NAME: usize = 256;

fn to_usize(value: u64) -> Result<usize> {
    usize::try_from(value).map_err(|_| abi(format!("{value:#x} is not an address")))
}

fn read_exact<const N: usize>(m: &dyn GuestMemory, ptr: u64) -> Result<[u8; N]> {
    let mut out = [0; N];
    if !m.read(to_usize(ptr)?, &mut out) {
        return Err(abi(format!(
            "read of {N} bytes at {ptr:#x} is out of bounds"
        )));
    }
    Ok(out)
}

fn u64_at(m: &dyn GuestMemory, ptr: u64) -> Result<u64> {
    read_exact::<8>(m, ptr).map(u64::from_le_bytes)
}

/// The `(ptr, len)` of the `Buffer` struct at `at`, in one read (in the page, each read is a
/// crossing into JS).
fn buffer_at(m: &dyn GuestMemory, at: u64) -> Result<(u64, u64)> {
    let bytes = read_exact::<16>(m, at)?;
    let (ptr, len) = bytes.split_at(8);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    Ok((word(ptr), word(len)))
}

/// The bytes a `Buffer` struct at `at` points to, refusing more than `max` bytes.
fn bytes_of(m: &dyn GuestMemory, at: u64, max: usize, what: &str) -> Result<Vec<u8>> {
    let (ptr, len) = buffer_at(m, at)?;
    let len = to_usize(len)?;
    if len > max {
        return Err(limit(format!("{what} of {len} bytes (limit {max})")));
    }
    let mut out = vec![0; len];
    if !m.read(to_usize(ptr)?, &mut out) {
        return Err(abi(format!(
            "{what}: {len} bytes at {ptr:#x} are out of bounds"
        )));
    }
    Ok(out)
}

/// A 32-byte key or id the guest passed in a buffer.
fn key_of(m: &dyn GuestMemory, at: u64, what: &str) -> Result<[u8; 32]> {
    bytes_of(m, at, 32, what)?
        .try_into()
        .map_err(|_| abi(format!("a {what} is 32 bytes")))
}

fn string_of(m: &dyn GuestMemory, at: u64, max: usize, what: &str) -> Result<String> {
    String::from_utf8(bytes_of(m, at, max, what)?).map_err(|_| abi(format!("{what} is not UTF-8")))
}

/// Writes `data` into the guest's `BufferMut` at `at`, which must be exactly as long.
fn fill_buffer(m: &mut dyn GuestMemory, at: u64, data: &[u8], what: &str) -> Result<()> {
    let (ptr, len) = buffer_at(m, at)?;
    if len != data.len() as u64 {
        return Err(abi(format!(
            "{what}: buffer of {len} bytes for {} bytes",
            data.len()
        )));
    }
    if !m.write(to_usize(ptr)?, data) {
        return Err(abi(format!(
            "{what}: {len} bytes at {ptr:#x} are out of bounds"
        )));
    }
    Ok(())
}

fn location_of(m: &dyn GuestMemory, at: u64) -> Result<Option<String>> {
    let file = string_of(m, at, 4096, "panic location")?;
    let line = u32::from_le_bytes(read_exact::<4>(m, at.wrapping_add(16))?);
    let column = u32::from_le_bytes(read_exact::<4>(m, at.wrapping_add(20))?);
    Ok((!file.is_empty()).then(|| format!("{file}:{line}:{column}")))
}

fn flag(value: bool) -> i64 {
    i64::from(value)
}

/// Everything one call sees and produces.
pub(crate) struct HostState {
    pub(crate) limits: Limits,
    registers: HashMap<u64, Vec<u8>>,
    input: Vec<u8>,
    context_id: [u8; 32],
    executor_id: [u8; 32],
    time_now: u64,
    random: blake3::OutputReader,
    shared: Rc<dyn StateView>,
    private: Rc<dyn StateView>,
    blobs: Rc<dyn StateView>,
    members: Rc<BTreeSet<[u8; 32]>>,
    aliases: Rc<BTreeMap<String, [u8; 32]>>,
    shared_writes: WriteSet,
    private_writes: WriteSet,
    logs: Vec<String>,
    events: Vec<Event>,
    returns: Option<std::result::Result<Vec<u8>, Vec<u8>>>,
    committed: Option<([u8; 32], Vec<u8>)>,
    /// Open blob handles by descriptor; 0 is never a descriptor (it means "not found").
    handles: HashMap<u64, BlobHandle>,
    next_fd: u64,
    created_blobs: BTreeMap<[u8; 32], Vec<u8>>,
    announced_blobs: Vec<[u8; 32]>,
    missing_blobs: Vec<[u8; 32]>,
    xcalls: Vec<XCallRequest>,
    context_requests: Vec<ContextRequest>,
    /// Rows the views had not loaded, each once: the call went on as if they were absent (see
    /// [`RuntimeError::NotLoaded`]). A set: a call over a large collection may miss thousands.
    unloaded: RefCell<BTreeSet<(ViewKind, Vec<u8>)>>,
}

enum BlobHandle {
    Writing(Vec<u8>),
    Reading {
        id: [u8; 32],
        data: Rc<Vec<u8>>,
        pos: usize,
    },
}

impl HostState {
    pub(crate) fn new(limits: &Limits, call: &Call<'_>, views: Views) -> Self {
        let mut random = blake3::Hasher::new_derive_key("tabnode runtime random_bytes v1");
        random.update(&call.random_seed);
        Self {
            limits: limits.clone(),
            registers: HashMap::new(),
            input: call.input.to_vec(),
            context_id: call.context_id,
            executor_id: call.executor_id,
            time_now: call.time_now_nanos,
            random: random.finalize_xof(),
            shared: views.shared,
            private: views.private,
            blobs: views.blobs,
            members: views.members,
            aliases: views.aliases,
            shared_writes: WriteSet::new(),
            private_writes: WriteSet::new(),
            logs: Vec::new(),
            events: Vec::new(),
            returns: None,
            committed: None,
            handles: HashMap::new(),
            next_fd: 1,
            created_blobs: Default::default(),
            announced_blobs: Vec::new(),
            missing_blobs: Vec::new(),
            xcalls: Vec::new(),
            context_requests: Vec::new(),
            unloaded: RefCell::default(),
        }
    }

    /// A row of a view. One the view has not loaded is taken as absent, and named in
    /// [`RuntimeError::NotLoaded`] when the call ends (see [`Self::finish`]).
    fn loaded(&self, base: &dyn StateView, view: ViewKind, key: &[u8]) -> Option<Vec<u8>> {
        base.get(key).unwrap_or_else(|NotLoaded| {
            self.unloaded.borrow_mut().insert((view, key.to_vec()));
            None
        })
    }

    /// What the call gave, once the engine has run it (`ran`: the fuel it used, or why it
    /// stopped). If it read rows the views had not loaded, [`RuntimeError::NotLoaded`] names
    /// them and holds this result, which is the call's if none of them exists.
    pub(crate) fn finish(self, ran: Result<u64>) -> Result<Outcome> {
        let unloaded = std::mem::take(&mut *self.unloaded.borrow_mut());
        let result = ran.map(|fuel_used| self.outcome(fuel_used));
        if unloaded.is_empty() {
            return result;
        }
        Err(RuntimeError::NotLoaded {
            rows: unloaded.into_iter().collect(),
            if_absent: Box::new(result),
        })
    }

    /// What the call produced, once it has returned.
    fn outcome(self, fuel_used: u64) -> Outcome {
        let (root_hash, artifact) = match self.committed {
            Some((root, artifact)) => (Some(root), artifact),
            None => (None, Vec::new()),
        };
        Outcome {
            returns: match self.returns {
                None => Ok(None),
                Some(Ok(v)) => Ok(Some(v)),
                Some(Err(e)) => Err(e),
            },
            logs: self.logs,
            events: self.events,
            root_hash,
            artifact,
            shared_writes: self.shared_writes,
            private_writes: self.private_writes,
            blobs: self.created_blobs,
            announced_blobs: self.announced_blobs,
            missing_blobs: self.missing_blobs,
            xcalls: self.xcalls,
            context_requests: self.context_requests,
            fuel_used,
        }
    }

    /// Runs one import. `args` holds the guest's arguments (as many as [`Import::arity`]); the
    /// result is the import's return value (0 where it returns nothing).
    pub(crate) fn call(
        &mut self,
        import: Import,
        m: &mut dyn GuestMemory,
        args: &[i64],
    ) -> Result<i64> {
        let a = |i: usize| args.get(i).copied().unwrap_or(0) as u64;
        use Import as I;
        match import {
            I::Panic => Err(RuntimeError::Panic {
                message: "explicit panic".into(),
                location: location_of(m, a(0))?,
            }),
            I::PanicUtf8 => {
                let message =
                    String::from_utf8_lossy(&bytes_of(m, a(0), 64 * 1024, "panic message")?)
                        .into_owned();
                Err(RuntimeError::Panic {
                    message,
                    location: location_of(m, a(1))?,
                })
            }
            I::RegisterLen => Ok(self.registers.get(&a(0)).map_or(-1, |r| r.len() as i64)),
            I::ReadRegister => {
                let Some(data) = self.registers.get(&a(0)) else {
                    return Err(abi(format!("register {} is not set", a(0))));
                };
                let (_, len) = buffer_at(m, a(1))?;
                if len != data.len() as u64 {
                    return Ok(0);
                }
                fill_buffer(m, a(1), data, "read_register")?;
                Ok(1)
            }
            I::ContextId => self.set_register(a(0), self.context_id.to_vec()),
            I::ExecutorId => self.set_register(a(0), self.executor_id.to_vec()),
            I::Input => self.set_register(a(0), self.input.clone()),
            I::ValueReturn => {
                let tag = u64_at(m, a(0))?;
                let value = bytes_of(
                    m,
                    a(0).wrapping_add(8),
                    self.limits.max_return_size,
                    "return value",
                )?;
                self.returns = Some(match tag {
                    0 => Ok(value),
                    1 => Err(value),
                    other => return Err(abi(format!("value_return tag {other}"))),
                });
                Ok(0)
            }
            I::LogUtf8 => {
                let max = self.limits.max_logs;
                if self.logs.len() >= max {
                    return Err(limit(format!("more than {max} logs")));
                }
                let line = bytes_of(m, a(0), self.limits.max_log_size, "log line")?;
                self.logs.push(String::from_utf8_lossy(&line).into_owned());
                Ok(0)
            }
            I::Emit => self.emit(m, a(0), None),
            I::EmitWithHandler => {
                let handler = string_of(m, a(1), 1024, "event handler")?;
                self.emit(m, a(0), Some(handler))
            }
            I::Commit => {
                let root = key_of(m, a(0), "root hash")?;
                let artifact = bytes_of(m, a(1), usize::MAX, "artifact")?;
                if self.committed.is_some() {
                    return Err(abi("commit called twice in one call"));
                }
                self.committed = Some((root, artifact));
                Ok(0)
            }
            I::StorageRead | I::PrivateStorageRead => {
                let private = import == I::PrivateStorageRead;
                let key = bytes_of(m, a(0), self.limits.max_storage_key_size, "storage key")?;
                match self.read(private, &key)? {
                    Some(value) => self.set_register(a(1), value).map(|_| 1),
                    None => Ok(0),
                }
            }
            I::StorageRemove | I::PrivateStorageRemove => {
                let private = import == I::PrivateStorageRemove;
                let key = bytes_of(m, a(0), self.limits.max_storage_key_size, "storage key")?;
                let old = self.read(private, &key)?;
                self.write(private, key, None);
                match old {
                    Some(value) => self.set_register(a(1), value).map(|_| 1),
                    None => Ok(0),
                }
            }
            I::StorageWrite => match self.store_write(m, false, a(0), a(1))? {
                Some(old) => self.set_register(a(2), old).map(|_| 1),
                None => Ok(0),
            },
            I::PrivateStorageWrite => Ok(flag(self.store_write(m, true, a(0), a(1))?.is_some())),
            I::Fetch => Err(RuntimeError::Unsupported {
                import: "fetch",
                reason: "a deterministic runtime makes no network calls",
            }),
            I::RandomBytes => {
                let (_, len) = buffer_at(m, a(0))?;
                let mut bytes = vec![0; to_usize(len)?.min(1 << 20)];
                self.random.fill(&mut bytes);
                fill_buffer(m, a(0), &bytes, "random_bytes").map(|()| 0)
            }
            // The recorded time, the same for every read of the call: members merging a delta
            // replay the author's timestamp, and calimero-storage's roots then agree. (A clock
            // that advanced per read would make the merge depend on how often each side reads.)
            I::TimeNow => {
                fill_buffer(m, a(0), &self.time_now.to_le_bytes(), "time_now").map(|()| 0)
            }
            I::Ed25519Verify => {
                let sig: [u8; 64] = bytes_of(m, a(0), 64, "signature")?
                    .try_into()
                    .map_err(|_| abi("a signature is 64 bytes"))?;
                let key = key_of(m, a(1), "public key")?;
                let msg = bytes_of(m, a(2), usize::MAX, "message")?;
                let ok = ed25519_dalek::VerifyingKey::from_bytes(&key).is_ok_and(|k| {
                    k.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
                        .is_ok()
                });
                Ok(flag(ok))
            }
            I::XCall => {
                let at = a(0);
                let context_id = key_of(m, at, "xcall context id")?;
                let function = string_of(m, at.wrapping_add(16), 1024, "xcall function")?;
                let params = bytes_of(
                    m,
                    at.wrapping_add(32),
                    self.limits.max_return_size,
                    "xcall params",
                )?;
                let max = self.limits.max_xcalls;
                if self.xcalls.len() >= max {
                    return Err(limit(format!("more than {max} xcalls")));
                }
                self.xcalls.push(XCallRequest {
                    context_id,
                    function,
                    params,
                });
                Ok(0)
            }
            // Proposals: made by the node after the call as the context's own operations (see
            // docs/proposals.md). The id is the host's, drawn from the call's random stream as
            // merod draws a random one, and written back before the node sees the actions.
            I::SendProposal => {
                let actions = bytes_of(m, a(0), self.limits.max_storage_value_size, "actions")?;
                let (_, len) = buffer_at(m, a(1))?;
                if len != 32 {
                    return Err(abi(format!("a proposal id is 32 bytes, not {len}")));
                }
                let mut id = [0; 32];
                self.random.fill(&mut id);
                fill_buffer(m, a(1), &id, "proposal id")?;
                self.queue(ContextRequest::Propose { id, actions })
            }
            I::ApproveProposal => {
                let id = key_of(m, a(0), "proposal id")?;
                self.queue(ContextRequest::Approve(id))
            }
            // Contexts and membership: requests queued and made by the node after the call,
            // with the caller's authority (membership through the context's log; only admins).
            I::ContextCreate => {
                let text = |at: u64, what: &str| -> Result<String> {
                    String::from_utf8(bytes_of(m, at, MAX_NAME, what)?)
                        .map_err(|_| abi(format!("the {what} is not UTF-8")))
                };
                let protocol = text(a(0), "protocol")?;
                let app_id = key_of(m, a(1), "application id")?;
                let args = bytes_of(m, a(2), self.limits.max_storage_value_size, "init args")?;
                let alias = Some(text(a(3), "alias")?).filter(|a| !a.is_empty());
                self.queue(ContextRequest::Create {
                    protocol,
                    app_id,
                    args,
                    alias,
                })
            }
            I::ContextDelete => {
                let id = key_of(m, a(0), "context id")?;
                self.queue(ContextRequest::Delete(id))
            }
            I::ContextAddMember => {
                let key = key_of(m, a(0), "public key")?;
                self.queue(ContextRequest::AddMember(key))
            }
            I::ContextRemoveMember => {
                let key = key_of(m, a(0), "public key")?;
                self.queue(ContextRequest::RemoveMember(key))
            }
            I::ContextResolveAlias => {
                let alias = bytes_of(m, a(0), MAX_NAME, "alias")?;
                let found = std::str::from_utf8(&alias)
                    .ok()
                    .and_then(|a| self.aliases.get(a).copied());
                match found {
                    Some(id) => self.set_register(a(1), id.to_vec()).map(|_| 1),
                    None => Ok(0),
                }
            }
            // Membership as this node knows it (certificates it has verified).
            I::ContextIsMember => {
                let key = key_of(m, a(0), "public key")?;
                Ok(flag(self.members.contains(&key)))
            }
            I::ContextMembers => {
                // borsh Vec<[u8; 32]>: a u32 LE count, then the keys.
                let mut out = (self.members.len() as u32).to_le_bytes().to_vec();
                for key in self.members.iter() {
                    out.extend_from_slice(key);
                }
                self.set_register(a(0), out)
            }
            // Blobs: written and read in chunks through descriptors; created ones go to the outcome.
            I::BlobCreate => Ok(self.open(BlobHandle::Writing(Vec::new())) as i64),
            I::BlobWrite => {
                let max = self.limits.max_blob_size;
                let data = bytes_of(m, a(1), max, "blob chunk")?;
                match self.handles.get_mut(&a(0)) {
                    Some(BlobHandle::Writing(blob)) => {
                        if blob.len() + data.len() > max {
                            return Err(limit(format!("a blob over {max} bytes")));
                        }
                        blob.extend_from_slice(&data);
                        Ok(data.len() as i64)
                    }
                    _ => Err(abi(format!(
                        "blob_write on {}, which is not a blob being written",
                        a(0)
                    ))),
                }
            }
            I::BlobOpen => {
                let id = key_of(m, a(0), "blob id")?;
                Ok(match self.blob(&id)? {
                    Some(data) => self.open(BlobHandle::Reading { id, data, pos: 0 }) as i64,
                    None => {
                        self.missing_blobs.push(id);
                        0
                    }
                })
            }
            I::BlobRead => {
                let (ptr, len) = buffer_at(m, a(1))?;
                let chunk = match self.handles.get_mut(&a(0)) {
                    Some(BlobHandle::Reading { data, pos, .. }) => {
                        let end = data.len().min(pos.saturating_add(to_usize(len)?));
                        let chunk = data[*pos..end].to_vec();
                        *pos = end;
                        chunk
                    }
                    _ => {
                        return Err(abi(format!(
                            "blob_read on {}, which is not a blob being read",
                            a(0)
                        )))
                    }
                };
                if !m.write(to_usize(ptr)?, &chunk) {
                    return Err(abi(format!(
                        "blob_read: {len} bytes at {ptr:#x} are out of bounds"
                    )));
                }
                Ok(chunk.len() as i64)
            }
            I::BlobClose => {
                let id = match self.handles.remove(&a(0)) {
                    Some(BlobHandle::Writing(data)) => {
                        let id = *blake3::hash(&data).as_bytes();
                        self.created_blobs.insert(id, data);
                        id
                    }
                    Some(BlobHandle::Reading { id, .. }) => id,
                    None => return Ok(0),
                };
                fill_buffer(m, a(1), &id, "blob_close")?;
                Ok(1)
            }
            I::BlobAnnounceToContext => {
                let id = key_of(m, a(0), "blob id")?;
                let ctx = bytes_of(m, a(1), 32, "context id")?;
                if ctx != self.context_id || self.blob(&id)?.is_none() {
                    return Ok(0);
                }
                self.announced_blobs.push(id);
                Ok(1)
            }
        }
    }

    /// A blob created by this call or held by the node.
    fn blob(&self, id: &[u8; 32]) -> Result<Option<Rc<Vec<u8>>>> {
        match self.created_blobs.get(id) {
            Some(data) => Ok(Some(Rc::new(data.clone()))),
            None => Ok(self.loaded(&*self.blobs, ViewKind::Blob, id).map(Rc::new)),
        }
    }

    fn open(&mut self, handle: BlobHandle) -> u64 {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.handles.insert(fd, handle);
        fd
    }

    /// Queues a request for the node to make after the call.
    fn queue(&mut self, request: ContextRequest) -> Result<i64> {
        let max = self.limits.max_context_requests;
        if self.context_requests.len() >= max {
            return Err(limit(format!("more than {max} context requests")));
        }
        self.context_requests.push(request);
        Ok(0)
    }

    fn set_register(&mut self, id: u64, data: Vec<u8>) -> Result<i64> {
        if data.len() > self.limits.max_register_size {
            return Err(limit(format!("register of {} bytes", data.len())));
        }
        if !self.registers.contains_key(&id) && self.registers.len() >= self.limits.max_registers {
            return Err(limit(format!(
                "more than {} registers",
                self.limits.max_registers
            )));
        }
        self.registers.insert(id, data);
        Ok(0)
    }

    /// Reads through the call's own writes first, then the state it started from.
    fn read(&self, private: bool, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (writes, base, view) = if private {
            (&self.private_writes, &self.private, ViewKind::Private)
        } else {
            (&self.shared_writes, &self.shared, ViewKind::Shared)
        };
        match writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => Ok(self.loaded(&**base, view, key)),
        }
    }

    fn write(&mut self, private: bool, key: Vec<u8>, value: Option<Vec<u8>>) {
        let writes = if private {
            &mut self.private_writes
        } else {
            &mut self.shared_writes
        };
        writes.insert(key, value);
    }

    /// Writes a storage value; returns the previous one.
    fn store_write(
        &mut self,
        m: &dyn GuestMemory,
        private: bool,
        key: u64,
        value: u64,
    ) -> Result<Option<Vec<u8>>> {
        let key = bytes_of(m, key, self.limits.max_storage_key_size, "storage key")?;
        let value = bytes_of(
            m,
            value,
            self.limits.max_storage_value_size,
            "storage value",
        )?;
        let old = self.read(private, &key)?;
        self.write(private, key, Some(value));
        Ok(old)
    }

    fn emit(&mut self, m: &dyn GuestMemory, at: u64, handler: Option<String>) -> Result<i64> {
        let max = self.limits.max_events;
        if self.events.len() >= max {
            return Err(limit(format!("more than {max} events")));
        }
        let kind = string_of(m, at, self.limits.max_event_kind_size, "event kind")?;
        let data = bytes_of(
            m,
            at.wrapping_add(16),
            self.limits.max_event_data_size,
            "event data",
        )?;
        self.events.push(Event {
            kind,
            data,
            handler,
        });
        Ok(0)
    }
}
