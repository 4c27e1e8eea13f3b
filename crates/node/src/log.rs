//! The membership log: admins' signed operations (remove a member, change a role), carried as
//! deltas of their own in the context's DAG, and the rule every node applies to decide which
//! deltas stand.
//!
//! An admin's signed invitation, redeemed, is a certificate chain that every delta carries
//! (see [`crate::membership`]); it counts once a member records the join ([`MemberOp::Admit`]).
//! What else the log adds is taking authority away, which must hold however the network
//! orders messages:
//!
//! - **Invitations are used up, expire and can be revoked, for everyone alike, by causal
//!   order alone.** An admission ([`MemberOp::Admit`]) counts if it is stamped before the
//!   invitation's expiry (its member stamps it with its own clock when it first sees the join,
//!   and checks that clock against the expiry; the joiner's claimed time plays no part), no
//!   revocation of the invitation ([`MemberOp::RevokeInvitation`]) is in its causal past or
//!   concurrent with it (revocation wins a race), and the keys admitted with the invitation in
//!   its causal past or concurrently, with its own key, are no more than the invitation's
//!   `uses` (one by default). So concurrent admissions of one key (several members heard the
//!   same join) all count, while concurrent admissions of different keys beyond `uses` cancel
//!   each other: none of them counts, and no clock or id picks a winner (only holders of the
//!   invitation can make such a race); an admission made having seen them counts, as an
//!   upgrade made having seen concurrent ones does. At most `uses` keys are ever admitted: of
//!   any `uses + 1` admitted keys, the admission made last in causal order would have the
//!   others in its past or concurrent with it. A key redeemed from an
//!   invitation acts only in the causal future of an admission of it that counts (or of a
//!   role an admin gave it).
//! - **Removal cascades.** Removing a key removes it and every certificate issued through it (a
//!   removed admin's invitees lose access too, until an admin gives them a role again, which
//!   certifies them anew). A delta
//!   whose authority depends on a removed key stands only if it is in the causal past of the
//!   removal: what the key signed before stays valid, anything it signs afterwards, or
//!   concurrently, is void (an operation it made concurrently still counts, see below). A node that applied such a delta before it learnt of the removal
//!   rebuilds its state without it, so every member ends with the same state.
//! - **Roles.** A role given by an operation counts for the member's deltas that come after the
//!   operation; for deltas concurrent with it the lesser of the old and new role counts. Of
//!   concurrent role changes for one member, the lesser counts.
//! - **Concurrent admin operations are settled by causal order and rank alone.** Nothing the
//!   author chooses (its timestamp, and so the delta's id) orders them. An operation counts if
//!   its author held the authority for it in the operation's causal past, and no admin's
//!   removal concurrent with it, of a key its authority rests on, was made by an admin
//!   *senior* to that key: one with fewer invitations between it and the context's creator
//!   (its certificate's chain is shorter; the creator is senior to all). Otherwise operations
//!   concurrent with each other all take effect. So of two admins removing each other at once
//!   the senior's removal counts and the junior's does not (nor anything else the junior, or
//!   anyone it invited, did concurrently with its removal); between admins of one rank both
//!   are removed (and of a cycle of removals, every side). A removed admin who crafts a
//!   counter-removal "from before" its removal cannot undo it: against a senior it counts
//!   for nothing, against an equal it takes its remover down with it, never wins alone. Rank
//!   is fixed by the certificates the inviters signed, the same at every member, and no key
//!   can shorten its own chain. (Removal still cascades: without it, a removed admin's
//!   invitees would keep what it gave them.)
//! - **An operation racing its author's removal counts only if a third member vouched for
//!   it.** An operation whose authority rests on a key (its author, or an inviter up its
//!   chain) that a removal concurrent with it removes counts only if a third member (neither
//!   the remover, nor the removed key or a key resting on it, nor the key the operation
//!   promotes) built on it without that removal in its past: someone in good standing took
//!   it before it knew of the removal ([`Log::judge`], `races.rs`). Otherwise it counts for
//!   nothing, whatever the remover's rank: a removed key signing on a point from before its
//!   removal and a cut-off one that did not know of it look alike, and neither may keep
//!   acting. Removals racing each other are the exception: each counts unless the other was
//!   vouched for and it was not, so of two admins of one rank removing each other at once
//!   both are removed, unless a third member built on one alone. Every member takes such
//!   deltas (void, within a budget per key), whatever the order of arrival; nothing is
//!   refused for the time it arrives, so the DAG and the verdict are one in every order. A
//!   member's write can vouch for an operation: the log then asks to be judged anew
//!   ([`Log::needs_judging`]).
//!
//! - **App upgrades are barriers.** An admin's [`MemberOp::SetApp`] changes the app that runs
//!   the context from its place in the causal order on; every node runs the new app's
//!   migration itself when it applies the operation. A write concurrent with an upgrade was made
//!   by the app it replaces, for a state shape the new app may not read, so it is void (its
//!   author sees it voided and may make it again). Concurrent upgrades cancel each other: none
//!   of them counts (no race is won by a clock), and an upgrade made having seen them does.
//!   Likewise a write made after an upgrade that counted there but not once more is known
//!   (cancelled by a concurrent one, or overruled) was made by an app the context does not
//!   run, for another state shape: void ([`Log::made_by_running_app`]).
//!
//! The whole rule is a pure function of the DAG ([`Log::judge`]), so every node that holds the
//! same deltas reaches the same verdict, whatever order they arrived in. Between operations a
//! node keeps its [`Log`] up to date delta by delta ([`Log::add`]); an operation judges anew.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::{AppId, DeltaId, PublicKey};

