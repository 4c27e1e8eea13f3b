//! A context in memory ([`ContextState`]): its rows read so far, its delta graph, its membership
//! log and what waits for parents; and the questions the rest of the node asks of it.

use super::*;

/// A context in memory: the rows of its state read so far, its delta graph and deltas waiting
/// for parents.
pub(super) struct ContextState {
    pub(super) id: ContextId,
    pub(super) record: ContextRecord,
    /// Shared with the runtime during a call (no copy); written only between calls, through
    /// [`ContextState::apply_shared`], which keeps `merkle` in step.
    pub(super) shared: Rc<Rows>,
    /// Built on the first checkpoint (it needs every row), then kept up to date write by write.
    pub(super) merkle: Option<MerkleTree>,
    pub(super) private: Rc<Rows>,
    /// Every applied delta (void or not) as the membership log sees it: the DAG, for sync
    /// requests and for judging deltas.
    pub(super) dag: HashMap<DeltaId, LogEntry>,
    /// The membership log's verdict on `dag`; the state holds exactly the deltas it lets stand.
    pub(super) log: Log,
    /// What the context's anchor says, when it has one (see [`AnchorView`]).
    pub(super) anchor: Option<AnchorView>,
    /// The context whose guest created this one on this node, if one did: its guests may
    /// reach this context (see [`super::guest`]).
    pub(super) created_by: Option<ContextId>,
    /// How this node sends each kind of event to other members (kinds not named: in full).
    pub(super) disclosure: BTreeMap<String, Disclosure>,
    /// Whether the DAG has a delta by this node: a joiner announces itself with
    /// [`MemberOp::Join`] once it has the context's state, so members know it before it writes.
    pub(super) announced: bool,
    /// Deltas waiting for their parents, within a budget (see [`Waiting`]).
    pub(super) pending: Waiting,
    /// The void deltas taken, against their budget (see [`super::bounds`]).
    pub(super) void_taken: VoidTally,
    /// Deltas refused for good: anti-entropy bringing them again costs a lookup (see
    /// [`super::bounds`]).
    pub(super) refused: RefusedDeltas,
    /// Heads this node lacks that members in good standing announced: they vouch for void
    /// deltas over their budget (see [`super::bounds`]).
    pub(super) announced_heads: AnnouncedHeads,
    pub(super) last_sync_request: Option<u64>,
    /// When this context last announced its heads (see [`Node::handle_timeout`]).
    pub(super) last_announce: Option<u64>,
    /// A sync request went out when the context was loaded (opened, or joined): the first
    /// timer round counts it as this context's announcement instead of sending another,
    /// which every member would answer in full again while the first answer is on its way.
    pub(super) asked_on_load: bool,
    /// The context's shared secret: seals everything this context sends.
    pub(super) secret: [u8; 32],
    /// Former secrets, oldest first, each with the operation that replaced it: they still open
    /// what was sealed with them, and answer a member who has not caught up (see
    /// [`Node::answer_sync_request`]).
    pub(super) older: Vec<([u8; 32], DeltaId)>,
    /// The secret each secret-giving operation made, as this node holds it: one it made, one
    /// sealed to it in the operation, or one an admin gave it later (see
    /// [`WireMessage::Share`]). Used only while the operation is among the log's latest
    /// secret-giving operations that count (see [`Self::judged_secret`]).
    pub(super) made: BTreeMap<DeltaId, [u8; 32]>,
    /// Members this node knows, from the certificates it verified (its own and those carried by
    /// applied deltas and admissions): the role each certificate gives, the keys it depends on,
    /// and the invite key it was redeemed from (see [`LogEntry::admission`]).
    pub(super) members: BTreeMap<PublicKey, (Role, Vec<PublicKey>, Option<PublicKey>)>,
    /// Each requester's sync-request budget: tokens left, and when it last earned one.
    pub(super) sync_budget: HashMap<PublicKey, (u64, u64)>,
    /// Where this context's audit chain stands.
    pub(super) audit: AuditHead,
    /// blake3 of the membership certificates already checked: a chain is verified once, not on
    /// every delta its holder signs.
    pub(super) verified_certs: HashSet<[u8; 32]>,
    /// The heads at which the state was last rebuilt in canonical order (see
    /// [`Node::compare_root`]): a mismatch there is not one a rebuild repairs.
    pub(super) canonical_at: Option<Vec<DeltaId>>,
    /// When the state was last rebuilt for a root mismatch: a member announcing false roots
    /// makes this node rebuild at most once per [`REPAIR_NANOS`].
    pub(super) last_repair: Option<u64>,
    /// Members whose announced root a rebuild here did not give, each with when it may be
    /// heard about roots again: one member's false roots cost one rebuild, not one per
    /// [`REPAIR_NANOS`] (see [`Node::compare_root`]).
    pub(super) disproven: HashMap<PublicKey, u64>,
    /// A state snapshot arriving or waiting for its deltas (on a node that was behind).
    pub(super) snapshot: Phase,
    /// When this node last offered the context's state as a snapshot.
    pub(super) last_snapshot_offer: Option<u64>,
}

