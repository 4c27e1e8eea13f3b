//! The node: apps, contexts and their state, local calls and remote deltas.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::Serialize;
use tabnode_runtime::{
    migrated_state_entry, state_entry_key, App, Call, ContextRequest, Outcome, Runtime,
    RuntimeError, StateView, ViewKind, Views, WriteSet, XCallRequest,
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
use crate::membership::{ChainTooDeep, Invitation, Issuance, MemberCert, Role};
use crate::rows::Rows;
use crate::seal;
use crate::snapshot::{self, Assembly, Covering, Phase, Snapshot};
use crate::wire::WireMessage;
use crate::{context_handshake_key, context_topic, context_topic_key, CONTEXT_TOPIC_PREFIX};
use tabnode_identity::grant::{SignedGrant, SignedRevocation};

/// Where a context's secret is kept in [`Namespace::Keys`], after the context id.
const CONTEXT_SECRET: &[u8] = b"context-secret";
/// Where the creator's node keeps the context's own key (its public half is the context id) in
/// [`Namespace::Keys`], after the context id. It certified the creator, and it signs the
/// request that adds the context to a chain's contract; no other node has it.
const CONTEXT_KEY: &[u8] = b"context-key";
/// Where a context's former secrets are kept in [`Namespace::Keys`], after the context id, with
/// their index (big-endian u32): the secret, then the id of the operation that replaced it.
const OLD_SECRET: &[u8] = b"old-secret";
/// Where a context's disclosure settings are kept in [`Namespace::Meta`]: this prefix, the
/// context id, then the event kind.
const DISCLOSE: &[u8] = b"disclose:";
/// Where withheld event payloads are kept in [`Namespace::Meta`]: this prefix, the context id,
/// then the payload's hash.
const PAYLOAD: &[u8] = b"payload:";
/// Marks a context in [`Namespace::Meta`] (this prefix, then the context id) while it records
/// deltas a snapshot covers without running them: a node that stops before the snapshot is in
/// place rebuilds the state from those deltas when it opens again.
const COVERING: &[u8] = b"snapshot-covering:";
/// A member answers one that lacks at least this many deltas with a state snapshot too (see
/// [`crate::snapshot`]); [`Node::set_snapshot_threshold`] changes it.
pub const DEFAULT_SNAPSHOT_THRESHOLD: usize = 500;
/// At most one snapshot offer per context in this long (ns).
const SNAPSHOT_OFFER_NANOS: u64 = 30_000_000_000;
/// Where context aliases are kept in [`Namespace::Meta`]: this prefix, then the alias.
const ALIAS: &[u8] = b"alias:";
/// Where the root's grant of this node's key is kept in [`Namespace::Keys`].
const ROOT_GRANT: &[u8] = b"root-grant";
/// Key of the node's own signing key in [`Namespace::Keys`].
const NODE_KEY: &[u8] = b"node";
/// A key rotation under way (the new key, its grant, the old key's revocation): finished on
/// open if the node stopped before it was.
const NEXT_NODE_KEY: &[u8] = b"node-next";
/// The keys this node used before, oldest first: they signed its older audit records.
const FORMER_NODE_KEYS: &[u8] = b"node-former";
/// Deltas waiting for their parents, per context; beyond this the oldest are dropped and asked
/// for again later, so a flood of orphans cannot exhaust memory.
const MAX_PENDING: usize = 10_000;
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
/// Marks a context this node asked to join and holds no secret of yet, in [`Namespace::Meta`]
/// (this prefix, then the context id): its app and the certificate redeemed from the invitation.
const JOINING: &[u8] = b"joining:";
/// How many sync requests a member may make at once before it must wait (see
/// [`ContextState::take_sync_token`]), and how often (ns) it earns one more.
const SYNC_BURST: u64 = 16;
const SYNC_REFILL_NANOS: u64 = 500_000_000;

/// What the node wants the network layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Subscribe {
        topic: String,
        /// The key of the topic's envelopes ([`crate::context_topic_key`]).
        key: [u8; 32],
    },
    Publish {
        topic: String,
        data: Vec<u8>,
    },
    /// For one member (by its network peer id) only: an answer to its request. Sent to it
    /// alone where the network can (a direct link), published on the topic where it cannot.
    Reply {
        peer: String,
        topic: String,
        data: Vec<u8>,
    },
}

/// What subscribers of a context are told.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum NodeEvent {
    /// An event a guest emitted, here or on another member's node.
    #[serde(rename_all = "camelCase")]
    Event {
        context_id: ContextId,
        kind: String,
        data: serde_json::Value,
        author: PublicKey,
        delta_id: Option<DeltaId>,
        local: bool,
        /// The hash of the full payload when `data` is only what its author disclosed: ask
        /// for the rest with [`Node::request_payload`].
        withheld: Option<Hash>,
    },
    /// The context's anchor disagrees with this node: its app is not the anchored one, or a
    /// member acted who is not on the anchor.
    #[serde(rename_all = "camelCase")]
    AnchorMismatch {
        context_id: ContextId,
        reason: String,
    },
    /// A withheld payload a member asked for arrived and matches its hash.
    #[serde(rename_all = "camelCase")]
    Payload {
        context_id: ContextId,
        hash: Hash,
        data: serde_json::Value,
    },
    /// A member admitted this node's join and gave it the context's secret: it now asks for
    /// the state (calls answer [`NodeError::NotSynced`] until it arrives).
    #[serde(rename_all = "camelCase")]
    Joined {
        context_id: ContextId,
        admitted_by: PublicKey,
    },
    /// A remote delta was verified and merged.
    #[serde(rename_all = "camelCase")]
    DeltaApplied {
        context_id: ContextId,
        delta_id: DeltaId,
        author: PublicKey,
        root_hash: Option<Hash>,
    },
    /// A remote message was refused; nothing changed. `kind` is the [`NodeError::kind`] of
    /// the refusal, `ChainTooDeep` for a message carrying a certificate nested too deep (see
    /// [`crate::ChainTooDeep`]), or `BadMessage` for one that is not a valid message.
    #[serde(rename_all = "camelCase")]
    SyncRejected {
        context_id: Option<ContextId>,
        kind: String,
        reason: String,
    },
    /// An admin's membership operation was applied (`counted`: it took effect under the log's
    /// rule; see [`crate::MemberOp`]).
    #[serde(rename_all = "camelCase")]
    Membership {
        context_id: ContextId,
        delta_id: DeltaId,
        by: PublicKey,
        op: MemberOp,
        counted: bool,
    },
    /// A member's delta does not stand under the membership log (its author, or a key its
    /// authority depends on, was removed, or its role does not allow it): kept in the DAG,
    /// not applied to the state.
    #[serde(rename_all = "camelCase")]
    Voided {
        context_id: ContextId,
        delta_id: DeltaId,
        author: PublicKey,
    },
    /// After applying a delta on exactly its parents, our root differs from its author's.
    #[serde(rename_all = "camelCase")]
    Divergence {
        context_id: ContextId,
        delta_id: DeltaId,
        expected: Hash,
        actual: Option<Hash>,
    },
    /// A member announced the same heads with another root. With `repaired`, this node rebuilt
    /// its state from the deltas in their canonical order (which every member that holds them
    /// reaches alike; `ours` is the root after); without, it had already, so the states differ
    /// for another reason.
    #[serde(rename_all = "camelCase")]
    RootMismatch {
        context_id: ContextId,
        ours: Option<Hash>,
        theirs: Hash,
        repaired: bool,
    },
}

impl NodeEvent {
    pub fn context_id(&self) -> Option<ContextId> {
        match self {
            Self::Event { context_id, .. }
            | Self::DeltaApplied { context_id, .. }
            | Self::Joined { context_id, .. }
            | Self::Membership { context_id, .. }
            | Self::Voided { context_id, .. }
            | Self::Payload { context_id, .. }
            | Self::AnchorMismatch { context_id, .. }
            | Self::Divergence { context_id, .. }
            | Self::RootMismatch { context_id, .. } => Some(*context_id),
            Self::SyncRejected { context_id, .. } => *context_id,
        }
    }
}

/// What a local call returns.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteResult {
    pub output: serde_json::Value,
    pub logs: Vec<String>,
    pub events: Vec<serde_json::Value>,
    pub root_hash: Option<Hash>,
    pub delta_id: Option<DeltaId>,
    /// Ids (base58) of the blobs the call stored.
    pub blobs: Vec<String>,
    /// The cross-context calls the call asked for, each run after it, in order.
    pub xcalls: Vec<XCallResult>,
    #[serde(skip)]
    queued_xcalls: Vec<XCallRequest>,
    /// What the call asked the node to do to contexts and membership (`context_create`,
    /// `context_delete`, `context_add_member`, `context_remove_member`), each done after it,
    /// in order.
    pub context_requests: Vec<ContextRequestResult>,
    #[serde(skip)]
    queued_context_requests: Vec<ContextRequest>,
}

/// How one request of a call to the node went (the calling call stays committed either way).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextRequestResult {
    /// `addMember`, `removeMember`, `create` or `delete`.
    pub request: &'static str,
    /// The member added or removed.
    pub member: Option<PublicKey>,
    /// The context created or deleted.
    pub context_id: Option<ContextId>,
    /// The membership operation made, for `addMember` and `removeMember`.
    pub op: Option<DeltaId>,
    pub error: Option<String>,
}

/// How one `xcall` went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct XCallResult {
    pub context_id: ContextId,
    pub function: String,
    /// The error, if the call was refused or failed (the calling call stays committed).
    pub error: Option<String>,
}

/// How deep xcalls may chain (an xcall's own xcalls count one deeper).
const MAX_XCALL_DEPTH: usize = 4;

/// A context's position: members with equal heads must have equal roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub heads: Vec<DeltaId>,
    /// The app's own root (calimero-storage's Merkle root).
    pub root_hash: Option<Hash>,
    /// The node's blake3 Merkle root over the stored shared state (see [`MerkleTree`]); `None`
    /// from [`Node::position`] while the context's tree is not built yet.
    pub merkle_root: Option<Hash>,
}

/// What a context's anchor says (a chain's record of the context, e.g. NEAR's context-config
/// contract, read by the embedding layer: see `tabnode-chain`): who its members are, and whether
/// this node's app binary is the anchored one. With an anchor, a member must be on it as well as
/// in the membership log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorView {
    pub members: BTreeSet<PublicKey>,
    pub app_matches: bool,
}

/// What [`Node::replay`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayReport {
    pub deltas: usize,
    pub root_hash: Option<Hash>,
    pub matches: bool,
}

/// A context as persisted in [`Namespace::Contexts`].
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
struct ContextRecord {
    app_id: AppId,
    heads: Vec<DeltaId>,
    root_hash: Option<Hash>,
    next_seq: u64,
    /// This node's membership of the context.
    cert: MemberCert,
}

/// A context in memory: the rows of its state read so far, its delta graph and deltas waiting
/// for parents.
struct ContextState {
    id: ContextId,
    record: ContextRecord,
    /// Shared with the runtime during a call (no copy); written only between calls, through
    /// [`ContextState::apply_shared`], which keeps `merkle` in step.
    shared: Rc<Rows>,
    /// Built on the first checkpoint (it needs every row), then kept up to date write by write.
    merkle: Option<MerkleTree>,
    private: Rc<Rows>,
    /// Every applied delta (void or not) as the membership log sees it: the DAG, for sync
    /// requests and for judging deltas.
    dag: HashMap<DeltaId, LogEntry>,
    /// The membership log's verdict on `dag`; the state holds exactly the deltas it lets stand.
    log: Log,
    /// What the context's anchor says, when it has one (see [`AnchorView`]).
    anchor: Option<AnchorView>,
    /// How this node sends each kind of event to other members (kinds not named: in full).
    disclosure: BTreeMap<String, Disclosure>,
    /// Whether the DAG has a delta by this node: a joiner announces itself with
    /// [`MemberOp::Join`] once it has the context's state, so members know it before it writes.
    announced: bool,
    pending: HashMap<DeltaId, Delta>,
    last_sync_request: Option<u64>,
    /// When this context last announced its heads (see [`Node::tick`]).
    last_announce: Option<u64>,
    /// The context's shared secret: seals everything this context sends.
    secret: [u8; 32],
    /// Former secrets, oldest first, each with the operation that replaced it: they still open
    /// what was sealed with them, and answer a member who has not caught up (see
    /// [`Node::answer_sync_request`]).
    older: Vec<([u8; 32], DeltaId)>,
    /// Members this node knows, from the certificates it verified (its own and those carried by
    /// applied deltas and admissions): the role each certificate gives, the keys it depends on,
    /// and the invite key it was redeemed from (see [`LogEntry::admission`]).
    members: BTreeMap<PublicKey, (Role, Vec<PublicKey>, Option<PublicKey>)>,
    /// Each requester's sync-request budget: tokens left, and when it last earned one.
    sync_budget: HashMap<PublicKey, (u64, u64)>,
    /// Where this context's audit chain stands.
    audit: AuditHead,
    /// blake3 of the membership certificates already checked: a chain is verified once, not on
    /// every delta its holder signs.
    verified_certs: HashSet<[u8; 32]>,
    /// The heads at which the state was last rebuilt in canonical order (see
    /// [`Node::compare_root`]): a mismatch there is not one a rebuild repairs.
    canonical_at: Option<Vec<DeltaId>>,
    /// When the state was last rebuilt for a root mismatch: a member announcing false roots
    /// makes this node rebuild at most once per [`REPAIR_NANOS`].
    last_repair: Option<u64>,
    /// A state snapshot arriving or waiting for its deltas (on a node that was behind).
    snapshot: Phase,
    /// When this node last offered the context's state as a snapshot.
    last_snapshot_offer: Option<u64>,
}

impl ContextState {
    /// Whether the state is this node's to use: it has one, and no snapshot is half in place.
    fn synced(&self) -> bool {
        !self.record.heads.is_empty() && !matches!(self.snapshot, Phase::Covering(_))
    }

    /// The app the context ran once the deltas `ids` were applied: that of the last upgrade
    /// among them that counts, else its first.
    fn app_id_at(&self, ids: &HashSet<DeltaId>) -> AppId {
        self.log
            .verdict()
            .upgrades
            .iter()
            .rev()
            .filter(|op| ids.contains(op))
            .find_map(|op| match &self.dag.get(op)?.op {
                Some(MemberOp::SetApp { app_id, .. }) => Some(*app_id),
                _ => None,
            })
            .unwrap_or(self.record.app_id)
    }

    /// Whether this node joined with an invitation and has not applied its admission yet: it
    /// may hold state already, but acts only once the log counts it (see [`MemberOp::Admit`]).
    fn awaits_admission(&self) -> bool {
        let (me, verdict) = (&self.record.cert.member, self.log.verdict());
        self.record.cert.invite_key().is_some()
            && !verdict.admitted.contains_key(me)
            && !verdict.roles.contains_key(me)
    }

    /// Whether a snapshot covers delta `id`: it is recorded without running the guest.
    fn covers(&self, id: &DeltaId) -> bool {
        matches!(&self.snapshot, Phase::Covering(c) if c.covered.contains(id))
    }

    /// "These are my heads": members answer with what this node lacks. Without a root while
    /// a snapshot is half in place: the stored one is not the state's at these heads. Signed
    /// with `key` (this node's), under its certificate.
    fn sync_request(&self, key: &SecretKey) -> WireMessage {
        let heads = self.record.heads.clone();
        let root_hash = self.record.root_hash.filter(|_| self.synced());
        let signature = key.sign(&WireMessage::sync_request_message(
            &self.id, &heads, &root_hash,
        ));
        WireMessage::SyncRequest {
            context_id: self.id,
            heads,
            root_hash,
            requester: Box::new(self.record.cert.clone()),
            signature,
        }
    }

    /// Opens a message sealed with the context's secret or a former one; says which former
    /// one (by the operation that replaced it), if it was not the current secret.
    fn open(&self, data: &[u8]) -> Option<(Vec<u8>, Option<DeltaId>)> {
        if let Some(plain) = seal::open(&self.secret, &self.id, data) {
            return Some((plain, None));
        }
        self.older
            .iter()
            .rev()
            .find_map(|(secret, by)| Some((seal::open(secret, &self.id, data)?, Some(*by))))
    }

    /// Stages the writes that replace the secret with `next` (by operation `by`); the change
    /// itself is made by [`Self::rotate`] once they are stored.
    fn stage_rotation(&self, next: &[u8; 32], by: &DeltaId, batch: &mut Batch) {
        let index = (self.older.len() as u32).to_be_bytes();
        let mut old = self.secret.to_vec();
        old.extend_from_slice(by.as_bytes());
        batch.put_mut(
            Namespace::Keys,
            &scoped(&self.id, &[OLD_SECRET, &index].concat()),
            old,
        );
        batch.put_mut(
            Namespace::Keys,
            &scoped(&self.id, CONTEXT_SECRET),
            next.to_vec(),
        );
    }

    fn rotate(&mut self, next: [u8; 32], by: DeltaId) {
        self.older.push((self.secret, by));
        self.secret = next;
    }

    /// Whether `op` made the context's latest secret: an operation that gives a new secret,
    /// counted and standing (its author's authority too), with no other such operation after
    /// it.
    fn makes_latest_secret(&self, op: &DeltaId) -> bool {
        let verdict = self.log.verdict();
        let gives_secret = |id: &DeltaId| {
            verdict.applied_ops.contains(id)
                && !verdict.void.contains(id)
                && self
                    .dag
                    .get(id)
                    .and_then(|e| e.op.as_ref().zip(Some(&e.author)))
                    .is_some_and(|(op, author)| op.removes(author).is_some())
        };
        gives_secret(op)
            && !verdict
                .applied_ops
                .iter()
                .any(|later| later != op && gives_secret(later) && self.is_after(later, op))
    }

