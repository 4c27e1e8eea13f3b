//! Who the node acts for: `BrowserNode`'s sign-in, key revocation and rotation, as a few
//! lines each over `tabnode_account`'s flows with the page's wallet ([`crate::wallet::PageWallet`]).

use super::*;

#[wasm_bindgen]
impl BrowserNode {
    /// Signs in with the user's NEAR wallet (NEP-408 injected, or NEAR Connect): one
    /// `signMessage` grants this node's key, with a fresh nonce and this page's origin as
    /// recipient, verified here. Options: `{account?: string}` to require a given account.
    /// Resolves to `{accountId, rootPublicKey, clientKey, expiresAt}`. The flow is
    /// `tabnode_account`'s ([`Account::sign_in`]).
    #[wasm_bindgen(js_name = signIn, unchecked_return_type = "Promise<Identity>")]
    pub fn sign_in(
        &self,
        #[wasm_bindgen(unchecked_param_type = "{ account?: string }")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let expected = if options.is_object() {
                js_sys::Reflect::get(&options, &"account".into())?.as_string()
            } else {
                None
            };
            let view = inner
                .account()
                .sign_in(&inner.sign_in, &*inner, expected)
                .await
                .map_err(flow_error)?;
            to_js(&view)
        })
    }

    /// Revokes a client key (another device's node key, or this one's) with the user's NEAR
    /// wallet: the wallet signs the revocation (NEP-413), verified here, and this node carries
    /// it into every context it holds where that key is bound to the same root. From there on
    /// every member refuses what the key signs. Resolves to the ids of those contexts.
    #[wasm_bindgen(js_name = revokeKey, unchecked_return_type = "Promise<string[]>")]
    pub fn revoke_key(&self, client_key: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let client_key = parse_id_key(&client_key)?;
            let contexts = inner
                .account()
                .revoke(&*inner, client_key)
                .await
                .map_err(flow_error)?;
            let ids: Vec<String> = contexts.iter().map(ToString::to_string).collect();
            to_js(&ids)
        })
    }

    /// Rotates this node's key in one step (after sign-in): the node makes a new key; the
    /// wallet signs its grant (same scope and capabilities as the current one) and the
    /// revocation of the current key (two `signMessage`s, both checked here, from the same
    /// account); then in every context the new key takes the current one's place and role,
    /// the context gets a new secret, and this node signs with the new key from there on.
    /// Resolves to the new identity; `publicKey` changes.
    #[wasm_bindgen(js_name = rotateKey, unchecked_return_type = "Promise<Identity>")]
    pub fn rotate_key(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let view = inner.account().rotate(&*inner).await.map_err(flow_error)?;
            *inner.public_key.borrow_mut() = view.client_key.clone();
            to_js(&view)
        })
    }

    /// Who this node acts for (`null` before sign-in or once the grant expired).
    #[wasm_bindgen(unchecked_return_type = "Promise<Identity | null>")]
    pub fn identity(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let now_ms = js_sys::Date::now() as u64;
            match identity(&*inner, now_ms).await.map_err(flow_error)? {
                Some(view) => to_js(&view),
                None => Ok(JsValue::NULL),
            }
        })
    }
}