impl ContextState {
    /// A context as `record` describes it, sealed with `secret`: nothing read, applied or
    /// learnt yet (its only known member is the one `record`'s certificate names). A context
    /// that has applied nothing has no rows, so every row is known; otherwise rows are read as
    /// calls ask for them.
    pub(super) fn new(id: ContextId, record: ContextRecord, secret: [u8; 32]) -> Self {
        let rows = || match record.heads.is_empty() {
            true => Rc::new(Rows::complete([])),
            false => Rc::new(Rows::unread()),
        };
        Self {
            id,
            shared: rows(),
            private: rows(),
            members: BTreeMap::from([(record.cert.member, standing(&record.cert))]),
            record,
            merkle: None,
            dag: HashMap::new(),
            log: Log::default(),
            anchor: None,
            created_by: None,
            disclosure: BTreeMap::new(),
            announced: false,
            pending: Waiting::default(),
            void_taken: VoidTally::default(),
            refused: RefusedDeltas::default(),
            announced_heads: AnnouncedHeads::default(),
            last_sync_request: None,
            last_announce: None,
            asked_on_load: false,
            secret,
            older: Vec::new(),
            made: BTreeMap::new(),
            sync_budget: HashMap::new(),
            audit: AuditHead::default(),
            verified_certs: HashSet::new(),
            canonical_at: None,
            last_repair: None,
            disproven: HashMap::new(),
            snapshot: Phase::Idle,
            last_snapshot_offer: None,
        }
    }

    /// Whether the state is this node's to use: it has one, and no snapshot is half in place.
    pub(super) fn synced(&self) -> bool {
        !self.record.heads.is_empty() && !matches!(self.snapshot, Phase::Covering(_))
    }

