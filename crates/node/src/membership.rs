//! Who may write to a context: membership certificates chained to the context's own key.
//!
//! A context id is the public half of a key made at creation; that key certifies the creator
//! as the first admin. An admin signs invitations (role, expiry, how many joins it admits, a
//! one-time invite key whose secret travels in the link); a joiner proves it holds the link by
//! signing its own key with the invite key. The resulting certificate chain is checked by every
//! member on every delta, so a non-member's delta is refused whatever its signature.
//!
//! The link carries no context secret. A certificate from an invitation counts only once a
//! member has admitted it in the membership log ([`crate::MemberOp::Admit`]): that member saw
//! the join before the invitation expired, by its own clock, and the invitation was not used
//! up or revoked; it then seals the context's secret to the joiner's key (see
//! [`crate::Node::join`]).

use borsh::io::{ErrorKind, Read};
use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_identity::grant::{SignedGrant, SignedRevocation};
use tabnode_types::{verify_signature, AppId, ContextId, PublicKey, SecretKey, Signature};

use crate::error::NodeError;

/// What a member may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, writes and invites.
    Admin,
    /// Reads and writes.
    Member,
    /// Reads only.
    Reader,
}

impl Role {
    pub fn can_write(self) -> bool {
        !matches!(self, Self::Reader)
    }

    pub fn can_invite(self) -> bool {
        matches!(self, Self::Admin)
    }
}

/// Proof that `member` holds `role` in `context_id`.
///
/// Decoded by hand, not derived: a certificate nests one level per invitation or rotation, and
/// a derived decoder would follow any depth a message holds, to a stack overflow. See
/// [`ChainTooDeep`].
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize)]
pub struct MemberCert {
    pub context_id: ContextId,
    pub member: PublicKey,
    pub role: Role,
    pub issued: Issuance,
}

/// How a certificate was issued (decoded only as part of a [`MemberCert`]).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize)]
pub enum Issuance {
    /// The context key made `member` the first admin.
    Genesis { signature: Signature },
    /// `member` redeemed an invitation at `joined_at` (ns since the epoch).
    Invited {
        invitation: Box<InvitationGrant>,
        joined_at: u64,
        join_signature: Signature,
    },
    /// `member` is the client key that took the place of `from.member`: the root that holds
    /// both granted it (`grant`) and revoked the one it replaces (`revocation`). The certificate
    /// alone lets it read; its role comes from the rotation in the membership log, which counts
    /// only if the replaced key was bound to that root (see [`crate::log::MemberOp::Rotate`]).
    Rotated {
        from: Box<MemberCert>,
        grant: Box<SignedGrant>,
        revocation: Box<SignedRevocation>,
    },
}

/// An admin's signed offer of a role, redeemable by whoever holds the invite key's secret.
/// Decoded by hand, with the certificate it carries (see [`MemberCert`]).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize)]
pub struct InvitationGrant {
    pub context_id: ContextId,
    pub app_id: AppId,
    pub role: Role,
    /// Ns since the epoch; a join a member first sees after it is refused.
    pub expires_at: u64,
    /// How many keys may join with it (1 unless the admin chose more).
    pub uses: u32,
    pub invite_key: PublicKey,
    pub inviter: MemberCert,
    pub signature: Signature,
}

/// Certificates nest one level per invitation or rotation; a longer chain is refused, when it
/// is decoded and when it is verified.
pub const MAX_CHAIN: usize = 32;
const PREFIX: &str = "tabnode-invite:";

/// The longest invitation text decoded: base58 takes time quadratic in its length (24 KiB, about
/// 0.3 s; 100,000 characters took 3 to 4 s), and a link is anyone's to paste. An invitation at
/// the deepest chain ([`MAX_CHAIN`] invitations) is about 14,000 characters; the rest is room for
/// key rotations in the chain.
pub const MAX_INVITATION_CHARS: usize = 24 * 1024;

fn bytes<T: BorshSerialize>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("borsh encoding cannot fail")
}

fn unauthorized(why: impl Into<String>) -> NodeError {
    NodeError::Unauthorized(why.into())
}

impl MemberCert {
    /// The creator's certificate, signed with the context key.
    pub fn genesis(context_key: &SecretKey, member: PublicKey) -> Self {
        let context_id = ContextId(context_key.public().0);
        let signature = context_key.sign(&bytes(&(b"tabnode-genesis-v1", &context_id, &member)));
        Self {
            context_id,
            member,
            role: Role::Admin,
            issued: Issuance::Genesis { signature },
        }
    }