use crate::membership::{rotation_matches, Issuance, MemberCert, Role};
use crate::proposals::{ProposalAction, ProposalId};
use tabnode_identity::grant::{SignedGrant, SignedRevocation};

mod judge;
mod races;
mod secrets;
pub use secrets::latest_secret_ops_computed;

/// A change of membership, made by an admin.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum MemberOp {
    /// `member`'s key, and every certificate issued through it, loses all authority for
    /// anything outside the causal past of this operation. The context gets a new secret,
    /// sealed to each remaining member (`shares`), so the removed member reads nothing new.
    Remove {
        member: PublicKey,
        #[serde(skip)]
        shares: Vec<Share>,
    },
    /// `member` holds `role` from this operation on.
    SetRole { member: PublicKey, role: Role },
    /// The author announces its membership (the certificate its delta carries), so every
    /// member knows it before it writes. Any member may; it changes no authority.
    Join,
    /// The author leaves the context: as if removed (from here on what its key signs is void),
    /// and it gives the remaining members a new secret (`shares`) it does not keep.
    Leave {
        #[serde(skip)]
        shares: Vec<Share>,
    },
    /// The author shows the root (a NEAR account, or a local root key) that granted its key,
    /// so that root's revocation can reach it. Any member may; the first binding of a key counts.
    Bind {
        root: PublicKey,
        #[serde(skip)]
        grant: Box<SignedGrant>,
    },
    /// The root that `key` is bound to revokes it: like a removal (it cascades, and the context
    /// gets a new secret, `shares`), but on the root's authority, so any member may carry it.
    Revoke {
        key: PublicKey,
        root: PublicKey,
        #[serde(skip)]
        revocation: Box<SignedRevocation>,
        #[serde(skip)]
        shares: Vec<Share>,
    },
    /// The author's key is replaced by `new`, which takes its role: the root the author's key
    /// is bound to granted `new` and revoked the author's key (two statements, one step). As a
    /// revocation it cascades and gives the context a new secret (`shares`, one for `new`);
    /// unlike one, the new key keeps the author's place. Only the key being replaced makes it.
    Rotate {
        new: PublicKey,
        root: PublicKey,
        #[serde(skip)]
        grant: Box<SignedGrant>,
        #[serde(skip)]
        revocation: Box<SignedRevocation>,
        #[serde(skip)]
        shares: Vec<Share>,
    },
    /// The context runs `app_id` from here on (an admin's operation). The operation carries
    /// the binary (whose blake3 hash must be `app_id`), so every member can run it, and names
    /// the new app's `#[app::migrate]` export, if the state needs one to take the new shape.
    SetApp {
        #[serde(rename = "appId")]
        app_id: AppId,
        migrate: Option<String>,
        #[serde(skip)]
        wasm: Vec<u8>,
    },
    /// A member saw `member` ask to join with `cert` (redeemed from an invitation) and records
    /// the use: from here on `member` acts with the invitation's role. Any member may; the log
    /// decides whether it counts (see the module docs).
    Admit {
        member: PublicKey,
        #[serde(skip)]
        cert: Box<MemberCert>,
    },
    /// An admin revokes the invitation whose invite key is `invitation`: no join with it
    /// counts after this in the log's order (one admitted before stays).
    RevokeInvitation { invitation: PublicKey },
    /// A writer proposes `actions` to the context's proxy under `proposal` (see
    /// [`crate::proposals`]); it changes no authority.
    Propose {
        proposal: ProposalId,
        actions: Vec<ProposalAction>,
    },
    /// A writer approves `proposal`; at the threshold its actions run on every member.
    Approve { proposal: ProposalId },
}

