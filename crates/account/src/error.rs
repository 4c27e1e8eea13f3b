//! Why a flow stopped. Each kind is the name of the JS error a page sees (`error.name`).

use tabnode_identity::wallet::WalletError;
use tabnode_node::NodeError;
use tabnode_types::PublicKey;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The wallet gave no answer to use (not found, refused, too slow, malformed).
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// The wallet signed for another account than the one asked for (or signed in).
    #[error("the wallet signed as {signed}, not {expected}")]
    WrongAccount { signed: String, expected: String },
    /// The sign-in could not be asked for.
    #[error("{0}")]
    SignInFailed(String),
    /// The wallet's signature is not over what it was asked to sign (another nonce, site or
    /// message; an answer replayed), or the challenge was used or expired.
    #[error("{0}")]
    SignatureInvalid(String),
    /// The chain says the key that signed is not a full-access key of the account.
    #[error("{0}")]
    KeyNotOnAccount(String),
    /// No NEAR RPC could say whether it is.
    #[error("{0}")]
    RpcUnavailable(String),
    /// A revoked key bound to the wallet's account in none of this node's contexts.
    #[error("{0} is bound to this wallet's account in none of this node's contexts")]
    NotBound(PublicKey),
    /// Rotation needs a current sign-in.
    #[error("sign in with the wallet before rotating this node's key")]
    NotSignedIn,
    /// The contract could not be read to plan an anchor write.
    #[error("{0}")]
    AnchorReadFailed(String),
    /// The NEAR RPC endpoints gave different answers for what the contract records (a quorum
    /// of them must agree before anything is signed): nothing was signed or sent.
    #[error("{0}")]
    AnchorNoQuorum(String),
    /// The contract would refuse this node's key (not a member there, or not privileged).
    #[error("{0}")]
    AnchorUnauthorized(String),
    /// The contract refused the anchor write's transaction.
    #[error("{0}")]
    AnchorWriteFailed(String),
    /// A proposal holds an action only a chain runs (`Transfer`, `ExternalFunctionCall`), and
    /// no chain is configured or the contract does not record the context: nothing was sent.
    #[error("{0}")]
    NeedsChain(String),
    /// The context's proxy contract refused this member's proposal or approval.
    #[error("{0}")]
    ProxyRefused(String),
    /// The wallet could not send this member's proposal or approval to the proxy contract
    /// (anything it threw that is not a refusal, e.g. a network error): nothing reached the
    /// proxy, and the part may be sent again.
    #[error("{0}")]
    ProxySendFailed(String),
    #[error("{0}")]
    RevocationFailed(String),
    #[error("{0}")]
    RotationFailed(String),
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl FlowError {
    /// A short, stable name for the kind of error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Wallet(e) => e.kind(),
            Self::WrongAccount { .. } => "WrongAccount",
            Self::SignInFailed(_) => "SignInFailed",
            Self::SignatureInvalid(_) => "SignatureInvalid",
            Self::KeyNotOnAccount(_) => "KeyNotOnAccount",
            Self::RpcUnavailable(_) => "RpcUnavailable",
            Self::NotBound(_) => "NotBound",
            Self::NotSignedIn => "NotSignedIn",
            Self::AnchorReadFailed(_) => "AnchorReadFailed",
            Self::AnchorNoQuorum(_) => "AnchorNoQuorum",
            Self::AnchorUnauthorized(_) => "AnchorUnauthorized",
            Self::AnchorWriteFailed(_) => "AnchorWriteFailed",
            Self::NeedsChain(_) => "NeedsChain",
            Self::ProxyRefused(_) => "ProxyRefused",
            Self::ProxySendFailed(_) => "ProxySendFailed",
            Self::RevocationFailed(_) => "RevocationFailed",
            Self::RotationFailed(_) => "RotationFailed",
            Self::Node(e) => e.kind(),
        }
    }

    /// Refuses an answer the wallet signed as another account than `expected`.
    pub(crate) fn unless_account(signed: &str, expected: &str) -> Result<(), Self> {
        if signed == expected {
            return Ok(());
        }
        Err(Self::WrongAccount {
            signed: signed.to_owned(),
            expected: expected.to_owned(),
        })
    }
}