    /// The certificate of the key that replaces this one (see [`Issuance::Rotated`]).
    pub fn rotated(&self, grant: SignedGrant, revocation: SignedRevocation) -> Self {
        Self {
            context_id: self.context_id,
            member: grant.grant.client_key,
            role: self.role,
            issued: Issuance::Rotated {
                from: Box::new(self.clone()),
                grant: Box::new(grant),
                revocation: Box::new(revocation),
            },
        }
    }

    /// The invite key of the invitation this certificate, or the one a rotation replaced, was
    /// redeemed from: such a certificate counts only once a member admitted that join in the
    /// membership log (see [`crate::MemberOp::Admit`]).
    pub fn invite_key(&self) -> Option<PublicKey> {
        let mut next = self;
        loop {
            match &next.issued {
                Issuance::Invited { invitation, .. } => return Some(invitation.invite_key),
                Issuance::Rotated { from, .. } => next = from,
                Issuance::Genesis { .. } => return None,
            }
        }
    }

    /// The role the certificate gives by itself, before the membership log: a rotated key's
    /// role is given by its rotation, in the log.
    pub fn standalone_role(&self) -> Role {
        match self.issued {
            Issuance::Rotated { .. } => Role::Reader,
            _ => self.role,
        }
    }

    /// Checks the whole chain back to the context key.
    pub fn verify(&self) -> Result<(), NodeError> {
        self.verify_depth(0)
    }

    fn verify_depth(&self, depth: usize) -> Result<(), NodeError> {
        if depth > MAX_CHAIN {
            return Err(unauthorized("the membership chain is too long"));
        }
        match &self.issued {
            Issuance::Genesis { signature } => {
                if self.role != Role::Admin {
                    return Err(unauthorized("a genesis certificate makes an admin"));
                }
                let context_key = PublicKey(self.context_id.0);
                let message = bytes(&(b"tabnode-genesis-v1", &self.context_id, &self.member));
                verify_signature(&context_key, &message, signature)
                    .map_err(|_| unauthorized("the context key did not certify this creator"))
            }
            Issuance::Invited {
                invitation,
                joined_at,
                join_signature,
            } => {
                if invitation.context_id != self.context_id || invitation.role != self.role {
                    return Err(unauthorized(
                        "the invitation is for another context or role",
                    ));
                }
                invitation.verify_depth(depth + 1)?;
                // The joiner's own claim; members enforce expiry by their clocks (see Admit).
                if *joined_at >= invitation.expires_at {
                    return Err(unauthorized("the invitation had expired when it was used"));
                }
                let message = join_message(&self.context_id, &self.member, *joined_at);
                verify_signature(&invitation.invite_key, &message, join_signature)
                    .map_err(|_| unauthorized("the joiner did not hold the invitation"))
            }
            Issuance::Rotated {
                from,
                grant,
                revocation,
            } => {
                if from.context_id != self.context_id || from.role != self.role {
                    return Err(unauthorized(
                        "a rotated key takes the replaced key's context and role",
                    ));
                }
                from.verify_depth(depth + 1)?;
                rotation_matches(&from.member, &self.member, grant, revocation)
                    .map_err(unauthorized)
            }
        }
    }

    /// Checks the chain and that it certifies `author` as a member of `context_id` (with the
    /// certificate's role; the membership log may since have changed it).
    pub fn authenticate(
        &self,
        context_id: &ContextId,
        author: &PublicKey,
    ) -> Result<(), NodeError> {
        if self.context_id != *context_id || self.member != *author {
            return Err(unauthorized(format!(
                "{author} shows no membership of {context_id}"
            )));
        }
        self.verify()
    }

    /// Checks the chain and that it certifies `author` as a writer of `context_id`.
    pub fn authorize_write(
        &self,
        context_id: &ContextId,
        author: &PublicKey,
    ) -> Result<(), NodeError> {
        self.authenticate(context_id, author)?;
        if !self.role.can_write() {
            return Err(unauthorized(format!(
                "{author} is a reader of {context_id}"
            )));
        }
        Ok(())
    }
}

