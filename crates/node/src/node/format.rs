//! The store's format version: which layout of rows a store holds, checked before the node
//! reads or writes anything else, and brought up to this build's by one step per version (see
//! "Format versions" in docs/storage.md).
//!
//! A store the node never wrote takes [`STORE_FORMAT`] with its node key. A store with a node
//! key and no version row was written before versions were recorded ([`FORMAT_BEFORE_VERSIONS`]).
//! A store at a version newer than this build knows is refused, untouched: this build would
//! misread what a newer one wrote, and a write of its own could spoil it for that build.

use super::*;

/// The format this build writes and reads.
pub const STORE_FORMAT: u32 = 3;

/// The format of a store with no version row: written by a build before event handlers.
pub const FORMAT_BEFORE_VERSIONS: u32 = 1;

/// The store's format row, for the batch that writes a new store's node key.
pub(super) fn stage_format(batch: &mut Batch) {
    batch.put_mut(
        Namespace::Meta,
        STORE_FORMAT_ROW,
        STORE_FORMAT.to_le_bytes().to_vec(),
    );
}

/// Checks the store's format and migrates an older one, one store transaction per step (each
/// step's writes with the version they make, so a stop between steps resumes at the next one).
pub(super) async fn open_format<S: Store>(store: &S) -> Result<(), NodeError> {
    let found = match store.get(Namespace::Meta, STORE_FORMAT_ROW).await? {
        Some(bytes) => u32::from_le_bytes(
            bytes
                .try_into()
                .map_err(|_| corrupt("store format", "not 4 bytes"))?,
        ),
        // A new store: it takes this build's format with its node key (see `Node::open`).
        None if store.get(Namespace::Keys, NODE_KEY).await?.is_none() => return Ok(()),
        None => FORMAT_BEFORE_VERSIONS,
    };
    if found > STORE_FORMAT {
        return Err(NodeError::StoreFormatTooNew {
            found,
            known: STORE_FORMAT,
        });
    }
    if found < FORMAT_BEFORE_VERSIONS {
        return Err(corrupt("store format", format!("version {found}")));
    }
    for from in found..STORE_FORMAT {
        let mut batch = match from {
            1 => events_with_handlers(store).await?,
            2 => Batch::new(), // proposal operations: nothing stored changes (see below)
            _ => unreachable!("a step for every version before STORE_FORMAT"),
        };
        batch.put_mut(
            Namespace::Meta,
            STORE_FORMAT_ROW,
            (from + 1).to_le_bytes().to_vec(),
        );
        store.commit(batch).await?;
        tracing::info!(from, to = from + 1, "migrated the store's format");
    }
    Ok(())
}

// Version 2 to 3: the log's operations may be proposals (`MemberOp::Propose`, `Approve`). No
// stored row changes; the version says that the store may hold deltas a build of format 2
// cannot decode, so such a build refuses the store with `StoreFormatTooNew` instead of
// failing on one of them with `Corrupt`.

/// Version 1 to 2: events may name a handler. Deltas are signed over their encoding, and an
/// event without a handler is encoded as version 1 encoded it (see [`EventRecord`]), so every
/// stored delta stays as it is, with its id and signature: the step checks that each one
/// reads in the new layout and encodes back to the same bytes, and rewrites nothing.
async fn events_with_handlers<S: Store>(store: &S) -> Result<Batch, NodeError> {
    for (key, bytes) in store.scan_prefix(Namespace::Deltas, &[]).await? {
        let delta = Delta::try_from_slice(&bytes).map_err(|e| corrupt("delta", e))?;
        if borsh::to_vec(&delta).expect("encode") != bytes {
            let context = key.get(..32).and_then(|k| k.try_into().ok()).map(ContextId);
            let context = context.map(|c| c.to_string()).unwrap_or_default();
            return Err(corrupt(
                "delta",
                format!("a delta of context {context} does not encode back to its stored bytes"),
            ));
        }
    }
    Ok(Batch::new())
}
