//! The node: apps, contexts and their state, local calls and remote deltas.
//!
//! [`Node`] is one struct; its work is split by what it is about, each part an `impl` block in a
//! module of its own (read them in this order):
//!
//! - here: the struct, opening it from a store, and the limits that bound what peers can make it do;
//! - [`format`]: the store's format version, checked and migrated before anything is read;
//! - [`layout`]: every store key prefix and the helpers that stage rows into a batch;
//! - [`context`]: a context in memory ([`ContextState`]) and what the rest asks of it;
//! - [`contexts`]: installing apps, creating, reading and dropping contexts;
//! - [`local`]: a local call, its requests (xcalls, new contexts) and the delta it makes;
//! - [`remote`]: messages from peers, and applying a delta once its parents are in;
//! - [`bounds`]: what a context keeps of deltas it cannot use (void ones within a budget, the
//!   ids of those refused for good);
//! - [`sync`]: the timer work of [`Node::handle_timeout`], sync requests and state snapshots;
//! - [`handlers`]: the event handlers a call's events name, run after the call;
//! - [`join`], [`app_fetch`], [`members`], [`identity`]: invitations and joining (the app
//!   fetched from members when this node lacks it), membership operations, this node's key;
//! - [`replay`]: running stored deltas again (replay, rebuilds after a log change or a bad root);
//! - [`sealing`], [`payloads`], [`audit_trail`]: secrets and sealing, withheld payloads, the trail;
//! - [`proposals`]: proposals and approvals, the context's own proxy (see [`crate::proposals`]);
//! - [`call_once`]: a call made with a call id runs at most once; a retry gets its answer;
//! - [`blobs`]: blobs the node's owner puts in and reads out;
//! - [`events`], [`results`]: what the node hands back to its driver and its callers.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;
use tabnode_runtime::{
    migrated_state_entry, sign_user_actions, state_entry_key, App, Call, ContextRequest, Outcome,
    Runtime, RuntimeError, StateView, ViewKind, Views, WriteSet, XCallRequest,
};
use tabnode_store::{Batch, MerkleTree, Namespace, Store, StoreError};
use tabnode_types::{
    verify_signature, AppId, ContextId, DeltaId, Hash, PublicKey, SecretKey, Signature,
};

use crate::audit::{verify_chain, AuditEntry, AuditHead, AuditKind, AuditRecord, AuditReport};
use crate::chain_request::{self, ChainSigner};
use crate::delta::{Delta, DeltaBody, EventRecord, Genesis};
use crate::disclosure::Disclosure;
use crate::env::Env;
use crate::error::NodeError;
use crate::log::{chain_of, with_ancestors, Entry as LogEntry, Log, MemberOp, Share};
use crate::membership::{ChainTooDeep, Invitation, InvitationGrant, Issuance, MemberCert, Role};
use crate::proposals::{Proposal, ProposalAction, ProposalId, Proxy};
use crate::rows::Rows;
use crate::seal;
use crate::snapshot::{self, Assembly, Covering, Phase, Snapshot};
use crate::wire::{SealedPart, WireMessage};
use crate::{context_handshake_key, context_topic, context_topic_key, CONTEXT_TOPIC_PREFIX};
use tabnode_identity::grant::{SignedGrant, SignedRevocation};

mod app_fetch;
mod audit_trail;
mod blob_fetch;
mod blobs;
mod bounds;
mod call_once;
pub use audit_trail::READ_AUDITS_WAIT_NANOS;
pub use call_once::{KEEP_ANSWERS_NANOS, MAX_CALL_ID_BYTES};
mod context;
mod contexts;
mod events;
mod format;
mod guest;
mod handlers;
mod identity;
mod join;
mod layout;
mod local;
mod members;
mod pacing;
mod parts;
mod payloads;
mod proposals;
mod remote;
mod replay;
mod results;
mod sealing;
mod sync;
mod waiting;

