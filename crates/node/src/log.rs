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
//! - **A settled removal closes the door.** Once a third member (neither the remover nor the
//!   removed) has built on a removal with a delta that stands, a new operation by the removed
//!   key (or through it) that does not come after the removal is refused on arrival
//!   ([`Log::settled_removal_missed`]): it could only pass as concurrent with a removal the
//!   others have already moved past, which is what a removed key forging "earlier" deltas
//!   looks like. Until then a removed key's operation on an older point is taken as
//!   concurrent, with the effect above. (A member that took such a delta before the removal
//!   settled builds on it; the others then take it too, so the DAG stays one.) Its writes
//!   are taken, void, whatever the order: refusing them would split the DAG by order of
//!   arrival, and they change nothing.
//!
//! - **App upgrades are barriers.** An admin's [`MemberOp::SetApp`] changes the app that runs
//!   the context from its place in the causal order on; every node runs the new app's
//!   migration itself when it applies the operation. A write concurrent with an upgrade was made
//!   by the app it replaces, for a state shape the new app may not read, so it is void (its
//!   author sees it voided and may make it again). Concurrent upgrades cancel each other: none
//!   of them counts (no race is won by a clock), and an upgrade made having seen them does.
//!
//! The whole rule is a pure function of the DAG ([`Log::judge`]), so every node that holds the
//! same deltas reaches the same verdict, whatever order they arrived in. Between operations a
//! node keeps its [`Log`] up to date delta by delta ([`Log::add`]); an operation judges anew.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::{AppId, DeltaId, PublicKey};

