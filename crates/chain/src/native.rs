//! The native transport: reqwest on rustls. Needs a tokio runtime, as reqwest does.

use std::time::Duration;

use crate::client::{HttpAnswer, Transport, TransportError};

/// POSTs JSON with reqwest; a request that outlives its timeout is [`TransportError::Timeout`].
#[derive(Debug, Clone, Default)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses a client the caller configured (proxies, extra roots, …).
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

/// reqwest's own message is terse ("error sending request"); the sources say why.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl Transport for ReqwestTransport {
    async fn post(
        &self,
        url: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpAnswer, TransportError> {
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout
            } else {
                TransportError::Failed(describe(&e))
            }
        };
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(failed)?;
        Ok(HttpAnswer {
            status,
            body: body.to_vec(),
        })
    }
}
