//! The async RPC client: one request tried against several RPC URLs, each with a timeout.
//!
//! The client owns the policy (which URL next, how long to wait, which failures move on); a
//! [`Transport`] only moves bytes: `fetch` in the page ([`crate::web::FetchTransport`]),
//! reqwest natively ([`crate::native::ReqwestTransport`]), or anything a test supplies. Futures
//! are not required to be `Send`: the page is single-threaded and `fetch`'s futures are not.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::rpc::{self, AccessKeyView, BlockInfo, BlockRef, CallResult, RpcError};
use tabnode_identity::rpc::AccessKey;

/// What a transport got back: an HTTP status and the body's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a transport got no answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Failed(String),
}

/// Moves one JSON-RPC body to one URL and brings the answer back.
///
/// `timeout` bounds the whole exchange, body included; a transport reports running out of it as
/// [`TransportError::Timeout`] (natively reqwest's per-request timeout, in the page an
/// `AbortController` aborted by a timer).
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn post(
        &self,
        url: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpAnswer, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    async fn post(
        &self,
        url: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpAnswer, TransportError> {
        (**self).post(url, body, timeout).await
    }
}

/// One URL that did not give a usable answer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub url: String,
    pub error: RpcError,
}

/// A successful answer, with the URL that gave it and the URLs tried before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<V> {
    pub value: V,
    pub url: String,
    pub failed_over: Vec<Attempt>,
}

impl<V> Answer<V> {
    pub fn map<W>(self, f: impl FnOnce(V) -> W) -> Answer<W> {
        Answer {
            value: f(self.value),
            url: self.url,
            failed_over: self.failed_over,
        }
    }
}