/// A context secret sealed to one member's key (see [`crate::seal::seal_to`]).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Share {
    pub member: PublicKey,
    pub sealed: Vec<u8>,
}

impl MemberOp {
    /// How the audit trail names the operation.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Remove { .. } => "member.remove",
            Self::SetRole { .. } => "member.setRole",
            Self::Join => "member.join",
            Self::Leave { .. } => "member.leave",
            Self::Bind { .. } => "member.bind",
            Self::Revoke { .. } => "member.revoke",
            Self::SetApp { .. } => "app.upgrade",
            Self::Rotate { .. } => "member.rotate",
            Self::Admit { .. } => "member.admit",
            Self::RevokeInvitation { .. } => "invitation.revoke",
            Self::Propose { .. } => "proposal.propose",
            Self::Approve { .. } => "proposal.approve",
        }
    }

    /// The key the operation (by `author`) takes all authority from, if it does.
    pub fn removes(&self, author: &PublicKey) -> Option<PublicKey> {
        match self {
            Self::Remove { member, .. } => Some(*member),
            Self::Revoke { key, .. } => Some(*key),
            Self::Leave { .. } | Self::Rotate { .. } => Some(*author),
            Self::SetRole { .. }
            | Self::Join
            | Self::Bind { .. }
            | Self::SetApp { .. }
            | Self::Admit { .. }
            | Self::RevokeInvitation { .. }
            | Self::Propose { .. }
            | Self::Approve { .. } => None,
        }
    }

    /// Where the operation carries shares of a new context secret.
    pub fn shares_mut(&mut self) -> Option<&mut Vec<Share>> {
        match self {
            Self::Remove { shares, .. }
            | Self::Revoke { shares, .. }
            | Self::Rotate { shares, .. }
            | Self::Leave { shares } => Some(shares),
            Self::SetRole { .. }
            | Self::Join
            | Self::Bind { .. }
            | Self::SetApp { .. }
            | Self::Admit { .. }
            | Self::RevokeInvitation { .. }
            | Self::Propose { .. }
            | Self::Approve { .. } => None,
        }
    }

    /// The secret shares the operation carries.
    pub fn shares(&self) -> &[Share] {
        match self {
            Self::Remove { shares, .. }
            | Self::Revoke { shares, .. }
            | Self::Rotate { shares, .. }
            | Self::Leave { shares } => shares,
            Self::SetRole { .. }
            | Self::Join
            | Self::Bind { .. }
            | Self::SetApp { .. }
            | Self::Admit { .. }
            | Self::RevokeInvitation { .. }
            | Self::Propose { .. }
            | Self::Approve { .. } => &[],
        }
    }

    /// Whether an author acting with `role` may make this operation: announcing oneself,
    /// showing one's root, carrying a root's revocation and admitting a joiner (whose
    /// invitation an admin signed) need no admin; proposing and approving need a writer.
    pub fn allowed_for(&self, role: Role) -> bool {
        if self.is_proposal() {
            return role.can_write();
        }
        matches!(
            self,
            Self::Join
                | Self::Leave { .. }
                | Self::Bind { .. }
                | Self::Revoke { .. }
                | Self::Rotate { .. }
                | Self::Admit { .. }
        ) || role == Role::Admin
    }

    /// Whether the operation is about proposals rather than membership.
    pub fn is_proposal(&self) -> bool {
        matches!(self, Self::Propose { .. } | Self::Approve { .. })
    }

    /// Checks what the operation carries from a root, for an operation by `author`: the root's
    /// signature, and that the statement is about the keys the operation names. (Validity
    /// windows are not checked: the log must judge the same whenever it is read.)
    pub fn verify_root_statement(&self, author: &PublicKey) -> Result<(), String> {
        match self {
            Self::Bind { root, grant } => {
                grant.verify_signature().map_err(|e| e.to_string())?;
                if grant.grant.client_key != *author || grant.root.public_key() != *root {
                    return Err("the grant is for another key or from another root".into());
                }
                Ok(())
            }
            Self::Revoke {
                key,
                root,
                revocation,
                ..
            } => {
                revocation.verify().map_err(|e| e.to_string())?;
                if revocation.revocation.client_key != *key || revocation.root.public_key() != *root
                {
                    return Err("the revocation is for another key or from another root".into());
                }
                Ok(())
            }
            Self::Rotate {
                new,
                root,
                grant,
                revocation,
                ..
            } => {
                rotation_matches(author, new, grant, revocation)?;
                if grant.root.public_key() != *root {
                    return Err("the rotation comes from another root".into());
                }
                Ok(())
            }
            Self::SetApp { app_id, wasm, .. } => {
                if AppId::of_wasm(wasm) != *app_id {
                    return Err(format!("the binary carried is not the app {app_id}"));
                }
                Ok(())
            }
            Self::Admit { member, cert } => {
                if cert.member != *member || !matches!(cert.issued, Issuance::Invited { .. }) {
                    return Err("an admission carries the joiner's invited certificate".into());
                }
                cert.verify().map_err(|e| e.to_string())
            }
            _ => Ok(()),
        }
    }
}