/// Checks that one root granted `new` and revoked `old` (both signatures, and that they name
/// these keys): what a key rotation rests on.
pub fn rotation_matches(
    old: &PublicKey,
    new: &PublicKey,
    grant: &SignedGrant,
    revocation: &SignedRevocation,
) -> Result<(), String> {
    grant
        .verify_signature()
        .map_err(|e| format!("the new key's grant: {e}"))?;
    revocation
        .verify()
        .map_err(|e| format!("the old key's revocation: {e}"))?;
    if grant.grant.client_key != *new || revocation.revocation.client_key != *old || old == new {
        return Err("the rotation's grant and revocation are for other keys".into());
    }
    if grant.root.public_key() != revocation.root.public_key() {
        return Err("the rotation's grant and revocation come from different roots".into());
    }
    Ok(())
}

/// A certificate nested deeper than [`MAX_CHAIN`] levels (through invitations or rotations):
/// refused while it is decoded, before it can exhaust the stack. Verification would refuse it
/// anyway, so nothing valid is lost. Decoding reports it inside a `borsh::io::Error` (see
/// [`ChainTooDeep::in_error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a membership certificate nested deeper than {MAX_CHAIN} levels")]
pub struct ChainTooDeep;

impl ChainTooDeep {
    /// Whether a decoding error is this refusal.
    pub fn in_error(error: &borsh::io::Error) -> bool {
        error
            .get_ref()
            .is_some_and(|inner| inner.is::<ChainTooDeep>())
    }
}

impl BorshDeserialize for MemberCert {
    fn deserialize_reader<R: Read>(reader: &mut R) -> borsh::io::Result<Self> {
        read_cert(reader, 0)
    }
}

impl BorshDeserialize for InvitationGrant {
    fn deserialize_reader<R: Read>(reader: &mut R) -> borsh::io::Result<Self> {
        read_grant(reader, 0)
    }
}

/// Decodes a certificate `depth` levels down a chain, counted as [`MemberCert::verify`] counts
/// them; the bytes are those the derived encoder writes.
fn read_cert<R: Read>(reader: &mut R, depth: usize) -> borsh::io::Result<MemberCert> {
    if depth > MAX_CHAIN {
        return Err(borsh::io::Error::new(ErrorKind::InvalidData, ChainTooDeep));
    }
    let context_id = ContextId::deserialize_reader(reader)?;
    let member = PublicKey::deserialize_reader(reader)?;
    let role = Role::deserialize_reader(reader)?;
    let issued = match u8::deserialize_reader(reader)? {
        0 => Issuance::Genesis {
            signature: Signature::deserialize_reader(reader)?,
        },
        1 => {
            let invitation = Box::new(read_grant(reader, depth + 1)?);
            let joined_at = u64::deserialize_reader(reader)?;
            let join_signature = Signature::deserialize_reader(reader)?;
            Issuance::Invited {
                invitation,
                joined_at,
                join_signature,
            }
        }
        2 => {
            let from = Box::new(read_cert(reader, depth + 1)?);
            let grant = Box::<SignedGrant>::deserialize_reader(reader)?;
            let revocation = Box::<SignedRevocation>::deserialize_reader(reader)?;
            Issuance::Rotated {
                from,
                grant,
                revocation,
            }
        }
        tag => {
            return Err(borsh::io::Error::new(
                ErrorKind::InvalidData,
                format!("unknown kind of certificate issuance {tag}"),
            ))
        }
    };
    Ok(MemberCert {
        context_id,
        member,
        role,
        issued,
    })
}

/// Decodes an invitation whose inviter's certificate is `depth` levels down a chain.
fn read_grant<R: Read>(reader: &mut R, depth: usize) -> borsh::io::Result<InvitationGrant> {
    let context_id = ContextId::deserialize_reader(reader)?;
    let app_id = AppId::deserialize_reader(reader)?;
    let role = Role::deserialize_reader(reader)?;
    let expires_at = u64::deserialize_reader(reader)?;
    let uses = u32::deserialize_reader(reader)?;
    let invite_key = PublicKey::deserialize_reader(reader)?;
    let inviter = read_cert(reader, depth)?;
    let signature = Signature::deserialize_reader(reader)?;
    Ok(InvitationGrant {
        context_id,
        app_id,
        role,
        expires_at,
        uses,
        invite_key,
        inviter,
        signature,
    })
}

fn join_message(context_id: &ContextId, member: &PublicKey, joined_at: u64) -> Vec<u8> {
    bytes(&(b"tabnode-join-v1", context_id, member, joined_at))
}

fn invitation_body(
    context_id: &ContextId,
    app_id: &AppId,
    role: Role,
    (expires_at, uses): (u64, u32),
    invite_key: &PublicKey,
    inviter: &MemberCert,
) -> Vec<u8> {
    bytes(&(
        b"tabnode-invitation-v2",
        context_id,
        app_id,
        role,
        expires_at,
        uses,
        invite_key,
        inviter,
    ))
}

