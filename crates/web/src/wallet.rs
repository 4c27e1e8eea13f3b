//! Reaching the user's NEAR wallet from the page: NEAR Connect's handshake, then the globals
//! today's injected wallets use (NEP-408); `signMessage` (NEP-413) and `signAndSendTransaction`
//! (wallet-selector's shape), each with a timeout. Only the glue lives here: [`PageWallet`] is
//! the page's implementation of `tabnode_identity::wallet::Wallet`; what is signed and how it
//! is checked is `tabnode-account`'s, `tabnode-identity`'s and `tabnode-chain`'s.

use tabnode_account::WALLET_ANSWER_MS;
use tabnode_identity::nep413::{Payload, SignedMessage};
use tabnode_identity::wallet::{TransactionWallet, Wallet, WalletError};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
const named = (name, message) => Object.assign(new Error(message), { name });
const GLOBALS = [
  () => window.near,                // Sender, and NEP-408's mount point
  () => window.nightly?.near,
  () => window.okxwallet?.near,
  () => window.coin98?.near,
  () => window.safepalwallet?.near,
];
export async function findWalletWith(waitMs, method) {
  // NEAR Connect: announce a selector; an extension answers with its wallet.
  const injected = await new Promise((resolve) => {
    const onInjected = (event) => resolve(event.detail);
    window.addEventListener('near-wallet-injected', onInjected, { once: true });
    window.dispatchEvent(new Event('near-selector-ready'));
    setTimeout(() => {
      window.removeEventListener('near-wallet-injected', onInjected);
      resolve(null);
    }, waitMs);
  });
  if (injected && typeof injected[method] === 'function') return injected;
  for (const get of GLOBALS) {
    const wallet = get();
    if (wallet && typeof wallet[method] === 'function') return wallet;
  }
  return null;
}
export function findWallet(waitMs) { return findWalletWith(waitMs, 'signMessage'); }
// A refusal by the user, as wallets word it; anything else thrown is a failure to send.
const REFUSAL = /reject|denied|declin|cancel/i;
export async function walletSignAndSend(wallet, transaction, timeoutMs) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(named('WalletTimeout', `the wallet did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  let answer;
  try {
    answer = await Promise.race([wallet.signAndSendTransaction(JSON.parse(transaction)), timeout]);
  } catch (err) {
    if (err?.name === 'WalletTimeout') throw err;
    const message = err?.message || String(err);
    // Some wallets throw a failed transaction's outcome (or carry it) instead of returning it.
    const outcome = err?.outcome ?? (err?.status && err?.transaction_outcome ? err : null);
    if (outcome) return JSON.stringify(outcome);
    if (REFUSAL.test(message)) throw named('WalletRejected', `the wallet refused the transaction: ${message}`);
    throw named('AnchorWriteFailed', `the wallet could not send the transaction: ${message}`);
  } finally {
    clearTimeout(timer);
  }
  return JSON.stringify(answer ?? null);
}
export async function walletSignMessage(wallet, message, nonce, recipient, timeoutMs) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(named('WalletTimeout', `the wallet did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  let answer;
  try {
    answer = await Promise.race([wallet.signMessage({ message, nonce, recipient }), timeout]);
  } catch (err) {
    if (err?.name === 'WalletTimeout') throw err;
    throw named('WalletRejected', `the wallet refused to sign: ${err?.message || err}`);
  } finally {
    clearTimeout(timer);
  }
  if (!answer) throw named('WalletRejected', 'the wallet returned nothing');
  if (answer.error) throw named('WalletRejected', `the wallet refused to sign: ${answer.error}`);
  return JSON.stringify(answer);
}
export function pageOrigin() { return location.origin; }
export function pageUrl() { return location.href; }
"#)]
extern "C" {
    /// The first wallet found, or `null`; waits `wait_ms` for a NEAR Connect answer.
    #[wasm_bindgen(js_name = findWallet)]
    pub async fn find_wallet(wait_ms: u32) -> JsValue;
    /// The wallet's answer as JSON text; errors are named `WalletRejected` or `WalletTimeout`.
    #[wasm_bindgen(catch, js_name = walletSignMessage)]
    pub async fn wallet_sign_message(
        wallet: &JsValue,
        message: &str,
        nonce: &[u8],
        recipient: &str,
        timeout_ms: u32,
    ) -> Result<JsValue, JsValue>;
    /// The first wallet found that has a `method` (e.g. `signAndSendTransaction`), or `null`.
    #[wasm_bindgen(js_name = findWalletWith)]
    pub async fn find_wallet_with(wait_ms: u32, method: &str) -> JsValue;
    /// Has the wallet sign and send `transaction` (JSON `{receiverId, actions}`); resolves to
    /// its answer (a `FinalExecutionOutcome`, or `null`) as JSON text; an outcome a wallet
    /// throws is returned too. Errors are named `WalletRejected` (the user refused),
    /// `WalletTimeout`, or `AnchorWriteFailed` (anything else the wallet threw, e.g. NEAR
    /// refusing the transaction, with its message).
    #[wasm_bindgen(catch, js_name = walletSignAndSend)]
    pub async fn wallet_sign_and_send(
        wallet: &JsValue,
        transaction: &str,
        timeout_ms: u32,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = pageOrigin)]
    pub fn page_origin() -> String;
    #[wasm_bindgen(js_name = pageUrl)]
    pub fn page_url() -> String;
}