use crate::membership::{rotation_matches, Issuance, MemberCert, Role};
use tabnode_identity::grant::{SignedGrant, SignedRevocation};

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
            | Self::RevokeInvitation { .. } => None,
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
            | Self::RevokeInvitation { .. } => None,
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
            | Self::RevokeInvitation { .. } => &[],
        }
    }

    /// Whether an author acting with `role` may make this operation: announcing oneself,
    /// showing one's root, carrying a root's revocation and admitting a joiner (whose
    /// invitation an admin signed) need no admin.
    pub fn allowed_for(&self, role: Role) -> bool {
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
    /// Each removal that counted, with who made it and whom it removed.
    parties: HashMap<DeltaId, (PublicKey, PublicKey)>,
    /// Removals that a third member (neither who made it nor whom it removed) has built on
    /// with a delta that stands: see [`Self::settled_removal_missed`].
    settled: BTreeSet<DeltaId>,
    /// Every admission that counted in its causal past: (member, invite key, operation).
    admissions: Vec<(PublicKey, PublicKey, DeltaId)>,
    /// Every revocation of an invitation that counted: (invite key, operation).
    invitation_revocations: Vec<(PublicKey, DeltaId)>,
    /// Admissions that concurrent operations cancelled (see [`Self::judge`]): they count for
    /// nothing, from the first pass that found them on.
    cancelled_admissions: BTreeSet<DeltaId>,
    /// Operations that a concurrent removal by a senior admin overrules (see
    /// [`Self::overruled_ops`]): they count for nothing, from the first pass that found them on.
    overruled: BTreeSet<DeltaId>,
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
    /// judged it: the verdict stays what [`Self::judge`] would give for the grown DAG.
    pub fn add(&mut self, id: DeltaId, entry: &Entry, stands: bool) {
        for (op, future) in &mut self.futures {
            if entry.parents.iter().any(|p| p == op || future.contains(p)) {
                future.insert(id);
                let third = self
                    .parties
                    .get(op)
                    .is_some_and(|(by, of)| entry.author != *by && entry.author != *of);
                if stands && third {
                    self.settled.insert(*op);
                }
            }
        }
        if !stands {
            self.verdict.void.insert(id);
        }
    }

    /// The role a new delta (`entry`, not yet in the DAG) would be made with: `None` if the
    /// author, or a key its authority depends on, was removed.
    pub fn role_of_new(&self, entry: &Entry) -> Option<Role> {
        self.role(None, entry, None)
    }

    /// A settled removal that a new delta (`entry`, not yet in the DAG) by the removed key, or
    /// by a key whose authority rests on it, does not come after: the author signed it on a
    /// point of the DAG from before its removal, which a third member has since built on. Such
    /// an operation is new (a member does not learn of a removal only once others build on
    /// it), and it could only count as concurrent with the removal, so it is refused (if it
    /// would count: see [`Self::counts_if_added`]).
    ///
    /// A write is not: it is void wherever it stands in the DAG (after its author's removal or
    /// concurrent with it), so taking it changes nothing, while refusing it would make the DAG
    /// depend on the order of arrival: a removed member cut off from the others writes on
    /// without knowing, and its writes reach some members before the removal settles there and
    /// others after. Every member takes them, void.
    pub fn settled_removal_missed(&self, entry: &Entry) -> Option<DeltaId> {
        entry.op.as_ref()?;
        let after = |op: &DeltaId| {
            entry
                .parents
                .iter()
                .any(|p| p == op || self.futures[op].contains(p))
        };
        let certified_anew = self
            .role_changes
            .get(&entry.author)
            .is_some_and(|changes| changes.iter().any(|(_, op)| after(op)));
        for key in self.keys_depended_on(entry, |op| after(op)) {
            for op in self.removals.get(&key).into_iter().flatten() {
                let missed = self.settled.contains(op) && !after(op);
                if missed && (key == entry.author || !certified_anew) {
                    return Some(*op);
                }
            }
        }
        None
    }

    /// Whether the operation `entry` (the delta `id`, not yet in `dag`) would count in the log
    /// of `dag` grown by it. A removed key's operation that a senior's removal overrules, or
    /// that removes a key its author rests on, would not: it is void wherever it arrives, so
    /// [`Self::settled_removal_missed`] need not refuse it (and must not: see there).
    pub fn counts_if_added(dag: &HashMap<DeltaId, Entry>, id: DeltaId, entry: &Entry) -> bool {
        let mut grown = dag.clone();
        grown.insert(id, entry.clone());
        Log::judge(&grown).verdict.applied_ops.contains(&id)
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
        let after = |op: &DeltaId| match id {
            Some(id) => self.futures[op].contains(id),
            None => entry
                .parents
                .iter()
                .any(|p| p == op || self.futures[op].contains(p)),
        };
        if entry.op.is_none()
            && self
                .verdict
                .upgrades
                .iter()
                .filter(|op| counts(op))
                .any(|op| !before(op) && !after(op))
        {
            return None; // made by the app an upgrade replaced
        }
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

impl Log {
    /// The rule applied to a whole DAG (every delta this node applied).
    pub fn judge(dag: &HashMap<DeltaId, Entry>) -> Log {
        let ops: Vec<DeltaId> = dag
            .iter()
            .filter(|(_, e)| e.op.is_some())
            .map(|(id, _)| *id)
            .collect();
        let fresh = Log::new(dag, &ops);
        // Causal order: an operation's past holds fewer operations than the past of any that
        // comes after it. Among concurrent operations the order is the id's, and nothing that
        // follows depends on it.
        let mut ops: Vec<(usize, DeltaId)> = ops
            .into_iter()
            .map(|id| {
                (
                    fresh.pasts[&id]
                        .iter()
                        .filter(|d| dag[*d].op.is_some())
                        .count(),
                    id,
                )
            })
            .collect();
        ops.sort();
        let ops: Vec<DeltaId> = ops.into_iter().map(|(_, id)| id).collect();
        // An admission is settled only once every operation concurrent with it is known: when
        // a pass cancels admissions that counted in their causal past, what the admitted keys
        // did is judged again without them. The cancelled set only grows, so this ends.
        // Likewise an operation is settled only once every removal concurrent with it is
        // known: one by an admin senior to a key the operation's authority rests on overrules
        // it, and the log is judged again without it.
        let mut judge = fresh;
        loop {
            let cancelled = judge.cancelled_admissions.clone();
            let overruled = judge.overruled.clone();
            judge.run(dag, ops.clone());
            if judge.cancelled_admissions == cancelled && judge.overruled == overruled {
                return judge;
            }
            judge = Log {
                pasts: judge.pasts,
                futures: judge.futures,
                cancelled_admissions: judge.cancelled_admissions,
                overruled: judge.overruled,
                ..Log::default()
            };
        }
    }

    fn revoked_within(&self, invitation: &PublicKey, past: &HashSet<DeltaId>) -> bool {
        self.invitation_revocations
            .iter()
            .any(|(k, op)| k == invitation && past.contains(op))
    }

    /// The keys admitted with `invitation` by admissions that counted in `within`.
    fn admitted_within(
        &self,
        invitation: &PublicKey,
        within: impl Fn(&DeltaId) -> bool,
    ) -> BTreeSet<PublicKey> {
        self.admissions
            .iter()
            .filter(|(_, with, op)| with == invitation && within(op))
            .map(|(member, _, _)| *member)
            .collect()
    }

    /// Takes admission `id` (stamped `at`, with causal past `past`) of `member` with `cert`, if
    /// it counts there: stamped before the invitation expired, the invitation not revoked in
    /// its past, and `member` one of at most `uses` keys admitted with it in its past.
    fn admit(
        &mut self,
        id: DeltaId,
        at: u64,
        member: &PublicKey,
        cert: &MemberCert,
        past: &HashSet<DeltaId>,
    ) -> bool {
        let Issuance::Invited { invitation, .. } = &cert.issued else {
            return false;
        };
        let key = invitation.invite_key;
        if self.cancelled_admissions.contains(&id)
            || at >= invitation.expires_at
            || self.revoked_within(&key, past)
        {
            return false;
        }
        let mut keys = self.admitted_within(&key, |op| past.contains(op));
        keys.insert(*member);
        if keys.len() > invitation.uses as usize {
            return false; // used up in its past
        }
        self.admissions.push((*member, key, id));
        true
    }

    /// Admissions that counted in their past but that operations concurrent with them cancel:
    /// a revocation of the invitation (revocation wins), or admissions of other keys with it
    /// that, with those in its past, make more keys than the invitation's `uses`.
    fn cancel_admissions(&self, dag: &HashMap<DeltaId, Entry>) -> BTreeSet<DeltaId> {
        let concurrent = |a: &DeltaId, b: &DeltaId| {
            a != b && !self.pasts[a].contains(b) && !self.futures[a].contains(b)
        };
        let mut cancelled = BTreeSet::new();
        for (member, key, id) in &self.admissions {
            let revoked = self
                .invitation_revocations
                .iter()
                .any(|(k, op)| k == key && !self.futures[id].contains(op));
            let uses = match dag[id].op.as_ref() {
                Some(MemberOp::Admit { cert, .. }) => match &cert.issued {
                    Issuance::Invited { invitation, .. } => invitation.uses as usize,
                    _ => 0,
                },
                _ => 0,
            };
            let mut keys =
                self.admitted_within(key, |op| self.pasts[id].contains(op) || concurrent(id, op));
            keys.insert(*member);
            if revoked || keys.len() > uses {
                cancelled.insert(*id);
            }
        }
        cancelled
    }

    /// Admin operations that counted but that an admin's removal concurrent with them overrules:
    /// one of a key the operation's authority rests on (its author, or an inviter up its
    /// chain unless an admin certified the author anew), made by an admin senior to that key,
    /// that is, with fewer invitations between it and the context's creator. So of two admins
    /// removing each other at once the senior's removal counts and the junior's does not, and
    /// a removed admin's operations racing its removal (a demotion of its remover, say) count
    /// for nothing; between admins of equal rank both removals count. What any member may do
    /// (announce itself, admit a joiner, leave, carry a root's statement) needs no admin's
    /// authority and is not overruled: a joiner a member admitted (and welcomed) just before
    /// hearing of its own removal would otherwise be left with no admission to wait for.
    ///
    /// A removal overrules only if it is not overruled itself: removals are looked at from
    /// the most senior authors down (an operation is overruled only by authors of higher rank).
    fn overruled_ops(&self, dag: &HashMap<DeltaId, Entry>) -> BTreeSet<DeltaId> {
        let admins_only = |id: &&DeltaId| {
            dag[*id]
                .op
                .as_ref()
                .is_some_and(|op| !op.allowed_for(Role::Member))
        };
        let mut by_rank: Vec<(usize, DeltaId)> = self
            .verdict
            .applied_ops
            .iter()
            .filter(admins_only)
            .map(|id| (dag[id].chain.len(), *id))
            .collect();
        by_rank.sort();
        let mut overruled = BTreeSet::new();
        for (_, id) in &by_rank {
            let entry = &dag[id];
            let past = &self.pasts[id];
            let concurrent =
                |op: &DeltaId| op != id && !past.contains(op) && !self.futures[id].contains(op);
            let certified_anew = self.certified_anew_within(&entry.author, past);
            let keys = self.keys_depended_on(entry, |op| !self.pasts[op].contains(id));
            let by_senior = keys.iter().enumerate().any(|(place, key)| {
                let rank = entry.chain.len() - place;
                let chain_exempt = *key != entry.author && certified_anew;
                !chain_exempt
                    && self.removals.get(key).into_iter().flatten().any(|op| {
                        let removal = &dag[op];
                        matches!(removal.op, Some(MemberOp::Remove { .. }))
                            && removal.chain.len() < rank
                            && concurrent(op)
                            && !overruled.contains(op)
                    })
            });
            if by_senior {
                overruled.insert(*id);
            }
        }
        overruled
    }

    /// Whether the authority of `entry` (the operation `id`, with causal past `past`) rests on
    /// `key` as an inviter up its chain: removing it would remove the author too, by the
    /// cascade, so such a removal counts for nothing. (An author an admin certified anew no
    /// longer rests on its chain.)
    fn rests_on(
        &self,
        id: &DeltaId,
        entry: &Entry,
        key: &PublicKey,
        past: &HashSet<DeltaId>,
    ) -> bool {
        !self.certified_anew_within(&entry.author, past)
            && self
                .keys_depended_on(entry, |op| !self.pasts[op].contains(id))
                .iter()
                .skip(1)
                .any(|inviter| inviter == key)
    }

    /// Whether an admin gave `member` a role in `past`: its authority then no longer rests on
    /// the inviters of its certificate.
    fn certified_anew_within(&self, member: &PublicKey, past: &HashSet<DeltaId>) -> bool {
        self.role_changes
            .get(member)
            .is_some_and(|changes| changes.iter().any(|(_, op)| past.contains(op)))
    }

    fn removed_within(&self, key: &PublicKey, past: &HashSet<DeltaId>) -> bool {
        self.removals
            .get(key)
            .is_some_and(|ops| ops.iter().any(|op| past.contains(op)))
    }

    fn bound_within(&self, key: &PublicKey, root: &PublicKey, past: &HashSet<DeltaId>) -> bool {
        self.bindings
            .iter()
            .any(|(k, r, op)| k == key && r == root && past.contains(op))
    }

    fn remove(&mut self, key: PublicKey, by: PublicKey, id: DeltaId) {
        self.removals.entry(key).or_default().push(id);
        self.verdict.removed.entry(key).or_insert(id);
        self.parties.insert(id, (by, key));
    }

    /// Folds the operations in causal order, each judged by its causal past alone, then
    /// judges every delta.
    fn run(&mut self, dag: &HashMap<DeltaId, Entry>, ops: Vec<DeltaId>) {
        let judge = self;
        let mut upgrades = Vec::new();
        for id in ops {
            let entry = &dag[&id];
            let op = entry.op.as_ref().expect("an op");
            if judge.overruled.contains(&id) {
                continue;
            }
            let past = judge.pasts[&id].clone();
            let role = judge.role(Some(&id), entry, Some(&past));
            if !role.is_some_and(|role| op.allowed_for(role)) {
                continue;
            }
            match op {
                MemberOp::Remove { member, .. } => {
                    if judge.removed_within(member, &past)
                        || judge.rests_on(&id, entry, member, &past)
                    {
                        continue;
                    }
                    judge.remove(*member, entry.author, id);
                }
                MemberOp::SetRole { member, role } => {
                    if judge.removed_within(member, &past) {
                        continue; // a removed key stays removed; a new key can be invited
                    }
                    judge
                        .role_changes
                        .entry(*member)
                        .or_default()
                        .push((*role, id));
                }
                MemberOp::Join => continue,
                MemberOp::Leave { .. } => {
                    if judge.removed_within(&entry.author, &past) {
                        continue;
                    }
                    judge.remove(entry.author, entry.author, id);
                }
                MemberOp::Bind { root, .. } => {
                    if judge
                        .bindings
                        .iter()
                        .any(|(k, _, op)| *k == entry.author && past.contains(op))
                    {
                        continue;
                    }
                    judge.bindings.push((entry.author, *root, id));
                    judge.verdict.roots.entry(entry.author).or_insert(*root);
                }
                MemberOp::Revoke { key, root, .. } => {
                    if !judge.bound_within(key, root, &past) || judge.removed_within(key, &past) {
                        continue;
                    }
                    judge.remove(*key, entry.author, id);
                }
                MemberOp::Rotate { new, root, .. } => {
                    let bound = judge.bound_within(&entry.author, root, &past);
                    let taken = judge.removed_within(new, &past)
                        || judge
                            .bindings
                            .iter()
                            .any(|(k, _, op)| k == new && past.contains(op));
                    if !bound || taken || judge.removed_within(&entry.author, &past) {
                        continue;
                    }
                    let role = role.expect("allowed above");
                    judge.remove(entry.author, entry.author, id);
                    judge
                        .verdict
                        .rotated
                        .entry(entry.author)
                        .or_insert((*new, id));
                    judge.role_changes.entry(*new).or_default().push((role, id));
                    judge.bindings.push((*new, *root, id));
                    judge.verdict.roots.entry(*new).or_insert(*root);
                }
                MemberOp::SetApp { .. } => upgrades.push(id),
                MemberOp::Admit { member, cert } => {
                    if !judge.admit(id, entry.timestamp, member, cert, &past) {
                        continue;
                    }
                }
                MemberOp::RevokeInvitation { invitation } => {
                    if judge.revoked_within(invitation, &past) {
                        continue;
                    }
                    judge.invitation_revocations.push((*invitation, id));
                }
            }
            judge.verdict.applied_ops.push(id);
        }
        // An upgrade counts if every other upgrade an admin made is in its past or its
        // future: of concurrent upgrades none counts, so no one wins a race by its clock.
        let cancelled: HashSet<DeltaId> = upgrades
            .iter()
            .filter(|u| {
                upgrades.iter().any(|v| {
                    v != *u && !judge.pasts[*u].contains(v) && !judge.futures[*u].contains(v)
                })
            })
            .copied()
            .collect();
        judge
            .verdict
            .applied_ops
            .retain(|op| !cancelled.contains(op));
        judge.verdict.upgrades = upgrades
            .into_iter()
            .filter(|u| !cancelled.contains(u))
            .collect();
        let newly_cancelled = judge.cancel_admissions(dag);
        judge.cancelled_admissions.extend(&newly_cancelled);
        judge
            .admissions
            .retain(|(_, _, op)| !newly_cancelled.contains(op));
        judge
            .verdict
            .applied_ops
            .retain(|op| !newly_cancelled.contains(op));
        let newly_overruled = judge.overruled_ops(dag);
        judge.overruled.extend(newly_overruled);
        for (member, key, op) in &judge.admissions {
            let (with, ops) = judge
                .verdict
                .admitted
                .entry(*member)
                .or_insert((*key, Vec::new()));
            if with == key {
                ops.push(*op);
            }
        }
        for (_, key, _) in &judge.admissions {
            let keys = judge.admitted_within(key, |_| true).len();
            judge
                .verdict
                .invitation_uses
                .insert(*key, u32::try_from(keys).unwrap_or(u32::MAX));
        }
        for (key, op) in &judge.invitation_revocations {
            judge.verdict.revoked_invitations.entry(*key).or_insert(*op);
        }
        // The role each change leaves: the lesser of the latest changes of the member.
        for (member, changes) in &judge.role_changes {
            let latest = changes.iter().filter(|(_, op)| {
                !changes
                    .iter()
                    .any(|(_, later)| later != op && judge.pasts[later].contains(op))
            });
            let least = latest
                .min_by_key(|(role, op)| (rank(*role), *op))
                .expect("a member in the map has a change");
            judge.verdict.roles.insert(*member, *least);
        }
        let mut void = BTreeSet::new();
        for (id, entry) in dag {
            let stands = match (&entry.op, judge.role(Some(id), entry, None)) {
                (_, None) => false,
                (Some(_), Some(_)) => true, // an op that did not count changes nothing anyway
                (None, Some(role)) => role.can_write(),
            };
            if !stands {
                void.insert(*id);
            }
        }
        judge.settled = judge
            .parties
            .iter()
            .filter(|(op, (by, of))| {
                judge.futures[*op].iter().any(|d| {
                    let author = &dag[d].author;
                    !void.contains(d) && author != by && author != of
                })
            })
            .map(|(op, _)| *op)
            .collect();
        judge.verdict.void = void;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabnode_types::SecretKey;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn id(n: u8) -> DeltaId {
        DeltaId([n; 32])
    }

    /// A delta `n` at time `t` on `parents` by `author` (chain: author, then inviters).
    fn entry(
        dag: &mut HashMap<DeltaId, Entry>,
        n: u8,
        t: u64,
        parents: &[u8],
        chain: &[u8],
        role: Role,
        op: Option<MemberOp>,
    ) {
        dag.insert(
            id(n),
            Entry {
                parents: parents.iter().map(|p| id(*p)).collect(),
                author: key(chain[0]),
                timestamp: t,
                cert_role: role,
                chain: chain.iter().map(|k| key(*k)).collect(),
                admission: None,
                op,
            },
        );
    }

    /// Admin 1 created the context (delta 1), invited 2 (a member) and 3 (an admin), and 3
    /// invited 4.
    fn context() -> HashMap<DeltaId, Entry> {
        let mut dag = HashMap::new();
        entry(&mut dag, 1, 1, &[], &[1], Role::Admin, None);
        entry(&mut dag, 2, 2, &[1], &[2, 1], Role::Member, None);
        entry(&mut dag, 3, 3, &[2], &[3, 1], Role::Admin, None);
        entry(&mut dag, 4, 4, &[3], &[4, 3, 1], Role::Member, None);
        dag
    }

    #[test]
    fn nothing_is_void_without_operations() {
        assert_eq!(Log::judge(&context()).verdict, Verdict::default());
    }

    #[test]
    fn a_removal_voids_what_comes_after_and_concurrently_but_not_before() {
        let mut dag = context();
        // 2 writes (5), admin 1 removes 2 having seen 5 (6); 2 writes concurrently (7) and after (8).
        entry(&mut dag, 5, 5, &[4], &[2, 1], Role::Member, None);
        entry(&mut dag, 6, 6, &[5], &[1], Role::Admin, remove(2));
        entry(&mut dag, 7, 7, &[5], &[2, 1], Role::Member, None);
        entry(&mut dag, 8, 8, &[6, 7], &[2, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.void, BTreeSet::from([id(7), id(8)]));
        assert_eq!(verdict.removed, BTreeMap::from([(key(2), id(6))]));
    }

    /// An admin's removal of key `member`.
    fn remove(member: u8) -> Option<MemberOp> {
        Some(MemberOp::Remove {
            shares: vec![],
            member: key(member),
        })
    }

    fn upgrade(to: u8) -> Option<MemberOp> {
        Some(MemberOp::SetApp {
            app_id: AppId::of_wasm(&[to]),
            migrate: None,
            wasm: vec![to],
        })
    }

    /// An invitation for `uses` members that admin 1 made, expiring at 100, and its invite key.
    fn invitation(uses: u32) -> (crate::membership::Invitation, PublicKey) {
        let admin = SecretKey::from_seed([1; 32]);
        let cert = MemberCert::genesis(&admin, admin.public());
        let link = crate::membership::Invitation::new(
            AppId([3; 32]),
            Role::Member,
            (100, uses),
            cert,
            &admin,
            [9; 32],
        )
        .unwrap();
        (link, SecretKey::from_seed([9; 32]).public())
    }

    /// Delta `n` at `t` on `parents`: member `by` admits key `joiner` with `link`.
    #[allow(clippy::too_many_arguments)]
    fn admit(
        dag: &mut HashMap<DeltaId, Entry>,
        n: u8,
        t: u64,
        parents: &[u8],
        by: u8,
        joiner: u8,
        link: &crate::membership::Invitation,
    ) {
        let cert = link.redeem(key(joiner), 1).unwrap();
        let chain: Vec<u8> = if by == 1 { vec![1] } else { vec![by, 1] };
        let role = if by == 1 { Role::Admin } else { Role::Member };
        let op = MemberOp::Admit {
            member: key(joiner),
            cert: Box::new(cert),
        };
        entry(dag, n, t, parents, &chain, role, Some(op));
    }

    /// A write by `joiner`, redeemed from the invitation `invite_key`.
    fn joiner_writes(
        dag: &mut HashMap<DeltaId, Entry>,
        n: u8,
        parents: &[u8],
        joiner: u8,
        invite_key: PublicKey,
    ) {
        entry(dag, n, 50, parents, &[joiner, 1], Role::Member, None);
        dag.get_mut(&id(n)).unwrap().admission = Some(invite_key);
    }

    /// A single-use invitation: two members admit different keys at once; neither counts,
    /// whichever was stamped first, and what both keys write is void. An admission made having
    /// seen the race counts. Two members admitting the same key at once both count.
    #[test]
    fn concurrent_admissions_of_different_keys_beyond_uses_cancel_whatever_the_timestamps() {
        let (link, invite_key) = invitation(1);
        for (t10, t11) in [(10, 11), (11, 10)] {
            let mut dag = context();
            admit(&mut dag, 10, t10, &[4], 1, 7, &link);
            admit(&mut dag, 11, t11, &[4], 2, 8, &link);
            joiner_writes(&mut dag, 12, &[10], 7, invite_key);
            joiner_writes(&mut dag, 13, &[11], 8, invite_key);
            let verdict = Log::judge(&dag).verdict;
            assert!(verdict.admitted.is_empty(), "{:?}", verdict.admitted);
            assert!(!verdict.applied_ops.contains(&id(10)));
            assert!(!verdict.applied_ops.contains(&id(11)));
            assert!(verdict.void.contains(&id(12)) && verdict.void.contains(&id(13)));

            // Member 3 saw both and admits 8: that counts, and 8 writes after it.
            admit(&mut dag, 14, 20, &[12, 13], 3, 8, &link);
            joiner_writes(&mut dag, 15, &[14], 8, invite_key);
            let verdict = Log::judge(&dag).verdict;
            assert_eq!(verdict.admitted.keys().collect::<Vec<_>>(), [&key(8)]);
            assert_eq!(verdict.invitation_uses.get(&invite_key), Some(&1));
            assert!(!verdict.void.contains(&id(15)));
            assert!(verdict.void.contains(&id(12)));
        }
        let mut dag = context();
        admit(&mut dag, 10, 10, &[4], 1, 7, &link);
        admit(&mut dag, 11, 11, &[4], 2, 7, &link);
        joiner_writes(&mut dag, 12, &[10], 7, invite_key);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(
            verdict.admitted[&key(7)],
            (invite_key, vec![id(10), id(11)])
        );
        assert!(!verdict.void.contains(&id(12)));
    }

    /// A revocation concurrent with an admission voids it (revocation wins the race); one made
    /// after the admission leaves it; an admission after it does not count. An admission
    /// stamped after the expiry does not count.
    #[test]
    fn a_revocation_concurrent_with_an_admission_wins() {
        let (link, invite_key) = invitation(2);
        let revoke = || {
            Some(MemberOp::RevokeInvitation {
                invitation: invite_key,
            })
        };
        let mut dag = context();
        admit(&mut dag, 10, 10, &[4], 2, 7, &link);
        entry(&mut dag, 11, 5, &[4], &[1], Role::Admin, revoke());
        joiner_writes(&mut dag, 12, &[10], 7, invite_key);
        let verdict = Log::judge(&dag).verdict;
        assert!(verdict.admitted.is_empty());
        assert!(verdict.void.contains(&id(12)));
        assert_eq!(verdict.revoked_invitations[&invite_key], id(11));

        let mut dag = context();
        admit(&mut dag, 10, 10, &[4], 2, 7, &link);
        entry(&mut dag, 11, 11, &[10], &[1], Role::Admin, revoke());
        admit(&mut dag, 12, 12, &[11], 3, 8, &link);
        joiner_writes(&mut dag, 13, &[11], 7, invite_key);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.admitted.keys().collect::<Vec<_>>(), [&key(7)]);
        assert!(!verdict.void.contains(&id(13)));

        let mut dag = context();
        admit(&mut dag, 10, 100, &[4], 2, 7, &link);
        let verdict = Log::judge(&dag).verdict;
        assert!(verdict.admitted.is_empty());
    }

    /// Two concurrent upgrades: neither counts, whichever the authors stamped earlier (the
    /// race is nobody's to win); an upgrade made having seen both counts.
    #[test]
    fn concurrent_upgrades_cancel_each_other_whatever_the_timestamps() {
        for (t5, t6) in [(5, 6), (6, 5)] {
            let mut dag = context();
            // Admin 1 upgrades (5); admin 3 upgrades concurrently (6); member 2 writes
            // concurrently with both (7), then after the first only (8), then after both (9);
            // a third upgrade sees both (10).
            entry(&mut dag, 5, t5, &[4], &[1], Role::Admin, upgrade(1));
            entry(&mut dag, 6, t6, &[4], &[3, 1], Role::Admin, upgrade(2));
            entry(&mut dag, 7, 7, &[4], &[2, 1], Role::Member, None);
            entry(&mut dag, 8, 8, &[5], &[2, 1], Role::Member, None);
            entry(&mut dag, 9, 9, &[5, 6, 8], &[2, 1], Role::Member, None);
            entry(&mut dag, 10, 10, &[9], &[1], Role::Admin, upgrade(3));
            let verdict = Log::judge(&dag).verdict;
            assert_eq!(verdict.upgrades, vec![id(10)], "{t5} {t6}");
            assert_eq!(verdict.void, BTreeSet::from([id(7)]), "{t5} {t6}");
            // A member's upgrade counts for nothing.
            entry(&mut dag, 11, 11, &[10], &[2, 1], Role::Member, upgrade(4));
            assert_eq!(Log::judge(&dag).verdict.upgrades, vec![id(10)]);
            // Upgrades in a line all count.
            entry(&mut dag, 12, 12, &[11], &[1], Role::Admin, upgrade(5));
            assert_eq!(Log::judge(&dag).verdict.upgrades, vec![id(10), id(12)]);
        }
    }

    /// Admin 3's key, bound to root 20, rotates to key 9 (delta 6); 4, whom 3 invited, writes
    /// after it (7); the old key 3 writes after it (8); the new key writes (10).
    #[test]
    fn a_rotation_hands_the_old_keys_place_to_the_new_one() {
        let mut dag = context();
        let root = SecretKey::from_seed([20; 32]);
        let (old, new) = (SecretKey::from_seed([3; 32]), SecretKey::from_seed([9; 32]));
        let grant = |key: &SecretKey| {
            SignedGrant::sign_local(
                tabnode_identity::grant::Grant {
                    client_key: key.public(),
                    scope: tabnode_identity::grant::Scope::All,
                    capabilities: vec![],
                    not_before: 0,
                    expires_at: 1,
                    nonce: tabnode_identity::grant::hex_nonce([1; 32]),
                },
                &root,
            )
        };
        let revocation = SignedRevocation::sign_local(
            tabnode_identity::grant::Revocation {
                client_key: old.public(),
                nonce: tabnode_identity::grant::hex_nonce([2; 32]),
            },
            &root,
        );
        let bind = MemberOp::Bind {
            root: root.public(),
            grant: Box::new(grant(&old)),
        };
        let rotate = MemberOp::Rotate {
            new: new.public(),
            root: root.public(),
            grant: Box::new(grant(&new)),
            revocation: Box::new(revocation),
            shares: vec![],
        };
        assert!(rotate.verify_root_statement(&old.public()).is_ok());
        assert!(
            rotate.verify_root_statement(&key(1)).is_err(),
            "only the old key rotates"
        );
        let mut put =
            |n_: u8, t, parents: &[u8], author: PublicKey, chain: Vec<PublicKey>, role, op| {
                dag.insert(
                    id(n_),
                    Entry {
                        parents: parents.iter().map(|p| id(*p)).collect(),
                        author,
                        timestamp: t,
                        cert_role: role,
                        chain,
                        admission: None,
                        op,
                    },
                );
            };
        // Key 3 of `context()` stands for `old` here: re-key its deltas and 4's chain.
        put(
            3,
            3,
            &[2],
            old.public(),
            vec![old.public(), key(1)],
            Role::Admin,
            None,
        );
        put(
            4,
            4,
            &[3],
            key(4),
            vec![key(4), old.public(), key(1)],
            Role::Member,
            None,
        );
        put(
            5,
            5,
            &[4],
            old.public(),
            vec![old.public(), key(1)],
            Role::Admin,
            Some(bind),
        );
        put(
            6,
            6,
            &[5],
            old.public(),
            vec![old.public(), key(1)],
            Role::Admin,
            Some(rotate),
        );
        put(
            7,
            7,
            &[6],
            key(4),
            vec![key(4), old.public(), key(1)],
            Role::Member,
            None,
        );
        put(
            8,
            8,
            &[6],
            old.public(),
            vec![old.public(), key(1)],
            Role::Admin,
            None,
        );
        put(
            10,
            10,
            &[6],
            new.public(),
            vec![new.public(), key(1)],
            Role::Reader,
            None,
        );
        let log = Log::judge(&dag);
        let verdict = log.verdict();
        let named: Vec<u8> = verdict.void.iter().map(|d| d.0[0]).collect();
        assert_eq!(named, vec![8], "only the old key's later write");
        assert_eq!(
            verdict.roles.get(&new.public()),
            Some(&(Role::Admin, id(6)))
        );
        assert_eq!(verdict.roots.get(&new.public()), Some(&root.public()));
        assert_eq!(verdict.removed.get(&old.public()), Some(&id(6)));
    }

    #[test]
    fn a_carried_binary_must_hash_to_the_app_it_names() {
        let op = MemberOp::SetApp {
            app_id: AppId::of_wasm(b"one"),
            migrate: None,
            wasm: b"another".to_vec(),
        };
        assert!(op.verify_root_statement(&key(1)).is_err());
        assert!(upgrade(1).unwrap().verify_root_statement(&key(1)).is_ok());
    }

    #[test]
    fn removing_an_admin_cascades_to_its_invitees() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, remove(3));
        entry(&mut dag, 6, 6, &[5], &[4, 3, 1], Role::Member, None);
        entry(&mut dag, 7, 7, &[5], &[2, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(
            verdict.void,
            BTreeSet::from([id(6)]),
            "4 came through 3; 2 did not"
        );
        // An admin gives 4 a role again: its later deltas stand, the cascade is undone for it.
        let mut dag2 = dag.clone();
        entry(
            &mut dag2,
            8,
            8,
            &[6, 7],
            &[1],
            Role::Admin,
            Some(MemberOp::SetRole {
                member: key(4),
                role: Role::Member,
            }),
        );
        entry(&mut dag2, 9, 9, &[8], &[4, 3, 1], Role::Member, None);
        let verdict = Log::judge(&dag2).verdict;
        assert!(
            !verdict.void.contains(&id(9)),
            "certified anew: {verdict:?}"
        );
        assert!(verdict.void.contains(&id(6)), "but not before");
    }

    #[test]
    fn roles_count_after_their_operation_and_the_lesser_counts_concurrently() {
        let mut dag = context();
        // Admin 1 makes 2 a reader (5); 2 writes after it (6) and concurrently (7).
        entry(
            &mut dag,
            5,
            5,
            &[4],
            &[1],
            Role::Admin,
            Some(MemberOp::SetRole {
                member: key(2),
                role: Role::Reader,
            }),
        );
        entry(&mut dag, 6, 6, &[5], &[2, 1], Role::Member, None);
        entry(&mut dag, 7, 7, &[4], &[2, 1], Role::Member, None);
        assert_eq!(
            Log::judge(&dag).verdict.void,
            BTreeSet::from([id(6), id(7)])
        );
        // A reader made a member writes after the change, not before.
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[9, 1], Role::Reader, None);
        entry(
            &mut dag,
            6,
            6,
            &[4],
            &[1],
            Role::Admin,
            Some(MemberOp::SetRole {
                member: key(9),
                role: Role::Member,
            }),
        );
        entry(&mut dag, 7, 7, &[6], &[9, 1], Role::Reader, None);
        assert_eq!(Log::judge(&dag).verdict.void, BTreeSet::from([id(5)]));
    }

    /// Admins 1 (the creator) and 3 (whom 1 invited) remove each other at once: the senior's
    /// removal counts, whichever timestamp either stamped (a removed admin crafting its
    /// "earlier" counter-removal gains nothing), and the junior's does not.
    #[test]
    fn of_two_admins_removing_each_other_at_once_the_senior_wins_whatever_the_timestamps() {
        for (t5, t6) in [(10, 11), (11, 10), (5, 900), (900, 5)] {
            let mut dag = context();
            entry(&mut dag, 5, t5, &[4], &[3, 1], Role::Admin, remove(1));
            entry(&mut dag, 6, t6, &[4], &[1], Role::Admin, remove(3));
            // Each writes after its own removal of the other; 2, whom 1 invited, writes after
            // both (and stands with 1); 4, whom 3 invited, falls with 3.
            entry(&mut dag, 7, 1000, &[5], &[3, 1], Role::Admin, None);
            entry(&mut dag, 8, 1000, &[6], &[1], Role::Admin, None);
            entry(&mut dag, 9, 1001, &[5, 6], &[2, 1], Role::Member, None);
            entry(&mut dag, 10, 1002, &[9], &[4, 3, 1], Role::Member, None);
            let verdict = Log::judge(&dag).verdict;
            let removed: Vec<_> = verdict.removed.keys().copied().collect();
            assert_eq!(removed, vec![key(3)], "{t5} {t6}");
            assert_eq!(verdict.applied_ops, vec![id(6)]);
            assert_eq!(
                verdict.void,
                BTreeSet::from([id(5), id(7), id(10)]),
                "the junior's operation and later deltas, and its invitee's, are void ({t5} {t6})"
            );
        }
    }

    /// Admins 3 and 5, both invited by 1 (one rank), remove each other at once: both lose,
    /// and neither can win alone by its timestamp.
    #[test]
    fn of_two_admins_of_one_rank_removing_each_other_at_once_both_are_removed() {
        for (t6, t7) in [(10, 11), (11, 10)] {
            let mut dag = context();
            entry(&mut dag, 5, 5, &[4], &[5, 1], Role::Admin, None);
            entry(&mut dag, 6, t6, &[5], &[3, 1], Role::Admin, remove(5));
            entry(&mut dag, 7, t7, &[5], &[5, 1], Role::Admin, remove(3));
            entry(&mut dag, 8, 1000, &[6, 7], &[2, 1], Role::Member, None);
            let verdict = Log::judge(&dag).verdict;
            let removed: Vec<_> = verdict.removed.keys().copied().collect();
            assert_eq!(removed, vec![key(3), key(5)], "{t6} {t7}");
            assert!(!verdict.void.contains(&id(8)), "1's invitee 2 stands");
        }
    }

    /// A removed admin's operations racing its removal by a senior count for nothing: 3
    /// demotes its remover 1 and revokes 2's role, and 4 (whom 3 invited and made admin)
    /// removes 1, all concurrently with 1's removal of 3. 1 stays admin, 2 keeps its role.
    /// An operation 3 made before its removal counts.
    #[test]
    fn a_removed_admins_operations_racing_its_removal_by_a_senior_count_for_nothing() {
        let set_role = |member, role| {
            Some(MemberOp::SetRole {
                member: key(member),
                role,
            })
        };
        let mut dag = context();
        entry(
            &mut dag,
            5,
            5,
            &[4],
            &[3, 1],
            Role::Admin,
            set_role(2, Role::Member),
        );
        entry(&mut dag, 6, 6, &[5], &[1], Role::Admin, remove(3));
        entry(
            &mut dag,
            7,
            7,
            &[5],
            &[3, 1],
            Role::Admin,
            set_role(1, Role::Reader),
        );
        entry(
            &mut dag,
            8,
            8,
            &[5],
            &[3, 1],
            Role::Admin,
            set_role(2, Role::Reader),
        );
        entry(&mut dag, 9, 9, &[5], &[4, 3, 1], Role::Admin, remove(1));
        entry(&mut dag, 10, 10, &[6, 7, 8, 9], &[1], Role::Admin, None);
        entry(&mut dag, 11, 11, &[10], &[2, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.applied_ops, vec![id(5), id(6)]);
        let removed: Vec<_> = verdict.removed.keys().copied().collect();
        assert_eq!(removed, vec![key(3)]);
        assert_eq!(verdict.roles.get(&key(1)), None);
        assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Member, id(5))));
        assert!(!verdict.void.contains(&id(10)) && !verdict.void.contains(&id(11)));
        // Had 1 not removed 3, 3's demotion of 1 would count.
        dag.remove(&id(6));
        entry(&mut dag, 6, 6, &[5], &[1], Role::Admin, None);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.roles.get(&key(1)), Some(&(Role::Reader, id(7))));
    }

    /// An admin's removal of a key its authority rests on (its inviter, up the chain) counts
    /// for nothing, concurrent with anything or not: it would remove the admin itself by the
    /// cascade, and a removed admin racing its removal would otherwise take down, at every
    /// member that hears the counter-removal first, everyone its inviter invited. An admin an
    /// admin certified anew no longer rests on its chain and may.
    #[test]
    fn removing_a_key_ones_authority_rests_on_counts_for_nothing() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[3, 1], Role::Admin, remove(1));
        entry(&mut dag, 6, 6, &[5], &[4, 3, 1], Role::Admin, remove(3));
        entry(&mut dag, 7, 7, &[6], &[2, 1], Role::Member, None);
        let verdict = Log::judge(&dag).verdict;
        assert!(verdict.removed.is_empty() && verdict.applied_ops.is_empty());
        assert!(verdict.void.is_empty(), "{verdict:?}");

        let mut dag = context();
        let anew = Some(MemberOp::SetRole {
            member: key(4),
            role: Role::Admin,
        });
        entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, anew);
        entry(&mut dag, 6, 6, &[5], &[4, 3, 1], Role::Admin, remove(3));
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.removed, BTreeMap::from([(key(3), id(6))]));
    }

    /// A cycle of three admins of one rank: 3 removes 5, 5 removes 6, 6 removes 3, all at
    /// once: all three lose. Where the creator takes part, its removal of its invitee counts
    /// and that invitee's does not.
    #[test]
    fn a_cycle_of_concurrent_removals_removes_every_side_of_one_rank() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[5, 1], Role::Admin, None);
        entry(&mut dag, 6, 6, &[5], &[6, 1], Role::Admin, None);
        entry(&mut dag, 7, 9, &[6], &[3, 1], Role::Admin, remove(5));
        entry(&mut dag, 8, 7, &[6], &[5, 1], Role::Admin, remove(6));
        entry(&mut dag, 9, 6, &[6], &[6, 1], Role::Admin, remove(3));
        let verdict = Log::judge(&dag).verdict;
        let removed: Vec<_> = verdict.removed.keys().copied().collect();
        assert_eq!(removed, vec![key(3), key(5), key(6)]);

        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[5, 1], Role::Admin, None);
        entry(&mut dag, 6, 9, &[5], &[1], Role::Admin, remove(3));
        entry(&mut dag, 7, 7, &[5], &[3, 1], Role::Admin, remove(5));
        entry(&mut dag, 8, 6, &[5], &[5, 1], Role::Admin, None);
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.applied_ops, vec![id(6)]);
        let removed: Vec<_> = verdict.removed.keys().copied().collect();
        assert_eq!(removed, vec![key(3)]);
    }

    /// Whatever order deltas arrive in, and whatever timestamps their authors chose (here:
    /// each stamped with its place in the order of arrival, as a clock would), a node that
    /// grows its log delta by delta ends with the verdict of the whole DAG, and every order
    /// ends with the same verdict.
    #[test]
    fn every_order_of_arrival_and_every_choice_of_timestamps_gives_one_verdict() {
        // Admins 1 and 3 remove each other (5, 6); member 2 writes concurrently (7); 1 writes
        // after its removal of 3 (8); 2 writes after all of it (9); 4, whom 3 invited, writes
        // after (10); 1 makes 2 a reader concurrently with everything (11); 3 makes 1 a reader
        // concurrently with everything (12).
        // (delta, parents, chain, role by certificate, operation)
        type Made = (u8, Vec<u8>, Vec<u8>, Role, Option<MemberOp>);
        let deltas: Vec<Made> = vec![
            (5, vec![4], vec![3, 1], Role::Admin, remove(1)),
            (6, vec![4], vec![1], Role::Admin, remove(3)),
            (7, vec![4], vec![2, 1], Role::Member, None),
            (8, vec![6], vec![1], Role::Admin, None),
            (9, vec![5, 6, 7], vec![2, 1], Role::Member, None),
            (10, vec![9], vec![4, 3, 1], Role::Member, None),
            (
                11,
                vec![4],
                vec![1],
                Role::Admin,
                Some(MemberOp::SetRole {
                    member: key(2),
                    role: Role::Reader,
                }),
            ),
            (
                12,
                vec![4],
                vec![3, 1],
                Role::Admin,
                Some(MemberOp::SetRole {
                    member: key(1),
                    role: Role::Reader,
                }),
            ),
        ];
        let mut orders = Vec::new();
        let mut stack = vec![(Vec::<usize>::new(), BTreeSet::<u8>::from([1, 2, 3, 4]))];
        while let Some((order, have)) = stack.pop() {
            if order.len() == deltas.len() {
                orders.push(order);
                continue;
            }
            for (i, (n, parents, ..)) in deltas.iter().enumerate() {
                if !have.contains(n) && parents.iter().all(|p| have.contains(p)) {
                    let (mut order, mut have) = (order.clone(), have.clone());
                    order.push(i);
                    have.insert(*n);
                    stack.push((order, have));
                }
            }
        }
        assert!(orders.len() > 100, "{}", orders.len());
        let mut verdicts = BTreeSet::new();
        for order in orders {
            let mut dag = context();
            let mut log = Log::judge(&dag);
            for (place, i) in order.into_iter().enumerate() {
                let (n, parents, chain, role, op) = deltas[i].clone();
                let e = Entry {
                    parents: parents.iter().map(|p| id(*p)).collect(),
                    author: key(chain[0]),
                    timestamp: 10 + place as u64,
                    cert_role: role,
                    chain: chain.iter().map(|k| key(*k)).collect(),
                    admission: None,
                    op,
                };
                if e.op.is_some() {
                    dag.insert(id(n), e);
                    log = Log::judge(&dag);
                } else {
                    let stands = log.role_of_new(&e).is_some_and(Role::can_write);
                    log.add(id(n), &e, stands);
                    dag.insert(id(n), e);
                }
            }
            assert_eq!(log.verdict(), &Log::judge(&dag).verdict);
            verdicts.insert(format!("{:?}", log.verdict()));
        }
        assert_eq!(verdicts.len(), 1, "{verdicts:#?}");
        let mut dag = context();
        for (n, parents, chain, role, op) in deltas {
            entry(&mut dag, n, 10, &parents, &chain, role, op);
        }
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdicts.into_iter().next(), Some(format!("{verdict:?}")));
        // The senior admin 1 wins: 3 is removed, its operations racing the removal count for
        // nothing (1 stays admin), 4 falls with 3, and 2's writes are void by its demotion
        // (concurrent with all of them); 1's write and operations stand.
        let removed: Vec<_> = verdict.removed.keys().copied().collect();
        assert_eq!(removed, vec![key(3)]);
        assert_eq!(verdict.roles.get(&key(1)), None);
        assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Reader, id(11))));
        assert_eq!(verdict.void, [5, 7, 9, 10, 12].map(id).into());
    }

    /// Two admins give 2 different roles at once: the lesser counts, whichever was stamped
    /// later; a change made having seen both replaces them.
    #[test]
    fn of_concurrent_role_changes_the_lesser_counts_whatever_the_timestamps() {
        let set_role = |role| {
            Some(MemberOp::SetRole {
                member: key(2),
                role,
            })
        };
        for (t5, t6) in [(5, 6), (6, 5)] {
            let mut dag = context();
            entry(
                &mut dag,
                5,
                t5,
                &[4],
                &[1],
                Role::Admin,
                set_role(Role::Reader),
            );
            entry(
                &mut dag,
                6,
                t6,
                &[4],
                &[3, 1],
                Role::Admin,
                set_role(Role::Admin),
            );
            entry(&mut dag, 7, 7, &[5, 6], &[2, 1], Role::Member, None);
            let verdict = Log::judge(&dag).verdict;
            assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Reader, id(5))));
            assert_eq!(verdict.void, BTreeSet::from([id(7)]), "{t5} {t6}");
            entry(
                &mut dag,
                8,
                8,
                &[7],
                &[1],
                Role::Admin,
                set_role(Role::Member),
            );
            entry(&mut dag, 9, 9, &[8], &[2, 1], Role::Member, None);
            let verdict = Log::judge(&dag).verdict;
            assert_eq!(verdict.roles.get(&key(2)), Some(&(Role::Member, id(8))));
            assert!(!verdict.void.contains(&id(9)));
        }
    }

    #[test]
    fn non_admins_operations_count_for_nothing() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[2, 1], Role::Member, remove(1));
        let verdict = Log::judge(&dag).verdict;
        assert!(verdict.removed.is_empty());
        assert!(verdict.applied_ops.is_empty());
    }

    #[test]
    fn a_new_delta_by_a_removed_key_has_no_role() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, remove(3));
        let log = Log::judge(&dag);
        let new = |chain: &[u8], role| Entry {
            parents: vec![id(5)],
            author: key(chain[0]),
            timestamp: 9,
            cert_role: role,
            chain: chain.iter().map(|k| key(*k)).collect(),
            admission: None,
            op: None,
        };
        assert_eq!(log.role_of_new(&new(&[4, 3, 1], Role::Member)), None);
        assert_eq!(
            log.role_of_new(&new(&[2, 1], Role::Member)),
            Some(Role::Member)
        );
    }

    /// A delta by a removed key (or through it) on a point from before its removal is
    /// refused once a third member has built on the removal; until then it may be genuinely
    /// concurrent, and is judged as such.
    #[test]
    fn a_removal_settles_once_a_third_member_builds_on_it() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, remove(3));
        let late = |chain: &[u8], parents: &[u8]| Entry {
            parents: parents.iter().map(|p| id(*p)).collect(),
            author: key(chain[0]),
            timestamp: 6,
            cert_role: Role::Admin,
            chain: chain.iter().map(|k| key(*k)).collect(),
            admission: None,
            op: remove(1),
        };
        let log = Log::judge(&dag);
        assert_eq!(log.settled_removal_missed(&late(&[3, 1], &[4])), None);
        // The remover's own next delta does not settle it; 2's does.
        let mut log = Log::judge(&dag);
        let by_1 = late(&[1], &[5]);
        log.add(id(6), &Entry { op: None, ..by_1 }, true);
        assert_eq!(log.settled_removal_missed(&late(&[3, 1], &[4])), None);
        entry(&mut dag, 6, 6, &[5], &[2, 1], Role::Member, None);
        let mut grown = Log::judge(&dag);
        for log in [&mut grown, &mut {
            let mut log = Log::judge(&context_with(&dag, 5));
            log.add(id(6), &dag[&id(6)], true);
            log
        }] {
            assert_eq!(
                log.settled_removal_missed(&late(&[3, 1], &[4])),
                Some(id(5))
            );
            assert_eq!(
                log.settled_removal_missed(&late(&[4, 3, 1], &[4])),
                Some(id(5))
            );
            assert_eq!(log.settled_removal_missed(&late(&[3, 1], &[6])), None);
            assert_eq!(log.settled_removal_missed(&late(&[1], &[4])), None);
            let write = Entry {
                op: None,
                ..late(&[3, 1], &[4])
            };
            assert_eq!(log.settled_removal_missed(&write), None, "void anyway");
        }
    }

    /// Once a removal settled, a removed admin's counter-removal on an older point is refused
    /// only if it would count: an equal's would (both would be removed), the removed invitee's
    /// of its inviter would not (it is void wherever it arrives, so every member takes it).
    #[test]
    fn a_settled_removal_refuses_only_operations_that_would_count() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[5, 1], Role::Admin, None);
        entry(&mut dag, 6, 6, &[5], &[3, 1], Role::Admin, remove(5));
        entry(&mut dag, 7, 7, &[6], &[2, 1], Role::Member, None);
        let log = Log::judge(&dag);
        let counter = |chain: &[u8], member: u8| Entry {
            parents: vec![id(5)],
            author: key(chain[0]),
            timestamp: 8,
            cert_role: Role::Admin,
            chain: chain.iter().map(|k| key(*k)).collect(),
            admission: None,
            op: remove(member),
        };
        let by_equal = counter(&[5, 1], 3);
        assert_eq!(log.settled_removal_missed(&by_equal), Some(id(6)));
        assert!(Log::counts_if_added(&dag, id(8), &by_equal));
        let of_inviter = counter(&[5, 1], 1);
        assert_eq!(log.settled_removal_missed(&of_inviter), Some(id(6)));
        assert!(!Log::counts_if_added(&dag, id(8), &of_inviter));
    }

    /// `dag` up to delta `n` (deltas are numbered in causal order here).
    fn context_with(dag: &HashMap<DeltaId, Entry>, n: u8) -> HashMap<DeltaId, Entry> {
        (1..=n).map(|i| (id(i), dag[&id(i)].clone())).collect()
    }

    /// Growing the log delta by delta gives what judging the grown DAG gives.
    #[test]
    fn adding_deltas_one_by_one_agrees_with_judging_the_whole() {
        let mut dag = context();
        entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, remove(3));
        entry(
            &mut dag,
            6,
            6,
            &[1],
            &[1],
            Role::Admin,
            Some(MemberOp::SetRole {
                member: key(2),
                role: Role::Reader,
            }),
        );
        let mut log = Log::judge(&dag);
        for (n, parents, chain) in [
            (7, vec![5], vec![4, 3, 1]),
            (8, vec![6], vec![2, 1]),
            (9, vec![4], vec![1]),
            (10, vec![2], vec![2, 1]),
        ] {
            let e = Entry {
                parents: parents.iter().map(|p| id(*p)).collect(),
                author: key(chain[0]),
                timestamp: n as u64,
                cert_role: Role::Member,
                chain: chain.iter().map(|k| key(*k)).collect(),
                admission: None,
                op: None,
            };
            let stands = log.role_of_new(&e).is_some_and(Role::can_write);
            log.add(id(n), &e, stands);
            dag.insert(id(n), e);
            assert_eq!(log.verdict(), &Log::judge(&dag).verdict, "after {n}");
        }
        assert_eq!(
            log.verdict().void,
            BTreeSet::from([id(2), id(7), id(8), id(10)]),
            "2 is concurrent with its demotion"
        );
    }
}