/// What the log needs to know of each delta of the DAG.
#[derive(Debug, Clone)]
pub struct Entry {
    pub parents: Vec<DeltaId>,
    pub author: PublicKey,
    pub timestamp: u64,
    /// The role the author's certificate gives it.
    pub cert_role: Role,
    /// Every key the author's authority depends on: the author and each inviter of its chain.
    pub chain: Vec<PublicKey>,
    /// The invite key the author's certificate was redeemed from, if it was: it then acts only
    /// after an admission (see [`MemberOp::Admit`]).
    pub admission: Option<PublicKey>,
    pub op: Option<MemberOp>,
}

impl Entry {
    /// The log's view of a delta by `author`, certified by `cert`.
    pub fn new(
        parents: Vec<DeltaId>,
        author: PublicKey,
        timestamp: u64,
        cert: &MemberCert,
        op: Option<MemberOp>,
    ) -> Self {
        Self {
            parents,
            author,
            timestamp,
            cert_role: cert.standalone_role(),
            chain: chain_of(cert),
            admission: cert.invite_key(),
            op,
        }
    }
}

/// The keys a certificate's authority depends on: its member, then each inviter up the chain.
pub fn chain_of(cert: &MemberCert) -> Vec<PublicKey> {
    let mut keys = vec![cert.member];
    let mut next = cert;
    loop {
        match &next.issued {
            Issuance::Invited { invitation, .. } => {
                next = &invitation.inviter;
                keys.push(next.member);
            }
            // The replaced key is not a key the new one depends on: its revocation is the
            // rotation itself. Its inviters are.
            Issuance::Rotated { from, .. } => next = from,
            Issuance::Genesis { .. } => return keys,
        }
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Reader => 0,
        Role::Member => 1,
        Role::Admin => 2,
    }
}

fn lesser(a: Role, b: Role) -> Role {
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}

