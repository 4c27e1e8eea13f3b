//! Which operations' secrets make the context's secret: those of the latest secret-giving
//! operations that count (see [`Log::latest_secret_ops`]). A rule of the DAG alone, so every
//! member that holds the same deltas seals with the same secret, whatever the order of arrival.

use super::*;

impl Log {
    /// The secret-giving operations (removals, leaves, revocations, rotations) that count and
    /// have no other such operation after them, by id: the context's secret is made of their
    /// secrets (one alone: its own; concurrent ones: a derivation of all of them, see
    /// [`crate::seal::combine_secrets`]). Empty before any. An operation that counts for
    /// nothing (overruled, or racing a removal unvouched) is never among them, so its secret
    /// seals nothing, even where it counted once.
    pub fn latest_secret_ops(&self, dag: &HashMap<DeltaId, Entry>) -> Vec<DeltaId> {
        let gives_secret = |id: &DeltaId| {
            dag.get(id)
                .and_then(|e| e.op.as_ref().zip(Some(&e.author)))
                .is_some_and(|(op, author)| op.removes(author).is_some())
        };
        let ops: Vec<DeltaId> = self
            .verdict
            .applied_ops
            .iter()
            .filter(|id| gives_secret(id))
            .copied()
            .collect();
        let mut latest: Vec<DeltaId> = ops
            .iter()
            .filter(|op| !ops.iter().any(|later| self.pasts[later].contains(op)))
            .copied()
            .collect();
        latest.sort();
        latest
    }
}
