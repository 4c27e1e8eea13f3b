//! Reading and verifying a context's audit trail.

use super::*;

/// How long the audit records of read-only calls may wait to be written (see
/// [`Node::defer_read_audits`]): what a crash can lose is at most this much of reads' records.
pub const READ_AUDITS_WAIT_NANOS: u64 = 100_000_000;

impl<S: Store, E: Env> Node<S, E> {
    /// Writes one audit record on its own (for calls and deltas that changed nothing else).
    pub(super) async fn audit_alone(
        &mut self,
        ctx: &mut ContextState,
        entry: AuditEntry,
    ) -> Result<(), NodeError> {
        let record = AuditRecord::seal(entry, &ctx.audit, &self.key);
        let mut batch = Batch::new();
        stage_audit(&mut batch, ctx.id, &record);
        self.commit(batch).await?;
        ctx.audit = record.next_head();
        Ok(())
    }

    /// Lets the audit records of read-only calls wait, up to `most` of them, and go to the
    /// store with the next write, when `most` are waiting, or at [`Node::write_read_audits`],
    /// whichever comes first, instead of one transaction each before the call returns (0, the
    /// default: each is written at once). A record is signed and chained when its call runs,
    /// and [`Node::audit`] shows it at once; what a crash loses is only the records still
    /// waiting, the newest of the chain: what is stored still verifies, and the chain goes on
    /// from its last stored record. The records wait at most [`READ_AUDITS_WAIT_NANOS`]: the
    /// node's timer ([`Node::poll_timeout`]) writes them then.
    pub fn defer_read_audits(&mut self, most: usize) {
        self.most_unwritten_reads = most;
    }

    /// When the records of reads that wait are due to be written: [`READ_AUDITS_WAIT_NANOS`]
    /// after the oldest one's call.
    pub(super) fn read_audits_due(&self) -> Option<u64> {
        let (_, oldest) = self.unwritten_reads.first()?;
        Some(oldest.entry.time.saturating_add(READ_AUDITS_WAIT_NANOS))
    }

    /// Writes the audit records of read-only calls that wait (see [`Node::defer_read_audits`]).
    pub async fn write_read_audits(&mut self) -> Result<(), NodeError> {
        if self.unwritten_reads.is_empty() {
            return Ok(());
        }
        Ok(self.commit(Batch::new()).await?)
    }

    /// Whether audit records of read-only calls wait to be written.
    pub fn has_unwritten_reads(&self) -> bool {
        !self.unwritten_reads.is_empty()
    }

    /// Keeps a read-only call's record to be written later, if the node lets them wait and
    /// fewer than the most wait; else the caller writes it now (with those that wait).
    pub(super) fn defer_read_audit(&mut self, context_id: ContextId, record: &AuditRecord) -> bool {
        if self.unwritten_reads.len() + 1 >= self.most_unwritten_reads.max(1) {
            return false;
        }
        self.unwritten_reads.push((context_id, record.clone()));
        true
    }

    /// The context's audit records not written yet (the newest of its chain).
    fn unwritten_audit(&self, id: ContextId) -> impl Iterator<Item = &AuditRecord> {
        self.unwritten_reads
            .iter()
            .filter(move |(context_id, _)| *context_id == id)
            .map(|(_, record)| record)
    }

    /// The context's audit records, oldest first (those of reads not written yet included).
    pub async fn audit(&self, id: &ContextId) -> Result<Vec<AuditRecord>, NodeError> {
        self.context(id)?;
        let stored = self
            .store
            .scan_prefix(Namespace::Audit, id.as_bytes())
            .await?
            .into_iter()
            .map(|(_, bytes)| {
                AuditRecord::try_from_slice(&bytes).map_err(|e| corrupt("audit record", e))
            });
        stored
            .chain(self.unwritten_audit(*id).cloned().map(Ok))
            .collect()
    }

    /// Checks the context's audit chain as stored (and the records of reads not written yet
    /// after it): any changed, deleted or reordered record is
    /// reported with its sequence number.
    pub async fn verify_audit(&self, id: &ContextId) -> Result<AuditReport, NodeError> {
        self.context(id)?;
        let rows = self
            .store
            .scan_prefix(Namespace::Audit, id.as_bytes())
            .await?;
        let records = rows
            .into_iter()
            .map(|(key, bytes)| {
                let seq = key
                    .get(32..40)
                    .and_then(|s| s.try_into().ok())
                    .map_or(u64::MAX, u64::from_be_bytes);
                AuditRecord::try_from_slice(&bytes)
                    .map_err(|e| (seq, format!("it does not decode: {e}")))
            })
            .chain(self.unwritten_audit(*id).cloned().map(Ok));
        let mut keys = self.former_keys().await?;
        keys.push(self.key.public());
        Ok(verify_chain(records, &keys))
    }
}
