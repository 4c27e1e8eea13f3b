//! The membership log: admins' signed operations (remove a member, change a role), carried as
//! deltas of their own in the context's DAG, and the rule every node applies to decide which
//! deltas stand.
//!
//! An admin's signed invitation, redeemed, is a certificate chain that every delta carries
//! (see [`crate::membership`]); it counts once a member records the join ([`MemberOp::Admit`]).
//! What else the log adds is taking authority away, which must hold however the network
//! orders messages:
//!
//! - **Invitations are used up, expire and can be revoked, for everyone alike.** An admission
//!   counts if it is stamped before the invitation's expiry (its member stamps it with its own
//!   clock when it first sees the join; the joiner's claimed time plays no part), the
//!   invitation is not revoked ([`MemberOp::RevokeInvitation`]) earlier in the log's order, and
//!   fewer keys than the invitation allows (one by default) were admitted with it before. A key
//!   redeemed from an invitation acts only in the causal future of an admission of it.
//! - **Removal cascades.** Removing a key removes it and every certificate issued through it (a
//!   removed admin's invitees lose access too, until an admin gives them a role again, which
//!   certifies them anew). A delta
//!   whose authority depends on a removed key stands only if it is in the causal past of the
//!   removal: what the key signed before stays valid, anything it signs afterwards, or
//!   concurrently, is void. A node that applied such a delta before it learnt of the removal
//!   rebuilds its state without it, so every member ends with the same state.
//! - **Roles.** A role given by an operation counts for the member's deltas that come after the
//!   operation; for deltas concurrent with it the lesser of the old and new role counts.
//! - **Concurrent admin operations** are ordered by (timestamp, id): timestamps are hybrid
//!   logical clocks, so an operation always comes after everything in its causal past. An
//!   operation counts only if its author is an admin at its place in that order (so of two admins
//!   removing each other at once, the earlier one wins).
//!
//! - **App upgrades are barriers.** An admin's [`MemberOp::SetApp`] changes the app that runs
//!   the context from its place in the causal order on; every node runs the new app's
//!   migration itself when it applies the operation. A write concurrent with an upgrade was made
//!   by the app it replaces, for a state shape the new app may not read, so it is void (its
//!   author sees it voided and may make it again). Of two concurrent upgrades the earlier counts.
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
    /// Removed keys, each with the operation that removed it.
    pub removed: BTreeMap<PublicKey, DeltaId>,
    /// Roles given by operations, each with its operation.
    pub roles: BTreeMap<PublicKey, (Role, DeltaId)>,
    /// The operations that counted, in the log's order.
    pub applied_ops: Vec<DeltaId>,
    /// The root each bound key was granted by (see [`MemberOp::Bind`]).
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

/// A context's membership log as judged: the verdict, and each operation's causal past and
/// future, to judge deltas against.
#[derive(Debug, Clone, Default)]
pub struct Log {
    verdict: Verdict,
    pasts: HashMap<DeltaId, HashSet<DeltaId>>,
    futures: HashMap<DeltaId, HashSet<DeltaId>>,
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
            verdict: Verdict::default(),
            pasts: ops.iter().map(|op| (*op, reach(&parents, op))).collect(),
            futures: ops.iter().map(|op| (*op, reach(&children, op))).collect(),
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
            }
        }
        if !stands {
            self.verdict.void.insert(id);
        }
    }

    /// The role a new delta (`entry`, not yet in the DAG) would be made with: `None` if the
    /// author, or a key its authority depends on, was removed.
    pub fn role_of_new(&self, entry: &Entry) -> Option<Role> {
        self.role(None, entry)
    }

    /// The role `entry` (the delta `id`, or a delta about to be made when `id` is `None`) is
    /// made with, or `None` if a removal voids it.
    fn role(&self, id: Option<&DeltaId>, entry: &Entry) -> Option<Role> {
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
                .any(|op| !before(op) && !after(op))
        {
            return None; // made by the app an upgrade replaced
        }
        let role_op = self.verdict.roles.get(&entry.author);
        let certified_anew = role_op.is_some_and(|(_, op)| after(op));
        if let Some(invite_key) = &entry.admission {
            let admitted = self
                .verdict
                .admitted
                .get(&entry.author)
                .is_some_and(|(key, ops)| key == invite_key && ops.iter().any(after));
            if !admitted && !certified_anew {
                return None; // redeemed, but no member admitted it (in time)
            }
        }
        for key in &entry.chain {
            // An inviter that was rotated away stands for the key that replaced it.
            let mut key = *key;
            while let Some((new, op)) = self.verdict.rotated.get(&key) {
                if key == entry.author || before(op) {
                    break;
                }
                key = *new;
            }
            if let Some(op) = self.verdict.removed.get(&key) {
                let itself = id == Some(op); // a key's own leave or rotation stands
                if !before(op) && !itself && (key == entry.author || !certified_anew) {
                    return None;
                }
            }
        }
        match role_op {
            None => Some(entry.cert_role),
            Some((role, op)) if after(op) => Some(*role),
            Some((_, op)) if before(op) => Some(entry.cert_role),
            Some((role, _)) => Some(lesser(entry.cert_role, *role)),
        }
    }
}

