//! Which operations' secrets make the context's secret: those of the latest secret-giving
//! operations that count (see [`Log::latest_secret_ops`]). A rule of the DAG alone, so every
//! member that holds the same deltas seals with the same secret, whatever the order of arrival.

use std::cell::Cell;

use super::*;

thread_local! {
    static COMPUTED: Cell<u64> = const { Cell::new(0) };
}

/// How many times this thread worked out a log's latest secret-giving operations (tests count
/// them: a message that changes no log must not make a node work them out again).
pub fn latest_secret_ops_computed() -> u64 {
    COMPUTED.with(Cell::get)
}

impl Log {
    /// The secret-giving operations (removals, leaves, revocations, rotations) that count and
    /// have no other such operation after them, by id: the context's secret is made of their
    /// secrets (one alone: its own; concurrent ones: a derivation of all of them, see
    /// [`crate::seal::combine_secrets`]). Empty before any. An operation that counts for
    /// nothing (overruled, or racing a removal unvouched) is never among them, so its secret
    /// seals nothing, even where it counted once. Worked out once per judgement (a delta that
    /// is no operation changes none of them): junk on the topic costs a lookup.
    pub fn latest_secret_ops(&self, dag: &HashMap<DeltaId, Entry>) -> Vec<DeltaId> {
        self.latest_secrets
            .get_or_init(|| self.work_out_latest_secret_ops(dag))
            .clone()
    }

    fn work_out_latest_secret_ops(&self, dag: &HashMap<DeltaId, Entry>) -> Vec<DeltaId> {
        COMPUTED.with(|n| n.set(n.get() + 1));
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
