//! Fetching a context's app from its members, for a joiner that lacks it: a link alone is
//! enough to join (see [`Node::join`]).
//!
//! The joiner asks on the context's topic, under the handshake key (it holds no secret yet),
//! with the certificate it redeemed from its invitation ([`WireMessage::AppRequest`]). A member
//! that holds the app the invitation names, and finds the invitation still good (what it checks
//! before it admits a join), answers with the binary in parts of [`APP_PART_BYTES`], each sealed
//! to the joiner's key and signed by the member ([`WireMessage::AppPart`]). Every part carries
//! the chaining values of all parts in blake3's tree, which merge to the app id (the blake3 of
//! the binary): the joiner checks each part against the app id as it comes, keeps only parts
//! that match, and installs the binary once whole; then it asks to be admitted as before. A
//! part lost or refused is asked for again when nothing has come for [`SYNC_RETRY_NANOS`].

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

use super::*;

/// The size of one part of an app binary sent to a joiner: a power of two (a whole subtree of
/// blake3's tree, so each part is checked on its own) well under the 1 MiB message limit.
pub const APP_PART_BYTES: usize = 256 * 1024;

/// The largest app binary a joiner fetches from members (16 MiB): larger ones are refused
/// before any part is kept.
pub const MAX_FETCHED_APP_BYTES: u64 = 16 * 1024 * 1024;

/// Why a part of an app binary from a member was refused (nothing of it is kept).
#[derive(Debug, thiserror::Error)]
pub enum AppPartError {
    /// The part, or the part hashes it came with, do not hash to the app id.
    #[error("{0}")]
    HashMismatch(String),
    /// The binary is larger than [`MAX_FETCHED_APP_BYTES`].
    #[error(
        "an app of {size} bytes, over the cap of {MAX_FETCHED_APP_BYTES} bytes a joiner fetches"
    )]
    TooLarge { size: u64 },
    /// The part names a part the binary does not have, or a binary of no bytes.
    #[error("{0}")]
    OutOfRange(String),
    /// The sender shows no membership of the context, or did not sign the part.
    #[error("{0}")]
    NotFromMember(String),
}

impl AppPartError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::HashMismatch(_) => "AppHashMismatch",
            Self::TooLarge { .. } => "AppTooLarge",
            Self::OutOfRange(_) => "AppPartOutOfRange",
            Self::NotFromMember(_) => "AppPartNotFromMember",
        }
    }
}

/// The app binary a joiner is fetching: the parts that came and matched the app id.
#[derive(Default)]
pub(super) struct AppFetch {
    /// The binary's size and its parts' chaining values, once one part showed they make the
    /// app id.
    shape: Option<(u64, Vec<ChainingValue>)>,
    parts: BTreeMap<u32, Vec<u8>>,
}

impl AppFetch {
    fn received(&self) -> u64 {
        self.parts.values().map(|p| p.len() as u64).sum()
    }

    /// The parts still to come (all, before the first arrived: the joiner knows no size yet).
    fn missing(&self) -> Vec<u32> {
        match &self.shape {
            None => vec![],
            Some((_, hashes)) => (0..hashes.len() as u32)
                .filter(|i| !self.parts.contains_key(i))
                .collect(),
        }
    }
}

/// How many parts a binary of `size` bytes is sent in.
fn part_count(size: u64) -> u64 {
    size.div_ceil(APP_PART_BYTES as u64)
}

/// The chaining values of each part of `wasm` in blake3's tree (for a binary of one part, its
/// hash: the part is the whole tree).
pub(super) fn part_hashes(wasm: &[u8]) -> Vec<ChainingValue> {
    if wasm.len() <= APP_PART_BYTES {
        return vec![*blake3::hash(wasm).as_bytes()];
    }
    wasm.chunks(APP_PART_BYTES)
        .enumerate()
        .map(|(i, part)| part_hash(i as u32, part))
        .collect()
}

