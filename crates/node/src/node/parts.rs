//! Content addressed by its blake3, fetched from members in parts: an app's binary for a joiner
//! (`app_fetch`) and a blob announced to a context for a member that lacks it (`blob_fetch`).
//!
//! A binary is sent in parts of [`APP_PART_BYTES`]. Every part carries the chaining values of
//! all parts in blake3's tree, which merge to the id (the blake3 of the whole): the receiver
//! checks each part against the id as it comes, keeps only parts that match, and takes the
//! whole once every part is here. Each part is sealed to the receiver's key and signed by the
//! member that sent it.

use tabnode_store::blake3_tree::{self, ChainingValue};

use super::*;

/// The size of one part: a power of two (a whole subtree of blake3's tree, so each part is
/// checked on its own) well under the 1 MiB message limit.
pub const APP_PART_BYTES: usize = 256 * 1024;

pub use crate::wire::Content;

/// Why a part from a member was refused (nothing of it is kept).
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The part, or the part hashes it came with, do not hash to the id.
    #[error("{1}")]
    HashMismatch(Content, String),
    /// The whole is larger than the receiver fetches.
    #[error("a {content} of {size} bytes, over the cap of {cap} bytes fetched from members")]
    TooLarge {
        content: Content,
        size: u64,
        cap: u64,
    },
    /// The part names a part the whole does not have, or a whole of no bytes.
    #[error("{1}")]
    OutOfRange(Content, String),
    /// The sender shows no membership of the context, or did not sign the part.
    #[error("{1}")]
    NotFromMember(Content, String),
}

/// The errors of an app's parts (the name they had before blobs were fetched too).
pub type AppPartError = PartError;

impl PartError {
    pub fn kind(&self) -> &'static str {
        use Content::*;
        match self {
            Self::HashMismatch(App, _) => "AppHashMismatch",
            Self::HashMismatch(Blob, _) => "BlobHashMismatch",
            Self::TooLarge { content: App, .. } => "AppTooLarge",
            Self::TooLarge { content: Blob, .. } => "BlobTooLarge",
            Self::OutOfRange(App, _) => "AppPartOutOfRange",
            Self::OutOfRange(Blob, _) => "BlobPartOutOfRange",
            Self::NotFromMember(App, _) => "AppPartNotFromMember",
            Self::NotFromMember(Blob, _) => "BlobPartNotFromMember",
        }
    }
}

/// A whole being fetched: the parts that came and matched its id.
#[derive(Default)]
pub(super) struct PartFetch {
    /// The whole's size and its parts' chaining values, once one part showed they make the id.
    shape: Option<(u64, Vec<ChainingValue>)>,
    parts: BTreeMap<u32, Vec<u8>>,
}

impl PartFetch {
    pub(super) fn received(&self) -> u64 {
        self.parts.values().map(|p| p.len() as u64).sum()
    }

    /// The parts still to come (all, before the first arrived: the receiver knows no size yet).
    pub(super) fn missing(&self) -> Vec<u32> {
        match &self.shape {
            None => vec![],
            Some((_, hashes)) => (0..hashes.len() as u32)
                .filter(|i| !self.parts.contains_key(i))
                .collect(),
        }
    }

    pub(super) fn has(&self, index: u32) -> bool {
        self.parts.contains_key(&index)
    }