/// The page's injected NEAR wallet, found afresh for each request (the user may have
/// installed or switched wallets since the last).
pub struct PageWallet;

impl Wallet for PageWallet {
    async fn sign_message(&self, payload: &Payload) -> Result<SignedMessage, WalletError> {
        let wallet = find_wallet(300).await;
        if wallet.is_null() || wallet.is_undefined() {
            return Err(WalletError::NotFound(
                "no NEAR wallet extension was found in this page".into(),
            ));
        }
        let answer = wallet_sign_message(
            &wallet,
            &payload.message,
            &payload.nonce,
            &payload.recipient,
            WALLET_ANSWER_MS,
        )
        .await
        .map_err(wallet_error)?;
        let answer: serde_json::Value =
            serde_json::from_str(&answer.as_string().unwrap_or_default()).map_err(|e| {
                WalletError::AnswerInvalid(format!("the wallet's answer is not JSON: {e}"))
            })?;
        SignedMessage::from_json(&answer).map_err(|e| WalletError::AnswerInvalid(e.to_string()))
    }
}

impl TransactionWallet for PageWallet {
    async fn sign_and_send(
        &self,
        transaction: &serde_json::Value,
    ) -> Result<serde_json::Value, WalletError> {
        let wallet = find_wallet_with(300, "signAndSendTransaction").await;
        if wallet.is_null() || wallet.is_undefined() {
            return Err(WalletError::NotFound(
                "no NEAR wallet that sends transactions was found in this page".into(),
            ));
        }
        let answer = wallet_sign_and_send(&wallet, &transaction.to_string(), WALLET_ANSWER_MS)
            .await
            .map_err(wallet_error)?;
        // An answer that is not JSON is no outcome: the flow says so.
        Ok(serde_json::from_str(&answer.as_string().unwrap_or_default()).unwrap_or_default())
    }
}

/// What the glue above threw, by its name (`WalletRejected`, `WalletTimeout`,
/// `AnchorWriteFailed`), as the wallet's error with the same message.
pub fn wallet_error(err: JsValue) -> WalletError {
    let field = |name: &str| {
        js_sys::Reflect::get(&err, &name.into())
            .ok()
            .and_then(|v| v.as_string())
    };
    let message = field("message")
        .or_else(|| err.as_string())
        .unwrap_or_else(|| format!("{err:?}"));
    match field("name").as_deref() {
        Some("WalletTimeout") => WalletError::Timeout(message),
        Some("AnchorWriteFailed") => WalletError::SendFailed(message),
        Some("WalletRejected") => WalletError::Rejected(message),
        _ => WalletError::AnswerInvalid(message),
    }
}