    /// Whether `later` has `earlier` in its causal past.
    fn is_after(&self, later: &DeltaId, earlier: &DeltaId) -> bool {
        with_ancestors(&self.dag, [*later]).contains(earlier)
    }

    /// Whether this context has ever held `secret`.
    fn knows_secret(&self, secret: &[u8; 32]) -> bool {
        self.secret == *secret || self.older.iter().any(|(s, _)| s == secret)
    }

    /// The app the context runs now: its first, or the one the last upgrade that counts names.
    fn app_id(&self) -> AppId {
        self.upgrade_apps().last().unwrap_or(self.record.app_id)
    }

    /// The apps the upgrades that count name, in order.
    fn upgrade_apps(&self) -> impl Iterator<Item = AppId> + '_ {
        self.log
            .verdict()
            .upgrades
            .iter()
            .filter_map(|op| match &self.dag[op].op {
                Some(MemberOp::SetApp { app_id, .. }) => Some(*app_id),
                _ => None,
            })
    }

    /// The latest timestamp of a delta that stands: what the state's records may carry. A void
    /// delta's does not count, so it cannot move the clock.
    fn latest_standing(&self) -> u64 {
        let void = &self.log.verdict().void;
        self.dag
            .iter()
            .filter(|(id, _)| !void.contains(id))
            .map(|(_, entry)| entry.timestamp)
            .max()
            .unwrap_or(0)
    }

    /// Takes an applied delta into the DAG and the log (`stands`: its changes were applied).
    fn insert_applied(&mut self, delta: &Delta, stands: bool) {
        let body = &delta.body;
        let entry = LogEntry::new(
            body.parents.clone(),
            body.author,
            body.timestamp,
            &body.author_cert,
            body.op.clone(),
        );
        let id = delta.id();
        self.log.add(id, &entry, stands);
        self.dag.insert(id, entry);
        // An admitted joiner is a member before it writes: a removal shares the new secret
        // with it too.
        if let Some(MemberOp::Admit { cert, .. }) = &body.op {
            if !self.members.contains_key(&cert.member) {
                self.learn_member(cert);
            }
        }
    }

    fn apply_shared(&mut self, writes: WriteSet) {
        if let Some(merkle) = &mut self.merkle {
            merkle.update(&writes);
        }
        apply_writes(&mut self.shared, writes);
    }

    fn views(&self, blobs: &Rc<Rows>, aliases: &Rc<BTreeMap<String, [u8; 32]>>) -> Views {
        Views {
            shared: self.shared.clone(),
            private: self.private.clone(),
            blobs: blobs.clone(),
            aliases: aliases.clone(),
            members: Rc::new(
                self.known_members()
                    .iter()
                    .filter(|k| self.role_now(k).is_some())
                    .map(|k| k.0)
                    .collect(),
            ),
        }
    }

    /// Records a member whose certificate was verified (a later certificate's role wins).
    fn learn_member(&mut self, cert: &MemberCert) {
        self.members.insert(cert.member, standing(cert));
    }

    /// Whether `requester` may have one more sync request answered now (a token bucket of
    /// [`SYNC_BURST`], refilled one per [`SYNC_REFILL_NANOS`]): a member that asks for the
    /// whole history over and over gets it a few times, not as often as it asks.
    fn take_sync_token(&mut self, requester: PublicKey, now: u64) -> bool {
        let (tokens, at) = self
            .sync_budget
            .entry(requester)
            .or_insert((SYNC_BURST, now));
        let earned = now.saturating_sub(*at) / SYNC_REFILL_NANOS;
        *tokens = tokens.saturating_add(earned).min(SYNC_BURST);
        *at = match *tokens == SYNC_BURST {
            true => now,
            false => at.saturating_add(earned * SYNC_REFILL_NANOS),
        };
        if *tokens == 0 {
            return false;
        }
        *tokens -= 1;
        true
    }

    /// How a new delta by `author` on this node's heads would be seen by the log.
    fn entry_now(&self, author: &PublicKey, op: Option<MemberOp>) -> Option<LogEntry> {
        // A key known only from a role an admin gave it is certified by that operation.
        let (cert_role, chain, admission) = match self.members.get(author) {
            Some(standing) => standing.clone(),
            None => (self.log.verdict().roles.get(author)?.0, vec![*author], None),
        };
        Some(LogEntry {
            parents: self.record.heads.clone(),
            author: *author,
            timestamp: u64::MAX,
            cert_role,
            chain,
            admission,
            op,
        })
    }

    /// Every key this node knows as a member, removed or not.
    fn known_members(&self) -> BTreeSet<PublicKey> {
        let granted = self.log.verdict().roles.keys();
        self.members.keys().chain(granted).copied().collect()
    }

    /// The role the holder of `cert` acts with now, by the certificate and the membership log.
    fn role_of(&self, cert: &MemberCert) -> Option<Role> {
        self.log.role_of_new(&LogEntry::new(
            self.record.heads.clone(),
            cert.member,
            u64::MAX,
            cert,
            None,
        ))
    }

    /// The role `member` acts with now, by its certificate and the membership log; `None` if
    /// it (or a key its authority depends on) was removed, or it is not known.
    fn role_now(&self, member: &PublicKey) -> Option<Role> {
        self.log.role_of_new(&self.entry_now(member, None)?)
    }
}

/// How a member applies a delta: the first one replays `init` with the author's record (see
/// [`Genesis`]); every later one is merged by the guest through `__calimero_sync_next`. Either
/// way `time_now` is the author's timestamp.
fn merge_call<'a>(delta: &'a Delta, id: &DeltaId) -> Call<'a> {
    let body = &delta.body;
    let (method, input, random_seed) = match &body.genesis {
        Some(genesis) => ("init", genesis.input.as_slice(), genesis.random_seed),
        None => (
            "__calimero_sync_next",
            body.artifact.as_slice(),
            *id.as_bytes(),
        ),
    };
    Call {
        method,
        input,
        context_id: body.context_id.0,
        executor_id: body.author.0,
        time_now_nanos: body.timestamp,
        random_seed,
    }
}

/// The order a replay runs the stored deltas in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// As this node applied them (causal, but arrival decides between concurrent deltas).
    Applied,
    /// Causal, and between concurrent deltas by (timestamp, id): the same on every member.
    Canonical,
}

/// `deltas` (each with its id) in canonical order: every parent before its children, and of
/// the deltas whose parents are all placed, the one with the smallest (timestamp, id) first.
/// Parents not among `deltas` do not hold a delta back.
fn canonical_order(deltas: Vec<(DeltaId, Delta)>) -> Vec<(DeltaId, Delta)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let ids: HashSet<DeltaId> = deltas.iter().map(|(id, _)| *id).collect();
    let mut waiting: HashMap<DeltaId, usize> = HashMap::new();
    let mut children: HashMap<DeltaId, Vec<DeltaId>> = HashMap::new();
    let mut by_id: HashMap<DeltaId, Delta> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for (id, delta) in deltas {
        let parents: BTreeSet<DeltaId> = delta
            .body
            .parents
            .iter()
            .copied()
            .filter(|p| ids.contains(p))
            .collect();
        for p in &parents {
            children.entry(*p).or_default().push(id);
        }
        if parents.is_empty() {
            ready.push(Reverse((delta.body.timestamp, id)));
        }
        waiting.insert(id, parents.len());
        by_id.insert(id, delta);
    }
    let mut out = Vec::with_capacity(by_id.len());
    while let Some(Reverse((_, id))) = ready.pop() {
        for child in children.remove(&id).unwrap_or_default() {
            let left = waiting.get_mut(&child).expect("a stored delta");
            *left -= 1;
            if *left == 0 {
                ready.push(Reverse((by_id[&child].body.timestamp, child)));
            }
        }
        let delta = by_id.remove(&id).expect("placed once");
        out.push((id, delta));
    }
    out
}

/// How a member runs an upgrade's migration: the new app's export `method`, with no input, as
/// the upgrade's author at its time (so every member runs it alike).
fn migration_call<'a>(
    context_id: &ContextId,
    entry: &LogEntry,
    id: &'a DeltaId,
    method: &'a str,
) -> Call<'a> {
    Call {
        method,
        input: &[],
        context_id: context_id.0,
        executor_id: entry.author.0,
        time_now_nanos: entry.timestamp,
        random_seed: *id.as_bytes(),
    }
}

/// What a migration writes: what it stored itself, and the new state it returned in place of
/// the app's state entry (calimero-sdk's `#[app::migrate]` returns the state rather than
/// storing it); with the events it emitted.
fn migration_writes(
    outcome: Outcome,
    shared: &dyn StateView,
) -> Result<(WriteSet, Vec<tabnode_runtime::Event>), NodeError> {
    let new_state = match outcome.returns {
        Ok(Some(state)) => state,
        Ok(None) => {
            return Err(NodeError::AppError(
                "the migration returned no state".into(),
            ))
        }
        Err(e) => {
            return Err(NodeError::AppError(
                String::from_utf8_lossy(&e).into_owned(),
            ))
        }
    };
    let key = state_entry_key();
    let old = shared
        .get(&key)
        .ok()
        .flatten()
        .ok_or_else(|| NodeError::AppError("there is no state to migrate".into()))?;
    let entry = migrated_state_entry(&old, &new_state)
        .ok_or_else(|| corrupt("the app's state entry", "shorter than its id"))?;
    let mut writes = outcome.shared_writes;
    writes.insert(key.to_vec(), Some(entry));
    Ok((writes, outcome.events))
}

/// What the log needs of a member's certificate: its role, the keys it depends on, and the
/// invite key it was redeemed from.
fn standing(cert: &MemberCert) -> (Role, Vec<PublicKey>, Option<PublicKey>) {
    (cert.standalone_role(), chain_of(cert), cert.invite_key())
}

/// A [`Namespace::Meta`] key: `prefix`, then the context id.
fn scoped_meta(prefix: &[u8], context: &ContextId) -> Vec<u8> {
    [prefix, context.as_bytes()].concat()
}

/// Store keys of one context's rows: the context id, then the row's own key.
fn scoped(context: &ContextId, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + key.len());
    out.extend_from_slice(context.as_bytes());
    out.extend_from_slice(key);
    out
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> NodeError {
    NodeError::Corrupt(format!("{what}: {err}"))
}

/// Guest output and event data are JSON by convention; anything else is shown as bytes.
fn json_or_bytes(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| serde_json::Value::from(bytes.to_vec()))
}

/// A join under way: the app the invitation names, the certificate redeemed from it, and when
/// this node last asked the members to admit it.
struct Joining {
    app_id: AppId,
    cert: MemberCert,
    last_request: Option<u64>,
}

/// The tabnode node. See the crate docs for how it is driven.
pub struct Node<S: Store, E: Env> {
    store: S,
    env: E,
    runtime: Runtime,
    key: SecretKey,
    apps: HashMap<AppId, App>,
    contexts: HashMap<ContextId, ContextState>,
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
    /// Contexts this node asked to join and holds no secret of yet (see [`Node::join`]).
    joining: HashMap<ContextId, Joining>,
    outgoing: Vec<Outgoing>,
    events: Vec<NodeEvent>,
}