impl InvitationGrant {
    fn verify_depth(&self, depth: usize) -> Result<(), NodeError> {
        if self.inviter.context_id != self.context_id {
            return Err(unauthorized(
                "the inviter's certificate is for another context",
            ));
        }
        self.inviter.verify_depth(depth)?;
        if !self.inviter.role.can_invite() {
            return Err(unauthorized("only admins invite"));
        }
        let body = invitation_body(
            &self.context_id,
            &self.app_id,
            self.role,
            (self.expires_at, self.uses),
            &self.invite_key,
            &self.inviter,
        );
        verify_signature(&self.inviter.member, &body, &self.signature)
            .map_err(|_| unauthorized("the inviter's signature does not verify"))
    }
}

/// An invitation as shared: the admin's grant and the invite key's secret. It holds no context
/// secret: whoever holds the link can ask to join, and the first to ask (of `uses`) before it
/// expires is admitted by the members, who then seal the context's secret to it. Share it only
/// with the person invited; a link that leaked is used up by whoever asks first, which the
/// invitee notices when its own join is refused.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub grant: InvitationGrant,
    invite_secret: [u8; 32],
}

impl Invitation {
    /// An admin (holding `inviter`, signing with `key`) invites with `role` until `expires_at`,
    /// for `uses` joins.
    pub fn new(
        app_id: AppId,
        role: Role,
        (expires_at, uses): (u64, u32),
        inviter: MemberCert,
        key: &SecretKey,
        invite_secret: [u8; 32],
    ) -> Result<Self, NodeError> {
        if !inviter.role.can_invite() {
            return Err(unauthorized("only admins invite"));
        }
        let context_id = inviter.context_id;
        let invite_key = SecretKey::from_seed(invite_secret).public();
        let signature = key.sign(&invitation_body(
            &context_id,
            &app_id,
            role,
            (expires_at, uses),
            &invite_key,
            &inviter,
        ));
        Ok(Self {
            grant: InvitationGrant {
                context_id,
                app_id,
                role,
                expires_at,
                uses,
                invite_key,
                inviter,
                signature,
            },
            invite_secret,
        })
    }

