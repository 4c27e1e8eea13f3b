//! The host side of the ABI: one wasmi host function per import, over a per-call [`HostState`].
//!
//! Guest values cross as calimero-sys lays them out (little-endian, 64-bit fields): a `Buffer` is
//! `{ptr: u64, len: u64}`, a `Location` is `{file: Buffer, line: u32, column: u32}`, an `Event` is
//! `{kind: Buffer, data: Buffer}`, a `ValueReturn` is `{tag: u64 (0 = Ok, 1 = Err), value: Buffer}`.
//! Pointers to these structs (`Ref<T>`) and register ids arrive as `i64`; `Bool` returns as `i32`.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use wasmi::{
    Caller, Engine, Error, Extern, Linker, Memory, Module, Store, StoreLimits, StoreLimitsBuilder,
    TrapCode,
};

use crate::{
    Call, ContextRequest, Event, Limits, NotLoaded, Outcome, RuntimeError, StateView, ViewKind,
    Views, WriteSet, XCallRequest,
};

/// Why the host stopped a call; carried through wasmi as a host error.
#[derive(Debug)]
struct HostTrap(RuntimeError);

impl fmt::Display for HostTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl wasmi::errors::HostError for HostTrap {}

fn trap(err: RuntimeError) -> Error {
    Error::host(HostTrap(err))
}

fn abi(message: impl Into<String>) -> Error {
    trap(RuntimeError::BadAbiUse(message.into()))
}

/// The longest protocol name or alias a guest may pass.
const MAX_NAME: usize = 256;

/// A 32-byte key or id the guest passed in a buffer.
fn key_of(c: &C<'_>, ptr: i64, what: &str) -> Result<[u8; 32], Error> {
    bytes_of(c, ptr as u64, 32, what)?
        .try_into()
        .map_err(|_| abi(format!("a {what} is 32 bytes")))
}

/// Queues a request for the node to make after the call.
fn queue(c: &mut C<'_>, request: ContextRequest) -> Result<(), Error> {
    let max = c.data().limits.max_context_requests;
    if c.data().context_requests.len() >= max {
        return Err(limit(format!("more than {max} context requests")));
    }
    c.data_mut().context_requests.push(request);
    Ok(())
}

/// A row of a view, or a [`RuntimeError::NotLoaded`] trap that stops the call.
fn loaded(base: &dyn StateView, view: ViewKind, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    base.get(key).map_err(|NotLoaded| {
        trap(RuntimeError::NotLoaded {
            view,
            key: key.to_vec(),
        })
    })
}

fn limit(message: impl Into<String>) -> Error {
    trap(RuntimeError::LimitExceeded(message.into()))
}