impl<S: Store, E: Env> Node<S, E> {
    /// Opens the node on `store`: loads (or creates) its key and every context, and asks peers
    /// for anything it missed while it was away.
    pub async fn open(store: S, env: E, runtime: Runtime) -> Result<Self, NodeError> {
        let key = match store.get(Namespace::Keys, NODE_KEY).await? {
            Some(seed) => SecretKey::from_seed(
                seed.try_into()
                    .map_err(|_| corrupt("node key", "not 32 bytes"))?,
            ),
            None => {
                let key = SecretKey::from_seed(env.random32());
                store
                    .commit(Batch::new().put(Namespace::Keys, NODE_KEY, key.seed().to_vec()))
                    .await?;
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
            clock: 0,
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
            node.start_joining(id, app_id, cert);
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
        Ok(node)
    }

    async fn load_context(
        &mut self,
        id: ContextId,
        record: ContextRecord,
    ) -> Result<(), NodeError> {
        // State is read row by row as calls ask for it; a context that has applied nothing
        // (just joined) has none, so every row is known.
        let rows = || match record.heads.is_empty() {
            true => Rc::new(Rows::complete([])),
            false => Rc::new(Rows::unread()),
        };
        let (shared, private) = (rows(), rows());
        let mut dag = HashMap::new();
        let mut members = BTreeMap::from([(record.cert.member, standing(&record.cert))]);
        for (_, bytes) in self
            .store
            .scan_prefix(Namespace::Deltas, id.as_bytes())
            .await?
        {
            let delta = Delta::try_from_slice(&bytes).map_err(|e| corrupt("delta", e))?;
            let id = delta.id();
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
        self.outgoing.push(Outgoing::Subscribe {
            topic: context_topic(&id),
            key: context_topic_key(&id),
        });
        let ctx = ContextState {
            id,
            record,
            merkle: None,
            shared,
            private,
            log: Log::judge(&dag),
            anchor: None,
            disclosure,
            announced: dag.values().any(|e| e.author == self.key.public()),
            dag,
            pending: HashMap::new(),
            last_sync_request: None,
            last_announce: None,
            members,
            sync_budget: HashMap::new(),
            secret,
            older,
            audit,
            verified_certs: HashSet::new(),
            canonical_at: None,
            last_repair: None,
            snapshot: Phase::Idle,
            last_snapshot_offer: None,
        };
        self.clock = self.clock.max(ctx.latest_standing());
        self.contexts.insert(id, ctx);
        // Ask peers for anything missed while away.
        let ctx = &self.contexts[&id];
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
        let data = seal::seal(secret, &context_id, self.env.random32(), &message.encode());
        let topic = context_topic(&context_id);
        self.outgoing.push(match to {
            Some(peer) => Outgoing::Reply {
                peer: peer.to_owned(),
                topic,
                data,
            },
            None => Outgoing::Publish { topic, data },
        });
    }

    /// The time of a local call in `ctx`: the wall clock, but always after every timestamp of
    /// a delta that stands here and after the context's heads (the parents of a delta made
    /// now, void ones included: a delta is later than its parents). When no such timestamp is
    /// left, the call can make no delta ([`NodeError::ClockExhausted`]).
    fn next_timestamp(&mut self, ctx: &ContextState) -> Result<u64, NodeError> {
        let latest = ctx
            .record
            .heads
            .iter()
            .filter_map(|head| ctx.dag.get(head))
            .map(|entry| entry.timestamp)
            .fold(self.clock, u64::max);
        let after = latest.checked_add(1).ok_or_else(|| {
            NodeError::ClockExhausted(format!(
                "no timestamp is left after {latest} for a delta of {}",
                ctx.id
            ))
        })?;
        self.clock = self.env.now_nanos().max(after);
        Ok(self.clock)
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

    /// Keeps the record of who this node acts for (a root's signed grant of its key), beside
    /// the node's own key (sealed at rest in the browser).
    pub async fn save_root_grant(&mut self, record: Vec<u8>) -> Result<(), NodeError> {
        self.store
            .commit(Batch::new().put(Namespace::Keys, ROOT_GRANT, record))
            .await?;
        Ok(())
    }

    /// The record [`Node::save_root_grant`] kept, if any.
    pub async fn root_grant(&self) -> Result<Option<Vec<u8>>, NodeError> {
        Ok(self.store.get(Namespace::Keys, ROOT_GRANT).await?)
    }

    /// The environment (clock, randomness) the node runs on.
    pub fn env(&self) -> &E {
        &self.env
    }

    /// Anti-entropy, to be called every second or so: every [`ANNOUNCE_NANOS`] each context
    /// tells its members its heads, and members answer with what it lacks (or ask back for what
    /// they lack). This is what repairs gossip that was lost, e.g. while a connection was down.
    pub fn tick(&mut self) {
        let now = self.env.now_nanos();
        let due: Vec<(ContextId, [u8; 32], WireMessage)> = self
            .contexts
            .values_mut()
            .filter(|ctx| {
                ctx.last_announce
                    .is_none_or(|t| now.saturating_sub(t) >= ANNOUNCE_NANOS)
            })
            .map(|ctx| {
                ctx.last_announce = Some(now);
                (ctx.id, ctx.secret, ctx.sync_request(&self.key))
            })
            .collect();
        for (context_id, secret, request) in due {
            self.publish(context_id, &secret, request);
        }
        let unanswered: Vec<ContextId> = self
            .joining
            .iter()
            .filter(|(_, j)| {
                j.last_request
                    .is_none_or(|t| now.saturating_sub(t) >= SYNC_RETRY_NANOS)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in unanswered {
            self.ask_to_join(id);
        }
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

    /// Validates, compiles and stores an app binary; its id is its blake3 hash.
    pub async fn install_app(&mut self, wasm: &[u8]) -> Result<AppId, NodeError> {
        let app = self.runtime.compile(wasm).map_err(NodeError::InvalidApp)?;
        let id = AppId::of_wasm(wasm);
        if self
            .store
            .get(Namespace::Apps, id.as_bytes())
            .await?
            .is_none()
        {
            self.store
                .commit(Batch::new().put(Namespace::Apps, id.as_bytes(), wasm.to_vec()))
                .await?;
        }
        self.apps.insert(id, app);
        Ok(id)
    }

    /// The compiled app, loaded from the store and checked against its hash on first use.
    async fn app(&mut self, id: AppId) -> Result<App, NodeError> {
        if let Some(app) = self.apps.get(&id) {
            return Ok(app.clone());
        }
        let wasm = self
            .store
            .get(Namespace::Apps, id.as_bytes())
            .await?
            .ok_or_else(|| NodeError::AppNotInstalled(id.to_string()))?;
        if AppId::of_wasm(&wasm) != id {
            return Err(corrupt("app binary", format!("hash differs from {id}")));
        }
        let app = self.runtime.compile(&wasm).map_err(NodeError::InvalidApp)?;
        self.apps.insert(id, app.clone());
        Ok(app)
    }

    /// Creates a context running `app_id`, initialised by the app's `init` with `init_args`.
    pub async fn create_context(
        &mut self,
        app_id: AppId,
        init_args: serde_json::Value,
    ) -> Result<ContextId, NodeError> {
        let app = self.app(app_id).await?;
        let context_key = SecretKey::from_seed(self.env.random32());
        let id = ContextId(context_key.public().0);
        let mut ctx = ContextState {
            id,
            record: ContextRecord {
                app_id,
                heads: vec![],
                root_hash: None,
                next_seq: 0,
                cert: MemberCert::genesis(&context_key, self.key.public()),
            },
            shared: Rc::new(Rows::complete([])),
            merkle: Some(MerkleTree::build([])),
            private: Rc::new(Rows::complete([])),
            dag: HashMap::new(),
            log: Log::default(),
            anchor: None,
            disclosure: BTreeMap::new(),
            announced: true,
            pending: HashMap::new(),
            last_sync_request: None,
            last_announce: None,
            members: BTreeMap::new(),
            sync_budget: HashMap::new(),
            secret: self.env.random32(),
            older: Vec::new(),
            audit: AuditHead::default(),
            verified_certs: HashSet::new(),
            canonical_at: None,
            last_repair: None,
            snapshot: Phase::Idle,
            last_snapshot_offer: None,
        };
        ctx.learn_member(&ctx.record.cert.clone());
        let mut batch = Batch::new()
            .put(
                Namespace::Keys,
                &scoped(&id, CONTEXT_KEY),
                context_key.seed().to_vec(),
            )
            .put(
                Namespace::Keys,
                &scoped(&id, CONTEXT_SECRET),
                ctx.secret.to_vec(),
            );
        self.run_local(&app, &mut ctx, "init", init_args, &mut batch)
            .await?;
        self.outgoing.push(Outgoing::Subscribe {
            topic: context_topic(&id),
            key: context_topic_key(&id),
        });
        self.contexts.insert(id, ctx);
        self.bind_if_needed(&id).await;
        Ok(id)
    }

    /// An invitation to `context_id` as a member, valid for [`DEFAULT_INVITATION_NANOS`].
    pub fn invite(&self, context_id: &ContextId) -> Result<String, NodeError> {
        let expires_at = self
            .env
            .now_nanos()
            .saturating_add(DEFAULT_INVITATION_NANOS);
        self.invite_as(context_id, Role::Member, expires_at)
    }

    /// A single-use invitation with `role`, usable until `expires_at` (ns since the epoch), as
    /// a link-safe string. Only admins invite.
    pub fn invite_as(
        &self,
        context_id: &ContextId,
        role: Role,
        expires_at: u64,
    ) -> Result<String, NodeError> {
        self.invite_for(context_id, role, expires_at, 1)
    }

    /// An invitation with `role`, usable until `expires_at` by `uses` keys (each admitted in
    /// the membership log; see [`MemberOp::Admit`]). It carries no context secret.
    pub fn invite_for(
        &self,
        context_id: &ContextId,
        role: Role,
        expires_at: u64,
        uses: u32,
    ) -> Result<String, NodeError> {
        if uses == 0 {
            return Err(NodeError::BadInvitation(
                "an invitation is for 1 use or more".into(),
            ));
        }
        let ctx = self.context(context_id)?;
        if ctx.role_now(&self.key.public()) != Some(Role::Admin) {
            return Err(NodeError::Unauthorized(format!(
                "only admins invite to {context_id}"
            )));
        }
        let invitation = Invitation::new(
            ctx.record.app_id,
            role,
            (expires_at, uses),
            ctx.record.cert.clone(),
            &self.key,
            self.env.random32(),
        )?;
        Ok(invitation.encode())
    }

    /// Revokes an invitation this node (an admin) or another admin made: a join with it that
    /// no member admitted yet is refused by every member from the operation on. Keys it already
    /// admitted stay (remove them to take their access).
    pub async fn revoke_invitation(
        &mut self,
        context_id: &ContextId,
        invitation: &str,
    ) -> Result<DeltaId, NodeError> {
        let invitation = Invitation::decode(invitation)?;
        if invitation.grant.context_id != *context_id {
            return Err(NodeError::BadInvitation(format!(
                "the invitation is for {}, not {context_id}",
                invitation.grant.context_id
            )));
        }
        let op = MemberOp::RevokeInvitation {
            invitation: invitation.grant.invite_key,
        };
        self.member_op(context_id, op).await
    }

    /// Asks to join the context an invitation names, and returns its id. The invitation holds
    /// no secret: this node sends the members a request (sealed with the context's handshake
    /// key, [`crate::context_handshake_key`]) with the certificate it redeemed, and asks again
    /// every few seconds (from [`Node::tick`]) until a member admits it (records the use in the
    /// membership log) and seals the context's secret to this node's key
    /// ([`WireMessage::Welcome`], then [`NodeEvent::Joined`]). The state arrives from members
    /// after that; until then calls answer [`NodeError::NotSynced`]. Joining again with
    /// another invitation while the first is not answered replaces it.
    pub async fn join(&mut self, invitation: &str) -> Result<ContextId, NodeError> {
        let invitation = Invitation::decode(invitation)?;
        let (id, app_id) = (invitation.grant.context_id, invitation.grant.app_id);
        self.app(app_id).await?;
        if self.contexts.contains_key(&id) {
            return Ok(id);
        }
        let cert = invitation.redeem(self.key.public(), self.env.now_nanos())?;
        let value = borsh::to_vec(&(app_id, &cert)).expect("encode");
        self.store
            .commit(Batch::new().put(Namespace::Meta, &scoped_meta(JOINING, &id), value))
            .await?;
        self.start_joining(id, app_id, cert);
        Ok(id)
    }

    /// Whether this node asked to join `id` and no member has admitted it yet.
    pub fn is_joining(&self, id: &ContextId) -> bool {
        self.joining.contains_key(id)
    }

    fn start_joining(&mut self, id: ContextId, app_id: AppId, cert: MemberCert) {
        self.outgoing.push(Outgoing::Subscribe {
            topic: context_topic(&id),
            key: context_topic_key(&id),
        });
        let joining = Joining {
            app_id,
            cert,
            last_request: None,
        };
        self.joining.insert(id, joining);
        self.ask_to_join(id);
    }

    /// Sends the members this node's request to join `id`.
    fn ask_to_join(&mut self, id: ContextId) {
        let now = self.env.now_nanos();
        let Some(joining) = self.joining.get_mut(&id) else {
            return;
        };
        joining.last_request = Some(now);
        let request = WireMessage::JoinRequest {
            context_id: id,
            cert: Box::new(joining.cert.clone()),
        };
        self.publish(id, &context_handshake_key(&id), request);
    }

    fn context(&self, id: &ContextId) -> Result<&ContextState, NodeError> {
        self.contexts
            .get(id)
            .ok_or_else(|| match self.joining.contains_key(id) {
                true => NodeError::NotSynced(id.to_string()),
                false => NodeError::UnknownContext(id.to_string()),
            })
    }

    /// The members this node knows for the context, with their roles.
    pub fn members(&self, id: &ContextId) -> Result<Vec<(PublicKey, Role)>, NodeError> {
        let ctx = self.context(id)?;
        Ok(ctx
            .known_members()
            .into_iter()
            .filter_map(|k| Some((k, ctx.role_now(&k)?)))
            .collect())
    }

    /// The binary of the app a context runs, as stored (an anchor compares it with the one it
    /// records).
    pub async fn context_wasm(&self, id: &ContextId) -> Result<Vec<u8>, NodeError> {
        let app_id = self.context(id)?.app_id();
        self.store
            .get(Namespace::Apps, app_id.as_bytes())
            .await?
            .ok_or_else(|| NodeError::AppNotInstalled(app_id.to_string()))
    }

    /// Signs a request to Calimero's context-config contract about context `id`, as `signer`,
    /// without the key leaving the node: `payload` is the request's JSON, and the answer is the
    /// signing key and its ed25519 signature of exactly those bytes (what `mutate` verifies).
    ///
    /// Not a signing oracle: the payload must be a context-config request about `id` naming
    /// the signing key as `signerId`, and of a kind that key signs (see
    /// `chain_request.rs`); anything else is [`NodeError::BadChainRequest`]. The node
    /// also checks its own standing, as the log says: it must be an admin of the context (only
    /// admins change members or the app), and the context key (held only by the creator's
    /// node, else [`NodeError::Unauthorized`]) vouches on chain only for this node's own key.
    pub async fn sign_context_request(
        &self,
        id: &ContextId,
        payload: &[u8],
        signer: ChainSigner,
    ) -> Result<(PublicKey, Signature), NodeError> {
        let ctx = self.context(id)?;
        let me = self.key.public();
        if ctx.role_now(&me) != Some(Role::Admin) {
            return Err(NodeError::Unauthorized(format!(
                "{me} is not an admin of {id}: only admins change what a chain records of it"
            )));
        }
        match signer {
            ChainSigner::Member => {
                chain_request::check(payload, id, signer, &me)?;
                Ok((me, self.key.sign(payload)))
            }
            ChainSigner::ContextKey => {
                let context_public = PublicKey(id.0);
                let request = chain_request::check(payload, id, signer, &context_public)?;
                if request.author != Some(me) {
                    return Err(NodeError::BadChainRequest(format!(
                        "the context key vouches on chain only for this node's key {me}"
                    )));
                }
                let seed: [u8; 32] = self
                    .store
                    .get(Namespace::Keys, &scoped(id, CONTEXT_KEY))
                    .await?
                    .ok_or_else(|| {
                        NodeError::Unauthorized(format!(
                            "this node does not hold the key of context {id}: only the node that created it does"
                        ))
                    })?
                    .try_into()
                    .map_err(|_| corrupt("context key", "not 32 bytes"))?;
                let key = SecretKey::from_seed(seed);
                if key.public() != context_public {
                    return Err(corrupt("context key", format!("not the key of {id}")));
                }
                Ok((context_public, key.sign(payload)))
            }
        }
    }

    /// Sets (or, with `None`, clears) what the context's anchor says. From then on a member's
    /// deltas are accepted only if it is on the anchor as well as in the membership log, and
    /// this node runs calls only if it is on the anchor and its app binary is the anchored one;
    /// a mismatch is refused and reported ([`NodeEvent::AnchorMismatch`]). A delta refused for
    /// want of a member on the anchor is asked for again by anti-entropy once the anchor lists it.
    pub fn set_anchor(
        &mut self,
        id: &ContextId,
        anchor: Option<AnchorView>,
    ) -> Result<(), NodeError> {
        let ctx = self
            .contexts
            .get_mut(id)
            .ok_or_else(|| NodeError::UnknownContext(id.to_string()))?;
        if anchor.as_ref().is_some_and(|a| !a.app_matches) {
            self.events.push(NodeEvent::AnchorMismatch {
                context_id: *id,
                reason: format!("the app of {id} is not the one its anchor records"),
            });
        }
        ctx.anchor = anchor;
        Ok(())
    }

    /// How many deltas of the context wait for parents this node has not seen (bounded: a
    /// flood of orphans cannot exhaust memory).
    pub fn pending(&self, id: &ContextId) -> Result<usize, NodeError> {
        Ok(self.context(id)?.pending.len())
    }

    /// How many rows of the context's state (shared and private) this node holds in memory:
    /// those its calls read or wrote since it opened, or all of them once a call or a
    /// checkpoint needed the whole state.
    pub fn rows_in_memory(&self, id: &ContextId) -> Result<usize, NodeError> {
        let ctx = self.context(id)?;
        Ok(ctx.shared.len() + ctx.private.len())
    }

    /// The context's heads, state root and Merkle root. The first checkpoint of a context this
    /// node reopened reads its whole state once to build the Merkle tree.
    pub async fn checkpoint(&mut self, id: &ContextId) -> Result<Checkpoint, NodeError> {
        if self.context(id)?.merkle.is_none() {
            let ctx = self.contexts.get_mut(id).expect("checked above");
            read_whole(&self.store, ctx, ViewKind::Shared).await?;
        }
        self.position(id)
    }

    /// The context's heads and state root, and its Merkle root if the tree is built: what
    /// [`Self::checkpoint`] gives without reading a reopened context's whole state.
    pub fn position(&self, id: &ContextId) -> Result<Checkpoint, NodeError> {
        let ctx = self.context(id)?;
        Ok(Checkpoint {
            heads: ctx.record.heads.clone(),
            root_hash: ctx.record.root_hash,
            merkle_root: ctx.merkle.as_ref().map(|tree| Hash(tree.root())),
        })
    }

    /// Runs `method` with `args` (a JSON object) as this node's member; a change becomes a
    /// signed delta, persisted and published before this returns.
    pub async fn execute(
        &mut self,
        id: &ContextId,
        method: &str,
        args: serde_json::Value,
    ) -> Result<ExecuteResult, NodeError> {
        self.execute_at_depth(id, method, args, 0).await
    }

    fn execute_at_depth<'a>(
        &'a mut self,
        id: &'a ContextId,
        method: &'a str,
        args: serde_json::Value,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<ExecuteResult, NodeError>> + 'a>>
    {
        Box::pin(async move {
            let app_id = self.context(id)?.app_id();
            let app = self.app(app_id).await?;
            let args_hash =
                Hash(*blake3::hash(&serde_json::to_vec(&args).expect("JSON encodes")).as_bytes());
            let mut ctx = self.contexts.remove(id).expect("checked above");
            let result = if !ctx.synced() || ctx.awaits_admission() {
                Err(NodeError::NotSynced(id.to_string()))
            } else {
                self.run_local(&app, &mut ctx, method, args, &mut Batch::new())
                    .await
            };
            if let Err(e) = &result {
                let entry = AuditEntry {
                    kind: AuditKind::Call,
                    executor: self.key.public(),
                    method: method.to_owned(),
                    args_hash,
                    outcome: e.kind().to_owned(),
                    root_hash: ctx.record.root_hash,
                    time: self.env.now_nanos(),
                    random_seed: [0; 32],
                    delta_id: None,
                };
                // The failure stands whether or not its record could be written.
                let _ = self.audit_alone(&mut ctx, entry).await;
            }
            self.contexts.insert(*id, ctx);
            let mut result = result?;
            for request in std::mem::take(&mut result.queued_xcalls) {
                let error = self
                    .xcall(&request, depth)
                    .await
                    .err()
                    .map(|e| e.to_string());
                result.xcalls.push(XCallResult {
                    context_id: ContextId(request.context_id),
                    function: request.function,
                    error,
                });
            }
            for request in std::mem::take(&mut result.queued_context_requests) {
                let done = self.context_request(id, request).await;
                result.context_requests.push(done);
            }
            Ok(result)
        })
    }

    /// Makes one request a call queued (see [`ContextRequest`]) as this node, in context `id`.
    async fn context_request(
        &mut self,
        id: &ContextId,
        request: ContextRequest,
    ) -> ContextRequestResult {
        let mut result = ContextRequestResult {
            request: "",
            member: None,
            context_id: None,
            op: None,
            error: None,
        };
        let outcome = match request {
            ContextRequest::AddMember(key) => {
                result.request = "addMember";
                result.member = Some(PublicKey(key));
                self.set_role(id, PublicKey(key), Role::Member)
                    .await
                    .map(Some)
            }
            ContextRequest::RemoveMember(key) => {
                result.request = "removeMember";
                result.member = Some(PublicKey(key));
                self.remove_member(id, PublicKey(key)).await.map(Some)
            }
            ContextRequest::Create {
                app_id,
                args,
                alias,
                ..
            } => {
                result.request = "create";
                match self.create_from_guest(AppId(app_id), &args, alias).await {
                    Ok(created) => {
                        result.context_id = Some(created);
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
            ContextRequest::Delete(target) => {
                result.request = "delete";
                result.context_id = Some(ContextId(target));
                self.delete_context(&ContextId(target)).await.map(|()| None)
            }
        };
        match outcome {
            Ok(op) => result.op = op,
            Err(e) => result.error = Some(e.to_string()),
        }
        result
    }

    /// `context_create` from a guest: a new context of an app this node has, under an alias
    /// that must be free.
    async fn create_from_guest(
        &mut self,
        app_id: AppId,
        args: &[u8],
        alias: Option<String>,
    ) -> Result<ContextId, NodeError> {
        let args: serde_json::Value = match args {
            [] => serde_json::json!({}),
            bytes => serde_json::from_slice(bytes)
                .map_err(|e| NodeError::BadArgs(format!("init args are not JSON ({e})")))?,
        };
        if let Some(alias) = &alias {
            if self.aliases.contains_key(alias) {
                return Err(NodeError::BadArgs(format!("the alias {alias:?} is taken")));
            }
        }
        let created = self.create_context(app_id, args).await?;
        if let Some(alias) = alias {
            let key = [ALIAS, alias.as_bytes()].concat();
            self.store
                .commit(Batch::new().put(Namespace::Meta, &key, created.as_bytes().to_vec()))
                .await?;
            Rc::make_mut(&mut self.aliases).insert(alias, created.0);
        }
        Ok(created)
    }

    /// Deletes a context from this node (see [`Self::drop_context`]); only an admin of the
    /// context may. Its members elsewhere are not affected.
    pub async fn delete_context(&mut self, id: &ContextId) -> Result<(), NodeError> {
        let ctx = self.context(id)?;
        if ctx.role_now(&self.key.public()) != Some(Role::Admin) {
            return Err(NodeError::Unauthorized(format!(
                "only an admin of {id} may delete it"
            )));
        }
        self.drop_context(id).await
    }

    /// Leaves a context: tells its members (a [`MemberOp::Leave`], which gives them a new
    /// secret this node does not keep, so it reads nothing written after), then drops it here.
    /// A join no member has answered yet is given up.
    pub async fn leave(&mut self, id: &ContextId) -> Result<(), NodeError> {
        if self.joining.contains_key(id) {
            let batch = Batch::new().delete(Namespace::Meta, &scoped_meta(JOINING, id));
            self.store.commit(batch).await?;
            self.joining.remove(id);
            return Ok(());
        }
        self.member_op(id, MemberOp::Leave { shares: Vec::new() })
            .await?;
        self.drop_context(id).await
    }

    /// Drops a context from this node: its state, deltas, audit trail, keys, aliases, disclosure
    /// settings and withheld payloads, in one batch.
    async fn drop_context(&mut self, id: &ContextId) -> Result<(), NodeError> {
        let mut batch = Batch::new();
        for ns in [
            Namespace::State,
            Namespace::Private,
            Namespace::Deltas,
            Namespace::Audit,
            Namespace::Keys,
        ] {
            for (key, _) in self.store.scan_prefix(ns, id.as_bytes()).await? {
                batch.delete_mut(ns, &key);
            }
        }
        for prefix in [DISCLOSE, PAYLOAD, COVERING] {
            let prefix = [prefix, id.as_bytes()].concat();
            for (key, _) in self.store.scan_prefix(Namespace::Meta, &prefix).await? {
                batch.delete_mut(Namespace::Meta, &key);
            }
        }
        batch.delete_mut(Namespace::Contexts, id.as_bytes());
        let aliases: Vec<String> = self
            .aliases
            .iter()
            .filter(|(_, target)| **target == id.0)
            .map(|(alias, _)| alias.clone())
            .collect();
        for alias in &aliases {
            batch.delete_mut(Namespace::Meta, &[ALIAS, alias.as_bytes()].concat());
        }
        self.store.commit(batch).await?;
        self.contexts.remove(id);
        let map = Rc::make_mut(&mut self.aliases);
        for alias in aliases {
            map.remove(&alias);
        }
        Ok(())
    }

    /// Runs a queued xcall as this node's member in the target context, which this node must
    /// hold (roles come with the membership log).
    async fn xcall(&mut self, request: &XCallRequest, depth: usize) -> Result<(), NodeError> {
        if depth + 1 > MAX_XCALL_DEPTH {
            return Err(NodeError::BadArgs(format!(
                "xcalls nest deeper than {MAX_XCALL_DEPTH}"
            )));
        }
        let target = ContextId(request.context_id);
        if !self.contexts.contains_key(&target) {
            return Err(NodeError::UnknownContext(target.to_string()));
        }
        let args: serde_json::Value = serde_json::from_slice(&request.params)
            .map_err(|e| NodeError::BadArgs(format!("xcall params are not JSON ({e})")))?;
        self.execute_at_depth(&target, &request.function, args, depth + 1)
            .await
            .map(|_| ())
    }

    /// Runs a call on a context's state, reading from the store each row the call asks for
    /// that is not in memory yet (see [`Rows`]), and running it again until it has them all.
    async fn run_call(
        &mut self,
        app: &App,
        call: &Call<'_>,
        ctx: &mut ContextState,
    ) -> Result<Outcome, NodeError> {
        let mut misses = 0;
        loop {
            let (view, key) =
                match self
                    .runtime
                    .call(app, call, ctx.views(&self.blobs, &self.aliases))
                {
                    Ok(outcome) => return Ok(outcome),
                    Err(RuntimeError::MethodNotFound(m)) => {
                        return Err(NodeError::MethodNotFound(m))
                    }
                    Err(RuntimeError::NotLoaded { view, key }) => (view, key),
                    Err(other) => return Err(NodeError::Execution(other)),
                };
            misses += 1;
            let (ns, rows, stored_key) = match view {
                ViewKind::Shared => (Namespace::State, &mut ctx.shared, scoped(&ctx.id, &key)),
                ViewKind::Private => (Namespace::Private, &mut ctx.private, scoped(&ctx.id, &key)),
                ViewKind::Blob => (Namespace::Blobs, &mut self.blobs, key.clone()),
            };
            if misses > MAX_ROW_MISSES && view != ViewKind::Blob {
                read_whole(&self.store, ctx, view).await?;
            } else {
                let value = self.store.get(ns, &stored_key).await?;
                Rc::make_mut(rows).learn(key, value);
            }
        }
    }

    /// Runs a local call and, if it changed state, commits state, delta and heads in one batch.
    async fn run_local(
        &mut self,
        app: &App,
        ctx: &mut ContextState,
        method: &str,
        args: serde_json::Value,
        batch: &mut Batch,
    ) -> Result<ExecuteResult, NodeError> {
        if let Some(anchor) = &ctx.anchor {
            if !anchor.app_matches {
                return Err(NodeError::Unauthorized(format!(
                    "the app of {} is not the one its anchor records",
                    ctx.id
                )));
            }
            if !anchor.members.contains(&self.key.public()) {
                return Err(NodeError::Unauthorized(format!(
                    "this node is not a member of {} on its anchor",
                    ctx.id
                )));
            }
        }
        let input = match args {
            serde_json::Value::Object(_) => serde_json::to_vec(&args).expect("JSON encodes"),
            serde_json::Value::Null => b"{}".to_vec(),
            other => return Err(NodeError::BadArgs(json_type(&other).into())),
        };
        // A call that changes nothing needs no delta, and runs even when no timestamp is left.
        let stamp = self.next_timestamp(ctx);
        let timestamp = *stamp.as_ref().unwrap_or(&u64::MAX);
        let random_seed = self.env.random32();
        let call = Call {
            method,
            input: &input,
            context_id: ctx.id.0,
            executor_id: self.key.public().0,
            time_now_nanos: timestamp,
            random_seed,
        };
        let outcome = self.run_call(app, &call, ctx).await?;
        let output = match &outcome.returns {
            Ok(Some(bytes)) => json_or_bytes(bytes),
            Ok(None) => serde_json::Value::Null,
            Err(bytes) => {
                return Err(NodeError::AppError(
                    String::from_utf8_lossy(bytes).into_owned(),
                ))
            }
        };
        // What leaves the node of each event; withheld payloads stay here, by hash.
        let mut withheld = Vec::new();
        let events: Vec<EventRecord> = outcome
            .events
            .iter()
            .map(|e| {
                let setting = ctx.disclosure.get(&e.kind).cloned().unwrap_or_default();
                let (data, hash) = setting.apply(&e.data);
                if let Some(hash) = hash {
                    withheld.push((hash, e.data.clone()));
                }
                EventRecord {
                    kind: e.kind.clone(),
                    data,
                    withheld: hash,
                }
            })
            .collect();
        let mut delta = None;
        let writes = !outcome.artifact.is_empty() || !outcome.shared_writes.is_empty();
        if writes {
            stamp?;
            match ctx.role_now(&self.key.public()) {
                Some(role) if role.can_write() => {}
                Some(_) => {
                    return Err(NodeError::Unauthorized(format!(
                        "{method} changes state, and this node is a reader of {}",
                        ctx.id
                    )))
                }
                None => {
                    return Err(NodeError::Unauthorized(format!(
                        "this node was removed from {}",
                        ctx.id
                    )))
                }
            }
        }
        if !outcome.artifact.is_empty() {
            let root_hash = Hash(outcome.root_hash.unwrap_or_default());
            delta = Some(
                DeltaBody {
                    context_id: ctx.id,
                    parents: ctx.record.heads.clone(),
                    author: self.key.public(),
                    timestamp,
                    artifact: outcome.artifact.clone(),
                    root_hash,
                    events: events.clone(),
                    genesis: ctx.record.heads.is_empty().then(|| Genesis {
                        input: input.clone(),
                        random_seed,
                    }),
                    author_cert: ctx.record.cert.clone(),
                    op: None,
                }
                .sign(&self.key),
            );
        }
        let root_hash = outcome.root_hash.map(Hash).or(ctx.record.root_hash);
        let audit = AuditRecord::seal(
            AuditEntry {
                kind: AuditKind::Call,
                executor: self.key.public(),
                method: method.to_owned(),
                args_hash: Hash(*blake3::hash(&input).as_bytes()),
                outcome: "ok".into(),
                root_hash,
                time: timestamp,
                random_seed,
                delta_id: delta.as_ref().map(Delta::id),
            },
            &ctx.audit,
            &self.key,
        );
        stage_audit(batch, ctx.id, &audit);
        for (hash, payload) in &withheld {
            let key = [PAYLOAD, ctx.id.as_bytes(), hash.as_bytes()].concat();
            batch.put_mut(Namespace::Meta, &key, payload.clone());
        }
        let blob_ids: Vec<String> = outcome
            .blobs
            .keys()
            .map(|id| bs58::encode(id).into_string())
            .collect();
        for (id, data) in &outcome.blobs {
            batch.put_mut(Namespace::Blobs, id, data.clone());
        }
        {
            let mut record = ctx.record.clone();
            record.root_hash = root_hash;
            stage_writes(
                batch,
                ctx.id,
                &outcome.shared_writes,
                &outcome.private_writes,
            );
            if let Some(delta) = &delta {
                record.heads = vec![delta.id()];
                stage_delta(batch, ctx.id, &mut record, delta);
            }
            batch.put_mut(
                Namespace::Contexts,
                ctx.id.as_bytes(),
                borsh::to_vec(&record).expect("encode"),
            );
            let read_only = delta.is_none()
                && outcome.shared_writes.is_empty()
                && outcome.private_writes.is_empty()
                && outcome.blobs.is_empty();
            match self.store.commit(std::mem::take(batch)).await {
                Ok(()) => ctx.audit = audit.next_head(),
                // A full disk must not stop reads: a call that changed nothing answers even if
                // its audit record could not be stored (the chain goes on from the last one).
                Err(StoreError::QuotaExceeded) if read_only => {
                    tracing::warn!(context = %ctx.id, method, "quota exhausted: a read was not audited");
                }
                Err(e) => return Err(e.into()),
            }
            ctx.apply_shared(outcome.shared_writes);
            apply_writes(&mut ctx.private, outcome.private_writes);
            if !outcome.blobs.is_empty() {
                let blobs = Rc::make_mut(&mut self.blobs);
                for (id, data) in outcome.blobs {
                    blobs.learn(id.to_vec(), Some(data));
                }
            }
            ctx.record = record;
        }
        let delta_id = delta.as_ref().map(Delta::id);
        for e in &outcome.events {
            self.events.push(NodeEvent::Event {
                context_id: ctx.id,
                kind: e.kind.clone(),
                data: json_or_bytes(&e.data),
                author: self.key.public(),
                delta_id,
                local: true,
                withheld: None,
            });
        }
        if let Some(delta) = delta {
            ctx.announced = true;
            ctx.insert_applied(&delta, true);
            self.publish(ctx.id, &ctx.secret, WireMessage::Deltas(vec![delta]));
        }
        Ok(ExecuteResult {
            output,
            logs: outcome.logs,
            events: outcome
                .events
                .iter()
                .map(|e| serde_json::json!({"kind": e.kind, "data": json_or_bytes(&e.data)}))
                .collect(),
            root_hash,
            delta_id,
            blobs: blob_ids,
            xcalls: Vec::new(),
            queued_xcalls: outcome.xcalls,
            context_requests: Vec::new(),
            queued_context_requests: outcome.context_requests,
        })
    }

    /// Feeds a message that arrived on `topic`. Anything refused becomes a
    /// [`NodeEvent::SyncRejected`] and changes nothing.
    pub async fn handle_message(&mut self, topic: &str, data: &[u8]) {
        self.handle_message_from(topic, data, None).await
    }

    /// [`Self::handle_message`], knowing which network peer sent it (the gossip source, or a
    /// direct link's peer): answers to its requests go to it alone ([`Outgoing::Reply`]).
    pub async fn handle_message_from(&mut self, topic: &str, data: &[u8], from: Option<&str>) {
        if data.len() > MAX_MESSAGE_BYTES {
            let reason = format!(
                "a message of {} bytes on {topic}, over the limit of {MAX_MESSAGE_BYTES}",
                data.len()
            );
            return self.reject(None, reason);
        }
        if let Some(id) = self.joining.keys().find(|id| context_topic(id) == topic) {
            // Only the handshake is for a joiner; the rest it cannot read yet.
            let id = *id;
            if let Some(plain) = seal::open(&context_handshake_key(&id), &id, data) {
                self.handle_handshake(id, &plain, from).await;
            }
            return;
        }
        let (data, former_secret) = match self.unseal(topic, data) {
            Ok(Some(opened)) => opened,
            Ok(None) => return, // a topic of a context this node does not hold
            Err(reason) => {
                let handshake = self.contexts.keys().find(|id| context_topic(id) == topic);
                if let Some(&id) = handshake {
                    if let Some(plain) = seal::open(&context_handshake_key(&id), &id, data) {
                        return self.handle_handshake(id, &plain, from).await;
                    }
                }
                return self.reject(None, reason);
            }
        };
        let message = match WireMessage::decode(&data) {
            Ok(m) => m,
            Err(e) => {
                let kind = match ChainTooDeep::in_error(&e) {
                    true => "ChainTooDeep",
                    false => "BadMessage",
                };
                let reason = format!("undecodable message on {topic}: {e}");
                return self.reject_as(None, kind, reason);
            }
        };
        if let Some(other) = message
            .contexts()
            .into_iter()
            .find(|id| context_topic(id) != topic)
        {
            return self.reject(
                Some(other),
                format!("a message about {other} on the wrong topic {topic}"),
            );
        }
        // A former secret opens only catching up on what came before the operation that
        // replaced it: a sync request (answered with that alone, see
        // [`Self::answer_sync_request`]), deltas made without knowledge of that operation (a
        // member's who had not received it yet), and a share of a newer secret. A delta that
        // comes after the operation was made by a key that saw it and got no share of the new
        // secret: a removed one (a joiner is given the current secret when it is admitted, in
        // its welcome, so none needs a former one).
        let past_change = |node: &Self, delta: &Delta| match former_secret {
            None => false,
            Some(by) => node.contexts.get(&delta.body.context_id).is_none_or(|ctx| {
                let known = |p: &DeltaId| ctx.dag.contains_key(p);
                let after =
                    with_ancestors(&ctx.dag, delta.body.parents.iter().copied().filter(known));
                after.contains(&by)
            }),
        };
        if let (Some(by), WireMessage::PayloadRequest { context_id, .. })
        | (Some(by), WireMessage::Payload { context_id, .. }) = (former_secret, &message)
        {
            let reason = format!("a payload message sealed with the secret {by} replaced");
            return self.reject(Some(*context_id), reason);
        }
        match message {
            WireMessage::Deltas(deltas) => {
                for delta in deltas {
                    let context_id = delta.body.context_id;
                    if past_change(self, &delta) {
                        let reason = format!(
                            "delta {} sealed with a former secret, after the operation that \
                             replaced it",
                            delta.id()
                        );
                        self.reject(Some(context_id), reason);
                        continue;
                    }
                    if let Err(e) = self.receive_delta(delta).await {
                        self.reject_as(Some(context_id), e.kind(), e.to_string());
                    }
                }
            }
            WireMessage::Share {
                context_id,
                by,
                share,
                from,
                signature,
            } => {
                if let Err(e) = self
                    .receive_share(context_id, by, share, *from, signature)
                    .await
                {
                    self.reject_as(Some(context_id), e.kind(), e.to_string());
                }
            }
            WireMessage::PayloadRequest {
                context_id,
                hash,
                requester,
                signature,
            } => {
                let result = self
                    .answer_payload_request(context_id, hash, *requester, signature)
                    .await;
                if let Err(e) = result {
                    self.reject_as(Some(context_id), e.kind(), e.to_string());
                }
            }
            WireMessage::Payload {
                context_id,
                hash,
                to,
                sealed,
            } => {
                if let Err(e) = self.receive_payload(context_id, hash, to, &sealed) {
                    self.reject_as(Some(context_id), e.kind(), e.to_string());
                }
            }
            WireMessage::SnapshotPart {
                context_id,
                digest,
                index,
                parts,
                chunk,
                provider,
                signature,
            } => {
                if former_secret.is_some() {
                    return; // a snapshot is of the current state, under the current secret
                }
                let part = (digest, index, parts, chunk, *provider, signature);
                if let Err(e) = self.receive_snapshot_part(context_id, part).await {
                    let reason = format!("a state snapshot: {e}");
                    self.reject_as(Some(context_id), e.kind(), reason);
                }
            }
            WireMessage::JoinRequest { context_id, .. }
            | WireMessage::Welcome { context_id, .. } => {
                self.reject(
                    Some(context_id),
                    "a join handshake sealed with the context's secret".into(),
                );
            }
            WireMessage::SyncRequest {
                context_id,
                heads,
                root_hash,
                requester,
                signature,
            } => {
                let signed = (&heads, &root_hash, &*requester, &signature);
                match self.admit_sync_request(context_id, signed, former_secret) {
                    Ok(true) => {}
                    Ok(false) => return, // over its budget: dropped
                    Err(e) => return self.reject(Some(context_id), e.to_string()),
                }
                if let (Some(theirs), None) = (root_hash, former_secret) {
                    if let Err(e) = self.compare_root(context_id, &heads, theirs).await {
                        self.reject_as(Some(context_id), e.kind(), e.to_string());
                    }
                }
                if let Err(e) = self
                    .answer_sync_request(context_id, heads, former_secret, from)
                    .await
                {
                    self.reject_as(Some(context_id), e.kind(), e.to_string());
                }
            }
        }
    }

    /// Checks a sync request before anything is done for it: that a member signed it (one the
    /// log counts as a member now, or, under a former secret, when that secret was current),
    /// and that the member has budget left (`Ok(false)`: it has not, the request is dropped).
    #[allow(clippy::type_complexity)]
    fn admit_sync_request(
        &mut self,
        context_id: ContextId,
        (heads, root_hash, requester, signature): (
            &Vec<DeltaId>,
            &Option<Hash>,
            &MemberCert,
            &Signature,
        ),
        former_secret: Option<DeltaId>,
    ) -> Result<bool, NodeError> {
        let now = self.env.now_nanos();
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(false);
        };
        let member = requester.member;
        let message = WireMessage::sync_request_message(&context_id, heads, root_hash);
        verify_signature(&member, &message, signature).map_err(|_| {
            NodeError::Unauthorized("a sync request whose signature does not verify".into())
        })?;
        // Under a former secret: a member when that secret was current (a removed member
        // catches up to its removal, and no further). Judged before the chain is checked (and
        // kept): a stranger's certificates cost a lookup, not signatures or memory.
        let parents = former_secret
            .and_then(|op| ctx.dag.get(&op))
            .map_or_else(|| ctx.record.heads.clone(), |e| e.parents.clone());
        let entry = LogEntry::new(parents, member, u64::MAX, requester, None);
        if ctx.log.role_of_new(&entry).is_none() {
            return Err(NodeError::Unauthorized(format!(
                "{member} is no member of {context_id}: its sync request gets nothing"
            )));
        }
        let cert_hash = *blake3::hash(&borsh::to_vec(requester).expect("encode")).as_bytes();
        if !ctx.verified_certs.contains(&cert_hash) {
            requester.authenticate(&context_id, &member)?;
            ctx.verified_certs.insert(cert_hash);
        }
        if !ctx.take_sync_token(member, now) {
            tracing::debug!(%context_id, %member, "a sync request over its budget");
            return Ok(false);
        }
        Ok(true)
    }

    /// A message sealed with a context's handshake key: a joiner's request (for members) or a
    /// member's welcome (for a joiner). Anything else under that key is refused.
    async fn handle_handshake(&mut self, id: ContextId, data: &[u8], from: Option<&str>) {
        let result = match WireMessage::decode(data) {
            Err(e) => Err(NodeError::BadInvitation(format!(
                "an undecodable join handshake: {e}"
            ))),
            Ok(m) if m.contexts() != [id] => Err(NodeError::BadInvitation(
                "a join handshake about another context".into(),
            )),
            Ok(WireMessage::JoinRequest { cert, .. }) => {
                self.receive_join_request(id, *cert, from).await
            }
            Ok(WireMessage::Welcome {
                admit,
                share,
                from: member,
                signature,
                ..
            }) => {
                self.receive_welcome(id, admit, share, *member, signature)
                    .await
            }
            Ok(_) => Err(NodeError::Unauthorized(
                "only a join handshake is sealed with the handshake key".into(),
            )),
        };
        if let Err(e) = result {
            self.reject(Some(id), e.to_string());
        }
    }

    /// A joiner asks to be admitted with `cert`. A member checks the invitation against the
    /// log it shares with every other member (not used up, not revoked), its own clock (not
    /// expired now, whatever the joiner claims), and the inviter (an admin still); then records
    /// the admission ([`MemberOp::Admit`]) and welcomes the joiner with the context's secret
    /// sealed to its key. A joiner already admitted with this invitation (asking again: the
    /// welcome was lost) is welcomed again.
    async fn receive_join_request(
        &mut self,
        context_id: ContextId,
        cert: MemberCert,
        peer: Option<&str>,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(());
        };
        let member = cert.member;
        let bad = |why: &str| Err(NodeError::BadInvitation(format!("{member}'s join: {why}")));
        let Issuance::Invited { invitation, .. } = &cert.issued else {
            return bad("not a certificate redeemed from an invitation");
        };
        // What the log says comes first, and the chain is checked without keeping it: anyone
        // holding a link can make certificates for any number of keys.
        let invite_key = invitation.invite_key;
        let now = self.env.now_nanos();
        let verdict = ctx.log.verdict();
        if let Some((with, admissions)) = verdict.admitted.get(&member) {
            // Asking again: the welcome was lost. As often as a sync request.
            let (admit, same) = (admissions[0], *with == invite_key);
            if !same || !ctx.take_sync_token(member, now) {
                return Ok(());
            }
            cert.authenticate(&context_id, &member)?;
            return self.welcome(context_id, member, admit, peer);
        }
        if verdict.revoked_invitations.contains_key(&invite_key) {
            return bad("the invitation was revoked");
        }
        if verdict
            .invitation_uses
            .get(&invite_key)
            .copied()
            .unwrap_or(0)
            >= invitation.uses
        {
            return bad("the invitation was already used");
        }
        if now >= invitation.expires_at {
            return bad("the invitation expired before a member saw the join");
        }
        if ctx.role_of(&invitation.inviter) != Some(Role::Admin) {
            return bad("the inviter is no admin of the context now");
        }
        cert.authenticate(&context_id, &member)?;
        if !ctx.synced() {
            return Ok(()); // a member with the state records it
        }
        let op = MemberOp::Admit {
            member,
            cert: Box::new(cert),
        };
        let admit = self.member_op(&context_id, op).await?;
        let ctx = &self.contexts[&context_id];
        if !ctx.log.verdict().admitted.contains_key(&member) {
            return bad("the admission does not count (stamped after the invitation expired)");
        }
        self.welcome(context_id, member, admit, peer)
    }

    /// Gives an admitted joiner the context's current secret, sealed to its key.
    fn welcome(
        &mut self,
        context_id: ContextId,
        member: PublicKey,
        admit: DeltaId,
        peer: Option<&str>,
    ) -> Result<(), NodeError> {
        let ctx = self.context(&context_id)?;
        let sealed = seal::seal_to(&member, &context_id, self.env.random32(), &ctx.secret)
            .ok_or_else(|| NodeError::BadInvitation(format!("{member} is not a valid key")))?;
        let share = Share { member, sealed };
        let signature = self
            .key
            .sign(&WireMessage::welcome_message(&context_id, &admit, &share));
        let message = WireMessage::Welcome {
            context_id,
            admit,
            share,
            from: Box::new(ctx.record.cert.clone()),
            signature,
        };
        self.reply(
            context_id,
            &context_handshake_key(&context_id),
            message,
            peer,
        );
        Ok(())
    }

    /// A member admitted this node's join: takes the context's secret it sealed to this node's
    /// key, and asks the members for the state. The first welcome that opens is taken.
    async fn receive_welcome(
        &mut self,
        context_id: ContextId,
        admit: DeltaId,
        share: Share,
        from: MemberCert,
        signature: Signature,
    ) -> Result<(), NodeError> {
        let Some(joining) = self.joining.get(&context_id) else {
            return Ok(()); // a member already, or never asked
        };
        if share.member != self.key.public() {
            return Ok(()); // another joiner's
        }
        from.authenticate(&context_id, &from.member)?;
        let message = WireMessage::welcome_message(&context_id, &admit, &share);
        verify_signature(&from.member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("a welcome whose signature does not verify".into())
        })?;
        let secret = seal::open_share(&self.key, &context_id, &share.sealed).ok_or_else(|| {
            NodeError::Unauthorized("a welcome this node's key does not open".into())
        })?;
        let record = ContextRecord {
            app_id: joining.app_id,
            heads: vec![],
            root_hash: None,
            next_seq: 0,
            cert: joining.cert.clone(),
        };
        self.store
            .commit(
                Batch::new()
                    .put(
                        Namespace::Keys,
                        &scoped(&context_id, CONTEXT_SECRET),
                        secret.to_vec(),
                    )
                    .put(
                        Namespace::Contexts,
                        context_id.as_bytes(),
                        borsh::to_vec(&record).expect("encode"),
                    )
                    .delete(Namespace::Meta, &scoped_meta(JOINING, &context_id)),
            )
            .await?;
        self.joining.remove(&context_id);
        self.load_context(context_id, record).await?;
        self.events.push(NodeEvent::Joined {
            context_id,
            admitted_by: from.member,
        });
        Ok(())
    }

    /// Opens a message that arrived on a context topic: `None` if the context is not ours; with
    /// the operation that replaced the secret it was sealed with, if that was a former one.
    #[allow(clippy::type_complexity)]
    fn unseal(
        &self,
        topic: &str,
        data: &[u8],
    ) -> Result<Option<(Vec<u8>, Option<DeltaId>)>, String> {
        if !topic.starts_with(CONTEXT_TOPIC_PREFIX) {
            return Err(format!("a message on {topic}, which is no context topic"));
        }
        let Some(ctx) = self
            .contexts
            .iter()
            .find_map(|(id, ctx)| (context_topic(id) == topic).then_some(ctx))
        else {
            return Ok(None); // a topic of a context this node does not hold
        };
        ctx.open(data).map(Some).ok_or_else(|| {
            format!("a message on {topic} that the context's key does not open (not from a member)")
        })
    }

    /// Seals a message for `context_id` as this node would send it (tools and tests).
    pub fn seal_for(
        &self,
        context_id: &ContextId,
        message: &WireMessage,
    ) -> Result<Vec<u8>, NodeError> {
        self.seal_bytes_for(context_id, &message.encode())
    }

    /// Seals `plain` for `context_id`, whatever it holds (tools and tests: a message no
    /// [`WireMessage`] encodes to).
    pub fn seal_bytes_for(
        &self,
        context_id: &ContextId,
        plain: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let ctx = self.context(context_id)?;
        Ok(seal::seal(
            &ctx.secret,
            context_id,
            self.env.random32(),
            plain,
        ))
    }

    /// Seals a join handshake message for `context_id` as a joiner or a member would send it
    /// (tools and tests); the context need not be this node's.
    pub fn seal_handshake(&self, context_id: &ContextId, message: &WireMessage) -> Vec<u8> {
        let key = context_handshake_key(context_id);
        seal::seal(&key, context_id, self.env.random32(), &message.encode())
    }

    /// Signs `snapshot` as this node's and splits it into the messages that carry it, as
    /// [`crate::snapshot`] describes (tools and tests).
    pub fn sign_snapshot(
        &self,
        context_id: &ContextId,
        snapshot: &Snapshot,
    ) -> Result<Vec<WireMessage>, NodeError> {
        let ctx = self.context(context_id)?;
        Ok(snapshot::split(snapshot, &self.key, &ctx.record.cert))
    }

    /// Opens a message published for `context_id` (tools and tests).
    pub fn open_message(
        &self,
        context_id: &ContextId,
        data: &[u8],
    ) -> Result<WireMessage, NodeError> {
        let ctx = self.context(context_id)?;
        let (plain, _) = ctx.open(data).ok_or_else(|| {
            NodeError::Unauthorized("the context key does not open this message".into())
        })?;
        WireMessage::decode(&plain).map_err(|e| corrupt("message", e))
    }

    fn reject(&mut self, context_id: Option<ContextId>, reason: String) {
        self.reject_as(context_id, "BadMessage", reason);
    }

    /// Refuses a remote message for a reason of `kind` (see [`NodeEvent::SyncRejected`]).
    fn reject_as(&mut self, context_id: Option<ContextId>, kind: &str, reason: String) {
        tracing::warn!(?context_id, kind, %reason, "refused a remote message");
        self.events.push(NodeEvent::SyncRejected {
            context_id,
            kind: kind.to_owned(),
            reason,
        });
    }

    async fn receive_delta(&mut self, delta: Delta) -> Result<(), NodeError> {
        let context_id = delta.body.context_id;
        let id = match delta.verify() {
            Ok(id) => id,
            Err(e) => {
                self.reject(
                    Some(context_id),
                    format!("delta from {}: {e}", delta.body.author),
                );
                return Ok(());
            }
        };
        if !self.contexts.contains_key(&context_id) {
            return Ok(()); // not ours: gossip may deliver topics we left
        }
        let ctx = self.contexts.get_mut(&context_id).expect("checked above");
        let cert = &delta.body.author_cert;
        let cert_hash = *blake3::hash(&borsh::to_vec(cert).expect("encode")).as_bytes();
        if !ctx.verified_certs.contains(&cert_hash) {
            if let Err(e) = cert.authenticate(&context_id, &delta.body.author) {
                let entry = AuditEntry {
                    kind: AuditKind::Refused,
                    executor: delta.body.author,
                    method: "delta".into(),
                    args_hash: Hash(*blake3::hash(&delta.body.artifact).as_bytes()),
                    outcome: e.kind().to_owned(),
                    root_hash: ctx.record.root_hash,
                    time: self.env.now_nanos(),
                    random_seed: [0; 32],
                    delta_id: Some(id),
                };
                let mut ctx = self.contexts.remove(&context_id).expect("present");
                let _ = self.audit_alone(&mut ctx, entry).await;
                self.contexts.insert(context_id, ctx);
                self.reject_as(Some(context_id), e.kind(), format!("delta {id}: {e}"));
                return Ok(());
            }
            ctx.verified_certs.insert(cert_hash);
        }
        if ctx.dag.contains_key(&id) || ctx.pending.contains_key(&id) {
            return Ok(());
        }
        let now = self.env.now_nanos();
        if delta.body.timestamp > now.saturating_add(MAX_CLOCK_SKEW_NANOS) {
            return Err(NodeError::FutureDelta(format!(
                "delta {id} by {} is stamped {} ns ahead of this node's clock, over the {} ns allowed",
                delta.body.author,
                delta.body.timestamp - now,
                MAX_CLOCK_SKEW_NANOS
            )));
        }
        if ctx.pending.len() >= MAX_PENDING {
            ctx.pending.clear();
        }
        ctx.pending.insert(id, delta);
        self.apply_ready(context_id).await
    }

    /// Applies every pending delta whose parents are all applied, until none is left.
    async fn apply_ready(&mut self, context_id: ContextId) -> Result<(), NodeError> {
        self.context(&context_id)?;
        loop {
            let ctx = self.contexts.get_mut(&context_id).expect("known context");
            // While a snapshot is half in place, only the deltas it covers can be recorded.
            let covering = matches!(ctx.snapshot, Phase::Covering(_));
            let ready = ctx
                .pending
                .iter()
                .filter(|(id, d)| {
                    d.body.parents.iter().all(|p| ctx.dag.contains_key(p))
                        && (!covering || ctx.covers(id))
                })
                .map(|(id, d)| (d.body.timestamp, *id))
                .min();
            let Some((_, id)) = ready else {
                if covering && self.install_snapshot(context_id).await? {
                    continue;
                }
                break;
            };
            let delta = ctx.pending.remove(&id).expect("present");
            // An upgrade applied in this loop changes the app for the deltas after it.
            let app_id = ctx.app_id();
            let app = self.app(app_id).await?;
            let mut ctx = self.contexts.remove(&context_id).expect("known context");
            let result = self.apply_remote(&app, &mut ctx, id, delta).await;
            self.contexts.insert(context_id, ctx);
            if let Err(e) = result {
                self.reject_as(Some(context_id), e.kind(), format!("delta {id}: {e}"));
            }
        }
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        // A joiner announces itself once its admission is in its log (it acts only after it).
        if !ctx.announced && ctx.synced() && ctx.role_now(&self.key.public()).is_some() {
            ctx.announced = true;
            let mut ctx = self.contexts.remove(&context_id).expect("known context");
            let result = self.member_op_in(&mut ctx, MemberOp::Join).await;
            self.contexts.insert(context_id, ctx);
            if let Err(e) = result {
                tracing::warn!(%context_id, %e, "could not announce this node's membership");
            }
            self.bind_if_needed(&context_id).await;
        }
        let now = self.env.now_nanos();
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        let due = ctx
            .last_sync_request
            .is_none_or(|t| now.saturating_sub(t) >= SYNC_RETRY_NANOS);
        if !ctx.pending.is_empty() && due {
            ctx.last_sync_request = Some(now);
            let (secret, request) = (ctx.secret, ctx.sync_request(&self.key));
            self.publish(context_id, &secret, request);
        }
        Ok(())
    }

    /// Applies one verified delta whose parents are all applied. The membership log decides
    /// whether it stands: a delta that does not is kept in the DAG (members who applied it
    /// before they learnt why must agree on the DAG) but its changes are not applied. A
    /// membership operation judges the log anew; data deltas are merged by the guest.
    async fn apply_remote(
        &mut self,
        app: &App,
        ctx: &mut ContextState,
        id: DeltaId,
        delta: Delta,
    ) -> Result<(), NodeError> {
        let body = &delta.body;
        if body.genesis.is_some() && (!ctx.dag.is_empty() || !body.parents.is_empty()) {
            return Err(NodeError::Corrupt(format!(
                "{id} claims to be a genesis but the context has one"
            )));
        }
        if body.parents.iter().any(|p| {
            ctx.dag
                .get(p)
                .is_some_and(|e| e.timestamp >= body.timestamp)
        }) {
            return Err(NodeError::Corrupt(format!(
                "{id} is not later than its parents"
            )));
        }
        let entry = LogEntry::new(
            body.parents.clone(),
            body.author,
            body.timestamp,
            &body.author_cert,
            body.op.clone(),
        );
        let allows = |role: Role| match &body.op {
            Some(op) => op.allowed_for(role),
            None => role.can_write(),
        };
        let stands = ctx.log.role_of_new(&entry).is_some_and(allows);
        // A delta that a member who holds it and whose authority stands has built on is taken
        // even if it would be refused alone: that member took it before the removal it missed
        // was settled, and the DAG must stay one.
        let vouched = || {
            ctx.pending
                .values()
                .any(|d| d.body.parents.contains(&id) && ctx.role_of(&d.body.author_cert).is_some())
        };
        // Refused outright (not kept): a root statement that does not verify, or what not even
        // the author's certificate allows (a reader's write).
        let refusal = match body
            .op
            .as_ref()
            .map(|op| op.verify_root_statement(&body.author))
        {
            Some(Err(why)) => Some(format!("a root statement that does not verify: {why}")),
            _ if matches!(&body.op, Some(MemberOp::Admit { cert, .. }) if cert.context_id != ctx.id) => {
                Some("an admission with another context's invitation".into())
            }
            _ if ctx
                .anchor
                .as_ref()
                .is_some_and(|a| !a.members.contains(&body.author)) =>
            {
                let reason = format!(
                    "{} is not a member of {} on its anchor",
                    body.author, ctx.id
                );
                self.events.push(NodeEvent::AnchorMismatch {
                    context_id: ctx.id,
                    reason: reason.clone(),
                });
                Some(reason)
            }
            _ if !stands && ctx.log.settled_removal_missed(&entry).is_some() && !vouched() => {
                let removal = ctx.log.settled_removal_missed(&entry).expect("checked");
                Some(format!(
                    "{} signed {id} on a point from before the removal {removal}, which others \
                     have built on: a removed key's new deltas are refused",
                    body.author
                ))
            }
            _ if !stands && !allows(body.author_cert.role) => Some(format!(
                "{} is a {:?} of {} and may not {}",
                body.author,
                body.author_cert.role,
                ctx.id,
                if body.op.is_some() {
                    "change membership"
                } else {
                    "write"
                }
            )),
            _ => None,
        };
        if let Some(why) = refusal {
            let e = NodeError::Unauthorized(why);
            let refused = AuditEntry {
                kind: AuditKind::Refused,
                executor: body.author,
                method: "delta".into(),
                args_hash: Hash(*blake3::hash(&body.artifact).as_bytes()),
                outcome: e.kind().to_owned(),
                root_hash: ctx.record.root_hash,
                time: self.env.now_nanos(),
                random_seed: [0; 32],
                delta_id: Some(id),
            };
            let _ = self.audit_alone(ctx, refused).await;
            return Err(e);
        }
        if let (true, Some(MemberOp::SetApp { wasm, .. })) = (stands, &body.op) {
            self.install_app(wasm).await?; // the binary its hash names (checked above)
        }
        let call = merge_call(&delta, &id);
        let covered = ctx.covers(&id);
        let outcome = match (stands, &body.op) {
            (true, None) if !covered => Some(self.run_call(app, &call, ctx).await?),
            _ => None,
        };
        if let Some(Err(e)) = outcome.as_ref().map(|o| &o.returns) {
            return Err(NodeError::AppError(String::from_utf8_lossy(e).into_owned()));
        }
        let root_hash = outcome
            .as_ref()
            .and_then(|o| o.root_hash)
            .map(Hash)
            .or(ctx.record.root_hash);

        let mut heads: BTreeSet<DeltaId> = ctx.record.heads.iter().copied().collect();
        let on_parents = heads == body.parents.iter().copied().collect();
        for parent in &body.parents {
            heads.remove(parent);
        }
        heads.insert(id);
        let mut record = ctx.record.clone();
        record.heads = heads.into_iter().collect();
        record.root_hash = root_hash;

        let mut batch = Batch::new();
        if let Some(outcome) = &outcome {
            stage_writes(
                &mut batch,
                ctx.id,
                &outcome.shared_writes,
                &outcome.private_writes,
            );
        }
        stage_delta(&mut batch, ctx.id, &mut record, &delta);
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        let (method, input, random_seed) = match (&body.op, &outcome) {
            (Some(op), _) => (op.method(), body.artifact.as_slice(), [0; 32]),
            (None, Some(_)) => (call.method, call.input, call.random_seed),
            (None, None) => ("delta", body.artifact.as_slice(), [0; 32]),
        };
        let audit = AuditRecord::seal(
            AuditEntry {
                kind: if stands {
                    AuditKind::RemoteDelta
                } else {
                    AuditKind::Refused
                },
                executor: body.author,
                method: method.to_owned(),
                args_hash: Hash(*blake3::hash(input).as_bytes()),
                outcome: if stands { "ok" } else { "Void" }.into(),
                root_hash,
                time: body.timestamp,
                random_seed,
                delta_id: Some(id),
            },
            &ctx.audit,
            &self.key,
        );
        stage_audit(&mut batch, ctx.id, &audit);
        // An admin's operation may carry this node's share of a new context secret.
        let rotation = body
            .op
            .as_ref()
            .filter(|_| stands)
            .and_then(|op| op.shares().iter().find(|s| s.member == self.key.public()))
            .and_then(|share| seal::open_share(&self.key, &ctx.id, &share.sealed))
            .filter(|next| !ctx.knows_secret(next));
        if let Some(next) = &rotation {
            ctx.stage_rotation(next, &id, &mut batch);
        }
        self.store.commit(batch).await?;
        let rotated = rotation.is_some();
        if let Some(next) = rotation {
            ctx.rotate(next, id);
        }

        if let Some(outcome) = outcome {
            ctx.apply_shared(outcome.shared_writes);
            apply_writes(&mut ctx.private, outcome.private_writes);
        }
        ctx.record = record;
        ctx.audit = audit.next_head();
        ctx.learn_member(&body.author_cert);
        ctx.insert_applied(&delta, stands);
        if rotated {
            // What members sent since is sealed with the new secret: ask for it.
            self.publish(ctx.id, &ctx.secret, ctx.sync_request(&self.key));
        }
        if stands {
            self.clock = self.clock.max(body.timestamp);
        }

        if let Some(op) = &body.op {
            self.rejudge(ctx).await?;
            self.events.push(NodeEvent::Membership {
                context_id: ctx.id,
                delta_id: id,
                by: body.author,
                op: op.clone(),
                counted: ctx.log.verdict().applied_ops.contains(&id),
            });
        }
        if !stands {
            self.events.push(NodeEvent::Voided {
                context_id: ctx.id,
                delta_id: id,
                author: body.author,
            });
            return Ok(());
        }
        if body.op.is_none() && on_parents && !covered && root_hash != Some(body.root_hash) {
            self.events.push(NodeEvent::Divergence {
                context_id: ctx.id,
                delta_id: id,
                expected: body.root_hash,
                actual: root_hash,
            });
        }
        self.events.push(NodeEvent::DeltaApplied {
            context_id: ctx.id,
            delta_id: id,
            author: body.author,
            root_hash,
        });
        for e in &body.events {
            self.events.push(NodeEvent::Event {
                context_id: ctx.id,
                kind: e.kind.clone(),
                data: json_or_bytes(&e.data),
                author: body.author,
                delta_id: Some(id),
                local: false,
                withheld: e.withheld,
            });
        }
        Ok(())
    }

    /// Takes a share of the context's current secret from an admin (see
    /// [`WireMessage::Share`]), if it is for this node, the admin's signature and role hold,
    /// and the operation it names made the latest secret: it stands in this node's log (its
    /// author's authority with it), and no other such operation comes after it. A share from
    /// a removed admin, or one naming a voided removal, changes nothing.
    async fn receive_share(
        &mut self,
        context_id: ContextId,
        by: DeltaId,
        share: Share,
        from: MemberCert,
        signature: Signature,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&context_id) else {
            return Ok(());
        };
        if share.member != self.key.public() {
            return Ok(());
        }
        from.authenticate(&context_id, &from.member)?;
        if ctx.role_of(&from) != Some(Role::Admin) {
            return Err(NodeError::Unauthorized(format!(
                "{} shared a secret but is no admin of {context_id}",
                from.member
            )));
        }
        let message = WireMessage::share_message(&context_id, &by, &share);
        verify_signature(&from.member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("a share whose signature does not verify".into())
        })?;
        if !ctx.makes_latest_secret(&by) {
            return Err(NodeError::Unauthorized(format!(
                "a share for {by}, which is not the operation that made the latest secret \
                 standing in this node's log"
            )));
        }
        let Some(next) = seal::open_share(&self.key, &context_id, &share.sealed) else {
            return Err(NodeError::Unauthorized(
                "a share this node's key does not open".into(),
            ));
        };
        if ctx.knows_secret(&next) {
            return Ok(());
        }
        let mut batch = Batch::new();
        ctx.stage_rotation(&next, &by, &mut batch);
        self.store.commit(batch).await?;
        let ctx = self.contexts.get_mut(&context_id).expect("checked above");
        ctx.rotate(next, by);
        let (secret, request) = (ctx.secret, ctx.sync_request(&self.key));
        self.publish(context_id, &secret, request);
        Ok(())
    }

    /// How this node sends events of `kind` in the context to other members from now on (see
    /// [`Disclosure`]); kept with the node's store.
    pub async fn set_disclosure(
        &mut self,
        id: &ContextId,
        kind: &str,
        disclosure: Disclosure,
    ) -> Result<(), NodeError> {
        self.context(id)?;
        let key = [DISCLOSE, id.as_bytes(), kind.as_bytes()].concat();
        let value = borsh::to_vec(&disclosure).expect("encode");
        self.store
            .commit(Batch::new().put(Namespace::Meta, &key, value))
            .await?;
        let ctx = self.contexts.get_mut(id).expect("checked above");
        ctx.disclosure.insert(kind.to_owned(), disclosure);
        Ok(())
    }

    /// Asks the author of an event for the payload it withheld (`hash`, from the event's
    /// `withheld`); the answer arrives as a [`NodeEvent::Payload`], sealed to this node's key.
    pub fn request_payload(&mut self, id: &ContextId, hash: Hash) -> Result<(), NodeError> {
        let ctx = self.context(id)?;
        let signature = self
            .key
            .sign(&WireMessage::payload_request_message(id, &hash));
        let request = WireMessage::PayloadRequest {
            context_id: *id,
            hash,
            requester: Box::new(ctx.record.cert.clone()),
            signature,
        };
        let secret = ctx.secret;
        self.publish(*id, &secret, request);
        Ok(())
    }

    /// Gives a withheld payload this node holds to a current member who asked, sealed to its
    /// key; anyone else gets nothing.
    async fn answer_payload_request(
        &mut self,
        context_id: ContextId,
        hash: Hash,
        requester: MemberCert,
        signature: Signature,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&context_id) else {
            return Ok(());
        };
        let key = [PAYLOAD, context_id.as_bytes(), hash.as_bytes()].concat();
        let Some(payload) = self.store.get(Namespace::Meta, &key).await? else {
            return Ok(()); // another member's event
        };
        requester.authenticate(&context_id, &requester.member)?;
        let message = WireMessage::payload_request_message(&context_id, &hash);
        verify_signature(&requester.member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("a payload request whose signature does not verify".into())
        })?;
        if ctx.role_of(&requester).is_none() {
            return Err(NodeError::Unauthorized(format!(
                "{} asked for a withheld payload but is no member of {context_id}",
                requester.member
            )));
        }
        let to = requester.member;
        let sealed = seal::seal_to(&to, &context_id, self.env.random32(), &payload)
            .ok_or_else(|| NodeError::BadId(format!("{to} is not a valid key")))?;
        let secret = ctx.secret;
        let answer = WireMessage::Payload {
            context_id,
            hash,
            to,
            sealed,
        };
        self.publish(context_id, &secret, answer);
        Ok(())
    }

    /// A withheld payload sealed to this node: given to subscribers if it matches its hash.
    fn receive_payload(
        &mut self,
        context_id: ContextId,
        hash: Hash,
        to: PublicKey,
        sealed: &[u8],
    ) -> Result<(), NodeError> {
        if to != self.key.public() {
            return Ok(());
        }
        let payload = seal::open_sealed_to(&self.key, &context_id, sealed).ok_or_else(|| {
            NodeError::Unauthorized("a payload this node's key does not open".into())
        })?;
        if blake3::hash(&payload).as_bytes() != hash.as_bytes() {
            return Err(NodeError::Unauthorized(
                "a payload that does not match its hash".into(),
            ));
        }
        self.events.push(NodeEvent::Payload {
            context_id,
            hash,
            data: json_or_bytes(&payload),
        });
        Ok(())
    }

    /// Judges the membership log anew after an operation. If it changes which deltas stand, or
    /// which upgrades count other than by one more on top, the state is rebuilt from the
    /// deltas that stand; one more upgrade on top runs its migration on the state as it is.
    async fn rejudge(&mut self, ctx: &mut ContextState) -> Result<(), NodeError> {
        let judged = Log::judge(&ctx.dag);
        let (old, new) = (ctx.log.verdict(), judged.verdict());
        let void_changed = new.void != old.void;
        let one_more_upgrade =
            new.upgrades.len() == old.upgrades.len() + 1 && new.upgrades.starts_with(&old.upgrades);
        let upgrades_changed = new.upgrades != old.upgrades;
        ctx.log = judged;
        // A delta that was void may stand now: its records carry its time.
        self.clock = self.clock.max(ctx.latest_standing());
        if !void_changed && one_more_upgrade {
            if matches!(ctx.snapshot, Phase::Covering(_)) {
                return Ok(()); // the snapshot's state is after every upgrade it covers
            }
            let op = *ctx.log.verdict().upgrades.last().expect("one more");
            return self.migrate_in_place(ctx, op).await;
        }
        if !void_changed && !upgrades_changed {
            return Ok(());
        }
        self.rebuild(ctx, Order::Applied).await
    }

    /// Rebuilds the shared state from the deltas that stand (see [`Self::replay_standing`])
    /// and puts it in place of the old one, in one batch.
    /// A snapshot half in place is dropped: the rebuilt state is made from the deltas alone.
    async fn rebuild(&mut self, ctx: &mut ContextState, order: Order) -> Result<(), NodeError> {
        let apps = self.apps_of(ctx).await?;
        let (rows, root_hash, _) = self.replay_standing(&apps, ctx, order, None).await?;
        self.replace_state(ctx, rows, root_hash, Batch::new()).await
    }

    /// Puts `rows` in place of the context's shared state, with its root, in one batch with
    /// what `batch` holds already; a snapshot half in place ends with it.
    async fn replace_state(
        &mut self,
        ctx: &mut ContextState,
        rows: Rows,
        root_hash: Option<Hash>,
        mut batch: Batch,
    ) -> Result<(), NodeError> {
        batch.delete_mut(Namespace::Meta, &[COVERING, ctx.id.as_bytes()].concat());
        for (key, _) in self
            .store
            .scan_prefix(Namespace::State, ctx.id.as_bytes())
            .await?
        {
            batch.delete_mut(Namespace::State, &key);
        }
        for (key, value) in rows.present() {
            batch.put_mut(Namespace::State, &scoped(&ctx.id, key), value.clone());
        }
        let mut record = ctx.record.clone();
        record.root_hash = root_hash;
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        self.store.commit(batch).await?;
        ctx.merkle = Some(MerkleTree::build(rows.present()));
        ctx.shared = Rc::new(rows);
        ctx.record = record;
        ctx.snapshot = Phase::Idle;
        Ok(())
    }

    /// A member announced `heads` with root `theirs`. If ours are the same heads with another
    /// root, the states differ although the deltas are the same: they were merged in another
    /// order (calimero-storage 0.10 can reach different roots for concurrent writes of one
    /// key), or one state is damaged. Either way, rebuilding from the deltas in their canonical
    /// order gives every member that holds them the same state, so this node does that once
    /// per heads (and at most once per [`REPAIR_NANOS`]), reports it, and announces its root
    /// again; a mismatch that remains is reported as not repaired.
    async fn compare_root(
        &mut self,
        id: ContextId,
        heads: &[DeltaId],
        theirs: Hash,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&id) else {
            return Ok(());
        };
        let same_heads = heads.iter().collect::<BTreeSet<_>>()
            == ctx.record.heads.iter().collect::<BTreeSet<_>>();
        if !same_heads || ctx.record.root_hash == Some(theirs) || !ctx.synced() {
            return Ok(());
        }
        if ctx.canonical_at.as_deref() == Some(&ctx.record.heads[..]) {
            self.events.push(NodeEvent::RootMismatch {
                context_id: id,
                ours: ctx.record.root_hash,
                theirs,
                repaired: false,
            });
            return Ok(());
        }
        let now = self.env.now_nanos();
        if ctx
            .last_repair
            .is_some_and(|t| now.saturating_sub(t) < REPAIR_NANOS)
        {
            return Ok(()); // a later announcement will ask again
        }
        let mut ctx = self.contexts.remove(&id).expect("checked above");
        ctx.last_repair = Some(now);
        let before = ctx.record.root_hash;
        let result = self.rebuild(&mut ctx, Order::Canonical).await;
        if result.is_ok() {
            ctx.canonical_at = Some(ctx.record.heads.clone());
            let args = borsh::to_vec(&(before, theirs)).expect("encode");
            let entry = AuditEntry {
                kind: AuditKind::Call,
                executor: self.key.public(),
                method: "sync.repair".into(),
                args_hash: Hash(*blake3::hash(&args).as_bytes()),
                outcome: "ok".into(),
                root_hash: ctx.record.root_hash,
                time: self.env.now_nanos(),
                random_seed: [0; 32],
                delta_id: None,
            };
            let _ = self.audit_alone(&mut ctx, entry).await;
            self.events.push(NodeEvent::RootMismatch {
                context_id: id,
                ours: ctx.record.root_hash,
                theirs,
                repaired: true,
            });
            let (secret, request) = (ctx.secret, ctx.sync_request(&self.key));
            self.publish(id, &secret, request);
        }
        self.contexts.insert(id, ctx);
        result
    }

    /// Every app the context has run (its first, and each upgrade that counts), compiled.
    async fn apps_of(&mut self, ctx: &ContextState) -> Result<HashMap<AppId, App>, NodeError> {
        let mut apps = HashMap::new();
        for id in std::iter::once(ctx.record.app_id).chain(ctx.upgrade_apps()) {
            apps.insert(id, self.app(id).await?);
        }
        Ok(apps)
    }

    /// Runs the migration of the upgrade `op` (the last that counts) on the context's state,
    /// and commits what it writes; an upgrade that names no migration changes no state.
    async fn migrate_in_place(
        &mut self,
        ctx: &mut ContextState,
        op: DeltaId,
    ) -> Result<(), NodeError> {
        let entry = ctx.dag[&op].clone();
        let Some(MemberOp::SetApp {
            app_id,
            migrate: Some(method),
            ..
        }) = &entry.op
        else {
            return Ok(());
        };
        let app = self.app(*app_id).await?;
        let call = migration_call(&ctx.id, &entry, &op, method);
        let outcome = self.run_call(&app, &call, ctx).await?;
        let (shared_writes, events) = migration_writes(outcome, &*ctx.shared)?;
        let mut batch = Batch::new();
        stage_writes(&mut batch, ctx.id, &shared_writes, &WriteSet::new());
        ctx.apply_shared(shared_writes);
        let mut record = ctx.record.clone();
        record.root_hash = tabnode_runtime::root_hash(&*ctx.shared, &ctx.id.0)
            .map(Hash)
            .or(record.root_hash);
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        self.store.commit(batch).await?;
        ctx.record = record;
        for e in events {
            self.events.push(NodeEvent::Event {
                context_id: ctx.id,
                kind: e.kind,
                data: json_or_bytes(&e.data),
                author: entry.author,
                delta_id: Some(op),
                local: entry.author == self.key.public(),
                withheld: None,
            });
        }
        Ok(())
    }

    /// Runs every stored delta of the context that stands under the membership log, in the
    /// order it was applied, on an empty state, checking each signature; each upgrade that
    /// counts switches the app (from `apps`) and runs its migration. Returns the state, its
    /// root and how many deltas are stored. Private state is not part of it (it never travels
    /// in deltas).
    ///
    /// From a `base` (a snapshot's state and the deltas it covers), it starts from that state
    /// and runs only the deltas the snapshot does not cover.
    async fn replay_standing(
        &self,
        apps: &HashMap<AppId, App>,
        ctx: &ContextState,
        order: Order,
        base: Option<&Covering>,
    ) -> Result<(Rows, Option<Hash>, usize), NodeError> {
        let (mut shared, mut root_hash, mut app) = match base {
            None => (Rc::new(Rows::complete([])), None, &apps[&ctx.record.app_id]),
            Some(base) => (
                Rc::new(Rows::complete(base.snapshot.rows.iter().cloned())),
                Some(base.snapshot.root_hash),
                &apps[&ctx.app_id_at(&base.covered)],
            ),
        };
        let private = Rc::new(Rows::complete([]));
        let mut stored = Vec::new();
        for (_, bytes) in self
            .store
            .scan_prefix(Namespace::Deltas, ctx.id.as_bytes())
            .await?
        {
            let delta = Delta::try_from_slice(&bytes).map_err(|e| corrupt("delta", e))?;
            let delta_id = delta
                .verify()
                .map_err(|e| corrupt("stored delta", format!("{}: {e}", delta.id())))?;
            if base.is_some_and(|b| b.covered.contains(&delta_id)) {
                continue;
            }
            stored.push((delta_id, delta));
        }
        let deltas = stored.len();
        if order == Order::Canonical {
            stored = canonical_order(stored);
        }
        for (delta_id, delta) in stored {
            let upgrade = match &delta.body.op {
                Some(MemberOp::SetApp {
                    app_id, migrate, ..
                }) if ctx.log.verdict().upgrades.contains(&delta_id) => Some((app_id, migrate)),
                Some(_) => continue,
                None if ctx.log.verdict().void.contains(&delta_id) => continue,
                None => None,
            };
            let call;
            if let Some((app_id, migrate)) = upgrade {
                app = &apps[app_id];
                let Some(method) = migrate else { continue };
                let entry = &ctx.dag[&delta_id];
                call = migration_call(&ctx.id, entry, &delta_id, method);
            } else {
                call = merge_call(&delta, &delta_id);
            }
            let outcome = self
                .runtime
                .call(app, &call, Views::new(shared.clone(), private.clone()))
                .map_err(NodeError::Execution)?;
            let writes = if upgrade.is_some() {
                migration_writes(outcome, &*shared)?.0
            } else {
                root_hash = outcome.root_hash.map(Hash).or(root_hash);
                outcome.shared_writes
            };
            apply_writes(&mut shared, writes);
            if upgrade.is_some() {
                root_hash = tabnode_runtime::root_hash(&*shared, &ctx.id.0)
                    .map(Hash)
                    .or(root_hash);
            }
        }
        Ok((Rc::unwrap_or_clone(shared), root_hash, deltas))
    }

    /// Re-runs every stored delta that stands on an empty state (see the membership log), and
    /// says whether it reaches the root the node holds: in the order this node applied them,
    /// or, once it rebuilt its state in canonical order (see [`Self::compare_root`]), in that.
    pub async fn replay(&mut self, id: &ContextId) -> Result<ReplayReport, NodeError> {
        let ctx = self
            .contexts
            .remove(id)
            .ok_or_else(|| NodeError::UnknownContext(id.to_string()))?;
        let apps = self.apps_of(&ctx).await;
        let result = match apps {
            Ok(apps) => match self
                .replay_standing(&apps, &ctx, Order::Applied, None)
                .await
            {
                Ok(replayed)
                    if replayed.1 != ctx.record.root_hash && ctx.canonical_at.is_some() =>
                {
                    self.replay_standing(&apps, &ctx, Order::Canonical, None)
                        .await
                }
                other => other,
            },
            Err(e) => Err(e),
        };
        let matches = |root_hash: &Option<Hash>| *root_hash == ctx.record.root_hash;
        let report = result.map(|(_, root_hash, deltas)| ReplayReport {
            deltas,
            matches: matches(&root_hash),
            root_hash,
        });
        self.contexts.insert(*id, ctx);
        report
    }

    /// Upgrades the app a context runs to `wasm` (an admin's operation, replicated to every
    /// member with the binary). With `migrate`, the new app's `#[app::migrate]` export of that
    /// name turns the state into the new app's shape, on every member alike. The migration is
    /// tried first: if it fails, nothing changes.
    pub async fn upgrade_app(
        &mut self,
        id: &ContextId,
        wasm: &[u8],
        migrate: Option<String>,
    ) -> Result<DeltaId, NodeError> {
        if wasm.len() > MAX_UPGRADE_BYTES {
            return Err(NodeError::BadArgs(format!(
                "an app of {} bytes is too large to send to members (at most {MAX_UPGRADE_BYTES})",
                wasm.len()
            )));
        }
        let current = self.context(id)?.app_id();
        let app_id = self.install_app(wasm).await?;
        if app_id == current {
            return Err(NodeError::BadArgs(format!("{id} already runs {app_id}")));
        }
        let app = self.app(app_id).await?;
        if let Some(method) = &migrate {
            if !app.has_method(method) {
                return Err(NodeError::MethodNotFound(format!(
                    "{method} (the migration named is not exported by {app_id})"
                )));
            }
        }
        let op = MemberOp::SetApp {
            app_id,
            migrate,
            wasm: wasm.to_vec(),
        };
        if let MemberOp::SetApp {
            migrate: Some(method),
            ..
        } = &op
        {
            self.try_migration(id, &app, method).await?;
        }
        self.member_op(id, op).await
    }

    /// Runs a migration on the context's state without keeping anything, to refuse an upgrade
    /// whose migration fails before any member sees it.
    async fn try_migration(
        &mut self,
        id: &ContextId,
        app: &App,
        method: &str,
    ) -> Result<(), NodeError> {
        let mut ctx = self.contexts.remove(id).expect("checked by the caller");
        let me = self.key.public();
        let call = Call {
            method,
            input: &[],
            context_id: id.0,
            executor_id: me.0,
            time_now_nanos: self.env.now_nanos(),
            random_seed: [0; 32],
        };
        let result = match self.run_call(app, &call, &mut ctx).await {
            Ok(outcome) => migration_writes(outcome, &*ctx.shared).map(drop),
            Err(e) => Err(e),
        };
        self.contexts.insert(*id, ctx);
        result
    }

    /// Removes `member` from the context, and every certificate issued through its key: an
    /// admin's operation, replicated to every member (see [`MemberOp::Remove`]).
    pub async fn remove_member(
        &mut self,
        id: &ContextId,
        member: PublicKey,
    ) -> Result<DeltaId, NodeError> {
        if member == self.key.public() {
            return Err(NodeError::BadArgs(
                "an admin cannot remove itself; another admin can".into(),
            ));
        }
        self.member_op(
            id,
            MemberOp::Remove {
                member,
                shares: Vec::new(),
            },
        )
        .await
    }

    /// Takes the root's grant of this node's key (after sign-in) and shows it in every context
    /// this node holds, now and in each it creates or joins later, so that the root's
    /// revocation of this key reaches every member.
    pub async fn use_root_grant(&mut self, grant: SignedGrant) -> Result<(), NodeError> {
        if grant.grant.client_key != self.key.public() {
            return Err(NodeError::BadArgs("the grant is for another key".into()));
        }
        grant
            .verify_signature()
            .map_err(|e| NodeError::Unauthorized(e.to_string()))?;
        self.root = Some(grant);
        for id in self.context_ids() {
            self.bind_if_needed(&id).await;
        }
        Ok(())
    }

    /// Shows this node's root in the context if it has one, the context has state, and the log
    /// does not bind this key yet.
    async fn bind_if_needed(&mut self, id: &ContextId) {
        let Some(grant) = self.root.clone() else {
            return;
        };
        let Some(ctx) = self.contexts.get(id) else {
            return;
        };
        let me = self.key.public();
        if ctx.record.heads.is_empty() || ctx.log.verdict().roots.contains_key(&me) {
            return;
        }
        if let Err(e) = self.bind_root(id, grant).await {
            tracing::warn!(context = %id, %e, "could not show this node's root");
        }
    }

    /// Carries a root's revocation into every context of this node where the key is bound to
    /// that root; returns those contexts.
    pub async fn revoke_everywhere(
        &mut self,
        revocation: SignedRevocation,
    ) -> Result<Vec<ContextId>, NodeError> {
        let (key, root) = (
            revocation.revocation.client_key,
            revocation.root.public_key(),
        );
        let mut done = Vec::new();
        for id in self.context_ids() {
            if self.contexts[&id].log.verdict().roots.get(&key) == Some(&root) {
                self.revoke(&id, revocation.clone()).await?;
                done.push(id);
            }
        }
        Ok(done)
    }

    /// Shows, in the context, the root that granted this node's key (a NEAR account or a local
    /// root key), so that root's revocation reaches it: any member may.
    pub async fn bind_root(
        &mut self,
        id: &ContextId,
        grant: SignedGrant,
    ) -> Result<DeltaId, NodeError> {
        let root = grant.root.public_key();
        let op = MemberOp::Bind {
            root,
            grant: Box::new(grant),
        };
        self.member_op(id, op).await
    }

    /// Carries a root's revocation of one of its client keys into the context: the key, bound
    /// to that root here, loses all authority for what follows (as a removal, cascading, with a
    /// new secret). Any member may carry it; the authority is the root's signature.
    pub async fn revoke(
        &mut self,
        id: &ContextId,
        revocation: SignedRevocation,
    ) -> Result<DeltaId, NodeError> {
        let (key, root) = (
            revocation.revocation.client_key,
            revocation.root.public_key(),
        );
        if self.context(id)?.log.verdict().roots.get(&key) != Some(&root) {
            return Err(NodeError::BadArgs(format!(
                "{key} is not bound to that root in {id}"
            )));
        }
        let op = MemberOp::Revoke {
            key,
            root,
            revocation: Box::new(revocation),
            shares: Vec::new(),
        };
        self.member_op(id, op).await
    }

    /// Makes the key a rotation will move this node to, and gives its public half (for the root
    /// to grant). The secret stays in the node.
    pub fn prepare_rotation(&mut self) -> PublicKey {
        let key = SecretKey::from_seed(self.env.random32());
        let public = key.public();
        self.next_key = Some(key);
        public
    }

    /// Rotates this node's key in one step: in every context, an operation by the current key
    /// (see [`MemberOp::Rotate`]) hands its place to the key [`Self::prepare_rotation`] made,
    /// which the root granted (`grant`) as it revoked the current one (`revocation`); then the
    /// node signs with the new key. Every context where this key is still a member must have
    /// it bound to that root (sign in first) and have its state. A crash midway is finished on the next open. Returns the
    /// contexts.
    pub async fn rotate_key(
        &mut self,
        grant: SignedGrant,
        revocation: SignedRevocation,
    ) -> Result<Vec<ContextId>, NodeError> {
        let next = match self.next_key.take() {
            Some(key) if key.public() == grant.grant.client_key => key,
            other => {
                self.next_key = other;
                return Err(NodeError::BadArgs(
                    "the grant is not for the key prepare_rotation made".into(),
                ));
            }
        };
        let me = self.key.public();
        crate::membership::rotation_matches(&me, &next.public(), &grant, &revocation)
            .map_err(NodeError::Unauthorized)?;
        let root = grant.root.public_key();
        for id in self.context_ids() {
            let ctx = &self.contexts[&id];
            if ctx.log.verdict().removed.contains_key(&me) {
                continue; // no longer a member there: nothing to hand over
            }
            if !ctx.synced() {
                return Err(NodeError::NotSynced(id.to_string()));
            }
            if ctx.log.verdict().roots.get(&me) != Some(&root) {
                return Err(NodeError::Unauthorized(format!(
                    "this node's key is not bound to that root in {id}: sign in with it first"
                )));
            }
        }
        let pending = borsh::to_vec(&(next.seed(), &grant, &revocation)).expect("encode");
        self.store
            .commit(Batch::new().put(Namespace::Keys, NEXT_NODE_KEY, pending))
            .await?;
        self.finish_rotation(next, grant, revocation).await
    }

    /// Makes the rotation's operation in each context that lacks it, then moves the node to
    /// the new key (key, former keys, certificates) in one batch.
    async fn finish_rotation(
        &mut self,
        next: SecretKey,
        grant: SignedGrant,
        revocation: SignedRevocation,
    ) -> Result<Vec<ContextId>, NodeError> {
        let (old, new, root) = (self.key.public(), next.public(), grant.root.public_key());
        let mut done = Vec::new();
        for id in self.context_ids() {
            let verdict = self.contexts[&id].log.verdict();
            if verdict.removed.contains_key(&old) || verdict.roots.get(&old) != Some(&root) {
                continue; // rotated already (before a crash), or not this root's key here
            }
            let op = MemberOp::Rotate {
                new,
                root,
                grant: Box::new(grant.clone()),
                revocation: Box::new(revocation.clone()),
                shares: Vec::new(),
            };
            self.member_op(&id, op).await?;
            done.push(id);
        }
        let mut former = self.former_keys().await?;
        former.push(old);
        let mut batch = Batch::new()
            .put(Namespace::Keys, NODE_KEY, next.seed().to_vec())
            .put(
                Namespace::Keys,
                FORMER_NODE_KEYS,
                borsh::to_vec(&former).expect("encode"),
            )
            .delete(Namespace::Keys, NEXT_NODE_KEY);
        let mut records = Vec::new();
        for (id, ctx) in &self.contexts {
            let mut record = ctx.record.clone();
            if record.cert.member == old {
                record.cert = record.cert.rotated(grant.clone(), revocation.clone());
            }
            batch.put_mut(
                Namespace::Contexts,
                id.as_bytes(),
                borsh::to_vec(&record).expect("encode"),
            );
            records.push((*id, record));
        }
        self.store.commit(batch).await?;
        self.key = next;
        self.root = Some(grant);
        for (id, record) in records {
            let ctx = self.contexts.get_mut(&id).expect("listed above");
            ctx.learn_member(&record.cert);
            ctx.record = record;
        }
        Ok(done)
    }

    /// The keys this node signed with before its current one, oldest first.
    async fn former_keys(&self) -> Result<Vec<PublicKey>, NodeError> {
        match self.store.get(Namespace::Keys, FORMER_NODE_KEYS).await? {
            Some(bytes) => {
                Vec::<PublicKey>::try_from_slice(&bytes).map_err(|e| corrupt("former keys", e))
            }
            None => Ok(Vec::new()),
        }
    }

    /// Gives `member` a new role: an admin's operation, replicated to every member.
    pub async fn set_role(
        &mut self,
        id: &ContextId,
        member: PublicKey,
        role: Role,
    ) -> Result<DeltaId, NodeError> {
        self.member_op(id, MemberOp::SetRole { member, role }).await
    }

    async fn member_op(&mut self, id: &ContextId, op: MemberOp) -> Result<DeltaId, NodeError> {
        self.context(id)?;
        let mut ctx = self.contexts.remove(id).expect("checked above");
        let result = self.member_op_in(&mut ctx, op).await;
        self.contexts.insert(*id, ctx);
        result
    }

    async fn member_op_in(
        &mut self,
        ctx: &mut ContextState,
        op: MemberOp,
    ) -> Result<DeltaId, NodeError> {
        if !ctx.synced() {
            return Err(NodeError::NotSynced(ctx.id.to_string()));
        }
        if !ctx
            .role_now(&self.key.public())
            .is_some_and(|role| op.allowed_for(role))
        {
            return Err(NodeError::Unauthorized(format!(
                "only admins change the membership of {}",
                ctx.id
            )));
        }
        // A removal gives the context a new secret, sealed to each member who remains.
        op.verify_root_statement(&self.key.public())
            .map_err(NodeError::Unauthorized)?;
        let timestamp = self.next_timestamp(ctx)?;
        let mut op = op;
        let mut rotation = None;
        if let Some(member) = op.removes(&self.key.public()) {
            let next = self.env.random32();
            let member = &member;
            let mut shares = Vec::new();
            for key in ctx.known_members() {
                // A rotation keeps what others hold through the replaced key (it carries on
                // through the new one); a removal cascades.
                let through_removed = !matches!(op, MemberOp::Rotate { .. })
                    && ctx
                        .members
                        .get(&key)
                        .is_some_and(|(_, chain, _)| chain.contains(member))
                    && !ctx.log.verdict().roles.contains_key(&key);
                if key == *member || key == self.key.public() || through_removed {
                    continue;
                }
                if ctx.role_now(&key).is_none() {
                    continue;
                }
                if let Some(sealed) = seal::seal_to(&key, &ctx.id, self.env.random32(), &next) {
                    shares.push(Share {
                        member: key,
                        sealed,
                    });
                }
            }
            if let MemberOp::Rotate { new, .. } = &op {
                if let Some(sealed) = seal::seal_to(new, &ctx.id, self.env.random32(), &next) {
                    shares.push(Share {
                        member: *new,
                        sealed,
                    });
                }
            }
            *op.shares_mut().expect("a removal carries shares") = shares;
            rotation = Some(next);
        }
        let delta = DeltaBody {
            context_id: ctx.id,
            parents: ctx.record.heads.clone(),
            author: self.key.public(),
            timestamp,
            artifact: Vec::new(),
            root_hash: ctx.record.root_hash.unwrap_or_default(),
            events: Vec::new(),
            genesis: None,
            author_cert: ctx.record.cert.clone(),
            op: Some(op.clone()),
        }
        .sign(&self.key);
        let delta_id = delta.id();
        let mut record = ctx.record.clone();
        record.heads = vec![delta_id];
        let mut batch = Batch::new();
        stage_delta(&mut batch, ctx.id, &mut record, &delta);
        batch.put_mut(
            Namespace::Contexts,
            ctx.id.as_bytes(),
            borsh::to_vec(&record).expect("encode"),
        );
        let audit = AuditRecord::seal(
            AuditEntry {
                kind: AuditKind::Call,
                executor: self.key.public(),
                method: op.method().to_owned(),
                args_hash: Hash(*blake3::hash(&borsh::to_vec(&op).expect("encode")).as_bytes()),
                outcome: "ok".into(),
                root_hash: record.root_hash,
                time: delta.body.timestamp,
                random_seed: [0; 32],
                delta_id: Some(delta_id),
            },
            &ctx.audit,
            &self.key,
        );
        stage_audit(&mut batch, ctx.id, &audit);
        if let Some(next) = &rotation {
            ctx.stage_rotation(next, &delta_id, &mut batch);
        }
        self.store.commit(batch).await?;
        // The operation itself goes out under the secret it replaces: members who have not
        // applied it yet can read it, and find their share of the new one in it.
        let sealing = ctx.secret;
        if let Some(next) = rotation {
            ctx.rotate(next, delta_id);
        }
        ctx.record = record;
        ctx.audit = audit.next_head();
        ctx.announced = true;
        ctx.insert_applied(&delta, true);
        self.rejudge(ctx).await?;
        self.events.push(NodeEvent::Membership {
            context_id: ctx.id,
            delta_id,
            by: self.key.public(),
            op,
            counted: true,
        });
        self.publish(ctx.id, &sealing, WireMessage::Deltas(vec![delta]));
        Ok(delta_id)
    }

    /// Writes one audit record on its own (for calls and deltas that changed nothing else).
    async fn audit_alone(
        &mut self,
        ctx: &mut ContextState,
        entry: AuditEntry,
    ) -> Result<(), NodeError> {
        let record = AuditRecord::seal(entry, &ctx.audit, &self.key);
        let mut batch = Batch::new();
        stage_audit(&mut batch, ctx.id, &record);
        self.store.commit(batch).await?;
        ctx.audit = record.next_head();
        Ok(())
    }

    /// The context's audit records, oldest first.
    pub async fn audit(&self, id: &ContextId) -> Result<Vec<AuditRecord>, NodeError> {
        self.context(id)?;
        self.store
            .scan_prefix(Namespace::Audit, id.as_bytes())
            .await?
            .into_iter()
            .map(|(_, bytes)| {
                AuditRecord::try_from_slice(&bytes).map_err(|e| corrupt("audit record", e))
            })
            .collect()
    }

    /// Checks the context's audit chain as stored: any changed, deleted or reordered record is
    /// reported with its sequence number.
    pub async fn verify_audit(&self, id: &ContextId) -> Result<AuditReport, NodeError> {
        self.context(id)?;
        let rows = self
            .store
            .scan_prefix(Namespace::Audit, id.as_bytes())
            .await?;
        let records = rows.into_iter().map(|(key, bytes)| {
            let seq = key
                .get(32..40)
                .and_then(|s| s.try_into().ok())
                .map_or(u64::MAX, u64::from_be_bytes);
            AuditRecord::try_from_slice(&bytes)
                .map_err(|e| (seq, format!("it does not decode: {e}")))
        });
        let mut keys = self.former_keys().await?;
        keys.push(self.key.public());
        Ok(verify_chain(records, &keys))
    }

    /// Answers a member's heads with every delta it lacks, in the order we applied them; if it
    /// knows deltas we do not, asks back.
    ///
    /// A request sealed with a former secret (the asker has not applied the operation that
    /// replaced it, `replaced_by`) is answered, under that former secret, with only what that
    /// secret was for: the deltas up to and including that operation, which carries the new
    /// secret sealed to each remaining member. A removed member thus learns of its removal and
    /// nothing newer; a member who was away catches up, then asks again under the new secret.
    async fn answer_sync_request(
        &mut self,
        context_id: ContextId,
        their_heads: Vec<DeltaId>,
        replaced_by: Option<DeltaId>,
        asker: Option<&str>,
    ) -> Result<(), NodeError> {
        let Some(ctx) = self.contexts.get(&context_id) else {
            return Ok(());
        };
        let our_heads = &ctx.record.heads;
        if *our_heads == their_heads {
            return Ok(());
        }
        let unknown_to_us = their_heads.iter().any(|h| !ctx.dag.contains_key(h));
        let theirs = with_ancestors(&ctx.dag, their_heads.iter().copied());
        let (secret, limit) = match replaced_by {
            None => (ctx.secret, None),
            Some(op) => {
                let secret = ctx
                    .older
                    .iter()
                    .find(|(_, by)| *by == op)
                    .expect("the secret that opened the request")
                    .0;
                (secret, Some(with_ancestors(&ctx.dag, [op])))
            }
        };
        if unknown_to_us && limit.is_none() {
            let request = self.context(&context_id)?.sync_request(&self.key);
            self.publish(context_id, &secret, request);
        }
        if !unknown_to_us && limit.is_none() {
            let lacking = self.context(&context_id)?.dag.len() - theirs.len();
            self.offer_snapshot(context_id, lacking, asker).await?;
        }
        let rows = self
            .store
            .scan_prefix(Namespace::Deltas, context_id.as_bytes())
            .await?;
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        for (_, bytes) in rows {
            let delta = Delta::try_from_slice(&bytes).map_err(|e| corrupt("delta", e))?;
            let id = delta.id();
            if theirs.contains(&id) || limit.as_ref().is_some_and(|upto| !upto.contains(&id)) {
                continue;
            }
            if chunk_bytes + bytes.len() > MAX_BATCH_BYTES && !chunk.is_empty() {
                let deltas = WireMessage::Deltas(std::mem::take(&mut chunk));
                self.reply(context_id, &secret, deltas, asker);
                chunk_bytes = 0;
            }
            chunk_bytes += bytes.len();
            chunk.push(delta);
        }
        if !chunk.is_empty() {
            self.reply(context_id, &secret, WireMessage::Deltas(chunk), asker);
        }
        Ok(())
    }

    /// Offers a member that lacks `lacking` deltas (a joiner, or one that was away) this node's
    /// state at its heads as a snapshot, when running them all would be slow: at least the
    /// threshold, and once per [`SNAPSHOT_OFFER_NANOS`] per context, since a member catching up
    /// asks again while deltas arrive. The rows sent are exactly those calimero-storage's tree
    /// reaches, checked here as the receiver will.
    async fn offer_snapshot(
        &mut self,
        context_id: ContextId,
        lacking: usize,
        asker: Option<&str>,
    ) -> Result<(), NodeError> {
        let Some(threshold) = self.snapshot_threshold else {
            return Ok(());
        };
        let now = self.env.now_nanos();
        let ctx = self
            .contexts
            .get_mut(&context_id)
            .expect("checked by the caller");
        let recently = ctx
            .last_snapshot_offer
            .is_some_and(|t| now.saturating_sub(t) < SNAPSHOT_OFFER_NANOS);
        if !ctx.synced() || lacking < threshold.max(1) || recently {
            return Ok(());
        }
        ctx.last_snapshot_offer = Some(now);
        if ctx.merkle.is_none() {
            read_whole(&self.store, ctx, ViewKind::Shared).await?;
        }
        let proven = match tabnode_runtime::prove_state(&*ctx.shared, context_id.as_bytes()) {
            Ok(Some(proven)) if Some(Hash(proven.root_hash)) == ctx.record.root_hash => proven,
            other => {
                tracing::warn!(%context_id, ?other, "this node's state does not prove its root");
                return Ok(());
            }
        };
        let rows = proven
            .rows
            .iter()
            .filter_map(|key| Some((key.to_vec(), ctx.shared.get(key).ok()??)))
            .collect();
        let mut covered: Vec<DeltaId> = ctx.dag.keys().copied().collect();
        covered.sort();
        let snapshot = Snapshot {
            context_id,
            heads: ctx.record.heads.clone(),
            root_hash: Hash(proven.root_hash),
            covered,
            rows,
        };
        let secret = ctx.secret;
        for part in snapshot::split(&snapshot, &self.key, &ctx.record.cert) {
            self.reply(context_id, &secret, part, asker);
        }
        Ok(())
    }

    /// Takes one part of a snapshot a member sent, from one provider at a time. Once whole and
    /// verified, it is used if this node lacks at least a quarter of the deltas it covers (a
    /// node that lacks less catches up by deltas); then it covers deltas (see
    /// [`crate::snapshot`]).
    async fn receive_snapshot_part(
        &mut self,
        context_id: ContextId,
        (digest, index, parts, chunk, provider, signature): (
            Hash,
            u32,
            u32,
            Vec<u8>,
            MemberCert,
            Signature,
        ),
    ) -> Result<(), NodeError> {
        let now = self.env.now_nanos();
        let me = self.key.public();
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(());
        };
        if provider.member == me {
            return Ok(());
        }
        match &ctx.snapshot {
            Phase::Covering(_) => return Ok(()),
            Phase::Assembling(a) if a.digest == digest => {}
            Phase::Assembling(a) if now.saturating_sub(a.started) < snapshot::ASSEMBLY_NANOS => {
                return Ok(()); // another provider's is under way
            }
            _ => {
                let assembly =
                    Assembly::start(&context_id, digest, parts, &provider, signature, now)?;
                ctx.snapshot = Phase::Assembling(assembly);
            }
        }
        let Phase::Assembling(assembly) = &mut ctx.snapshot else {
            unreachable!("set above")
        };
        let (provider, digest) = (assembly.provider, assembly.digest);
        let bytes = match assembly.add(index, parts, chunk, &signature) {
            Ok(None) => return Ok(()),
            Ok(Some(bytes)) => bytes,
            Err(e) => {
                ctx.snapshot = Phase::Idle;
                return Err(e.into());
            }
        };
        ctx.snapshot = Phase::Idle;
        let snapshot = snapshot::open(&bytes, &context_id)?;
        let covering = Covering::new(snapshot, provider, digest);
        // Sent for another member (published when the network has no way to it alone): worth
        // taking only to a node that lacks a good part of what it covers.
        let missing = covering
            .covered
            .iter()
            .filter(|id| !ctx.dag.contains_key(id))
            .count();
        if missing == 0 || missing * 4 < covering.covered.len() {
            return Ok(());
        }
        self.store
            .commit(Batch::new().put(
                Namespace::Meta,
                &[COVERING, context_id.as_bytes()].concat(),
                vec![1],
            ))
            .await?;
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        ctx.snapshot = Phase::Covering(covering);
        self.apply_ready(context_id).await
    }

    /// Puts a covering snapshot in place once this node holds exactly the deltas it covers:
    /// its heads must be the snapshot's and its provider must still stand in the membership
    /// log. If either fails, the snapshot is dropped and the state rebuilt from the deltas.
    /// Whether the snapshot's phase ended.
    async fn install_snapshot(&mut self, context_id: ContextId) -> Result<bool, NodeError> {
        let ctx = self.contexts.get_mut(&context_id).expect("known context");
        let Phase::Covering(covering) = &ctx.snapshot else {
            return Ok(false);
        };
        if covering.covered.iter().any(|id| !ctx.dag.contains_key(id)) {
            return Ok(false);
        }
        let Phase::Covering(covering) = std::mem::take(&mut ctx.snapshot) else {
            unreachable!("matched above")
        };
        let problem = if heads_of(&ctx.dag, &covering.covered)
            != covering.snapshot.heads.iter().copied().collect()
        {
            Some("its heads are not those of the deltas it covers".to_owned())
        } else if ctx.role_now(&covering.provider).is_none() {
            Some(format!(
                "its provider {} is no longer a member",
                covering.provider
            ))
        } else {
            None
        };
        let mut ctx = self.contexts.remove(&context_id).expect("known context");
        let result = match problem {
            Some(why) => {
                self.reject_as(
                    Some(context_id),
                    "BadSnapshot",
                    format!("a state snapshot: {why}"),
                );
                self.rebuild(&mut ctx, Order::Applied).await
            }
            None => self.put_snapshot_in_place(&mut ctx, covering).await,
        };
        self.contexts.insert(context_id, ctx);
        result.map(|()| true)
    }

    /// Replaces the context's shared state with a verified snapshot's rows, and the deltas this
    /// node holds that it does not cover (from other members, or its own) merged on top, in one
    /// batch with its audit record.
    async fn put_snapshot_in_place(
        &mut self,
        ctx: &mut ContextState,
        covering: Covering,
    ) -> Result<(), NodeError> {
        let (rows, root_hash) = if ctx.dag.len() > covering.covered.len() {
            let apps = self.apps_of(ctx).await?;
            let (rows, root_hash, _) = self
                .replay_standing(&apps, ctx, Order::Applied, Some(&covering))
                .await?;
            (rows, root_hash)
        } else {
            let Snapshot {
                rows, root_hash, ..
            } = covering.snapshot;
            (Rows::complete(rows), Some(root_hash))
        };
        let audit = AuditRecord::seal(
            AuditEntry {
                kind: AuditKind::RemoteDelta,
                executor: covering.provider,
                method: "sync.snapshot".into(),
                args_hash: covering.digest,
                outcome: "ok".into(),
                root_hash,
                time: self.env.now_nanos(),
                random_seed: [0; 32],
                delta_id: None,
            },
            &ctx.audit,
            &self.key,
        );
        let mut batch = Batch::new();
        stage_audit(&mut batch, ctx.id, &audit);
        self.replace_state(ctx, rows, root_hash, batch).await?;
        ctx.audit = audit.next_head();
        Ok(())
    }
}

/// The heads of the deltas `ids` of `dag`: those no other of them names as a parent.
fn heads_of(dag: &HashMap<DeltaId, LogEntry>, ids: &HashSet<DeltaId>) -> BTreeSet<DeltaId> {
    let parents: HashSet<&DeltaId> = ids
        .iter()
        .filter_map(|id| dag.get(id))
        .flat_map(|e| &e.parents)
        .collect();
    ids.iter()
        .filter(|id| !parents.contains(id))
        .copied()
        .collect()
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn stage_writes(batch: &mut Batch, ctx: ContextId, shared: &WriteSet, private: &WriteSet) {
    for (ns, writes) in [(Namespace::State, shared), (Namespace::Private, private)] {
        for (key, value) in writes {
            let key = scoped(&ctx, key);
            match value {
                Some(v) => batch.put_mut(ns, &key, v.clone()),
                None => batch.delete_mut(ns, &key),
            }
        }
    }
}

/// Stores an audit record under its sequence number (big-endian, so key order is chain order).
fn stage_audit(batch: &mut Batch, ctx: ContextId, record: &AuditRecord) {
    batch.put_mut(
        Namespace::Audit,
        &scoped(&ctx, &record.seq.to_be_bytes()),
        borsh::to_vec(record).expect("encode"),
    );
}

/// Stores a delta under the next sequence number, so a scan returns deltas in applied (causal) order.
fn stage_delta(batch: &mut Batch, ctx: ContextId, record: &mut ContextRecord, delta: &Delta) {
    let key = scoped(&ctx, &record.next_seq.to_be_bytes());
    record.next_seq += 1;
    batch.put_mut(
        Namespace::Deltas,
        &key,
        borsh::to_vec(delta).expect("encode"),
    );
}

/// Reads a context's whole shared or private state into memory in one scan; the shared one
/// then also has its Merkle tree, which needs every row.
async fn read_whole<S: Store>(
    store: &S,
    ctx: &mut ContextState,
    view: ViewKind,
) -> Result<(), NodeError> {
    let (ns, rows) = match view {
        ViewKind::Private => (Namespace::Private, &mut ctx.private),
        _ => (Namespace::State, &mut ctx.shared),
    };
    let all = store.scan_prefix(ns, ctx.id.as_bytes()).await?;
    Rc::make_mut(rows).learn_all(all.into_iter().map(|(k, v)| (k[32..].to_vec(), v)));
    if ns == Namespace::State && ctx.merkle.is_none() {
        ctx.merkle = Some(MerkleTree::build(ctx.shared.present()));
    }
    Ok(())
}

fn apply_writes(rows: &mut Rc<Rows>, writes: WriteSet) {
    if !writes.is_empty() {
        Rc::make_mut(rows).apply(writes);
    }
}
