//! The page's store at rest and in one tab: its secrets sealed under a non-extractable
//! WebCrypto key, and the Web Lock that keeps a second tab of the site off it.

use super::*;

#[wasm_bindgen(inline_js = r#"
const done = (request) => new Promise((resolve, reject) => {
  request.onsuccess = () => resolve(request.result);
  request.onerror = () => reject(request.error);
});
// The store's vault key: a non-extractable AES-GCM CryptoKey, kept (as a CryptoKey object, which
// stays non-extractable) in a database of its own, so no script can read its bytes.
export async function vaultKey(name) {
  const open = indexedDB.open('tabnode-vault', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('keys');
  const db = await done(open);
  try {
    let key = await done(db.transaction('keys').objectStore('keys').get(name));
    if (!key) {
      key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
      const tx = db.transaction('keys', 'readwrite');
      tx.objectStore('keys').put(key, name);
      await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
    }
    return key;
  } finally {
    db.close();
  }
}
export async function sealWith(key, plain) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const body = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, plain));
  const out = new Uint8Array(12 + body.length);
  out.set(iv);
  out.set(body, 12);
  return out;
}
export async function openWith(key, sealed) {
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.slice(0, 12) }, key, sealed.slice(12));
  return new Uint8Array(plain);
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = vaultKey)]
    pub(super) async fn vault_key(name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = sealWith)]
    async fn seal_with(key: &JsValue, plain: &[u8]) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = openWith)]
    async fn open_with(key: &JsValue, sealed: &[u8]) -> Result<JsValue, JsValue>;
}

/// Seals the node's secrets at rest with the store's non-extractable WebCrypto key.
pub(super) struct WebCryptoSealer {
    pub(super) key: JsValue,
}

pub(super) fn vault_error(what: &str, err: JsValue) -> StoreError {
    StoreError::Backend(format!(
        "{what}: {}",
        err.as_string().unwrap_or_else(|| format!("{err:?}"))
    ))
}

impl Sealer for WebCryptoSealer {
    async fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let sealed = seal_with(&self.key, plain)
            .await
            .map_err(|e| vault_error("sealing a key", e))?;
        Ok(Uint8Array::new(&sealed).to_vec())
    }

    async fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let plain = open_with(&self.key, sealed)
            .await
            .map_err(|e| vault_error("opening a sealed key (was the vault cleared?)", e))?;
        Ok(Uint8Array::new(&plain).to_vec())
    }
}

#[wasm_bindgen]
extern "C" {
    /// The page's Web Locks manager (`navigator.locks`).
    type LockManager;
    #[wasm_bindgen(method)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &Closure<dyn FnMut(JsValue) -> Promise>,
    ) -> Promise;
}

/// This page's hold on a store's Web Lock (see [`lock_store`]).
#[derive(Default)]
pub(super) struct StoreLock {
    /// Settles the promise the lock is held by; `None` with no Web Locks here.
    release: Rc<RefCell<Option<Function>>>,
}

impl StoreLock {
    /// Whether this page holds the lock (not so where there are no Web Locks): its node is then
    /// the store's only writer.
    pub(super) fn held(&self) -> bool {
        self.release.borrow().is_some()
    }

    /// Lets go of the lock: another tab may then open the store. Only when this page's node is
    /// gone (it crashed, see `crash`); otherwise the lock goes with the page.
    pub(super) fn release(&self) {
        if let Some(release) = self.release.borrow_mut().take() {
            let _ = release.call0(&JsValue::NULL);
        }
    }
}

/// Takes the store's Web Lock for as long as the page lives (or until [`StoreLock::release`]),
/// so two tabs of one origin never write one node's store at once. Fails with `StoreLocked` if
/// another tab holds it.
pub(super) async fn lock_store(db_name: &str) -> Result<StoreLock, JsValue> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())?;
    let locks = js_sys::Reflect::get(&navigator, &"locks".into())?;
    if locks.is_undefined() {
        tracing::warn!(
            "no Web Locks here (not a secure context?): another tab could open this store too"
        );
        return Ok(StoreLock::default());
    }
    let lock = StoreLock::default();
    let release = lock.release.clone();
    let (acquired_tx, acquired) = futures::channel::oneshot::channel::<bool>();
    let mut acquired_tx = Some(acquired_tx);
    let callback = Closure::<dyn FnMut(JsValue) -> Promise>::new(move |lock: JsValue| {
        let held = !lock.is_null();
        if let Some(tx) = acquired_tx.take() {
            let _ = tx.send(held);
        }
        if held {
            // Settles only on release: the lock is held until then, or until the page goes.
            Promise::new(&mut |resolve, _| *release.borrow_mut() = Some(resolve))
        } else {
            Promise::resolve(&JsValue::UNDEFINED)
        }
    });
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE)?;
    let manager: LockManager = locks.unchecked_into();
    let _ = manager.request(&format!("tabnode-store:{db_name}"), &options, &callback);
    callback.forget();
    if acquired.await.unwrap_or(false) {
        Ok(lock)
    } else {
        Err(usage_error(
            "StoreLocked",
            format!(
                "the node stored as {db_name:?} is open in another tab of this site; close it, or open this page with another store name (e.g. ?db=second)"
            ),
        ))
    }
}