/// Where the log stands after judging a DAG.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Deltas that do not stand: their state changes are not applied.
    pub void: BTreeSet<DeltaId>,
    /// Removed keys, each with the operation that removed it (the first in causal order, if
    /// several did at once).
    pub removed: BTreeMap<PublicKey, DeltaId>,
    /// Roles given by operations, each with its operation: of concurrent latest changes, the
    /// lesser.
    pub roles: BTreeMap<PublicKey, (Role, DeltaId)>,
    /// The operations that counted, in causal order (concurrent ones by id: nothing depends
    /// on their order).
    pub applied_ops: Vec<DeltaId>,
    /// The root each bound key was granted by (see [`MemberOp::Bind`]); a key bound twice at
    /// once (its own doing) keeps the first in causal order.
    pub roots: BTreeMap<PublicKey, PublicKey>,
    /// Keys replaced by a rotation: the old key, the new one and the operation. The old key is
    /// in `removed` too; what others hold through it (invitations it signed) carries on
    /// through the new key.
    pub rotated: BTreeMap<PublicKey, (PublicKey, DeltaId)>,
    /// The app upgrades that counted, in causal order (each is in the next one's past): the
    /// last one names the app the context runs now.
    pub upgrades: Vec<DeltaId>,
    /// Admitted keys: the invite key each was admitted with, and every admission of it with
    /// that invitation (members hearing one join may each record it; any of them will do).
    pub admitted: BTreeMap<PublicKey, (PublicKey, Vec<DeltaId>)>,
    /// How many keys each invitation (by invite key) admitted.
    pub invitation_uses: BTreeMap<PublicKey, u32>,
    /// Revoked invitations (by invite key), each with the operation that revoked it.
    pub revoked_invitations: BTreeMap<PublicKey, DeltaId>,
}

/// `from` and everything in their causal past that the DAG holds.
pub fn with_ancestors(
    dag: &HashMap<DeltaId, Entry>,
    from: impl IntoIterator<Item = DeltaId>,
) -> HashSet<DeltaId> {
    let mut seen = HashSet::new();
    let mut stack: Vec<DeltaId> = from.into_iter().filter(|id| dag.contains_key(id)).collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(dag[&id].parents.iter().filter(|p| dag.contains_key(p)));
        }
    }
    seen
}

/// Everything reachable from `id` by `edges` (parents: the causal past; children: the causal
/// future), itself excluded.
fn reach(edges: &HashMap<DeltaId, Vec<DeltaId>>, id: &DeltaId) -> HashSet<DeltaId> {
    let mut seen = HashSet::new();
    let mut stack: Vec<DeltaId> = edges.get(id).cloned().unwrap_or_default();
    while let Some(next) = stack.pop() {
        if seen.insert(next) {
            stack.extend(edges.get(&next).into_iter().flatten().copied());
        }
    }
    seen
}