/// Everything one call sees and produces.
pub(crate) struct HostState {
    limits: Limits,
    memory_limits: StoreLimits,
    registers: HashMap<u64, Vec<u8>>,
    input: Vec<u8>,
    context_id: [u8; 32],
    executor_id: [u8; 32],
    time_now: u64,
    random: blake3::OutputReader,
    shared: Rc<dyn StateView>,
    private: Rc<dyn StateView>,
    blobs: Rc<dyn StateView>,
    members: Rc<std::collections::BTreeSet<[u8; 32]>>,
    shared_writes: WriteSet,
    private_writes: WriteSet,
    logs: Vec<String>,
    events: Vec<Event>,
    returns: Option<Result<Vec<u8>, Vec<u8>>>,
    committed: Option<([u8; 32], Vec<u8>)>,
    /// Open blob handles by descriptor; 0 is never a descriptor (it means "not found").
    handles: HashMap<u64, BlobHandle>,
    next_fd: u64,
    created_blobs: std::collections::BTreeMap<[u8; 32], Vec<u8>>,
    announced_blobs: Vec<[u8; 32]>,
    xcalls: Vec<XCallRequest>,
    context_requests: Vec<ContextRequest>,
    aliases: Rc<std::collections::BTreeMap<String, [u8; 32]>>,
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
            memory_limits: StoreLimitsBuilder::new()
                .memory_size(limits.max_memory_pages as usize * 65536)
                .trap_on_grow_failure(true)
                .build(),
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
            xcalls: Vec::new(),
            context_requests: Vec::new(),
            aliases: views.aliases,
        }
    }

    /// A blob created by this call or held by the node.
    fn blob(&self, id: &[u8; 32]) -> Result<Option<Rc<Vec<u8>>>, Error> {
        match self.created_blobs.get(id) {
            Some(data) => Ok(Some(Rc::new(data.clone()))),
            None => Ok(loaded(&*self.blobs, ViewKind::Blob, id)?.map(Rc::new)),
        }
    }

    fn open(&mut self, handle: BlobHandle) -> u64 {
        let fd = self.next_fd;
        self.next_fd += 1;
        self.handles.insert(fd, handle);
        fd
    }

    fn set_register(&mut self, id: u64, data: Vec<u8>) -> Result<(), Error> {
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
        Ok(())
    }

    /// Reads through the call's own writes first, then the state it started from.
    fn read(&self, private: bool, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let (writes, base, view) = if private {
            (&self.private_writes, &self.private, ViewKind::Private)
        } else {
            (&self.shared_writes, &self.shared, ViewKind::Shared)
        };
        match writes.get(key) {
            Some(value) => Ok(value.clone()),
            None => loaded(&**base, view, key),
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
}

type C<'a> = Caller<'a, HostState>;

fn memory(caller: &C<'_>) -> Result<Memory, Error> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| abi("the module exports no memory"))
}

fn read_exact<const N: usize>(caller: &C<'_>, ptr: u64) -> Result<[u8; N], Error> {
    let mut out = [0; N];
    memory(caller)?
        .read(caller, to_usize(ptr)?, &mut out)
        .map_err(|_| abi(format!("read of {N} bytes at {ptr:#x} is out of bounds")))?;
    Ok(out)
}

fn to_usize(value: u64) -> Result<usize, Error> {
    usize::try_from(value).map_err(|_| abi(format!("{value:#x} is not an address")))
}

fn u64_at(caller: &C<'_>, ptr: u64) -> Result<u64, Error> {
    read_exact::<8>(caller, ptr).map(u64::from_le_bytes)
}

/// The `(ptr, len)` of the `Buffer` struct at `at`.
fn buffer_at(caller: &C<'_>, at: u64) -> Result<(u64, u64), Error> {
    Ok((u64_at(caller, at)?, u64_at(caller, at + 8)?))
}

/// The bytes a `Buffer` struct at `at` points to, refusing more than `max` bytes.
fn bytes_of(caller: &C<'_>, at: u64, max: usize, what: &str) -> Result<Vec<u8>, Error> {
    let (ptr, len) = buffer_at(caller, at)?;
    let len = to_usize(len)?;
    if len > max {
        return Err(limit(format!("{what} of {len} bytes (limit {max})")));
    }
    let mut out = vec![0; len];
    memory(caller)?
        .read(caller, to_usize(ptr)?, &mut out)
        .map_err(|_| abi(format!("{what}: {len} bytes at {ptr:#x} are out of bounds")))?;
    Ok(out)
}

fn string_of(caller: &C<'_>, at: u64, max: usize, what: &str) -> Result<String, Error> {
    String::from_utf8(bytes_of(caller, at, max, what)?)
        .map_err(|_| abi(format!("{what} is not UTF-8")))
}

/// Writes `data` into the guest's `BufferMut` at `at`, which must be exactly as long.
fn fill_buffer(caller: &mut C<'_>, at: u64, data: &[u8], what: &str) -> Result<(), Error> {
    let (ptr, len) = buffer_at(caller, at)?;
    if len != data.len() as u64 {
        return Err(abi(format!(
            "{what}: buffer of {len} bytes for {} bytes",
            data.len()
        )));
    }
    let mem = memory(caller)?;
    mem.write(caller, to_usize(ptr)?, data)
        .map_err(|_| abi(format!("{what}: {len} bytes at {ptr:#x} are out of bounds")))
}

fn location_of(caller: &C<'_>, at: u64) -> Result<Option<String>, Error> {
    let file = string_of(caller, at, 4096, "panic location")?;
    let line = u32::from_le_bytes(read_exact::<4>(caller, at + 16)?);
    let column = u32::from_le_bytes(read_exact::<4>(caller, at + 20)?);
    Ok((!file.is_empty()).then(|| format!("{file}:{line}:{column}")))
}

fn flag(value: bool) -> i32 {
    i32::from(value)
}

fn unsupported(import: &'static str, reason: &'static str) -> Error {
    trap(RuntimeError::Unsupported { import, reason })
}

/// The linker with every import of the ABI defined, built once per runtime.
pub(crate) fn linker(engine: &Engine) -> Linker<HostState> {
    let mut l = Linker::new(engine);
    define(&mut l).expect("each import is defined once");
    l
}

fn define(l: &mut Linker<HostState>) -> Result<(), wasmi::errors::LinkerError> {
    // -- panics
    l.func_wrap("env", "panic", |c: C<'_>, loc: i64| -> Result<(), Error> {
        let location = location_of(&c, loc as u64)?;
        Err(trap(RuntimeError::Panic {
            message: "explicit panic".into(),
            location,
        }))
    })?;
    l.func_wrap(
        "env",
        "panic_utf8",
        |c: C<'_>, msg: i64, loc: i64| -> Result<(), Error> {
            let message =
                String::from_utf8_lossy(&bytes_of(&c, msg as u64, 64 * 1024, "panic message")?)
                    .into_owned();
            let location = location_of(&c, loc as u64)?;
            Err(trap(RuntimeError::Panic { message, location }))
        },
    )?;

    // -- registers
    l.func_wrap("env", "register_len", |c: C<'_>, reg: i64| -> i64 {
        c.data()
            .registers
            .get(&(reg as u64))
            .map_or(-1, |r| r.len() as i64)
    })?;
    l.func_wrap(
        "env",
        "read_register",
        |mut c: C<'_>, reg: i64, buf: i64| -> Result<i32, Error> {
            let Some(data) = c.data().registers.get(&(reg as u64)).cloned() else {
                return Err(abi(format!("register {reg} is not set")));
            };
            let (_, len) = buffer_at(&c, buf as u64)?;
            if len != data.len() as u64 {
                return Ok(0);
            }
            fill_buffer(&mut c, buf as u64, &data, "read_register")?;
            Ok(1)
        },
    )?;

    // -- who and what
    l.func_wrap(
        "env",
        "context_id",
        |mut c: C<'_>, reg: i64| -> Result<(), Error> {
            let id = c.data().context_id.to_vec();
            c.data_mut().set_register(reg as u64, id)
        },
    )?;
    l.func_wrap(
        "env",
        "executor_id",
        |mut c: C<'_>, reg: i64| -> Result<(), Error> {
            let id = c.data().executor_id.to_vec();
            c.data_mut().set_register(reg as u64, id)
        },
    )?;
    l.func_wrap(
        "env",
        "input",
        |mut c: C<'_>, reg: i64| -> Result<(), Error> {
            let input = c.data().input.clone();
            c.data_mut().set_register(reg as u64, input)
        },
    )?;
    l.func_wrap(
        "env",
        "value_return",
        |mut c: C<'_>, at: i64| -> Result<(), Error> {
            let tag = u64_at(&c, at as u64)?;
            let max = c.data().limits.max_return_size;
            let value = bytes_of(&c, at as u64 + 8, max, "return value")?;
            c.data_mut().returns = Some(match tag {
                0 => Ok(value),
                1 => Err(value),
                other => return Err(abi(format!("value_return tag {other}"))),
            });
            Ok(())
        },
    )?;
    l.func_wrap(
        "env",
        "log_utf8",
        |mut c: C<'_>, msg: i64| -> Result<(), Error> {
            let limits = &c.data().limits;
            let (max_logs, max_size) = (limits.max_logs, limits.max_log_size);
            if c.data().logs.len() >= max_logs {
                return Err(limit(format!("more than {max_logs} logs")));
            }
            let line = String::from_utf8_lossy(&bytes_of(&c, msg as u64, max_size, "log line")?)
                .into_owned();
            c.data_mut().logs.push(line);
            Ok(())
        },
    )?;
    l.func_wrap(
        "env",
        "emit",
        |mut c: C<'_>, event: i64| -> Result<(), Error> { emit(&mut c, event as u64, None) },
    )?;
    l.func_wrap(
        "env",
        "emit_with_handler",
        |mut c: C<'_>, event: i64, handler: i64| -> Result<(), Error> {
            let handler = string_of(&c, handler as u64, 1024, "event handler")?;
            emit(&mut c, event as u64, Some(handler))
        },
    )?;
    l.func_wrap(
        "env",
        "commit",
        |mut c: C<'_>, root: i64, artifact: i64| -> Result<(), Error> {
            let root: [u8; 32] = bytes_of(&c, root as u64, 32, "root hash")?
                .try_into()
                .map_err(|_| abi("the root hash must be 32 bytes"))?;
            let artifact = bytes_of(&c, artifact as u64, usize::MAX, "artifact")?;
            if c.data().committed.is_some() {
                return Err(abi("commit called twice in one call"));
            }
            c.data_mut().committed = Some((root, artifact));
            Ok(())
        },
    )?;

    // -- storage: shared (replicated through deltas) and private (this node only)
    for private in [false, true] {
        let (read, remove, write) = if private {
            (
                "private_storage_read",
                "private_storage_remove",
                "private_storage_write",
            )
        } else {
            ("storage_read", "storage_remove", "storage_write")
        };
        l.func_wrap(
            "env",
            read,
            move |mut c: C<'_>, key: i64, reg: i64| -> Result<i32, Error> {
                let key = bytes_of(
                    &c,
                    key as u64,
                    c.data().limits.max_storage_key_size,
                    "storage key",
                )?;
                match c.data().read(private, &key)? {
                    Some(value) => c.data_mut().set_register(reg as u64, value).map(|()| 1),
                    None => Ok(0),
                }
            },
        )?;
        l.func_wrap(
            "env",
            remove,
            move |mut c: C<'_>, key: i64, reg: i64| -> Result<i32, Error> {
                let key = bytes_of(
                    &c,
                    key as u64,
                    c.data().limits.max_storage_key_size,
                    "storage key",
                )?;
                let old = c.data().read(private, &key)?;
                c.data_mut().write(private, key, None);
                match old {
                    Some(value) => c.data_mut().set_register(reg as u64, value).map(|()| 1),
                    None => Ok(0),
                }
            },
        )?;
        if private {
            l.func_wrap(
                "env",
                write,
                move |mut c: C<'_>, key: i64, value: i64| -> Result<i32, Error> {
                    let existed = store_write(&mut c, true, key as u64, value as u64)?;
                    Ok(flag(existed.is_some()))
                },
            )?;
        } else {
            l.func_wrap(
                "env",
                write,
                move |mut c: C<'_>, key: i64, value: i64, reg: i64| -> Result<i32, Error> {
                    match store_write(&mut c, false, key as u64, value as u64)? {
                        Some(old) => c.data_mut().set_register(reg as u64, old).map(|()| 1),
                        None => Ok(0),
                    }
                },
            )?;
        }
    }

    // -- deterministic inputs
    l.func_wrap(
        "env",
        "random_bytes",
        |mut c: C<'_>, buf: i64| -> Result<(), Error> {
            let (_, len) = buffer_at(&c, buf as u64)?;
            let mut bytes = vec![0; to_usize(len)?.min(1 << 20)];
            c.data_mut().random.fill(&mut bytes);
            fill_buffer(&mut c, buf as u64, &bytes, "random_bytes")
        },
    )?;
    l.func_wrap(
        "env",
        "time_now",
        |mut c: C<'_>, buf: i64| -> Result<(), Error> {
            // The recorded time, the same for every read of the call: members merging a delta
            // replay the author's timestamp, and calimero-storage's roots then agree. (A clock
            // that advanced per read would make the merge depend on how often each side reads.)
            let now = c.data().time_now.to_le_bytes();
            fill_buffer(&mut c, buf as u64, &now, "time_now")
        },
    )?;
    l.func_wrap(
        "env",
        "ed25519_verify",
        |c: C<'_>, sig: i64, key: i64, msg: i64| -> Result<i32, Error> {
            let sig: [u8; 64] = bytes_of(&c, sig as u64, 64, "signature")?
                .try_into()
                .map_err(|_| abi("a signature is 64 bytes"))?;
            let key: [u8; 32] = bytes_of(&c, key as u64, 32, "public key")?
                .try_into()
                .map_err(|_| abi("a public key is 32 bytes"))?;
            let msg = bytes_of(&c, msg as u64, usize::MAX, "message")?;
            let ok = ed25519_dalek::VerifyingKey::from_bytes(&key)
                .map(|k| {
                    k.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
                        .is_ok()
                })
                .unwrap_or(false);
            Ok(flag(ok))
        },
    )?;

    l.func_wrap(
        "env",
        "xcall",
        |mut c: C<'_>, at: i64| -> Result<(), Error> {
            let at = at as u64;
            let context_id: [u8; 32] = bytes_of(&c, at, 32, "xcall context id")?
                .try_into()
                .map_err(|_| abi("an xcall context id is 32 bytes"))?;
            let function = string_of(&c, at + 16, 1024, "xcall function")?;
            let params = bytes_of(&c, at + 32, c.data().limits.max_return_size, "xcall params")?;
            let max = c.data().limits.max_xcalls;
            if c.data().xcalls.len() >= max {
                return Err(limit(format!("more than {max} xcalls")));
            }
            c.data_mut().xcalls.push(XCallRequest {
                context_id,
                function,
                params,
            });
            Ok(())
        },
    )?;
    l.func_wrap(
        "env",
        "fetch",
        |_: C<'_>, _: i64, _: i64, _: i64, _: i64, _: i64| -> Result<i32, Error> {
            Err(unsupported(
                "fetch",
                "a deterministic runtime makes no network calls",
            ))
        },
    )?;
    // -- proposals are a chain's (merod's proxy contracts); this node has none to send them to
    const NO_PROPOSALS: &str =
        "proposals go to a chain's proxy contract, which this node does not use";
    l.func_wrap(
        "env",
        "send_proposal",
        |_: C<'_>, _: i64, _: i64| -> Result<(), Error> {
            Err(unsupported("send_proposal", NO_PROPOSALS))
        },
    )?;
    l.func_wrap(
        "env",
        "approve_proposal",
        |_: C<'_>, _: i64| -> Result<(), Error> {
            Err(unsupported("approve_proposal", NO_PROPOSALS))
        },
    )?;
    // -- contexts and membership: requests queued and made by the node after the call, with
    // the caller's authority (membership through the context's log; only admins change it)
    l.func_wrap(
        "env",
        "context_create",
        |mut c: C<'_>, protocol: i64, app_id: i64, args: i64, alias: i64| -> Result<(), Error> {
            let text = |c: &C<'_>, ptr: i64, what: &str| -> Result<String, Error> {
                String::from_utf8(bytes_of(c, ptr as u64, MAX_NAME, what)?)
                    .map_err(|_| abi(format!("the {what} is not UTF-8")))
            };
            let protocol = text(&c, protocol, "protocol")?;
            let app_id: [u8; 32] = bytes_of(&c, app_id as u64, 32, "application id")?
                .try_into()
                .map_err(|_| abi("an application id is 32 bytes"))?;
            let args = bytes_of(
                &c,
                args as u64,
                c.data().limits.max_storage_value_size,
                "init args",
            )?;
            let alias = Some(text(&c, alias, "alias")?).filter(|a| !a.is_empty());
            queue(
                &mut c,
                ContextRequest::Create {
                    protocol,
                    app_id,
                    args,
                    alias,
                },
            )
        },
    )?;
    l.func_wrap(
        "env",
        "context_delete",
        |mut c: C<'_>, id: i64| -> Result<(), Error> {
            let id = key_of(&c, id, "context id")?;
            queue(&mut c, ContextRequest::Delete(id))
        },
    )?;
    for (name, request) in [
        (
            "context_add_member",
            ContextRequest::AddMember as fn([u8; 32]) -> ContextRequest,
        ),
        ("context_remove_member", ContextRequest::RemoveMember),
    ] {
        l.func_wrap(
            "env",
            name,
            move |mut c: C<'_>, key: i64| -> Result<(), Error> {
                let key = key_of(&c, key, "public key")?;
                queue(&mut c, request(key))
            },
        )?;
    }
    l.func_wrap(
        "env",
        "context_resolve_alias",
        |mut c: C<'_>, alias: i64, reg: i64| -> Result<i32, Error> {
            let alias = bytes_of(&c, alias as u64, MAX_NAME, "alias")?;
            let found = std::str::from_utf8(&alias)
                .ok()
                .and_then(|a| c.data().aliases.get(a).copied());
            match found {
                Some(id) => c
                    .data_mut()
                    .set_register(reg as u64, id.to_vec())
                    .map(|()| 1),
                None => Ok(0),
            }
        },
    )?;
    // -- membership as this node knows it (certificates it has verified)
    l.func_wrap(
        "env",
        "context_is_member",
        |c: C<'_>, key: i64| -> Result<i32, Error> {
            let key: [u8; 32] = bytes_of(&c, key as u64, 32, "public key")?
                .try_into()
                .map_err(|_| abi("a public key is 32 bytes"))?;
            Ok(flag(c.data().members.contains(&key)))
        },
    )?;
    l.func_wrap(
        "env",
        "context_members",
        |mut c: C<'_>, reg: i64| -> Result<(), Error> {
            // borsh Vec<[u8; 32]>: a u32 LE count, then the keys.
            let members = &c.data().members;
            let mut out = (members.len() as u32).to_le_bytes().to_vec();
            for key in members.iter() {
                out.extend_from_slice(key);
            }
            c.data_mut().set_register(reg as u64, out)
        },
    )?;
    // -- blobs: written and read in chunks through descriptors; created blobs go to the outcome
    l.func_wrap("env", "blob_create", |mut c: C<'_>| -> i64 {
        c.data_mut().open(BlobHandle::Writing(Vec::new())) as i64
    })?;
    l.func_wrap(
        "env",
        "blob_write",
        |mut c: C<'_>, fd: i64, data: i64| -> Result<i64, Error> {
            let max = c.data().limits.max_blob_size;
            let data = bytes_of(&c, data as u64, max, "blob chunk")?;
            match c.data_mut().handles.get_mut(&(fd as u64)) {
                Some(BlobHandle::Writing(blob)) => {
                    if blob.len() + data.len() > max {
                        return Err(limit(format!("a blob over {max} bytes")));
                    }
                    blob.extend_from_slice(&data);
                    Ok(data.len() as i64)
                }
                _ => Err(abi(format!(
                    "blob_write on {fd}, which is not a blob being written"
                ))),
            }
        },
    )?;
    l.func_wrap(
        "env",
        "blob_open",
        |mut c: C<'_>, id: i64| -> Result<i64, Error> {
            let id: [u8; 32] = bytes_of(&c, id as u64, 32, "blob id")?
                .try_into()
                .map_err(|_| abi("a blob id is 32 bytes"))?;
            Ok(match c.data().blob(&id)? {
                Some(data) => c.data_mut().open(BlobHandle::Reading { id, data, pos: 0 }) as i64,
                None => 0,
            })
        },
    )?;
    l.func_wrap(
        "env",
        "blob_read",
        |mut c: C<'_>, fd: i64, buf: i64| -> Result<i64, Error> {
            let (ptr, len) = buffer_at(&c, buf as u64)?;
            let chunk = match c.data_mut().handles.get_mut(&(fd as u64)) {
                Some(BlobHandle::Reading { data, pos, .. }) => {
                    let end = data.len().min(*pos + to_usize(len)?);
                    let chunk = data[*pos..end].to_vec();
                    *pos = end;
                    chunk
                }
                _ => {
                    return Err(abi(format!(
                        "blob_read on {fd}, which is not a blob being read"
                    )))
                }
            };
            let mem = memory(&c)?;
            mem.write(&mut c, to_usize(ptr)?, &chunk).map_err(|_| {
                abi(format!(
                    "blob_read: {len} bytes at {ptr:#x} are out of bounds"
                ))
            })?;
            Ok(chunk.len() as i64)
        },
    )?;
    l.func_wrap(
        "env",
        "blob_close",
        |mut c: C<'_>, fd: i64, buf: i64| -> Result<i32, Error> {
            let id = match c.data_mut().handles.remove(&(fd as u64)) {
                Some(BlobHandle::Writing(data)) => {
                    let id = *blake3::hash(&data).as_bytes();
                    c.data_mut().created_blobs.insert(id, data);
                    id
                }
                Some(BlobHandle::Reading { id, .. }) => id,
                None => return Ok(0),
            };
            fill_buffer(&mut c, buf as u64, &id, "blob_close")?;
            Ok(1)
        },
    )?;
    l.func_wrap(
        "env",
        "blob_announce_to_context",
        |mut c: C<'_>, id: i64, ctx: i64| -> Result<i32, Error> {
            let id: [u8; 32] = bytes_of(&c, id as u64, 32, "blob id")?
                .try_into()
                .map_err(|_| abi("a blob id is 32 bytes"))?;
            let ctx = bytes_of(&c, ctx as u64, 32, "context id")?;
            if ctx != c.data().context_id || c.data().blob(&id)?.is_none() {
                return Ok(0);
            }
            c.data_mut().announced_blobs.push(id);
            Ok(1)
        },
    )?;
    Ok(())
}

