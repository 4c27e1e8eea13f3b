//! How the node lays out what it keeps in the store: every key prefix, and the helpers that stage
//! a call's or a delta's rows into a batch. Nothing else names a store key.

use super::*;

/// Where a context's secret is kept in [`Namespace::Keys`], after the context id.
pub(super) const CONTEXT_SECRET: &[u8] = b"context-secret";

/// Where the creator's node keeps the context's own key (its public half is the context id) in
/// [`Namespace::Keys`], after the context id. It certified the creator, and it signs the
/// request that adds the context to a chain's contract; no other node has it.
pub(super) const CONTEXT_KEY: &[u8] = b"context-key";

/// Where a context's former secrets are kept in [`Namespace::Keys`], after the context id, with
/// their index (big-endian u32): the secret, then the id of the operation that replaced it.
pub(super) const OLD_SECRET: &[u8] = b"old-secret";

/// Where the secret a secret-giving operation made is kept in [`Namespace::Keys`], after the
/// context id, with the operation's id, when this node holds it from no share in the
/// operation (it made the operation, or an admin gave it the secret later). A store written
/// before these were kept has the same in its former secrets (see [`Node::load_context`]).
pub(super) const MADE_SECRET: &[u8] = b"made-secret";

/// Where a context's disclosure settings are kept in [`Namespace::Meta`]: this prefix, the
/// context id, then the event kind.
pub(super) const DISCLOSE: &[u8] = b"disclose:";

/// Where withheld event payloads are kept in [`Namespace::Meta`]: this prefix, the context id,
/// then the payload's hash.
pub(super) const PAYLOAD: &[u8] = b"payload:";

/// Marks a context in [`Namespace::Meta`] (this prefix, then the context id) while it records
/// deltas a snapshot covers without running them: a node that stops before the snapshot is in
/// place rebuilds the state from those deltas when it opens again.
pub(super) const COVERING: &[u8] = b"snapshot-covering:";

/// Where the last view of a context's anchor read from its chain is kept in [`Namespace::Meta`]
/// (this prefix, then the context id): a node that opens again enforces it at once, rather than
/// running unanchored until the chain answers (or while someone keeps the chain from answering).
pub(super) const ANCHOR: &[u8] = b"anchor:";

/// Which context's guest created a context (`context_create`), in [`Namespace::Meta`] (this
/// prefix, then the created context's id): the creator's guests may xcall into it and delete
/// it (see [`super::guest`]).
pub(super) const CREATED_BY: &[u8] = b"created-by:";

/// Where context aliases are kept in [`Namespace::Meta`]: this prefix, then the alias.
pub(super) const ALIAS: &[u8] = b"alias:";

/// Prefix of a call's stored answer, under its context and call id (see [`super::call_once`]).
pub(super) const CALL: &[u8] = b"call:";

/// Where the root's grant of this node's key is kept in [`Namespace::Keys`].
pub(super) const ROOT_GRANT: &[u8] = b"root-grant";

/// Key of the node's own signing key in [`Namespace::Keys`].
pub(super) const NODE_KEY: &[u8] = b"node";

/// A key rotation under way (the new key, its grant, the old key's revocation): finished on
/// open if the node stopped before it was.
pub(super) const NEXT_NODE_KEY: &[u8] = b"node-next";

/// The keys this node used before, oldest first: they signed its older audit records.
pub(super) const FORMER_NODE_KEYS: &[u8] = b"node-former";

/// Marks a context this node asked to join and holds no secret of yet, in [`Namespace::Meta`]
/// (this prefix, then the context id): its app and the certificate redeemed from the invitation.
pub(super) const JOINING: &[u8] = b"joining:";

/// Where the handlers members' deltas named wait to run here, in [`Namespace::Meta`]: this
/// prefix, the context id, the delta's sequence number and the event's index (both
/// big-endian, so key order is the order they run in); see [`super::handlers`].
pub(super) const HANDLER: &[u8] = b"handler:";

/// Where the ids of a context's deltas refused for good are kept in [`Namespace::Meta`]: this
/// prefix, the context id, then the delta id; the value is the number it was remembered under
/// (u64 LE), which orders them (see [`super::bounds::RefusedDeltas`]).
pub(super) const REFUSED: &[u8] = b"refused:";

/// The store's format version in [`Namespace::Meta`] (u32 LE; see [`super::format`]).
pub(super) const STORE_FORMAT_ROW: &[u8] = b"store-format";

/// A context as persisted in [`Namespace::Contexts`].
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub(super) struct ContextRecord {
    pub(super) app_id: AppId,
    pub(super) heads: Vec<DeltaId>,
    pub(super) root_hash: Option<Hash>,
    pub(super) next_seq: u64,
    /// This node's membership of the context.
    pub(super) cert: MemberCert,
}

/// A [`Namespace::Meta`] key: `prefix`, then the context id.
pub(super) fn scoped_meta(prefix: &[u8], context: &ContextId) -> Vec<u8> {
    [prefix, context.as_bytes()].concat()
}