/// A context's membership log as judged: the verdict, each operation's causal past and
/// future, and every effect of the operations that counted, to judge deltas against.
#[derive(Debug, Clone, Default)]
pub struct Log {
    verdict: Verdict,
    pasts: HashMap<DeltaId, HashSet<DeltaId>>,
    futures: HashMap<DeltaId, HashSet<DeltaId>>,
    /// Every removal that counted, by removed key: two admins removing one key at once make
    /// two, and a delta by it stands only if it comes before both.
    removals: BTreeMap<PublicKey, Vec<DeltaId>>,
    /// Every role change that counted (a rotation's too), by member.
    role_changes: BTreeMap<PublicKey, Vec<(Role, DeltaId)>>,
    /// Every binding of a key to a root that counted: (key, root, operation).
    bindings: Vec<(PublicKey, PublicKey, DeltaId)>,
    /// Operations racing a removal of a key their authority rests on, each with the removal
    /// (see `races.rs`) and the keys that cannot vouch for it: a delta by another key that
    /// comes after the first and not the second may vouch for it and change the verdict.
    races: BTreeMap<(DeltaId, DeltaId), BTreeSet<PublicKey>>,
    /// Whether a delta taken since the last judgement may have changed the verdict (see
    /// [`Self::needs_judging`]).
    stale: bool,
    /// Every admission that counted in its causal past: (member, invite key, operation).
    admissions: Vec<(PublicKey, PublicKey, DeltaId)>,
    /// Every revocation of an invitation that counted: (invite key, operation).
    invitation_revocations: Vec<(PublicKey, DeltaId)>,
    /// Admissions that concurrent operations cancelled (see [`Self::judge`]): they count for
    /// nothing, from the first pass that found them on.
    cancelled_admissions: BTreeSet<DeltaId>,
    /// Operations that a concurrent removal by a senior admin overrules (see
    /// [`Self::overruled_ops`]), or that race a removal with no third member vouching for
    /// them (see `races.rs`): they count for nothing, from the first pass that found them on.
    overruled: BTreeSet<DeltaId>,
    /// Whether an operation counted in its causal past but does not in the DAG (an upgrade
    /// cancelled, an operation overruled, an admission cancelled): only then may a write have
    /// been made by an app the context does not run (see [`Self::made_by_the_running_app`]).
    retracted: bool,
    /// The latest secret-giving operations ([`Self::latest_secret_ops`]), worked out once per
    /// judgement: they change only when the DAG is judged anew, not for each message.
    latest_secrets: std::sync::OnceLock<Vec<DeltaId>>,
}

impl Log {
    fn new(dag: &HashMap<DeltaId, Entry>, ops: &[DeltaId]) -> Self {
        if ops.is_empty() {
            return Self::default();
        }
        let parents: HashMap<DeltaId, Vec<DeltaId>> =
            dag.iter().map(|(id, e)| (*id, e.parents.clone())).collect();
        let mut children: HashMap<DeltaId, Vec<DeltaId>> = HashMap::new();
        for (id, e) in dag {
            for p in &e.parents {
                children.entry(*p).or_default().push(*id);
            }
        }
        Self {
            pasts: ops.iter().map(|op| (*op, reach(&parents, op))).collect(),
            futures: ops.iter().map(|op| (*op, reach(&children, op))).collect(),
            ..Self::default()
        }
    }

    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// Takes a delta that is not an operation into the log, judged as [`Self::role_of_new`]
    /// judged it: the verdict stays what [`Self::judge`] would give for the grown DAG, unless
    /// the delta comes after an operation racing a removal and not after the removal (it may
    /// vouch for the operation): then [`Self::needs_judging`] says so.
    pub fn add(&mut self, id: DeltaId, entry: &Entry, stands: bool) {
        for (op, future) in &mut self.futures {
            if entry.parents.iter().any(|p| p == op || future.contains(p)) {
                future.insert(id);
            }
        }
        if !stands {
            self.verdict.void.insert(id);
        }
        let after = |op: &DeltaId| self.futures[op].contains(&id);
        let may_vouch =
            |barred: &BTreeSet<PublicKey>| !entry.chain.iter().any(|k| barred.contains(k));
        if self
            .races
            .iter()
            .any(|((raced, removal), barred)| after(raced) && !after(removal) && may_vouch(barred))
        {
            self.stale = true;
        }
    }

    /// Whether a delta taken by [`Self::add`] may have vouched for an operation racing a
    /// removal: the verdict is then to be judged anew from the DAG.
    pub fn needs_judging(&self) -> bool {
        self.stale
    }

    /// The role a new delta (`entry`, not yet in the DAG) would be made with: `None` if the
    /// author, or a key its authority depends on, was removed.
    pub fn role_of_new(&self, entry: &Entry) -> Option<Role> {
        self.role(None, entry, None)
    }

    /// Whether a write (`entry`, not yet in `dag`) would be made by the app the log says runs
    /// at its place (see [`Self::made_by_the_running_app`]).
    pub fn made_by_running_app(&self, dag: &HashMap<DeltaId, Entry>, entry: &Entry) -> bool {
        self.made_by_the_running_app(dag, None, entry, &mut HashMap::new())
    }