fn emit(c: &mut C<'_>, at: u64, handler: Option<String>) -> Result<(), Error> {
    let limits = &c.data().limits;
    let (max_events, max_kind, max_data) = (
        limits.max_events,
        limits.max_event_kind_size,
        limits.max_event_data_size,
    );
    if c.data().events.len() >= max_events {
        return Err(limit(format!("more than {max_events} events")));
    }
    let kind = string_of(c, at, max_kind, "event kind")?;
    let data = bytes_of(c, at + 16, max_data, "event data")?;
    c.data_mut().events.push(Event {
        kind,
        data,
        handler,
    });
    Ok(())
}

/// Writes a storage value; returns the previous one.
fn store_write(
    c: &mut C<'_>,
    private: bool,
    key: u64,
    value: u64,
) -> Result<Option<Vec<u8>>, Error> {
    let limits = &c.data().limits;
    let (max_key, max_value) = (limits.max_storage_key_size, limits.max_storage_value_size);
    let key = bytes_of(c, key, max_key, "storage key")?;
    let value = bytes_of(c, value, max_value, "storage value")?;
    let old = c.data().read(private, &key)?;
    c.data_mut().write(private, key, Some(value));
    Ok(old)
}

/// Instantiates the module and runs one exported method with the fuel budget.
pub(crate) fn run(
    engine: &Engine,
    linker: &Linker<HostState>,
    module: &Module,
    state: HostState,
    method: &str,
    fuel: Option<u64>,
) -> Result<Outcome, RuntimeError> {
    let max_pages = state.limits.max_memory_pages;
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory_limits);
    if let Some(fuel) = fuel {
        store.set_fuel(fuel).expect("fuel metering is on");
    }
    let fuel = fuel.unwrap_or(0);
    let classify = |store: &Store<HostState>, err: Error| -> RuntimeError {
        if let Some(HostTrap(e)) = err.downcast_ref::<HostTrap>() {
            return e.clone();
        }
        match err.as_trap_code() {
            Some(TrapCode::OutOfFuel) => {
                RuntimeError::OutOfFuel(fuel - store.get_fuel().unwrap_or(0))
            }
            Some(TrapCode::GrowthOperationLimited) => RuntimeError::OutOfMemory { max_pages },
            _ => RuntimeError::Trap(err.to_string()),
        }
    };
    let instance = linker
        .instantiate_and_start(&mut store, module)
        .map_err(|e| classify(&store, e))?;
    // calimero-sdk apps register their state's CRDT merge function in a global of the instance;
    // merod calls this once per loaded module, and an instance here lives for one call.
    if let Ok(register) = instance.get_typed_func::<(), ()>(&store, "__calimero_register_merge") {
        register
            .call(&mut store, ())
            .map_err(|e| classify(&store, e))?;
    }
    let func = instance
        .get_typed_func::<(), ()>(&store, method)
        .map_err(|_| RuntimeError::MethodNotFound(method.to_owned()))?;
    func.call(&mut store, ()).map_err(|e| classify(&store, e))?;
    let fuel_used = fuel - store.get_fuel().unwrap_or(0);
    let state = store.into_data();
    let (root_hash, artifact) = match state.committed {
        Some((root, artifact)) => (Some(root), artifact),
        None => (None, Vec::new()),
    };
    Ok(Outcome {
        returns: match state.returns {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => Err(e),
        },
        logs: state.logs,
        events: state.events,
        root_hash,
        artifact,
        shared_writes: state.shared_writes,
        private_writes: state.private_writes,
        blobs: state.created_blobs,
        announced_blobs: state.announced_blobs,
        xcalls: state.xcalls,
        context_requests: state.context_requests,
        fuel_used,
    })
}