pub use self::app_fetch::MAX_FETCHED_APP_BYTES;
pub use self::blob_fetch::BLOB_ASKS;
pub use self::bounds::{
    REFUSED_DELTAS, VOID_BYTES_PER_CONTEXT, VOID_BYTES_PER_KEY, VOID_DELTAS_PER_CONTEXT,
    VOID_DELTAS_PER_KEY,
};
pub use self::events::{NodeEvent, Outgoing};
pub use self::format::{FORMAT_BEFORE_VERSIONS, STORE_FORMAT};
pub use self::guest::{GuestPolicy, GuestRequest};
pub use self::handlers::HANDLER_DEPTH;
pub use self::pacing::{PartPacing, MOST_WAITING_PART_BYTES};
pub use self::parts::{AppPartError, Content, PartError, APP_PART_BYTES};
pub use self::results::{
    AnchorView, Checkpoint, ContextRequestResult, ExecuteResult, ReplayReport, XCallResult,
};
use self::{
    app_fetch::*,
    bounds::{AnnouncedHeads, RefusedDeltas, Remembered, VoidTally},
    context::*,
    guest::Action,
    handlers::HandlerCall,
    join::*,
    layout::*,
    replay::*,
    waiting::Waiting,
};

/// Writes held back (see [`Node::hold_writes`]) go to the store once they number this many: one
/// transaction each few thousand covered deltas rather than one per delta, in bounded memory.
const MAX_HELD_WRITES: usize = 16_384;

/// A member answers one that lacks at least this many deltas with a state snapshot too (see
/// [`crate::snapshot`]); [`Node::set_snapshot_threshold`] changes it.
pub const DEFAULT_SNAPSHOT_THRESHOLD: usize = 500;

/// At most one snapshot offer per context in this long (ns).
const SNAPSHOT_OFFER_NANOS: u64 = 30_000_000_000;

/// Gossip messages stay well under the transport's 1 MiB limit.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Largest app binary an upgrade carries: it travels in one message, with room for the rest.
const MAX_UPGRADE_BYTES: usize = 900 * 1024;

/// A message larger than this is refused unread (the transport's own limit is 1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// How often (ns) a context with missing parents asks its peers again.
const SYNC_RETRY_NANOS: u64 = 2_000_000_000;

/// How often a context announces its heads to its members (anti-entropy).
pub const ANNOUNCE_NANOS: u64 = 5_000_000_000;

/// How long a verified snapshot waits for the deltas it covers before it is dropped (see
/// [`Node::end_stale_snapshot`]).
const COVERING_NANOS: u64 = 120_000_000_000;
/// A member whose root this node found wrong where a rebuild had given this node's (see
/// `compare_root`) is not listened to about roots for this long.
const DISPROVEN_NANOS: u64 = 600_000_000_000;
/// At most one rebuild for a root mismatch per context in this long (see `compare_root`).
const REPAIR_NANOS: u64 = 30_000_000_000;

/// A call that asks for more rows than this, one at a time (see [`Rows`]), gets the whole view
/// read in one scan instead: re-running a call per row would cost quadratic time.
const MAX_ROW_MISSES: usize = 64;

/// How far (ns) a remote delta's timestamp may be ahead of this node's clock: five minutes.
/// Timestamps order concurrent deltas and every delta must be later than its parents, so one
/// stamped at the end of time would leave no timestamp for anything after it; a delta further
/// ahead than this is refused until the clock has caught up with it (see
/// [`NodeError::FutureDelta`]). Members whose clocks differ by more cannot write together.
pub const MAX_CLOCK_SKEW_NANOS: u64 = 5 * 60 * 1_000_000_000;

/// How long an invitation made without an explicit expiry stays usable: a week.
pub const DEFAULT_INVITATION_NANOS: u64 = 7 * 24 * 3600 * 1_000_000_000;

