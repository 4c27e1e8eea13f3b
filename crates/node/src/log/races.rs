//! Operations racing a removal of a key their authority rests on: they count only if a third
//! member vouched for them (see the parent module's doc). A rule of the DAG alone, so every
//! member reaches it whatever the order of arrival; it replaces refusing such operations
//! once the removal had settled on the receiver, which split the DAG by order of arrival
//! (`arrival_orders`, seed 15).

use super::*;

impl Log {
    /// Operations that counted in this pass but race a removal (that counts) of a key their
    /// authority rests on, and that no third member vouched for ([`Self::vouched`]). A
    /// removal of another key racing a removal is the exception: it counts unless the removal
    /// it races was vouched for and it was not, so removals racing each other with no
    /// vouching on either side all count (of two admins of one rank removing each other, both
    /// are removed), and an admin cut off with nobody by it loses to the one others followed.
    /// Records every race (see [`Log::add`]).
    pub(super) fn unvouched_races(&mut self, dag: &HashMap<DeltaId, Entry>) -> BTreeSet<DeltaId> {
        let concurrent = |a: &DeltaId, b: &DeltaId| {
            a != b && !self.pasts[a].contains(b) && !self.futures[a].contains(b)
        };
        let mut races = Vec::new();
        for id in &self.verdict.applied_ops {
            if self.overruled.contains(id) {
                continue; // overruled by a senior's removal in this pass already
            }
            let entry = &dag[id];
            let certified_anew = self.certified_anew_within(&entry.author, &self.pasts[id]);
            let keys = self.keys_depended_on(entry, |op| !self.pasts[op].contains(id));
            for (place, key) in keys.iter().enumerate() {
                if place > 0 && certified_anew {
                    continue; // no longer rests on its inviters
                }
                for removal in self.removals.get(key).into_iter().flatten() {
                    if concurrent(id, removal) && !self.overruled.contains(removal) {
                        races.push((*id, *removal, *key));
                    }
                }
            }
        }
        // Removals first: an operation racing only removals that themselves count for
        // nothing (a counter-removal nobody followed, say) is not discounted by them.
        let counts = |this: &Log, (op, removal, key): &(DeltaId, DeltaId, PublicKey)| {
            let vouched = this.vouched(dag, op, removal, key);
            match this.removes_another(dag, op) {
                Some(removed) => vouched || !this.vouched(dag, removal, op, &removed),
                None => vouched,
            }
        };
        let lost_removals: BTreeSet<DeltaId> = races
            .iter()
            .filter(|race| self.removes_another(dag, &race.0).is_some() && !counts(self, race))
            .map(|(op, ..)| *op)
            .collect();
        let mut unvouched = BTreeSet::new();
        for race in &races {
            let (op, removal, _) = race;
            if !lost_removals.contains(removal) && !counts(self, race) {
                unvouched.insert(*op);
            }
        }
        for (op, removal, key) in races {
            self.races
                .insert((op, removal), self.barred(dag, &op, &removal, &key));
            if let Some(removed) = self.removes_another(dag, &op) {
                let barred = self.barred(dag, &removal, &op, &removed);
                self.races.insert((removal, op), barred);
            }
        }
        unvouched
    }

    /// The key `op` removes, if it removes a key other than its author's.
    fn removes_another(&self, dag: &HashMap<DeltaId, Entry>, op: &DeltaId) -> Option<PublicKey> {
        let entry = &dag[op];
        entry
            .op
            .as_ref()
            .and_then(|o| o.removes(&entry.author))
            .filter(|removed| *removed != entry.author)
    }

    /// Whether a third member built on `op` without `rival` (a removal of `key`, or an
    /// operation removing `key`, concurrent with it) in its past: a delta after `op`, not
    /// after `rival`, by a key that is neither `op`'s nor `rival`'s author, `key` or the key
    /// `op` promotes, nor rests on one of them, and was not removed before it. Such a member
    /// took `op` in good standing before it knew of `rival`.
    fn vouched(
        &self,
        dag: &HashMap<DeltaId, Entry>,
        op: &DeltaId,
        rival: &DeltaId,
        key: &PublicKey,
    ) -> bool {
        let barred = self.barred(dag, op, rival, key);
        let removed_before = |d: &DeltaId, voucher: &Entry| {
            voucher.chain.iter().any(|k| {
                self.removals
                    .get(k)
                    .into_iter()
                    .flatten()
                    .any(|removal| self.futures[removal].contains(d))
            })
        };
        self.futures[op]
            .iter()
            .filter(|d| *d != rival && !self.futures[rival].contains(*d))
            .filter_map(|d| dag.get(d).map(|voucher| (d, voucher)))
            .any(|(d, voucher)| {
                !voucher.chain.iter().any(|k| barred.contains(k)) && !removed_before(d, voucher)
            })
    }

    /// The keys that cannot vouch for `op` against `rival` (see [`Self::vouched`]), nor any
    /// key resting on them: `op`'s and `rival`'s authors, `key`, and the key `op` promotes.
    fn barred(
        &self,
        dag: &HashMap<DeltaId, Entry>,
        op: &DeltaId,
        rival: &DeltaId,
        key: &PublicKey,
    ) -> BTreeSet<PublicKey> {
        let promoted = match &dag[op].op {
            Some(MemberOp::SetRole { member, .. }) => Some(*member),
            Some(MemberOp::Rotate { new, .. }) => Some(*new),
            _ => None,
        };
        [dag[op].author, dag[rival].author, *key]
            .into_iter()
            .chain(promoted)
            .collect()
    }
}
