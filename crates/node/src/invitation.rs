//! Invitations: a signed, shareable string that lets another node join a context.

use borsh::{BorshDeserialize, BorshSerialize};
use tabnode_types::{verify_signature, AppId, ContextId, PublicKey, SecretKey, Signature};

use crate::error::NodeError;

/// What a joiner needs: which context, which app (by hash), and who invited it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Invitation {
    pub context_id: ContextId,
    pub app_id: AppId,
    pub inviter: PublicKey,
    /// When the inviter made it (ns since the epoch); expiry and roles come with membership.
    pub issued_at: u64,
    pub signature: Signature,
}

const PREFIX: &str = "tabnode-invite:";

impl Invitation {
    fn signed_bytes(
        context_id: &ContextId,
        app_id: &AppId,
        inviter: &PublicKey,
        at: u64,
    ) -> Vec<u8> {
        borsh::to_vec(&(b"tabnode-invitation-v1", context_id, app_id, inviter, at))
            .expect("borsh encoding cannot fail")
    }

    pub fn new(context_id: ContextId, app_id: AppId, key: &SecretKey, issued_at: u64) -> Self {
        let inviter = key.public();
        let signature = key.sign(&Self::signed_bytes(
            &context_id,
            &app_id,
            &inviter,
            issued_at,
        ));
        Self {
            context_id,
            app_id,
            inviter,
            issued_at,
            signature,
        }
    }

    /// The text form: a prefix and base58 of the borsh encoding, safe to put in a URL.
    pub fn encode(&self) -> String {
        let bytes = borsh::to_vec(self).expect("borsh encoding cannot fail");
        format!("{PREFIX}{}", bs58::encode(bytes).into_string())
    }

    /// Parses and verifies the inviter's signature.
    pub fn decode(text: &str) -> Result<Self, NodeError> {
        let bad = |why: String| NodeError::BadInvitation(why);
        let body = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad(format!("it must start with {PREFIX:?}")))?;
        let bytes = bs58::decode(body)
            .into_vec()
            .map_err(|e| bad(format!("not base58: {e}")))?;
        let invitation: Self =
            borsh::from_slice(&bytes).map_err(|e| bad(format!("malformed: {e}")))?;
        let signed = Self::signed_bytes(
            &invitation.context_id,
            &invitation.app_id,
            &invitation.inviter,
            invitation.issued_at,
        );
        verify_signature(&invitation.inviter, &signed, &invitation.signature)
            .map_err(|e| bad(format!("inviter's signature: {e}")))?;
        Ok(invitation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let key = SecretKey::from_seed([5; 32]);
        let inv = Invitation::new(ContextId([1; 32]), AppId([2; 32]), &key, 42);
        let text = inv.encode();
        assert_eq!(Invitation::decode(&text).unwrap(), inv);

        assert!(matches!(
            Invitation::decode("hello"),
            Err(NodeError::BadInvitation(_))
        ));
        assert!(matches!(
            Invitation::decode("tabnode-invite:0OIl"),
            Err(NodeError::BadInvitation(_))
        ));
        let mut forged = inv.clone();
        forged.app_id = AppId([3; 32]);
        let err = Invitation::decode(&forged.encode()).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
    }
}