/// Stages what remembering a refused delta `id` of `context` changed (`remembered`, if it was
/// not remembered already): its row, and the deletion of the row of the id it displaced.
pub(super) fn stage_refused(
    batch: &mut Batch,
    context: &ContextId,
    id: &DeltaId,
    remembered: Option<Remembered>,
) {
    let Some(Remembered { number, forgotten }) = remembered else {
        return;
    };
    let row = |id: &DeltaId| [REFUSED, context.as_bytes(), id.as_bytes()].concat();
    batch.put_mut(Namespace::Meta, &row(id), number.to_le_bytes().to_vec());
    if let Some(forgotten) = forgotten {
        batch.delete_mut(Namespace::Meta, &row(&forgotten));
    }
}

/// Stages the deletion of the rows of refused deltas `ids` of `context`.
pub(super) fn stage_forgotten_refusals(batch: &mut Batch, context: &ContextId, ids: &[DeltaId]) {
    for id in ids {
        let row = [REFUSED, context.as_bytes(), id.as_bytes()].concat();
        batch.delete_mut(Namespace::Meta, &row);
    }
}

/// Store keys of one context's rows: the context id, then the row's own key.
pub(super) fn scoped(context: &ContextId, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + key.len());
    out.extend_from_slice(context.as_bytes());
    out.extend_from_slice(key);
    out
}

/// Stages a call's writes to the context's rows, but not those that leave a row as the node
/// knows it already holds it (calimero-storage writes some rows again unchanged: two of seven
/// in a set of a new key, and every put costs the page's main thread).
pub(super) fn stage_writes(
    batch: &mut Batch,
    ctx: &ContextState,
    shared: &WriteSet,
    private: &WriteSet,
) {
    let views = [
        (Namespace::State, shared, &ctx.shared),
        (Namespace::Private, private, &ctx.private),
    ];
    for (ns, writes, known) in views {
        for (key, value) in writes {
            if known.holds(key, value.as_deref()) {
                continue;
            }
            let key = scoped(&ctx.id, key);
            match value {
                Some(v) => batch.put_mut(ns, &key, v.clone()),
                None => batch.delete_mut(ns, &key),
            }
        }
    }
}

/// Stores an audit record under its sequence number (big-endian, so key order is chain order).
pub(super) fn stage_audit(batch: &mut Batch, ctx: ContextId, record: &AuditRecord) {
    batch.put_mut(
        Namespace::Audit,
        &scoped(&ctx, &record.seq.to_be_bytes()),
        borsh::to_vec(record).expect("encode"),
    );
}

/// Stores a delta under the next sequence number, so a scan returns deltas in applied (causal) order.
pub(super) fn stage_delta(
    batch: &mut Batch,
    ctx: ContextId,
    record: &mut ContextRecord,
    delta: &Delta,
) {
    let key = scoped(&ctx, &record.next_seq.to_be_bytes());
    record.next_seq += 1;
    batch.put_mut(
        Namespace::Deltas,
        &key,
        borsh::to_vec(delta).expect("encode"),
    );
}

/// Where a context's shared or private state is stored, and its rows in memory.
fn rows_of(ctx: &mut ContextState, view: ViewKind) -> (Namespace, &mut Rc<Rows>) {
    match view {
        ViewKind::Private => (Namespace::Private, &mut ctx.private),
        _ => (Namespace::State, &mut ctx.shared),
    }
}

/// Reads a context's whole shared or private state into memory in one scan; the shared one
/// then also has its Merkle tree, which needs every row.
pub(super) async fn read_whole<S: Store>(
    store: &S,
    ctx: &mut ContextState,
    view: ViewKind,
) -> Result<(), NodeError> {
    let id = ctx.id;
    let (ns, rows) = rows_of(ctx, view);
    let all = store.scan_prefix(ns, id.as_bytes()).await?;
    Rc::make_mut(rows).learn_all(all.into_iter().map(|(k, v)| (k[32..].to_vec(), v)));
    if ns == Namespace::State && ctx.merkle.is_none() {
        ctx.merkle = Some(MerkleTree::build(ctx.shared.present()));
    }
    Ok(())
}

/// Lists the keys of a context's shared or private state, if its rows would use them (see
/// [`Rows::list`]): then a row a call misses that is not listed needs no read.
pub(super) async fn list_keys<S: Store>(
    store: &S,
    ctx: &mut ContextState,
    view: ViewKind,
) -> Result<(), NodeError> {
    let id = ctx.id;
    let (ns, rows) = rows_of(ctx, view);
    if !rows.wants_listing() {
        return Ok(());
    }
    let keys = store
        .keys_with_prefix(ns, id.as_bytes(), crate::rows::MAX_LISTED_ROWS)
        .await?;
    Rc::make_mut(rows).list(keys.map(|keys| keys.into_iter().map(|k| k[32..].to_vec()).collect()));
    Ok(())
}

/// Marks a blob announced to a context in [`Namespace::Meta`] (this prefix, the context id,
/// then the blob id): only such blobs are served to that context's members.
pub(super) const BLOB_ANNOUNCED: &[u8] = b"blob-announced:";