/// How many sync requests a member may make at once before it must wait (see
/// [`ContextState::take_sync_token`]), and how often (ns) it earns one more.
const SYNC_BURST: u64 = 16;

const SYNC_REFILL_NANOS: u64 = 500_000_000;

/// How deep xcalls may chain (an xcall's own xcalls count one deeper); how many calls they make
/// in all is the action's budget (`Limits::action_calls`, see [`guest`]).
const MAX_XCALL_DEPTH: usize = 4;

fn corrupt(what: &str, err: impl std::fmt::Display) -> NodeError {
    NodeError::Corrupt(format!("{what}: {err}"))
}

/// Guest output and event data are JSON by convention; anything else is shown as bytes.
fn json_or_bytes(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| serde_json::Value::from(bytes.to_vec()))
}

/// The tabnode node. See the crate docs for how it is driven.
pub struct Node<S: Store, E: Env> {
    store: S,
    env: E,
    runtime: Runtime,
    key: SecretKey,
    apps: HashMap<AppId, App>,
    contexts: HashMap<ContextId, ContextState>,
    /// The time (ns since the epoch) the latest input came at: given by the driver
    /// ([`Node::advance_to`]), never read from a clock, and never going back.
    now: u64,
    /// The latest timestamp this node has used or seen in any delta: local calls run strictly
    /// after it (a hybrid logical clock), or a node whose wall clock is behind a member's could
    /// not write after merging that member's delta (calimero-storage keeps the newer record).
    clock: u64,
    /// The blobs this node has read or made, by id (read from the store as calls ask for them).
    blobs: Rc<Rows>,
    /// Names a guest gave contexts it created (`context_create`), for `context_resolve_alias`.
    aliases: Rc<BTreeMap<String, [u8; 32]>>,
    /// The root's grant of this node's key, once signed in: shown in every context this node
    /// holds (see [`Node::use_root_grant`]).
    root: Option<SignedGrant>,
    /// The key [`Node::prepare_rotation`] made, for the rotation that follows.
    next_key: Option<SecretKey>,
    /// How many deltas a member must lack before this node answers it with a snapshot too.
    snapshot_threshold: Option<usize>,
    /// The sites whose NEP-413 signatures this node takes in root statements (`None`: any);
    /// see [`Node::set_nep413_recipients`].
    nep413_recipients: Option<BTreeSet<String>>,
    /// Contexts this node asked to join and holds no secret of yet (see [`Node::join`]).
    joining: HashMap<ContextId, Joining>,
    /// Blobs this node fetches from a context's members (see [`blob_fetch`]).
    blob_fetches: HashMap<(ContextId, Hash), blob_fetch::BlobFetch>,
    /// Writes held back to go to the store together (see [`Node::hold_writes`]), in order.
    held: Option<(ContextId, Batch)>,
    /// Handlers calls and members' deltas named, to run here in order (see [`handlers`]).
    handler_calls: std::collections::VecDeque<HandlerCall>,
    /// The stored queue's row of the handler running now: the next write takes it off.
    handler_ran: Option<Vec<u8>>,
    /// How many handlers deep the call running now is (0: not a handler's call).
    handler_depth: u8,
    /// Audit records of read-only calls not written yet, oldest first: every write takes them
    /// first (see [`Node::defer_read_audits`]).
    unwritten_reads: Vec<(ContextId, AuditRecord)>,
    /// How many such records may wait (0: each is written before its call returns).
    most_unwritten_reads: usize,
    /// The call with a call id that runs now (see [`call_once`]).
    once_call: Option<call_once::OnceCall>,
    /// When stored answers of calls were last pruned.
    answers_pruned_at: Option<u64>,
    /// How guests' requests that cannot be undone are answered (see [`guest`]).
    guest_policy: GuestPolicy,
    /// Parts of apps and blobs waiting to go out, and how fast they go (see [`pacing`]).
    parts_out: pacing::PartQueue,
    pacing: PartPacing,
    outgoing: Vec<Outgoing>,
    events: Vec<NodeEvent>,
}