    /// Whether the write `entry` (the delta `id`, or one about to be made when `id` is
    /// `None`) was made by the app the log says runs at its place: the last upgrade that
    /// counts in its causal past is the one that counted last in the log of that past alone,
    /// the app its author ran. An upgrade that counted there but not once more is known
    /// (cancelled by a concurrent upgrade, overruled by a senior's concurrent removal) leaves
    /// writes made by its app, for its state's shape, which the app the context runs cannot
    /// merge: they are void, as writes concurrent with an upgrade are (and the other way
    /// round). `seen` keeps the app counted last by each set of operations in a causal past.
    fn made_by_the_running_app(
        &self,
        dag: &HashMap<DeltaId, Entry>,
        id: Option<&DeltaId>,
        entry: &Entry,
        seen: &mut HashMap<BTreeSet<DeltaId>, Option<DeltaId>>,
    ) -> bool {
        if !self.retracted {
            return true; // every operation counts as it did in its causal past
        }
        let is_upgrade = |op: &DeltaId| matches!(dag[op].op, Some(MemberOp::SetApp { .. }));
        let ops: BTreeSet<DeltaId> = self
            .futures
            .keys()
            .filter(|op| self.is_after(id, entry, op))
            .copied()
            .collect();
        if !ops.iter().any(is_upgrade) {
            return true;
        }
        let counts = self.verdict.upgrades.iter().rev().find(|u| ops.contains(u));
        let counted_there = seen.entry(ops).or_insert_with_key(|ops| {
            // The operations alone decide which upgrades count: each with its causal past
            // among them for parents.
            let past: HashMap<DeltaId, Entry> = ops
                .iter()
                .map(|op| {
                    let parents = ops
                        .iter()
                        .filter(|p| self.pasts[op].contains(p))
                        .copied()
                        .collect();
                    (
                        *op,
                        Entry {
                            parents,
                            ..dag[op].clone()
                        },
                    )
                })
                .collect();
            Log::judge(&past).verdict.upgrades.last().copied()
        });
        counts == counted_there.as_ref()
    }

    /// The role `entry`'s author holds as a member at the point of the DAG its parents name
    /// (`None` if it is no member there): what a sync request is judged by. Unlike
    /// [`Self::role_of_new`], an upgrade concurrent with that point does not bar it: that
    /// voids writes made there, not membership.
    pub fn member_at(&self, entry: &Entry) -> Option<Role> {
        self.standing(None, entry, None)
    }

    /// The role `entry`'s author holds in the log of the delta's causal past alone (`dag`
    /// holds it; `None` if it is no member there): what it could do where it made the delta,
    /// whatever was concurrent with it. Unlike the role on arrival (a concurrent demotion
    /// arrived first, or not), the same on every member whatever the order of arrival: a delta
    /// that neither this role nor the author's certificate allows stands in no order, and is
    /// refused outright. For a key no operation of `dag` gave a role, its certificate's (no
    /// need to judge the past again).
    pub fn role_in_own_past(&self, dag: &HashMap<DeltaId, Entry>, entry: &Entry) -> Option<Role> {
        if !self.role_changes.contains_key(&entry.author) {
            return Some(entry.cert_role);
        }
        let past = with_ancestors(dag, entry.parents.iter().copied());
        let past: HashMap<DeltaId, Entry> = dag
            .iter()
            .filter(|(id, _)| past.contains(id))
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        Log::judge(&past).role_of_new(entry)
    }

    /// The key answerable for a void delta by `entry`'s author: the most senior key of its
    /// chain that this log removed, else the author. Keys a removed key certified (some it
    /// minted after its removal, say) answer through it: a node budgets the void deltas it
    /// keeps per answerable key (see `node/bounds.rs`).
    pub fn answerable_for(&self, entry: &Entry) -> PublicKey {
        entry
            .chain
            .iter()
            .rev()
            .find(|key| self.verdict.removed.contains_key(key))
            .copied()
            .unwrap_or(entry.author)
    }

