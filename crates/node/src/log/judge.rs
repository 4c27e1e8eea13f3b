//! Judging a whole DAG ([`Log::judge`]): operations in causal order, each counted or not by
//! the rules in the parent module's doc, and what follows from them (admissions used up or
//! cancelled, operations overruled by a senior's removal, removals that cascade).

use super::*;

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
        // it, as does any such removal that a third member vouched for while nobody vouched
        // for the operation, and the log is judged again without it.
        let mut judge = fresh;
        loop {
            let cancelled = judge.cancelled_admissions.clone();
            let overruled = judge.overruled.clone();
            judge.run(dag, ops.clone());
            if judge.cancelled_admissions == cancelled && judge.overruled == overruled {
                judge.latest_secrets = Default::default();
                return judge;
            }
            judge = Log {
                pasts: judge.pasts,
                futures: judge.futures,
                cancelled_admissions: judge.cancelled_admissions,
                overruled: judge.overruled,
                races: judge.races,
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
    pub(super) fn certified_anew_within(
        &self,
        member: &PublicKey,
        past: &HashSet<DeltaId>,
    ) -> bool {
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

    fn remove(&mut self, key: PublicKey, id: DeltaId) {
        self.removals.entry(key).or_default().push(id);
        self.verdict.removed.entry(key).or_insert(id);
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
                    judge.remove(*member, id);
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
                // Proposals change no authority: the proxy folds those that count (see
                // crate::proposals).
                MemberOp::Join => continue,
                MemberOp::Propose { .. } | MemberOp::Approve { .. } => {}
                MemberOp::Leave { .. } => {
                    if judge.removed_within(&entry.author, &past) {
                        continue;
                    }
                    judge.remove(entry.author, id);
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
                    judge.remove(*key, id);
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
                    judge.remove(entry.author, id);
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
        let unvouched = judge.unvouched_races(dag);
        judge.overruled.extend(unvouched);
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
        judge.retracted = !cancelled.is_empty()
            || !judge.overruled.is_empty()
            || !judge.cancelled_admissions.is_empty();
        let mut void = BTreeSet::new();
        let mut seen_apps = HashMap::new();
        for (id, entry) in dag {
            let stands = match (&entry.op, judge.role(Some(id), entry, None)) {
                (_, None) => false,
                (Some(_), Some(_)) => true, // an op that did not count changes nothing anyway
                (None, Some(role)) => {
                    role.can_write()
                        && judge.made_by_the_running_app(dag, Some(id), entry, &mut seen_apps)
                }
            };
            if !stands {
                void.insert(*id);
            }
        }
        judge.verdict.void = void;
    }
}