impl<S: Store, E: Env> Node<S, E> {
    /// Opens the node on `store`: checks the store's format (migrating an older one, refusing a
    /// newer one untouched: [`NodeError::StoreFormatTooNew`]), loads (or creates) its key and
    /// every context, and asks peers for anything it missed while it was away.
    pub async fn open(store: S, env: E, runtime: Runtime) -> Result<Self, NodeError> {
        format::open_format(&store).await?;
        let key = match store.get(Namespace::Keys, NODE_KEY).await? {
            Some(seed) => SecretKey::from_seed(
                seed.try_into()
                    .map_err(|_| corrupt("node key", "not 32 bytes"))?,
            ),
            None => {
                let key = SecretKey::from_seed(env.random32());
                let mut batch = Batch::new().put(Namespace::Keys, NODE_KEY, key.seed().to_vec());
                format::stage_format(&mut batch);
                store.commit(batch).await?;
                key
            }
        };
        let mut node = Self {
            store,
            env,
            runtime,
            key,
            apps: HashMap::new(),
            contexts: HashMap::new(),
            blobs: Rc::new(Rows::unread()),
            aliases: Rc::default(),
            root: None,
            next_key: None,
            snapshot_threshold: Some(DEFAULT_SNAPSHOT_THRESHOLD),
            joining: HashMap::new(),
            blob_fetches: HashMap::new(),
            nep413_recipients: None,
            now: 0,
            clock: 0,
            held: None,
            handler_calls: Default::default(),
            handler_ran: None,
            handler_depth: 0,
            unwritten_reads: Vec::new(),
            most_unwritten_reads: 0,
            once_call: None,
            answers_pruned_at: None,
            guest_policy: GuestPolicy::default(),
            parts_out: Default::default(),
            pacing: PartPacing::default(),
            outgoing: Vec::new(),
            events: Vec::new(),
        };
        let mut aliases = BTreeMap::new();
        for (key, id) in node.store.scan_prefix(Namespace::Meta, ALIAS).await? {
            let (Ok(alias), Ok(id)) = (
                String::from_utf8(key[ALIAS.len()..].to_vec()),
                id.try_into(),
            ) else {
                return Err(corrupt("context alias", "not a name and a 32-byte id"));
            };
            aliases.insert(alias, id);
        }
        node.aliases = Rc::new(aliases);
        for (id, record) in node.store.scan_prefix(Namespace::Contexts, &[]).await? {
            let id = ContextId(
                id.try_into()
                    .map_err(|_| corrupt("context key", "not 32 bytes"))?,
            );
            let record =
                ContextRecord::try_from_slice(&record).map_err(|e| corrupt("context record", e))?;
            node.load_context(id, record).await?;
        }
        // A context that stopped while a snapshot covered its deltas has recorded deltas it
        // never ran: its state is rebuilt from them.
        for (key, _) in node.store.scan_prefix(Namespace::Meta, COVERING).await? {
            let id = ContextId(
                key[COVERING.len()..]
                    .try_into()
                    .map_err(|_| corrupt("snapshot marker", "not a context id"))?,
            );
            let Some(mut ctx) = node.contexts.remove(&id) else {
                continue; // left behind by a context since dropped
            };
            let result = node.rebuild(&mut ctx, Order::Applied).await;
            node.contexts.insert(id, ctx);
            result?;
        }
        for (key, value) in node.store.scan_prefix(Namespace::Meta, JOINING).await? {
            let id = ContextId(
                key[JOINING.len()..]
                    .try_into()
                    .map_err(|_| corrupt("join under way", "not a context id"))?,
            );
            let (app_id, cert) = <(AppId, MemberCert)>::try_from_slice(&value)
                .map_err(|e| corrupt("join under way", e))?;
            node.start_joining(id, app_id, cert).await?;
        }
        if let Some(bytes) = node.store.get(Namespace::Keys, NEXT_NODE_KEY).await? {
            let (seed, grant, revocation) =
                <([u8; 32], SignedGrant, SignedRevocation)>::try_from_slice(&bytes)
                    .map_err(|e| corrupt("key rotation", e))?;
            let next = SecretKey::from_seed(seed);
            if let Err(e) = node.finish_rotation(next, grant, revocation).await {
                tracing::warn!(%e, "could not finish the key rotation under way");
            }
        }
        node.load_handlers().await?;
        node.run_queued_handlers().await;
        Ok(node)
    }