    /// The app the context ran once the deltas `ids` were applied: that of the last upgrade
    /// among them that counts, else its first.
    pub(super) fn app_id_at(&self, ids: &HashSet<DeltaId>) -> AppId {
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
    pub(super) fn awaits_admission(&self) -> bool {
        let (me, verdict) = (&self.record.cert.member, self.log.verdict());
        self.record.cert.invite_key().is_some()
            && !verdict.admitted.contains_key(me)
            && !verdict.roles.contains_key(me)
    }

    /// Whether a snapshot covers delta `id`: it is recorded without running the guest.
    pub(super) fn covers(&self, id: &DeltaId) -> bool {
        matches!(&self.snapshot, Phase::Covering(c) if c.covered.contains(id))
    }

    /// "These are my heads": members answer with what this node lacks. Without a root while
    /// a snapshot is half in place: the stored one is not the state's at these heads. Signed
    /// with `key` (this node's), under its certificate.
    pub(super) fn sync_request(&self, key: &SecretKey) -> WireMessage {
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
    /// one (by the delta that moved this node off it), if it was not the current secret. A
    /// secret of one of the latest secret-giving operations that this node never sealed with
    /// (it heard a concurrent one first) opens too: a member that has not heard the others
    /// seals with it; it was replaced by one of the others.
    ///
    /// The former secret comes with the delta: an answer under it is sealed with it (the
    /// secret of a latest operation this node never sealed with is in no list of former ones).
    #[allow(clippy::type_complexity)]
    pub(super) fn open(&self, data: &[u8]) -> Option<(Vec<u8>, Option<(DeltaId, [u8; 32])>)> {
        if let Some(plain) = seal::open(&self.secret, &self.id, data) {
            return Some((plain, None));
        }
        let former = self.older.iter().rev().find_map(|(secret, by)| {
            Some((seal::open(secret, &self.id, data)?, Some((*by, *secret))))
        });
        if former.is_some() {
            return former;
        }
        let latest = self.log.latest_secret_ops(&self.dag);
        latest.iter().find_map(|op| {
            let by = latest.iter().find(|other| *other != op)?;
            let secret = self.made.get(op)?;
            Some((seal::open(secret, &self.id, data)?, Some((*by, *secret))))
        })
    }

    /// The context's secret as the judged log makes it: that of the latest secret-giving
    /// operations that count ([`Log::latest_secret_ops`]), one alone or all of them combined
    /// ([`seal::combine_secrets`]). `None` before any, or if this node lacks one of their
    /// secrets (a removed key, or a member admitted concurrently with one, until an admin gives
    /// it, see [`Node::share_missed_secret`]): it then keeps the secret it has.
    pub(super) fn judged_secret(&self) -> Option<[u8; 32]> {
        let latest = self.log.latest_secret_ops(&self.dag);
        let parts: Vec<(DeltaId, [u8; 32])> = latest
            .iter()
            .map(|op| Some((*op, *self.made.get(op)?)))
            .collect::<Option<_>>()?;
        match parts.as_slice() {
            [] => None,
            [(_, alone)] => Some(*alone),
            several => Some(seal::combine_secrets(several)),
        }
    }

    /// Keeps the secret operation `op` (`entry`) sealed to `key`, if it carries one that opens.
    pub(super) fn keep_share(&mut self, key: &SecretKey, op: DeltaId, entry: &LogEntry) {
        let share = entry
            .op
            .as_ref()
            .and_then(|o| o.shares().iter().find(|s| s.member == key.public()))
            .and_then(|share| seal::open_share(key, &self.id, &share.sealed));
        if let Some(secret) = share {
            self.made.insert(op, secret);
        }
    }

    /// Stages the secret operation `op` made, as this node holds it without a share in the
    /// operation (its own, or one an admin gave it), and keeps it.
    pub(super) fn stage_made(&mut self, op: DeltaId, secret: [u8; 32], batch: &mut Batch) {
        batch.put_mut(
            Namespace::Keys,
            &scoped(&self.id, &[MADE_SECRET, op.as_bytes()].concat()),
            secret.to_vec(),
        );
        self.made.insert(op, secret);
    }

    /// Stages the writes that replace the secret with `next` (by operation `by`); the change
    /// itself is made by [`Self::rotate`] once they are stored.
    pub(super) fn stage_rotation(&self, next: &[u8; 32], by: &DeltaId, batch: &mut Batch) {
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

    pub(super) fn rotate(&mut self, next: [u8; 32], by: DeltaId) {
        self.older.push((self.secret, by));
        self.secret = next;
    }

    /// The app the context runs now: its first, or the one the last upgrade that counts names.
    pub(super) fn app_id(&self) -> AppId {
        self.upgrade_apps().last().unwrap_or(self.record.app_id)
    }

    /// The apps the upgrades that count name, in order.
    pub(super) fn upgrade_apps(&self) -> impl Iterator<Item = AppId> + '_ {
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
    pub(super) fn latest_standing(&self) -> u64 {
        let void = &self.log.verdict().void;
        self.dag
            .iter()
            .filter(|(id, _)| !void.contains(id))
            .map(|(_, entry)| entry.timestamp)
            .max()
            .unwrap_or(0)
    }

    /// Notes the heads a member announced in a sync request under the current secret, if it is
    /// in good standing now: those this node lacks are vouched for (see [`super::bounds`]).
    pub(super) fn note_announced_heads(&mut self, requester: &MemberCert, heads: &[DeltaId]) {
        if self.role_of(requester).is_none() {
            return;
        }
        for head in heads.iter().filter(|h| !self.dag.contains_key(h)) {
            self.announced_heads.insert(*head, requester.member);
        }
    }

    /// Whether a member other than `author` in good standing vouches for the void delta `id`
    /// by `author`: a waiting delta of its builds on it, or it announced it (or a waiting delta
    /// built on it) among its heads.
    pub(super) fn vouched_by_another(&self, id: DeltaId, author: &PublicKey) -> bool {
        let announced = |d: &DeltaId| self.announced_heads.get(d).is_some_and(|m| m != author);
        announced(&id)
            || self.pending.descendants(id).any(|d| {
                (d.body.author != *author && self.role_of(&d.body.author_cert).is_some())
                    || announced(&d.id())
            })
    }

    /// Refuses delta `id` for good (its merge is over budget), and the deltas waiting on it,
    /// which can never be applied here: see [`super::bounds`]. Returns the rows that keep
    /// them refused after a restart.
    pub(super) fn refuse_for_good(&mut self, id: DeltaId) -> Batch {
        let mut batch = Batch::new();
        let waiting: Vec<DeltaId> = self.pending.descendants(id).map(Delta::id).collect();
        for descendant in waiting {
            self.pending.remove(&descendant);
            self.remember_refused(descendant, &mut batch);
        }
        self.remember_refused(id, &mut batch);
        batch
    }

    /// Remembers `id` as refused for good, here and in `batch`.
    pub(super) fn remember_refused(&mut self, id: DeltaId, batch: &mut Batch) {
        let remembered = self.refused.remember(id);
        stage_refused(batch, &self.id, &id, remembered);
    }

    /// Takes an applied delta into the DAG and the log (`stands`: its changes were applied).
    pub(super) fn insert_applied(&mut self, delta: &Delta, stands: bool) {
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

    pub(super) fn apply_shared(&mut self, writes: WriteSet) {
        if let Some(merkle) = &mut self.merkle {
            merkle.update(&writes);
        }
        apply_writes(&mut self.shared, writes);
    }

    pub(super) fn views(
        &self,
        blobs: &Rc<Rows>,
        aliases: &Rc<BTreeMap<String, [u8; 32]>>,
    ) -> Views {
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
    pub(super) fn learn_member(&mut self, cert: &MemberCert) {
        self.members.insert(cert.member, standing(cert));
    }

    /// Whether `requester` may have one more sync request answered now (a token bucket of
    /// [`SYNC_BURST`], refilled one per [`SYNC_REFILL_NANOS`]): a member that asks for the
    /// whole history over and over gets it a few times, not as often as it asks.
    pub(super) fn take_sync_token(&mut self, requester: PublicKey, now: u64) -> bool {
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
    pub(super) fn entry_now(&self, author: &PublicKey, op: Option<MemberOp>) -> Option<LogEntry> {
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
    pub(super) fn known_members(&self) -> BTreeSet<PublicKey> {
        let granted = self.log.verdict().roles.keys();
        self.members.keys().chain(granted).copied().collect()
    }

    /// The role the holder of `cert` acts with now, by the certificate and the membership log.
    pub(super) fn role_of(&self, cert: &MemberCert) -> Option<Role> {
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
    pub(super) fn role_now(&self, member: &PublicKey) -> Option<Role> {
        self.log.role_of_new(&self.entry_now(member, None)?)
    }
}

/// What the log needs of a member's certificate: its role, the keys it depends on, and the
/// invite key it was redeemed from.
pub(super) fn standing(cert: &MemberCert) -> (Role, Vec<PublicKey>, Option<PublicKey>) {
    (cert.standalone_role(), chain_of(cert), cert.invite_key())
}

/// The heads of the deltas `ids` of `dag`: those no other of them names as a parent.
pub(super) fn heads_of(
    dag: &HashMap<DeltaId, LogEntry>,
    ids: &HashSet<DeltaId>,
) -> BTreeSet<DeltaId> {
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

pub(super) fn apply_writes(rows: &mut Rc<Rows>, writes: WriteSet) {
    if !writes.is_empty() {
        Rc::make_mut(rows).apply(writes);
    }
}