fn part_hash(index: u32, part: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(index as u64 * APP_PART_BYTES as u64);
    hasher.update(part);
    hasher.finalize_non_root()
}

/// The blake3 of a binary of `size` bytes whose parts have `hashes`: blake3's tree puts the
/// largest power of two of bytes that leaves some on the right in its left subtree, a whole
/// number of parts for any binary of more than one part.
fn root_of(size: u64, hashes: &[ChainingValue]) -> [u8; 32] {
    fn merge(len: u64, hashes: &[ChainingValue]) -> ChainingValue {
        if hashes.len() == 1 {
            return hashes[0];
        }
        let left = left_subtree_len(len);
        let split = (left / APP_PART_BYTES as u64) as usize;
        let (l, r) = (
            merge(left, &hashes[..split]),
            merge(len - left, &hashes[split..]),
        );
        merge_subtrees_non_root(&l, &r, Mode::Hash)
    }
    if hashes.len() == 1 {
        return hashes[0];
    }
    let left = left_subtree_len(size);
    let split = (left / APP_PART_BYTES as u64) as usize;
    let (l, r) = (
        merge(left, &hashes[..split]),
        merge(size - left, &hashes[split..]),
    );
    *merge_subtrees_root(&l, &r, Mode::Hash).as_bytes()
}

/// Checks a part against the app id: its hashes make the id, and its bytes make its hash.
fn check_part(
    app_id: &AppId,
    (size, index, hashes, part): (u64, u32, &[ChainingValue], &[u8]),
) -> Result<(), AppPartError> {
    if size > MAX_FETCHED_APP_BYTES {
        return Err(AppPartError::TooLarge { size });
    }
    let parts = part_count(size);
    if parts == 0 || index as u64 >= parts || hashes.len() as u64 != parts {
        return Err(AppPartError::OutOfRange(format!(
            "part {index} with {} part hashes, of an app of {size} bytes ({parts} parts)",
            hashes.len()
        )));
    }
    if root_of(size, hashes) != app_id.0 {
        return Err(AppPartError::HashMismatch(format!(
            "part hashes that do not make the app id {app_id}"
        )));
    }
    let start = index as u64 * APP_PART_BYTES as u64;
    let expected = (size - start).min(APP_PART_BYTES as u64);
    let hash = match parts {
        1 => *blake3::hash(part).as_bytes(),
        _ => part_hash(index, part),
    };
    if part.len() as u64 != expected || hash != hashes[index as usize] {
        return Err(AppPartError::HashMismatch(format!(
            "part {index} of {app_id} does not hash to what the app id says"
        )));
    }
    Ok(())
}

impl<S: Store, E: Env> Node<S, E> {
    /// Asks the members for the parts of the app a join lacks (all of it, the first time).
    pub(super) fn ask_for_app(&mut self, id: ContextId) {
        let Some(joining) = self.joining.get(&id) else {
            return;
        };
        let Some(fetch) = &joining.fetch else {
            return;
        };
        let missing = fetch.missing();
        let message = WireMessage::app_request_message(&id, &missing);
        let request = WireMessage::AppRequest {
            context_id: id,
            requester: Box::new(joining.cert.clone()),
            missing,
            signature: self.key.sign(&message),
        };
        self.publish(id, &context_handshake_key(&id), request);
    }