    /// Checks `bytes` as part `index` of the whole `id` of `size` bytes (at most `cap`) and
    /// keeps it if it matches; returns the whole once every part is here and it makes `id`.
    pub(super) fn take(
        &mut self,
        (content, id, cap): (Content, &[u8; 32], u64),
        (size, index, hashes): (u64, u32, Vec<ChainingValue>),
        bytes: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, PartError> {
        check_part((content, id, cap), (size, index, &hashes, &bytes))?;
        self.shape = Some((size, hashes));
        self.parts.insert(index, bytes);
        if self.received() < size {
            return Ok(None);
        }
        let whole: Vec<u8> = std::mem::take(&mut self.parts)
            .into_values()
            .flatten()
            .collect();
        self.shape = None;
        if blake3::hash(&whole).as_bytes() != id {
            // Each part matched: the parts came with sizes that disagree. Asked for again.
            let why = format!("parts that together do not make the {content}'s id");
            return Err(PartError::HashMismatch(content, why));
        }
        Ok(Some(whole))
    }
}

/// The parts of `whole` a receiver asks for (`missing`, all when empty), with the chaining
/// values of every part.
#[allow(clippy::type_complexity)]
fn parts_to_send(
    content: Content,
    whole: &[u8],
    missing: Vec<u32>,
) -> Result<(Vec<ChainingValue>, Vec<(u32, &[u8])>), PartError> {
    let hashes = part_hashes(whole);
    let count = hashes.len() as u32;
    if let Some(bad) = missing.iter().find(|i| **i >= count) {
        let reason = format!("part {bad} of a {content} of {count} parts");
        return Err(PartError::OutOfRange(content, reason));
    }
    let wanted = match missing.is_empty() {
        true => (0..count).collect(),
        false => missing,
    };
    let parts = wanted
        .into_iter()
        .map(|index| {
            let start = index as usize * APP_PART_BYTES;
            (
                index,
                &whole[start..whole.len().min(start + APP_PART_BYTES)],
            )
        })
        .collect();
    Ok((hashes, parts))
}

/// A part error about `member`'s request, naming it.
fn with_requester(e: PartError, member: &PublicKey) -> PartError {
    match e {
        PartError::OutOfRange(content, why) => {
            PartError::OutOfRange(content, format!("{member} asks for {why}"))
        }
        other => other,
    }
}

/// How many parts a whole of `size` bytes is sent in.
fn part_count(size: u64) -> u64 {
    size.div_ceil(APP_PART_BYTES as u64)
}

/// The chaining values of each part of `whole` in blake3's tree (for a whole of one part, its
/// hash: the part is the whole tree).
pub(super) fn part_hashes(whole: &[u8]) -> Vec<ChainingValue> {
    if whole.len() <= APP_PART_BYTES {
        return vec![*blake3::hash(whole).as_bytes()];
    }
    whole
        .chunks(APP_PART_BYTES)
        .enumerate()
        .map(|(i, part)| part_hash(i as u32, part))
        .collect()
}

fn part_hash(index: u32, part: &[u8]) -> ChainingValue {
    blake3_tree::part_hash(APP_PART_BYTES, index as usize, [part])
}

/// The blake3 of a whole of `size` bytes whose parts have `hashes` (for a whole of one part,
/// its hash passes through).
fn root_of(size: u64, hashes: &[ChainingValue]) -> [u8; 32] {
    blake3_tree::root_of(size, APP_PART_BYTES, hashes)
}

/// Checks a part against the id: its hashes make the id, and its bytes make its hash.
fn check_part(
    (content, id, cap): (Content, &[u8; 32], u64),
    (size, index, hashes, part): (u64, u32, &[ChainingValue], &[u8]),
) -> Result<(), PartError> {
    if size > cap {
        return Err(PartError::TooLarge { content, size, cap });
    }
    let parts = part_count(size);
    if parts == 0 || index as u64 >= parts || hashes.len() as u64 != parts {
        return Err(PartError::OutOfRange(
            content,
            format!(
                "part {index} with {} part hashes, of a {content} of {size} bytes ({parts} parts)",
                hashes.len()
            ),
        ));
    }
    let shown = bs58::encode(id).into_string();
    if root_of(size, hashes) != *id {
        let why = format!("part hashes that do not make the {content} id {shown}");
        return Err(PartError::HashMismatch(content, why));
    }
    let start = index as u64 * APP_PART_BYTES as u64;
    let expected = (size - start).min(APP_PART_BYTES as u64);
    let hash = match parts {
        1 => *blake3::hash(part).as_bytes(),
        _ => part_hash(index, part),
    };
    if part.len() as u64 != expected || hash != hashes[index as usize] {
        let why = format!("part {index} of {content} {shown} does not hash to what its id says");
        return Err(PartError::HashMismatch(content, why));
    }
    Ok(())
}

impl<S: Store, E: Env> Node<S, E> {
    /// The parts of `whole` (`content` `id` in `context_id`) the member `to` asks for
    /// (`missing`, all when empty) and that do not wait to be sent already, each sealed to it
    /// and signed by this node, whose membership `cert` shows.
    pub(super) fn seal_parts(
        &self,
        (content, context_id, id): (Content, &ContextId, &[u8; 32]),
        whole: &[u8],
        missing: Vec<u32>,
        (to, cert): (&PublicKey, &MemberCert),
    ) -> Result<Vec<SealedPart>, NodeError> {
        let (hashes, parts) =
            parts_to_send(content, whole, missing).map_err(|e| with_requester(e, to))?;
        let size = whole.len() as u64;
        parts
            .into_iter()
            // A part still waiting for its pace (asked for again meanwhile) is not sealed again.
            .filter(|(index, _)| !self.parts_out.is_queued(&(*to, *id, *index)))
            .map(|(index, part)| {
                let sealed = seal::seal_to(to, context_id, self.env.random32(), part)
                    .ok_or_else(|| NodeError::BadId(format!("{to} is not a valid key")))?;
                let signed = SealedPart::signed_message(
                    content,
                    (context_id, id),
                    (size, index, to, &sealed),
                );
                Ok(SealedPart {
                    size,
                    index,
                    hashes: hashes.clone(),
                    to: *to,
                    signature: self.key.sign(&signed),
                    sealed,
                    provider: Box::new(cert.clone()),
                })
            })
            .collect()
    }
}

impl SealedPart {
    /// Opens a part of `content` `id` sealed to `key`, once its provider's certificate is of
    /// `context_id` and its signature verifies.
    pub(super) fn open(
        &self,
        (content, context_id, id): (Content, &ContextId, &[u8; 32]),
        key: &SecretKey,
    ) -> Result<Vec<u8>, PartError> {
        let provider = self.provider.member;
        let shown = bs58::encode(id).into_string();
        let signed = SealedPart::signed_message(
            content,
            (context_id, id),
            (self.size, self.index, &self.to, &self.sealed),
        );
        let from_member = self
            .provider
            .authenticate(context_id, &provider)
            .and_then(|()| {
                verify_signature(&provider, &signed, &self.signature)
                    .map_err(|_| NodeError::Unauthorized("a bad signature".into()))
            });
        if let Err(e) = from_member {
            let reason = format!("a part of {content} {shown} from {provider}: {e}");
            return Err(PartError::NotFromMember(content, reason));
        }
        seal::open_sealed_to(key, context_id, &self.sealed).ok_or_else(|| {
            let reason = format!("a part of {content} {shown} this node's key does not open");
            PartError::NotFromMember(content, reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm_of(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn the_part_hashes_make_the_blake3_of_the_binary_for_any_number_of_parts() {
        let part = APP_PART_BYTES;
        for size in [
            1,
            1024,
            part,
            part + 1,
            2 * part,
            3 * part - 7,
            5 * part + 1024,
        ] {
            let wasm = wasm_of(size);
            let hashes = part_hashes(&wasm);
            assert_eq!(hashes.len() as u64, part_count(size as u64));
            assert_eq!(
                root_of(size as u64, &hashes),
                *blake3::hash(&wasm).as_bytes()
            );
            let app_id = *blake3::hash(&wasm).as_bytes();
            for (i, bytes) in wasm.chunks(part).enumerate() {
                let shape = (size as u64, i as u32, &hashes[..], bytes);
                check_part((Content::App, &app_id, MAX_FETCHED_APP_BYTES), shape).unwrap();
            }
        }
    }

    #[test]
    fn parts_out_of_range_over_the_cap_or_of_another_binary_are_refused() {
        let wasm = wasm_of(2 * APP_PART_BYTES + 5);
        let (app_id, hashes) = (*blake3::hash(&wasm).as_bytes(), part_hashes(&wasm));
        let app = |id| (Content::App, id, MAX_FETCHED_APP_BYTES);
        let size = wasm.len() as u64;
        let first = &wasm[..APP_PART_BYTES];
        let kind = |r: Result<(), PartError>| r.unwrap_err().kind();
        assert_eq!(
            kind(check_part(app(&app_id), (size, 3, &hashes, first))),
            "AppPartOutOfRange"
        );
        assert_eq!(
            kind(check_part(app(&app_id), (size, 0, &hashes[..2], first))),
            "AppPartOutOfRange"
        );
        assert_eq!(
            kind(check_part(app(&app_id), (0, 0, &[], &[]))),
            "AppPartOutOfRange"
        );
        let other = blake3::hash(b"another app");
        let huge = MAX_FETCHED_APP_BYTES + 1;
        assert_eq!(
            kind(check_part(app(&app_id), (huge, 0, &hashes, first))),
            "AppTooLarge"
        );
        let blob = (Content::Blob, &app_id, size - 1);
        assert_eq!(
            kind(check_part(blob, (size, 0, &hashes, first))),
            "BlobTooLarge",
            "a blob over the cap it is fetched with"
        );
        let blob = (Content::Blob, other.as_bytes(), size);
        assert_eq!(
            kind(check_part(blob, (size, 0, &hashes, first))),
            "BlobHashMismatch"
        );
        assert_eq!(
            kind(check_part(app(other.as_bytes()), (size, 0, &hashes, first))),
            "AppHashMismatch"
        );
        assert_eq!(
            kind(check_part(app(&app_id), (size, 1, &hashes, first))),
            "AppHashMismatch",
            "the right bytes in the wrong place"
        );
        let last = &wasm[2 * APP_PART_BYTES..];
        assert_eq!(
            kind(check_part(app(&app_id), (size + 1, 2, &hashes, last))),
            "AppHashMismatch",
            "another size: the last part's hash holds its length"
        );
    }
}