    /// The keys `entry`'s authority rests on: its chain, where an inviter rotated away (by a
    /// rotation `passed` says the delta comes after) stands for the key that replaced it.
    fn keys_depended_on(&self, entry: &Entry, passed: impl Fn(&DeltaId) -> bool) -> Vec<PublicKey> {
        let follow = |key: &PublicKey| {
            let mut key = *key;
            while let Some((new, op)) = self.verdict.rotated.get(&key) {
                if key == entry.author || !passed(op) {
                    break;
                }
                key = *new;
            }
            key
        };
        entry.chain.iter().map(follow).collect()
    }

    /// The role `entry` (the delta `id`, or a delta about to be made when `id` is `None`) is
    /// made with, or `None` if a removal voids it. With `within`, only the operations in that
    /// set count (an operation's authority: what its causal past gave its author).
    fn role(
        &self,
        id: Option<&DeltaId>,
        entry: &Entry,
        within: Option<&HashSet<DeltaId>>,
    ) -> Option<Role> {
        let counts = |op: &DeltaId| within.is_none_or(|ops| ops.contains(op));
        let before = |op: &DeltaId| id.is_some_and(|id| self.pasts[op].contains(id));
        if entry.op.is_none()
            && self
                .verdict
                .upgrades
                .iter()
                .filter(|op| counts(op))
                .any(|op| !before(op) && !self.is_after(id, entry, op))
        {
            return None; // made by the app an upgrade replaced
        }
        self.standing(id, entry, within)
    }

    /// Whether `entry` (the delta `id`, or one about to be made on `entry`'s parents when
    /// `id` is `None`) comes after the operation `op`.
    fn is_after(&self, id: Option<&DeltaId>, entry: &Entry, op: &DeltaId) -> bool {
        match id {
            Some(id) => self.futures[op].contains(id),
            None => entry
                .parents
                .iter()
                .any(|p| p == op || self.futures[op].contains(p)),
        }
    }

    /// [`Self::role`] as a member's standing, whatever the delta is: an upgrade it is
    /// concurrent with does not bar it.
    fn standing(
        &self,
        id: Option<&DeltaId>,
        entry: &Entry,
        within: Option<&HashSet<DeltaId>>,
    ) -> Option<Role> {
        let counts = |op: &DeltaId| within.is_none_or(|ops| ops.contains(op));
        let before = |op: &DeltaId| id.is_some_and(|id| self.pasts[op].contains(id));
        let after = |op: &DeltaId| self.is_after(id, entry, op);
        let changes: Vec<(Role, DeltaId)> = self
            .role_changes
            .get(&entry.author)
            .into_iter()
            .flatten()
            .filter(|(_, op)| counts(op))
            .copied()
            .collect();
        let certified_anew = changes.iter().any(|(_, op)| after(op));
        if let Some(invite_key) = &entry.admission {
            let admitted = self.admissions.iter().any(|(member, with, op)| {
                member == &entry.author && with == invite_key && counts(op) && after(op)
            });
            if !admitted && !certified_anew {
                return None; // redeemed, but no admission of it counts
            }
        }
        // An inviter rotated away (before this delta was made) stands for its new key.
        let rotated_past = |op: &DeltaId| counts(op) && !before(op);
        for key in self.keys_depended_on(entry, rotated_past) {
            for op in self.removals.get(&key).into_iter().flatten() {
                let itself = id == Some(op); // a key's own leave or rotation stands
                if counts(op) && !before(op) && !itself && (key == entry.author || !certified_anew)
                {
                    return None;
                }
            }
        }
        // The lesser of the latest changes the delta comes after (its certificate's role if
        // none) and of every change concurrent with it.
        let latest = changes.iter().filter(|(_, op)| {
            after(op)
                && !changes
                    .iter()
                    .any(|(_, later)| later != op && after(later) && self.pasts[later].contains(op))
        });
        let concurrent = changes.iter().filter(|(_, op)| !before(op) && !after(op));
        let role = latest.map(|(role, _)| *role).reduce(lesser);
        Some(
            concurrent
                .map(|(role, _)| *role)
                .fold(role.unwrap_or(entry.cert_role), lesser),
        )
    }
}

#[cfg(test)]
mod tests;