    /// A joiner asks for the app its invitation names. Answered only for a key that signed the
    /// request and holds a certificate redeemed from an invitation a member would admit now
    /// (or was admitted with), at the rate sync requests are, and only with that app.
    pub(super) async fn answer_app_request(
        &mut self,
        context_id: ContextId,
        (requester, missing, signature): (MemberCert, Vec<u32>, Signature),
        peer: Option<&str>,
    ) -> Result<(), NodeError> {
        let now = self.env.now_nanos();
        let Some(ctx) = self.contexts.get_mut(&context_id) else {
            return Ok(());
        };
        let member = requester.member;
        let message = WireMessage::app_request_message(&context_id, &missing);
        verify_signature(&member, &message, &signature).map_err(|_| {
            NodeError::Unauthorized("an app request whose signature does not verify".into())
        })?;
        let Issuance::Invited { invitation, .. } = &requester.issued else {
            return Err(NodeError::Unauthorized(format!(
                "{member} asks for the app with no certificate redeemed from an invitation"
            )));
        };
        let admitted_with = ctx
            .log
            .verdict()
            .admitted
            .get(&member)
            .map(|(with, _)| *with);
        if admitted_with != Some(invitation.invite_key) {
            if let Some(why) = invitation_refusal(ctx, invitation, now) {
                return Err(NodeError::BadInvitation(format!(
                    "{member}'s app request: {why}"
                )));
            }
        }
        if !ctx.take_sync_token(member, now) {
            return Ok(());
        }
        requester.authenticate(&context_id, &member)?;
        let app_id = invitation.app_id;
        let Some(wasm) = self.store.get(Namespace::Apps, app_id.as_bytes()).await? else {
            return Ok(()); // a member that has it answers
        };
        let hashes = part_hashes(&wasm);
        let count = hashes.len() as u32;
        if let Some(bad) = missing.iter().find(|i| **i >= count) {
            let reason = format!("{member} asks for part {bad} of an app of {count} parts");
            return Err(AppPartError::OutOfRange(reason).into());
        }
        let wanted = match missing.is_empty() {
            true => (0..count).collect(),
            false => missing,
        };
        let cert = self.context(&context_id)?.record.cert.clone();
        let size = wasm.len() as u64;
        for index in wanted {
            let start = index as usize * APP_PART_BYTES;
            let part = &wasm[start..wasm.len().min(start + APP_PART_BYTES)];
            let sealed = seal::seal_to(&member, &context_id, self.env.random32(), part)
                .ok_or_else(|| NodeError::BadInvitation(format!("{member} is not a valid key")))?;
            let signed = (&context_id, &app_id, size, index, &member, &sealed);
            let message = WireMessage::AppPart {
                context_id,
                app_id,
                size,
                index,
                hashes: hashes.clone(),
                to: member,
                signature: self.key.sign(&WireMessage::app_part_message(signed)),
                sealed,
                provider: Box::new(cert.clone()),
            };
            self.reply(
                context_id,
                &context_handshake_key(&context_id),
                message,
                peer,
            );
        }
        Ok(())
    }

