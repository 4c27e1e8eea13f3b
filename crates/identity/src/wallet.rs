//! The user's NEAR wallet as the node sees it: something that signs a NEP-413 message and
//! names the account it signed for. In the page it is the injected wallet (`tabnode-web`'s
//! JS bridge); natively and in tests it is [`KeyWallet`], an ed25519 key that signs exactly as
//! a wallet does. What is signed and how the answer is checked is not the wallet's business:
//! the flows in `tabnode-account` decide it, over this trait.

use base64::Engine;
use tabnode_types::{PublicKey, SecretKey};

use crate::nep413::{Payload, SignedMessage};

/// Why a wallet gave no answer to use. Each kind is the name of the JS error a page sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// No wallet is reachable from here.
    #[error("{0}")]
    NotFound(String),
    /// The user (or the wallet) refused.
    #[error("{0}")]
    Rejected(String),
    /// The wallet did not answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The wallet answered something that is not a signed message.
    #[error("{0}")]
    AnswerInvalid(String),
    /// The wallet could not send a transaction it was asked to sign and send.
    #[error("{0}")]
    SendFailed(String),
}

impl WalletError {
    /// The error's kind, as the page names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "WalletNotFound",
            Self::Rejected(_) => "WalletRejected",
            Self::Timeout(_) => "WalletTimeout",
            Self::AnswerInvalid(_) => "WalletAnswerInvalid",
            Self::SendFailed(_) => "AnchorWriteFailed",
        }
    }
}

/// A NEAR wallet: signs NEP-413 messages (`signMessage`). Its answer names the account
/// ([`SignedMessage::account_id`]) and the key that signed; nothing in it is trusted until a
/// flow has verified it. Async because the real wallet answers when the user has decided.
#[allow(async_fn_in_trait)]
pub trait Wallet {
    /// Has the wallet sign `payload`; its answer, not yet verified.
    async fn sign_message(&self, payload: &Payload) -> Result<SignedMessage, WalletError>;
}

/// A wallet that is one full-access key of one account, signing here: the native wallet (a
/// CLI, tests). Its signatures are real NEP-413 signatures, byte for byte what a browser
/// wallet holding the same key returns.
#[derive(Debug, Clone)]
pub struct KeyWallet {
    account_id: String,
    key: SecretKey,
    callback_url: Option<String>,
}

impl KeyWallet {
    pub fn new(account_id: impl Into<String>, key: SecretKey) -> Self {
        Self {
            account_id: account_id.into(),
            key,
            callback_url: None,
        }
    }

    /// A wallet for NEAR's secret-key text (`ed25519:` + base58 of seed ‖ public key), as
    /// near-cli and wallets export it; `None` if it is not one.
    pub fn from_near_secret(account_id: impl Into<String>, secret: &str) -> Option<Self> {
        let bytes = bs58::decode(secret.strip_prefix("ed25519:")?)
            .into_vec()
            .ok()?;
        let seed: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
        let key = SecretKey::from_seed(seed);
        let public_matches = bytes.len() == 64 && bytes[32..] == key.public().0;
        public_matches.then(|| Self::new(account_id, key))
    }

    /// Signs with `url` as the callbackUrl even when none was asked for, as some wallets do
    /// (MyNearWallet adds the page's URL): what verifiers must also accept.
    pub fn adding_callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }
}

impl Wallet for KeyWallet {
    async fn sign_message(&self, payload: &Payload) -> Result<SignedMessage, WalletError> {
        let signed = match (&payload.callback_url, &self.callback_url) {
            (None, Some(url)) => Payload {
                callback_url: Some(url.clone()),
                ..payload.clone()
            },
            _ => payload.clone(),
        };
        let signature = signed.sign(&self.key);
        Ok(SignedMessage {
            account_id: self.account_id.clone(),
            public_key: format!("ed25519:{}", self.key.public()),
            signature: base64::engine::general_purpose::STANDARD.encode(signature.0),
            state: None,
        })
    }
}

/// A NEAR wallet that also signs and sends transactions (wallet-selector's
/// `signAndSendTransaction`, `{receiverId, actions}`): what writes a context's anchor. Its
/// answer is what the wallet returned, normally NEAR's `FinalExecutionOutcome`, read by the
/// flow that asked. [`KeyWallet`] does not send transactions: it has no chain to send them to.
#[allow(async_fn_in_trait)]
pub trait TransactionWallet {
    async fn sign_and_send(
        &self,
        transaction: &serde_json::Value,
    ) -> Result<serde_json::Value, WalletError>;
}
