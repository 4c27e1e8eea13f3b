//! Reaching the user's NEAR wallet from the page: NEAR Connect's handshake, then the globals
//! today's injected wallets use (NEP-408), and `signMessage` (NEP-413) with a timeout. Only the
//! glue lives here; what is signed and how it is checked is `tabnode-identity`'s.

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
export async function findWallet(waitMs) {
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
  if (injected && typeof injected.signMessage === 'function') return injected;
  for (const get of GLOBALS) {
    const wallet = get();
    if (wallet && typeof wallet.signMessage === 'function') return wallet;
  }
  return null;
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
    #[wasm_bindgen(js_name = pageOrigin)]
    pub fn page_origin() -> String;
    #[wasm_bindgen(js_name = pageUrl)]
    pub fn page_url() -> String;
}