    /// One part of the app this node's join lacks, from a member. Kept if it matches the app
    /// id; once all have come, the app is installed and this node asks to be admitted.
    pub(super) async fn receive_app_part(
        &mut self,
        context_id: ContextId,
        part: AppPart,
    ) -> Result<(), NodeError> {
        let me = self.key.public();
        let now = self.env.now_nanos();
        let Some(joining) = self.joining.get_mut(&context_id) else {
            return Ok(()); // a member already, or never asked
        };
        let app_id = joining.app_id;
        let Some(fetch) = &mut joining.fetch else {
            return Ok(()); // the app is here already
        };
        if part.to != me || part.app_id != app_id || fetch.parts.contains_key(&part.index) {
            return Ok(()); // another joiner's, or a part already here
        }
        let provider = part.provider.member;
        let signed = (
            &context_id,
            &app_id,
            part.size,
            part.index,
            &me,
            &part.sealed,
        );
        let from_member = part
            .provider
            .authenticate(&context_id, &provider)
            .and_then(|()| {
                verify_signature(
                    &provider,
                    &WireMessage::app_part_message(signed),
                    &part.signature,
                )
                .map_err(|_| NodeError::Unauthorized("a bad signature".into()))
            });
        if let Err(e) = from_member {
            let reason = format!("a part of {app_id} from {provider}: {e}");
            return Err(AppPartError::NotFromMember(reason).into());
        }
        let bytes =
            seal::open_sealed_to(&self.key, &context_id, &part.sealed).ok_or_else(|| {
                AppPartError::NotFromMember(format!(
                    "a part of {app_id} this node's key does not open"
                ))
            })?;
        check_part(&app_id, (part.size, part.index, &part.hashes, &bytes))?;
        fetch.shape = Some((part.size, part.hashes));
        fetch.parts.insert(part.index, bytes);
        joining.last_request = Some(now); // progress: asked again only once it stalls
        let (received, total) = (fetch.received(), part.size);
        self.events.push(NodeEvent::AppProgress {
            context_id,
            app_id,
            received,
            total,
        });
        if received < total {
            return Ok(());
        }
        let fetch = joining.fetch.take().expect("matched above");
        let wasm: Vec<u8> = fetch.parts.into_values().flatten().collect();
        if AppId::of_wasm(&wasm) != app_id {
            // Each part matched: the parts came with sizes that disagree. Asked for again.
            let why = format!("parts that together do not make {app_id}");
            self.joining.get_mut(&context_id).expect("joining").fetch = Some(AppFetch::default());
            return Err(AppPartError::HashMismatch(why).into());
        }
        if let Err(e) = self.install_app(&wasm).await {
            // The bytes make the app id, so it is the app the invitation names: it does not
            // compile here. Asking again would bring the same.
            self.joining.remove(&context_id);
            let marker = scoped_meta(JOINING, &context_id);
            self.commit(Batch::new().delete(Namespace::Meta, &marker))
                .await?;
            return Err(e);
        }
        self.ask_to_join(context_id, now);
        Ok(())
    }
}

/// A part of an app binary as it came ([`WireMessage::AppPart`]).
pub(super) struct AppPart {
    pub app_id: AppId,
    pub size: u64,
    pub index: u32,
    pub hashes: Vec<ChainingValue>,
    pub to: PublicKey,
    pub sealed: Vec<u8>,
    pub provider: Box<MemberCert>,
    pub signature: Signature,
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
            let app_id = AppId::of_wasm(&wasm);
            for (i, bytes) in wasm.chunks(part).enumerate() {
                let shape = (size as u64, i as u32, &hashes[..], bytes);
                check_part(&app_id, shape).unwrap();
            }
        }
    }

    #[test]
    fn parts_out_of_range_over_the_cap_or_of_another_binary_are_refused() {
        let wasm = wasm_of(2 * APP_PART_BYTES + 5);
        let (app_id, hashes) = (AppId::of_wasm(&wasm), part_hashes(&wasm));
        let size = wasm.len() as u64;
        let first = &wasm[..APP_PART_BYTES];
        let kind = |r: Result<(), AppPartError>| r.unwrap_err().kind();
        assert_eq!(
            kind(check_part(&app_id, (size, 3, &hashes, first))),
            "AppPartOutOfRange"
        );
        assert_eq!(
            kind(check_part(&app_id, (size, 0, &hashes[..2], first))),
            "AppPartOutOfRange"
        );
        assert_eq!(
            kind(check_part(&app_id, (0, 0, &[], &[]))),
            "AppPartOutOfRange"
        );
        let huge = MAX_FETCHED_APP_BYTES + 1;
        assert_eq!(
            kind(check_part(&app_id, (huge, 0, &hashes, first))),
            "AppTooLarge"
        );
        let other = AppId::of_wasm(b"another app");
        assert_eq!(
            kind(check_part(&other, (size, 0, &hashes, first))),
            "AppHashMismatch"
        );
        assert_eq!(
            kind(check_part(&app_id, (size, 1, &hashes, first))),
            "AppHashMismatch",
            "the right bytes in the wrong place"
        );
        let last = &wasm[2 * APP_PART_BYTES..];
        assert_eq!(
            kind(check_part(&app_id, (size + 1, 2, &hashes, last))),
            "AppHashMismatch",
            "another size: the last part's hash holds its length"
        );
    }
}