impl Log {
    /// The rule applied to a whole DAG (every delta this node applied).
    pub fn judge(dag: &HashMap<DeltaId, Entry>) -> Log {
        let mut ops: Vec<(u64, DeltaId)> = dag
            .iter()
            .filter(|(_, e)| e.op.is_some())
            .map(|(id, e)| (e.timestamp, *id))
            .collect();
        ops.sort();
        let ops: Vec<DeltaId> = ops.into_iter().map(|(_, id)| id).collect();
        let mut judge = Log::new(dag, &ops);
        judge.run(dag, ops);
        judge
    }

    /// Takes admission `id` (stamped `at`) of `member` with `cert`, if it counts: before the
    /// invitation expired, not revoked, not used up by other keys. Another admission of the
    /// same key with the same invitation is recorded beside the first.
    fn admit(&mut self, id: DeltaId, at: u64, member: &PublicKey, cert: &MemberCert) -> bool {
        let Issuance::Invited { invitation, .. } = &cert.issued else {
            return false;
        };
        let key = invitation.invite_key;
        let verdict = &mut self.verdict;
        if let Some((with, ops)) = verdict.admitted.get_mut(member) {
            if *with == key && at < invitation.expires_at {
                ops.push(id);
                return true;
            }
            return false;
        }
        let uses = verdict.invitation_uses.get(&key).copied().unwrap_or(0);
        if at >= invitation.expires_at
            || verdict.revoked_invitations.contains_key(&key)
            || uses >= invitation.uses
        {
            return false;
        }
        verdict.invitation_uses.insert(key, uses + 1);
        verdict.admitted.insert(*member, (key, vec![id]));
        true
    }