    /// The text form: a prefix, then base58 of the grant and of the invite secret.
    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}{}.{}",
            bs58::encode(bytes(&self.grant)).into_string(),
            bs58::encode(self.invite_secret).into_string(),
        )
    }

    /// Parses and checks the whole chain (not the expiry: that is checked when it is used).
    pub fn decode(text: &str) -> Result<Self, NodeError> {
        let bad = |why: String| NodeError::BadInvitation(why);
        let text = text.trim();
        if text.len() > MAX_INVITATION_CHARS {
            return Err(bad(format!(
                "it is {} characters, an invitation is at most {MAX_INVITATION_CHARS}",
                text.len()
            )));
        }
        let body = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad(format!("it must start with {PREFIX:?}")))?;
        let mut parts = body.split('.');
        let (Some(grant), Some(secret), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("it must have two parts".into()));
        };
        let grant = tabnode_types::decode_base58(grant, MAX_INVITATION_CHARS)
            .map_err(|e| bad(format!("not base58: {e}")))?;
        let grant: InvitationGrant =
            borsh::from_slice(&grant).map_err(|e| bad(format!("malformed: {e}")))?;
        let secret: [u8; 32] = tabnode_types::decode_base58(secret, tabnode_types::MAX_ID_CHARS)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("the invite key is not 32 bytes of base58".into()))?;
        if SecretKey::from_seed(secret).public() != grant.invite_key {
            return Err(bad("the invite key does not match the invitation".into()));
        }
        grant.verify_depth(0).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            grant,
            invite_secret: secret,
        })
    }

    /// Redeems the invitation for `member` at `now`: its certificate.
    pub fn redeem(&self, member: PublicKey, now: u64) -> Result<MemberCert, NodeError> {
        if now >= self.grant.expires_at {
            return Err(NodeError::BadInvitation(
                "the invitation has expired".into(),
            ));
        }
        let context_id = self.grant.context_id;
        let join_signature =
            SecretKey::from_seed(self.invite_secret).sign(&join_message(&context_id, &member, now));
        Ok(MemberCert {
            context_id,
            member,
            role: self.grant.role,
            issued: Issuance::Invited {
                invitation: Box::new(self.grant.clone()),
                joined_at: now,
                join_signature,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> (SecretKey, MemberCert, SecretKey) {
        let context_key = SecretKey::from_seed([1; 32]);
        let creator = SecretKey::from_seed([2; 32]);
        let cert = MemberCert::genesis(&context_key, creator.public());
        (context_key, cert, creator)
    }

    #[test]
    fn a_joiner_gets_a_verifiable_certificate() {
        let (_, admin_cert, admin_key) = admin();
        admin_cert.verify().unwrap();
        let inv = Invitation::new(
            AppId([3; 32]),
            Role::Member,
            (1_000, 1),
            admin_cert.clone(),
            &admin_key,
            [4; 32],
        )
        .unwrap();
        let parsed = Invitation::decode(&inv.encode()).unwrap();
        let joiner = SecretKey::from_seed([5; 32]).public();
        let cert = parsed.redeem(joiner, 500).unwrap();
        cert.authorize_write(&admin_cert.context_id, &joiner)
            .unwrap();
        assert!(parsed.redeem(joiner, 1_000).is_err(), "expired");
        let other = SecretKey::from_seed([6; 32]).public();
        assert!(
            cert.authorize_write(&admin_cert.context_id, &other)
                .is_err(),
            "someone else's cert"
        );
    }

    #[test]
    fn readers_non_admin_inviters_and_forgeries_are_refused() {
        let (_, admin_cert, admin_key) = admin();
        let context = admin_cert.context_id;
        let reader_inv = Invitation::new(
            AppId([3; 32]),
            Role::Reader,
            (1_000, 1),
            admin_cert.clone(),
            &admin_key,
            [4; 32],
        )
        .unwrap();
        let reader = SecretKey::from_seed([5; 32]);
        let reader_cert = reader_inv.redeem(reader.public(), 1).unwrap();
        let err = reader_cert
            .authorize_write(&context, &reader.public())
            .unwrap_err();
        assert!(err.to_string().contains("reader"), "{err}");
        assert!(Invitation::new(
            AppId([3; 32]),
            Role::Admin,
            (1_000, 1),
            reader_cert,
            &reader,
            [7; 32],
        )
        .is_err());

        // A key that is not the context key cannot mint a creator.
        let fake = MemberCert::genesis(&SecretKey::from_seed([9; 32]), reader.public());
        let forged = MemberCert {
            context_id: context,
            ..fake
        };
        assert!(forged.verify().is_err());

        // Changing the role inside a redeemed certificate breaks the chain.
        let member_inv = Invitation::new(
            AppId([3; 32]),
            Role::Reader,
            (1_000, 1),
            admin_cert,
            &admin_key,
            [8; 32],
        )
        .unwrap();
        let mut cert = member_inv.redeem(reader.public(), 1).unwrap();
        cert.role = Role::Member;
        assert!(cert.verify().is_err());
        let mut text = member_inv.encode();
        let i = text.find('.').unwrap() - 3; // inside the signed grant
        text.replace_range(i..i + 3, "abc");
        assert!(matches!(
            Invitation::decode(&text),
            Err(NodeError::BadInvitation(_))
        ));
    }

    #[test]
    fn the_deepest_invitation_fits_the_cap_and_longer_text_is_refused_at_once() {
        let (_, mut cert, mut key) = admin();
        let mut deepest = String::new();
        for depth in 0..MAX_CHAIN + 1 {
            let Ok(inv) = Invitation::new(
                AppId([3; 32]),
                Role::Admin,
                (1_000, 1),
                cert.clone(),
                &key,
                [depth as u8; 32],
            ) else {
                break;
            };
            let text = inv.encode();
            if Invitation::decode(&text).is_err() {
                break;
            }
            deepest = text;
            key = SecretKey::from_seed([100 + depth as u8; 32]);
            cert = inv.redeem(key.public(), 1).unwrap();
        }
        assert!(
            deepest.len() < MAX_INVITATION_CHARS * 3 / 4,
            "{} characters",
            deepest.len()
        );

        let started = std::time::Instant::now();
        let long = format!("{PREFIX}{}.{}", "z".repeat(100_000), "z".repeat(44));
        let err = Invitation::decode(&long).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        let grant = deepest.split('.').next().unwrap();
        let long_key = format!("{grant}.{}", "z".repeat(1_000));
        let err = Invitation::decode(&long_key).unwrap_err();
        assert!(err.to_string().contains("invite key"), "{err}");
    }
}