/// A failed request: the final error, the URL it came from, and the URLs tried before.
///
/// If `error` is the chain's answer (`!error.is_node_failure()`), `url` is the node that gave
/// it; otherwise every URL failed and `error` is the last one's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub error: RpcError,
    pub url: Option<String>,
    pub failed_over: Vec<Attempt>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.url {
            Some(url) => write!(f, "{url}: {}", self.error)?,
            None => write!(f, "{}", self.error)?,
        }
        if !self.failed_over.is_empty() {
            write!(f, " (after")?;
            for (i, a) in self.failed_over.iter().enumerate() {
                let sep = if i == 0 { " " } else { "; " };
                write!(f, "{sep}{}: {}", a.url, a.error)?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for CallError {}

/// Why [`RpcClient::check_full_access`] did not accept a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyCheckError {
    #[error("{0}")]
    NotOnAccount(String),
    #[error("could not check the key with NEAR: {0}")]
    Unavailable(CallError),
}

/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A NEAR JSON-RPC client over a transport, with failover across `urls`.
///
/// A request goes to the URL that last answered (the first one at the start), then to the
/// others in order while each fails as a node ([`RpcError::is_node_failure`]: unreachable,
/// timed out, 5xx, not NEAR's shape, or NEAR's "try another node" errors). A JSON-RPC error
/// that is the chain's answer (unknown account, a contract panic, …) is returned at once.
pub struct RpcClient<T> {
    transport: T,
    urls: Vec<String>,
    timeout: Duration,
    preferred: AtomicUsize,
}

impl<T: Transport> RpcClient<T> {
    pub fn new<U: Into<String>>(transport: T, urls: impl IntoIterator<Item = U>) -> Self {
        Self {
            transport,
            urls: urls.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_TIMEOUT,
            preferred: AtomicUsize::new(0),
        }
    }

    /// Sets the per-request (per-URL) timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `body` and reads each answer with `parse`, failing over as described on the type.
    pub async fn request<V>(
        &self,
        body: &Value,
        parse: impl Fn(u16, &[u8]) -> Result<V, RpcError>,
    ) -> Result<Answer<V>, CallError> {
        if self.urls.is_empty() {
            return Err(CallError {
                error: RpcError::NoRpcUrls,
                url: None,
                failed_over: Vec::new(),
            });
        }
        let bytes = serde_json::to_vec(body).expect("a JSON value always serializes");
        let start = self.preferred.load(Ordering::Relaxed) % self.urls.len();
        let mut failed: Vec<Attempt> = Vec::new();
        for i in 0..self.urls.len() {
            let index = (start + i) % self.urls.len();
            let url = &self.urls[index];
            let outcome = match self.transport.post(url, &bytes, self.timeout).await {
                Err(TransportError::Timeout) => Err(RpcError::Timeout {
                    after_ms: self.timeout.as_millis() as u64,
                }),
                Err(TransportError::Failed(message)) => Err(RpcError::Transport { message }),
                Ok(answer) => parse(answer.status, &answer.body),
            };
            match outcome {
                Ok(value) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(Answer {
                        value,
                        url: url.clone(),
                        failed_over: failed,
                    });
                }
                Err(error) if error.is_node_failure() => failed.push(Attempt {
                    url: url.clone(),
                    error,
                }),
                Err(error) => {
                    // The chain answered: this node works, keep asking it first.
                    self.preferred.store(index, Ordering::Relaxed);
                    return Err(CallError {
                        error,
                        url: Some(url.clone()),
                        failed_over: failed,
                    });
                }
            }
        }
        let last = failed.pop().expect("at least one URL was tried");
        Err(CallError {
            error: last.error,
            url: Some(last.url),
            failed_over: failed,
        })
    }

    /// `query` / `call_function` with raw argument bytes.
    pub async fn call_function(
        &self,
        account_id: &str,
        method_name: &str,
        args: &[u8],
        at: &BlockRef,
    ) -> Result<Answer<CallResult>, CallError> {
        let body = rpc::call_function_request(account_id, method_name, args, at);
        self.request(&body, rpc::parse_call_function).await
    }

    /// A view call with JSON arguments and a JSON result decoded into `R`. An answer whose
    /// bytes are not the expected JSON counts as a node failure, so the next URL is tried.
    pub async fn view<A: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        account_id: &str,
        method_name: &str,
        args: &A,
        at: &BlockRef,
    ) -> Result<Answer<R>, CallError> {
        let args = serde_json::to_vec(args).map_err(|e| CallError {
            error: RpcError::Malformed {
                what: format!("arguments of `{method_name}` do not serialize: {e}"),
            },
            url: None,
            failed_over: Vec::new(),
        })?;
        let body = rpc::call_function_request(account_id, method_name, &args, at);
        self.request(&body, |status, bytes| {
            rpc::parse_call_function(status, bytes)?.json::<R>(method_name)
        })
        .await
    }

    /// `query` / `view_access_key`.
    pub async fn view_access_key(
        &self,
        account_id: &str,
        public_key: &str,
        at: &BlockRef,
    ) -> Result<Answer<AccessKeyView>, CallError> {
        let body = rpc::view_access_key_request(account_id, public_key, at);
        self.request(&body, |status, bytes| {
            rpc::parse_view_access_key(status, bytes).map_err(|e| match e {
                RpcError::UnknownAccessKey { public_key: k } if k.is_empty() => {
                    RpcError::UnknownAccessKey {
                        public_key: public_key.to_owned(),
                    }
                }
                other => other,
            })
        })
        .await
    }

    /// Whether `public_key` (`ed25519:…`) is a full-access key of `account_id`: what a wallet's
    /// NEP-413 signature must come from to speak for the account. `NotOnAccount` is the chain's
    /// answer (an unknown key or account, or only a function-call key); `Unavailable` means no
    /// URL could say.
    pub async fn check_full_access(
        &self,
        account_id: &str,
        public_key: &str,
    ) -> Result<(), KeyCheckError> {
        match self
            .view_access_key(account_id, public_key, &BlockRef::Final)
            .await
        {
            Ok(answer) if answer.value.permission == AccessKey::FullAccess => Ok(()),
            Ok(_) => Err(KeyCheckError::NotOnAccount(format!(
                "{public_key} is only a function-call key of {account_id}, not a full-access key"
            ))),
            Err(e) => match e.error {
                RpcError::UnknownAccessKey { .. } | RpcError::UnknownAccount { .. } => {
                    Err(KeyCheckError::NotOnAccount(format!(
                        "{public_key} is not a key of {account_id}: {e}"
                    )))
                }
                _ => Err(KeyCheckError::Unavailable(e)),
            },
        }
    }

    /// `block`.
    pub async fn block(&self, at: &BlockRef) -> Result<Answer<BlockInfo>, CallError> {
        let body = rpc::block_request(at);
        self.request(&body, rpc::parse_block).await
    }
}
