//! Sign-in with a NEAR wallet in one signature: the node asks the wallet to sign a grant of the
//! node's client key whose nonce is a fresh challenge. The signature proves the wallet holds the
//! account's key now (fresh nonce, this origin as recipient) and delegates to the client key.

use tabnode_types::PublicKey;

use crate::challenge::{ChallengeError, Challenges};
use crate::grant::{hex_nonce, Capability, Grant, GrantError, Scope, SignedGrant};
use crate::nep413::{Payload, SignedMessage};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    #[error(transparent)]
    Grant(#[from] GrantError),
}

/// Sign-ins in progress.
#[derive(Debug, Default)]
pub struct SignIn {
    challenges: Challenges,
}

/// What to ask the wallet to sign, and the grant it will make valid.
#[derive(Debug, Clone)]
pub struct SignInRequest {
    pub grant: Grant,
    pub payload: Payload,
}

impl SignIn {
    /// A grant of `client_key` (all contexts, every capability) for `valid_for_ms`, with a fresh
    /// nonce the wallet must sign within `answer_within_ms`.
    pub fn request(
        &mut self,
        client_key: PublicKey,
        recipient: &str,
        nonce: [u8; 32],
        now_ms: u64,
        valid_for_ms: u64,
        answer_within_ms: u64,
    ) -> Result<SignInRequest, SignInError> {
        self.challenges
            .issue(nonce, recipient, now_ms, answer_within_ms);
        let grant = Grant {
            client_key,
            scope: Scope::All,
            capabilities: vec![Capability::Read, Capability::Write, Capability::Admin],
            not_before: now_ms,
            expires_at: now_ms + valid_for_ms,
            nonce: hex_nonce(nonce),
        };
        let payload = grant.payload(recipient, None)?;
        Ok(SignInRequest { grant, payload })
    }

    /// Checks the wallet's answer: the nonce is ours, unused and in time, and the signature is
    /// over exactly the grant. Returns the grant, signed by the account's key.
    pub fn complete(
        &mut self,
        request: SignInRequest,
        answer: &SignedMessage,
        now_ms: u64,
        page_url: Option<&str>,
    ) -> Result<SignedGrant, SignInError> {
        self.challenges.take(&request.payload.nonce, now_ms)?;
        let signed =
            SignedGrant::from_wallet(request.grant, &request.payload.recipient, answer, page_url)?;
        signed.verify(now_ms)?;
        Ok(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use tabnode_types::SecretKey;

    fn answer(wallet: &SecretKey, payload: &Payload) -> SignedMessage {
        SignedMessage {
            account_id: "alice.near".into(),
            public_key: format!("ed25519:{}", wallet.public()),
            signature: base64::engine::general_purpose::STANDARD.encode(payload.sign(wallet).0),
            state: None,
        }
    }

    #[test]
    fn one_signature_signs_in_and_delegates_once() {
        let wallet = SecretKey::from_seed([1; 32]);
        let client = SecretKey::from_seed([2; 32]).public();
        let mut sign_in = SignIn::default();
        let request = sign_in
            .request(
                client,
                "http://127.0.0.1:8080",
                [3; 32],
                1_000,
                60_000,
                5_000,
            )
            .unwrap();
        let reply = answer(&wallet, &request.payload);
        let grant = sign_in
            .complete(request.clone(), &reply, 2_000, None)
            .unwrap();
        assert_eq!(grant.grant.client_key, client);
        assert!(matches!(
            sign_in.complete(request, &reply, 2_001, None),
            Err(SignInError::Challenge(ChallengeError::UnknownOrUsed))
        ));

        let late = sign_in
            .request(
                client,
                "http://127.0.0.1:8080",
                [4; 32],
                1_000,
                60_000,
                5_000,
            )
            .unwrap();
        let reply = answer(&wallet, &late.payload);
        assert!(matches!(
            sign_in.complete(late, &reply, 9_000, None),
            Err(SignInError::Challenge(ChallengeError::Expired(_)))
        ));

        let other = sign_in
            .request(
                client,
                "http://127.0.0.1:8080",
                [5; 32],
                1_000,
                60_000,
                5_000,
            )
            .unwrap();
        let mut wrong = other.payload.clone();
        wrong.recipient = "http://evil.example".into();
        let reply = answer(&wallet, &wrong);
        assert!(matches!(
            sign_in.complete(other, &reply, 2_000, None),
            Err(SignInError::Grant(_))
        ));
    }
}