    /// Folds the operations in the log's order, then judges every delta.
    fn run(&mut self, dag: &HashMap<DeltaId, Entry>, ops: Vec<DeltaId>) {
        let judge = self;
        for id in ops {
            let entry = &dag[&id];
            let op = entry.op.as_ref().expect("an op");
            if !judge
                .role(Some(&id), entry)
                .is_some_and(|role| op.allowed_for(role))
            {
                continue;
            }
            match op {
                MemberOp::Remove { member, .. } => {
                    if judge.verdict.removed.contains_key(member) {
                        continue;
                    }
                    judge.verdict.removed.insert(*member, id);
                }
                MemberOp::SetRole { member, role } => {
                    if judge.verdict.removed.contains_key(member) {
                        continue; // a removed key stays removed; a new key can be invited
                    }
                    judge.verdict.roles.insert(*member, (*role, id));
                }
                MemberOp::Join => continue,
                MemberOp::Leave { .. } => {
                    if judge.verdict.removed.contains_key(&entry.author) {
                        continue;
                    }
                    judge.verdict.removed.insert(entry.author, id);
                }
                MemberOp::Bind { root, .. } => {
                    if judge.verdict.roots.contains_key(&entry.author) {
                        continue;
                    }
                    judge.verdict.roots.insert(entry.author, *root);
                }
                MemberOp::Revoke { key, root, .. } => {
                    let bound = judge.verdict.roots.get(key) == Some(root);
                    if !bound || judge.verdict.removed.contains_key(key) {
                        continue;
                    }
                    judge.verdict.removed.insert(*key, id);
                }
                MemberOp::Rotate { new, root, .. } => {
                    let bound = judge.verdict.roots.get(&entry.author) == Some(root);
                    let taken = judge.verdict.removed.contains_key(new)
                        || judge.verdict.roots.contains_key(new);
                    if !bound || taken || judge.verdict.removed.contains_key(&entry.author) {
                        continue;
                    }
                    let role = judge.role(Some(&id), entry).expect("allowed above");
                    judge.verdict.removed.insert(entry.author, id);
                    judge.verdict.rotated.insert(entry.author, (*new, id));
                    judge.verdict.roles.insert(*new, (role, id));
                    judge.verdict.roots.insert(*new, *root);
                }
                MemberOp::SetApp { .. } => {
                    let past = &judge.pasts[&id];
                    if !judge.verdict.upgrades.iter().all(|up| past.contains(up)) {
                        continue; // concurrent with an earlier upgrade
                    }
                    judge.verdict.upgrades.push(id);
                }
                MemberOp::Admit { member, cert } => {
                    if !judge.admit(id, entry.timestamp, member, cert) {
                        continue;
                    }
                }
                MemberOp::RevokeInvitation { invitation } => {
                    if judge.verdict.revoked_invitations.contains_key(invitation) {
                        continue;
                    }
                    judge.verdict.revoked_invitations.insert(*invitation, id);
                }
            }
            judge.verdict.applied_ops.push(id);
        }
        let mut void = BTreeSet::new();
        for (id, entry) in dag {
            let stands = match (&entry.op, judge.role(Some(id), entry)) {
                (_, None) => false,
                (Some(_), Some(_)) => true, // an op that did not count changes nothing anyway
                (None, Some(role)) => role.can_write(),
            };
            if !stands {
                void.insert(*id);
            }
        }
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

    #[test]
    fn of_concurrent_upgrades_the_earlier_counts_and_writes_concurrent_with_it_are_void() {
        let mut dag = context();
        // Admin 1 upgrades (5); admin 1 upgrades again concurrently from elsewhere (6, later);
        // member 2 writes concurrently with both (7), then after the first only (8), then
        // after both (9); a third upgrade sees both (10).
        entry(&mut dag, 5, 5, &[4], &[1], Role::Admin, upgrade(1));
        entry(&mut dag, 6, 6, &[4], &[1], Role::Admin, upgrade(2));
        entry(&mut dag, 7, 7, &[4], &[2, 1], Role::Member, None);
        entry(&mut dag, 8, 8, &[5], &[2, 1], Role::Member, None);
        entry(&mut dag, 9, 9, &[5, 6, 8], &[2, 1], Role::Member, None);
        entry(&mut dag, 10, 10, &[9], &[1], Role::Admin, upgrade(3));
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.upgrades, vec![id(5), id(10)]);
        assert_eq!(verdict.void, BTreeSet::from([id(7)]));
        // A member's upgrade counts for nothing.
        entry(&mut dag, 11, 11, &[10], &[2, 1], Role::Member, upgrade(4));
        assert_eq!(Log::judge(&dag).verdict.upgrades, vec![id(5), id(10)]);
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

    #[test]
    fn of_two_admins_removing_each_other_the_earlier_wins_whatever_the_order_of_arrival() {
        let mut dag = context();
        entry(&mut dag, 5, 10, &[4], &[3, 1], Role::Admin, remove(1));
        entry(&mut dag, 6, 11, &[4], &[1], Role::Admin, remove(3));
        let verdict = Log::judge(&dag).verdict;
        assert_eq!(verdict.removed, BTreeMap::from([(key(1), id(5))]));
        assert!(verdict.void.contains(&id(6)));
        assert_eq!(verdict.applied_ops, vec![id(5)]);
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