    async fn load_context(
        &mut self,
        id: ContextId,
        record: ContextRecord,
    ) -> Result<(), NodeError> {
        let mut dag = HashMap::new();
        let mut members = BTreeMap::from([(record.cert.member, standing(&record.cert))]);
        let mut sizes = HashMap::new();
        for (_, bytes) in self
            .store
            .scan_prefix(Namespace::Deltas, id.as_bytes())
            .await?
        {
            let delta = Delta::try_from_slice(&bytes).map_err(|e| corrupt("delta", e))?;
            let id = delta.id();
            sizes.insert(id, bytes.len());
            let body = delta.body;
            let cert = &body.author_cert;
            members.insert(cert.member, standing(cert));
            if let Some(MemberOp::Admit { cert, .. }) = &body.op {
                members.entry(cert.member).or_insert_with(|| standing(cert));
            }
            let entry = LogEntry::new(body.parents, body.author, body.timestamp, cert, body.op);
            dag.insert(id, entry);
        }
        let audit = match self
            .store
            .last_with_prefix(Namespace::Audit, id.as_bytes())
            .await?
        {
            Some((_, bytes)) => AuditRecord::try_from_slice(&bytes)
                .map_err(|e| corrupt("audit record", e))?
                .next_head(),
            None => AuditHead::default(),
        };
        let secret: [u8; 32] = self
            .store
            .get(Namespace::Keys, &scoped(&id, CONTEXT_SECRET))
            .await?
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt("context secret", format!("missing for {id}")))?;
        let mut disclosure = BTreeMap::new();
        let prefix = [DISCLOSE, id.as_bytes()].concat();
        for (key, value) in self.store.scan_prefix(Namespace::Meta, &prefix).await? {
            let kind = String::from_utf8(key[prefix.len()..].to_vec())
                .map_err(|e| corrupt("disclosure setting", e))?;
            let setting =
                Disclosure::try_from_slice(&value).map_err(|e| corrupt("disclosure setting", e))?;
            disclosure.insert(kind, setting);
        }
        let anchor = match self
            .store
            .get(Namespace::Meta, &scoped_meta(ANCHOR, &id))
            .await?
        {
            Some(bytes) => {
                Some(AnchorView::try_from_slice(&bytes).map_err(|e| corrupt("anchor view", e))?)
            }
            None => None,
        };
        let created_by = match self
            .store
            .get(Namespace::Meta, &scoped_meta(CREATED_BY, &id))
            .await?
        {
            Some(bytes) => {
                Some(ContextId(bytes.try_into().map_err(|_| {
                    corrupt("creator of a context", "not a context id")
                })?))
            }
            None => None,
        };
        let prefix = scoped_meta(REFUSED, &id);
        let mut refused = Vec::new();
        for (key, value) in self.store.scan_prefix(Namespace::Meta, &prefix).await? {
            let delta = key[prefix.len()..].try_into().map(DeltaId);
            let number = value.try_into().map(u64::from_le_bytes);
            match (delta, number) {
                (Ok(delta), Ok(number)) => refused.push((number, delta)),
                _ => return Err(corrupt("refused delta", "not a delta id and a number")),
            }
        }
        let mut older = Vec::new();
        for (_, value) in self
            .store
            .scan_prefix(Namespace::Keys, &scoped(&id, OLD_SECRET))
            .await?
        {
            let (secret, by) = value
                .split_at_checked(32)
                .and_then(|(s, b)| Some((s.try_into().ok()?, DeltaId(b.try_into().ok()?))))
                .ok_or_else(|| corrupt("former context secret", "not 64 bytes"))?;
            older.push((secret, by));
        }
        let made_prefix = scoped(&id, MADE_SECRET);
        let mut made = BTreeMap::new();
        for (key, value) in self
            .store
            .scan_prefix(Namespace::Keys, &made_prefix)
            .await?
        {
            let op = key[made_prefix.len()..].try_into().map(DeltaId);
            match (op, <[u8; 32]>::try_from(value)) {
                (Ok(op), Ok(secret)) => made.insert(op, secret),
                _ => {
                    return Err(corrupt(
                        "secret an operation made",
                        "not an id and 32 bytes",
                    ))
                }
            };
        }
        // Before those were kept, a node moved to the secret an operation made as soon as it
        // took it: the secret after an operation that sealed it no share is the one it made.
        let gives_unshared = |op: &DeltaId| {
            dag.get(op).is_some_and(|e: &LogEntry| {
                e.op.as_ref().is_some_and(|o| {
                    o.removes(&e.author).is_some()
                        && !o.shares().iter().any(|s| s.member == self.key.public())
                })
            })
        };
        for (at, (_, by)) in older.iter().enumerate() {
            if gives_unshared(by) && !made.contains_key(by) {
                let next = older.get(at + 1).map_or(secret, |(s, _)| *s);
                made.insert(*by, next);
            }
        }
        self.outgoing.push(Outgoing::Subscribe {
            topic: context_topic(&id),
            key: context_topic_key(&id),
        });
        let log = Log::judge(&dag);
        // The void deltas held count against their budget (see [`bounds`]).
        let mut void_taken = VoidTally::default();
        for id in &log.verdict().void {
            void_taken.charge(log.answerable_for(&dag[id]), sizes[id]);
        }
        let mut ctx = ContextState {
            log,
            void_taken,
            disclosure,
            anchor,
            created_by,
            announced: dag.values().any(|e| e.author == self.key.public()),
            dag,
            members,
            older,
            audit,
            refused: RefusedDeltas::from_stored(refused),
            made,
            ..ContextState::new(id, record, secret)
        };
        let ops: Vec<(DeltaId, LogEntry)> = ctx
            .dag
            .iter()
            .filter(|(_, e)| e.op.is_some())
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        for (op, entry) in &ops {
            ctx.keep_share(&self.key, *op, entry);
        }
        // A node that stopped between taking a delta and moving to the secret it made the
        // log's moves now (the latest of the operations standing for the delta).
        let latest = ctx.log.latest_secret_ops(&ctx.dag).last().copied();
        if let (Some(next), Some(by)) = (ctx.judged_secret(), latest) {
            if next != ctx.secret {
                let mut batch = Batch::new();
                ctx.stage_rotation(&next, &by, &mut batch);
                self.commit(batch).await?;
                ctx.rotate(next, by);
            }
        }
        self.clock = self.clock.max(ctx.latest_standing());
        self.contexts.insert(id, ctx);
        // Ask peers for anything missed while away (or, for a joiner, for the whole state).
        let ctx = self.contexts.get_mut(&id).expect("inserted above");
        ctx.asked_on_load = true;
        let (secret, request) = (ctx.secret, ctx.sync_request(&self.key));
        self.publish(id, &secret, request);
        Ok(())
    }

    /// Seals a message with the context's secret and queues it on the context's topic.
    fn publish(&mut self, context_id: ContextId, secret: &[u8; 32], message: WireMessage) {
        self.reply(context_id, secret, message, None);
    }

    /// Sends `message` to the member `to` alone if the network peer is known, else publishes.
    fn reply(
        &mut self,
        context_id: ContextId,
        secret: &[u8; 32],
        message: WireMessage,
        to: Option<&str>,
    ) {
        let out = self.addressed(context_id, secret, message, to);
        self.outgoing.push(out);
    }

    /// `message` sealed with the context's secret, for the network peer `to` if known, else for
    /// the context's topic.
    fn addressed(
        &self,
        context_id: ContextId,
        secret: &[u8; 32],
        message: WireMessage,
        to: Option<&str>,
    ) -> Outgoing {
        let data = seal::seal(secret, &context_id, self.env.random32(), &message.encode());
        let topic = context_topic(&context_id);
        match to {
            Some(peer) => Outgoing::Reply {
                peer: peer.to_owned(),
                topic,
                data,
            },
            None => Outgoing::Publish { topic, data },
        }
    }

    /// This node's public key: its identity as a member and as the executor of its calls.
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// The seed the network layer derives this node's peer identity from.
    pub fn network_identity_seed(&self) -> [u8; 32] {
        *blake3::keyed_hash(&self.key.seed(), b"tabnode libp2p identity").as_bytes()
    }

    /// What the node wants sent, in order.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outgoing)
    }

    /// What subscribers should be told, in order.
    pub fn take_events(&mut self) -> Vec<NodeEvent> {
        std::mem::take(&mut self.events)
    }

    /// The environment (randomness) the node runs on.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// Gives the node the time (ns since the epoch) of the input that follows: a driver calls
    /// this before each input (a call, a message, a join...) with its own clock's reading, as
    /// `str0m`'s `Rtc` takes `Input::Timeout`. The node reads no clock itself, so a run is fixed
    /// by its inputs and their times, not by how often anyone looks at a clock. Time never goes
    /// back inside the node: an earlier `now` than the last one given is taken as the last one.
    pub fn advance_to(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// The latest time given ([`Node::advance_to`], [`Node::handle_timeout`]); 0 before any.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// From how many deltas a member lacks this node answers it with a state snapshot besides
    /// the deltas (`None`: never). See [`crate::snapshot`].
    pub fn set_snapshot_threshold(&mut self, deltas: Option<usize>) {
        self.snapshot_threshold = deltas;
    }

    /// Ids of the contexts this node holds.
    pub fn context_ids(&self) -> Vec<ContextId> {
        let mut ids: Vec<_> = self.contexts.keys().copied().collect();
        ids.sort();
        ids
    }

    fn context(&self, id: &ContextId) -> Result<&ContextState, NodeError> {
        self.contexts
            .get(id)
            .ok_or_else(|| match self.joining.contains_key(id) {
                true => NodeError::NotSynced(id.to_string()),
                false => NodeError::UnknownContext(id.to_string()),
            })
    }

    /// Every write of the node goes through here: to the store at once, or, while writes are
    /// held, after the ones held before it (so a crash never leaves a later write without an
    /// earlier one, e.g. an audit record without the one it follows). Audit records of reads
    /// not written yet go first, in the same transaction (see [`Node::defer_read_audits`]);
    /// if it fails they wait on, still first. The first write of a handler's call takes the
    /// handler off the stored queue (see [`handlers`]).
    async fn commit(&mut self, mut batch: Batch) -> Result<(), StoreError> {
        if let Some(row) = &self.handler_ran {
            batch.delete_mut(Namespace::Meta, row);
        }
        if let Some((_, held)) = &mut self.held {
            held.append(batch);
            self.handler_ran = None;
            return Ok(());
        }
        if self.unwritten_reads.is_empty() {
            self.store.commit(batch).await?;
            self.handler_ran = None;
            return Ok(());
        }
        let mut all = Batch::new();
        for (context_id, record) in &self.unwritten_reads {
            stage_audit(&mut all, *context_id, record);
        }
        all.append(batch);
        self.store.commit(all).await?;
        self.unwritten_reads.clear();
        self.handler_ran = None;
        Ok(())
    }

    /// [`Node::commit`] of a batch made in two parts (see [`Store::commit_parts`]): `first`
    /// goes to the store at once and `rest` is made while the store writes it; `later` names
    /// the namespaces `rest` writes. Held writes, reads' audit records and a handler's row go
    /// as [`Node::commit`] sends them.
    async fn commit_parts(
        &mut self,
        first: Batch,
        later: &[Namespace],
        rest: impl FnOnce() -> Batch,
    ) -> Result<(), StoreError> {
        if self.held.is_some() {
            let mut batch = first;
            batch.append(rest());
            return self.commit(batch).await;
        }
        let mut all = Batch::new();
        for (context_id, record) in &self.unwritten_reads {
            stage_audit(&mut all, *context_id, record);
        }
        all.append(first);
        if let Some(row) = &self.handler_ran {
            all.delete_mut(Namespace::Meta, row);
        }
        self.store.commit_parts(all, later, || Ok(rest())).await?;
        self.unwritten_reads.clear();
        self.handler_ran = None;
        Ok(())
    }

    /// Whether a snapshot is half in place in `context_id`, recording the deltas it covers.
    fn is_covering(&self, context_id: &ContextId) -> bool {
        self.contexts
            .get(context_id)
            .is_some_and(|ctx| matches!(ctx.snapshot, Phase::Covering(_)))
    }

    /// Holds writes back until [`Node::release_writes`], while `context_id` records the deltas
    /// a snapshot covers: many small steps that all may be redone if lost (one IndexedDB
    /// transaction per delta was most of a snapshot catch-up in the page). Nothing may read
    /// the store for what is held in the meantime. Returns whether this call began the hold.
    async fn hold_writes(&mut self, context_id: ContextId) -> Result<bool, NodeError> {
        match &self.held {
            Some((held_for, _)) if *held_for == context_id => return Ok(false),
            Some(_) => self.release_writes().await?,
            None => {}
        }
        self.held = Some((context_id, Batch::new()));
        Ok(true)
    }

    /// Writes what is held, if it has grown to [`MAX_HELD_WRITES`], and holds on.
    async fn release_if_large(&mut self) -> Result<(), NodeError> {
        let Some((context_id, held)) = &self.held else {
            return Ok(());
        };
        if held.len() < MAX_HELD_WRITES {
            return Ok(());
        }
        let context_id = *context_id;
        self.release_writes().await?;
        self.held = Some((context_id, Batch::new()));
        Ok(())
    }

    /// Writes what is held in one transaction and stops holding. If that fails, the context's
    /// memory is ahead of the store: it is read again from the store, which is whole as of the
    /// last release (what was lost is asked for again like anything missed).
    async fn release_writes(&mut self) -> Result<(), NodeError> {
        let Some((context_id, held)) = self.held.take() else {
            return Ok(());
        };
        if held.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.commit(held).await {
            self.reload_context(context_id).await?;
            return Err(e.into());
        }
        Ok(())
    }
    /// Drops a context's memory and reads it again from the store, as [`Node::open`] does
    /// (a context whose snapshot was still covering deltas is rebuilt from those deltas).
    async fn reload_context(&mut self, id: ContextId) -> Result<(), NodeError> {
        self.contexts.remove(&id);
        let Some(record) = self.store.get(Namespace::Contexts, id.as_bytes()).await? else {
            return Ok(());
        };
        let record =
            ContextRecord::try_from_slice(&record).map_err(|e| corrupt("context record", e))?;
        self.load_context(id, record).await?;
        let marker = [COVERING, id.as_bytes()].concat();
        if self.store.get(Namespace::Meta, &marker).await?.is_some() {
            let mut ctx = self.contexts.remove(&id).expect("just loaded");
            let result = self.rebuild(&mut ctx, Order::Applied).await;
            self.contexts.insert(id, ctx);
            result?;
        }
        Ok(())
    }
}
