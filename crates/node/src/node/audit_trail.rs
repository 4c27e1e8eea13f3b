//! Reading and verifying a context's audit trail.

use super::*;

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
}
