//! The contract the double keeps: its views and its `mutate`, as calimero-network/contracts'
//! context-config (`contracts/near/context-config/src/`) has them.

use super::*;
pub(super) fn guest_panic(message: &str) -> String {
    format!("wasm execution failed with error: HostError(GuestPanic {{ panic_msg: {message:?} }})")
}

/// near-sdk's message when the JSON arguments do not fit the method's parameters.
pub(super) fn bad_input() -> String {
    guest_panic("Failed to deserialize input from JSON.")
}

fn arg_id(args: &Value, key: &str) -> Result<Id, String> {
    let text = args
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(bad_input)?;
    let bytes = bs58::decode(text).into_vec().map_err(|_| bad_input())?;
    bytes.try_into().map_err(|_| bad_input())
}

fn arg_usize(args: &Value, key: &str) -> Result<usize, String> {
    args.get(key)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(bad_input)
}

/// The contract's views, as in `contracts/near/context-config/src/query.rs`.
pub(super) fn view(chain: &Chain, method: &str, args: &[u8]) -> Result<Value, String> {
    let args: Value = serde_json::from_slice(args).map_err(|_| bad_input())?;
    if !args.is_object() {
        return Err(bad_input());
    }
    let context = |args: &Value| -> Result<&Context, String> {
        let id = arg_id(args, "context_id")?;
        chain
            .contexts
            .get(&id)
            .ok_or_else(|| guest_panic("context does not exist"))
    };
    match method {
        "application" => Ok(context(&args)?.application.to_json()),
        "application_revision" => Ok(json!(context(&args)?.application_revision)),
        "proxy_contract" => Ok(json!(context(&args)?.proxy)),
        "members" => {
            let c = context(&args)?;
            let offset = arg_usize(&args, "offset")?;
            let length = arg_usize(&args, "length")?;
            Ok(json!(c
                .members
                .iter()
                .skip(offset)
                .take(length)
                .map(|m| b58(m))
                .collect::<Vec<_>>()))
        }
        "has_member" => {
            let c = context(&args)?;
            let identity = arg_id(&args, "identity")?;
            Ok(json!(c.members.contains(&identity)))
        }
        "members_revision" => Ok(json!(context(&args)?.members_revision)),
        "privileges" => {
            let c = context(&args)?;
            let identities = args
                .get("identities")
                .and_then(Value::as_array)
                .ok_or_else(bad_input)?
                .iter()
                .map(|v| {
                    let bytes = bs58::decode(v.as_str().ok_or_else(bad_input)?)
                        .into_vec()
                        .map_err(|_| bad_input())?;
                    Id::try_from(bytes).map_err(|_| bad_input())
                })
                .collect::<Result<Vec<Id>, String>>()?;
            let mut out: BTreeMap<Id, Vec<&str>> = BTreeMap::new();
            if identities.is_empty() {
                for s in &c.application_privileged {
                    out.entry(*s).or_default().push("ManageApplication");
                }
                for s in &c.members_privileged {
                    out.entry(*s).or_default().push("ManageMembers");
                }
            } else {
                for s in identities {
                    let entry = out.entry(s).or_default();
                    if c.application_privileged.contains(&s) {
                        entry.push("ManageApplication");
                    }
                    if c.members_privileged.contains(&s) {
                        entry.push("ManageMembers");
                    }
                }
            }
            let map: Map<String, Value> = out.into_iter().map(|(k, v)| (b58(&k), json!(v))).collect();
            Ok(Value::Object(map))
        }
        "fetch_nonce" => {
            let context_id = arg_id(&args, "context_id")?;
            let member = arg_id(&args, "member_id")?;
            Ok(json!(chain
                .contexts
                .get(&context_id)
                .and_then(|c| c.nonces.get(&member))))
        }
        "mutate" => Err(
            "wasm execution failed with error: HostError(ProhibitedInView { method_name: \"storage_write\" })"
                .to_owned(),
        ),
        _ => Err("wasm execution failed with error: MethodResolveError(MethodNotFound)".to_owned()),
    }
}

fn exact_keys(value: &Value, keys: &[&str]) -> Result<(), String> {
    let Value::Object(o) = value else {
        return Err("failed to parse input".into());
    };
    let have: BTreeSet<&str> = o.keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = keys.iter().copied().collect();
    if have == want {
        Ok(())
    } else {
        Err(format!(
            "failed to parse input: fields {have:?}, expected {want:?}"
        ))
    }
}

fn id_of(v: &Value) -> Result<Id, String> {
    let text = v
        .as_str()
        .ok_or("failed to parse input: id is not a string")?;
    let bytes = bs58::decode(text)
        .into_vec()
        .map_err(|_| "failed to parse input: id is not base58".to_owned())?;
    Id::try_from(bytes).map_err(|_| "failed to parse input: id is not 32 bytes".to_owned())
}

fn app_of(v: &Value) -> Result<App, String> {
    exact_keys(v, &["id", "blob", "size", "source", "metadata"])?;
    Ok(App {
        id: id_of(&v["id"])?,
        blob: id_of(&v["blob"])?,
        size: v["size"].as_u64().ok_or("failed to parse input: size")?,
        source: v["source"]
            .as_str()
            .ok_or("failed to parse input: source")?
            .to_owned(),
        metadata: bs58::decode(
            v["metadata"]
                .as_str()
                .ok_or("failed to parse input: metadata")?,
        )
        .into_vec()
        .map_err(|_| "failed to parse input: metadata is not base58".to_owned())?,
    })
}

impl Chain {
    /// Plays the contract's `mutate` with `args` (the function call's JSON argument bytes).
    /// Returns the logs, or the panic message; a panic leaves the state as it was.
    pub fn apply_mutate(&mut self, args: &[u8]) -> Result<Vec<String>, String> {
        let mut contexts = self.contexts.clone();
        let mut next_proxy_id = self.next_proxy_id;
        let logs = mutate(&mut contexts, &mut next_proxy_id, &self.contract_id, args)?;
        self.contexts = contexts;
        self.next_proxy_id = next_proxy_id;
        self.height += 1;
        Ok(logs)
    }

    /// Plays one transaction's `mutate` calls (each call's JSON argument bytes) as NEAR runs a
    /// transaction's actions: in order, in one receipt, all or nothing. The error names the
    /// failing action's index and the contract's panic message.
    pub fn apply_transaction(&mut self, calls: &[Vec<u8>]) -> Result<Vec<String>, (usize, String)> {
        let mut contexts = self.contexts.clone();
        let mut next_proxy_id = self.next_proxy_id;
        let mut logs = Vec::new();
        for (i, args) in calls.iter().enumerate() {
            logs.extend(
                mutate(&mut contexts, &mut next_proxy_id, &self.contract_id, args)
                    .map_err(|e| (i, e))?,
            );
        }
        self.contexts = contexts;
        self.next_proxy_id = next_proxy_id;
        self.height += 1;
        Ok(logs)
    }
}

fn mutate(
    contexts: &mut BTreeMap<Id, Context>,
    next_proxy_id: &mut u64,
    contract_id: &str,
    args: &[u8],
) -> Result<Vec<String>, String> {
    let signed: Value =
        serde_json::from_slice(args).map_err(|_| "failed to parse input".to_owned())?;
    exact_keys(&signed, &["payload", "signature"])?;
    let payload = bs58::decode(signed["payload"].as_str().ok_or("failed to parse input")?)
        .into_vec()
        .map_err(|_| "failed to parse input".to_owned())?;
    let signature: [u8; 64] = bs58::decode(
        signed["signature"]
            .as_str()
            .ok_or("failed to parse input")?,
    )
    .into_vec()
    .ok()
    .and_then(|s| s.try_into().ok())
    .ok_or("failed to parse input")?;

    let request: Value =
        serde_json::from_slice(&payload).map_err(|_| "failed to parse input".to_owned())?;
    exact_keys(&request, &["signerId", "nonce", "scope", "params"])?;
    let signer = id_of(&request["signerId"])?;
    tabnode_types::verify_signature(
        &tabnode_types::PublicKey(signer),
        &payload,
        &tabnode_types::Signature(signature),
    )
    .map_err(|_| "failed to parse input: invalid signature".to_owned())?;
    let nonce = request["nonce"].as_u64().ok_or("failed to parse input")?;
    if request["scope"] != "Context" {
        return Err("failed to parse input: the double plays only Context requests".into());
    }
    let params = &request["params"];
    let scope = params["scope"].as_str().ok_or("failed to parse input")?;
    if scope == "UpdateProxyContract" {
        exact_keys(params, &["contextId", "scope"])?;
    } else {
        exact_keys(params, &["contextId", "scope", "params"])?;
    }
    let context_id = id_of(&params["contextId"])?;
    let kind = &params["params"];

    // check_and_increment_nonce: only for a known context and a signer that has a nonce.
    if let Some(c) = contexts.get_mut(&context_id) {
        if let Some(current) = c.nonces.get_mut(&signer) {
            if *current != nonce {
                return Err("invalid nonce".into());
            }
            *current += 1;
        }
    }

    let mut logs = Vec::new();
    let ctx_b58 = b58(&context_id);
    let get = |contexts: &mut BTreeMap<Id, Context>| -> Result<(), String> {
        contexts
            .get(&context_id)
            .map(|_| ())
            .ok_or_else(|| "context does not exist".to_owned())
    };
    match scope {
        "Add" => {
            exact_keys(kind, &["author_id", "application"])?;
            if signer != context_id {
                return Err("context addition must be signed by the context itself".into());
            }
            let author = id_of(&kind["author_id"])?;
            let app = app_of(&kind["application"])?;
            if contexts.contains_key(&context_id) {
                return Err("context already exists".into());
            }
            let proxy = format!("{next_proxy_id}.{contract_id}");
            *next_proxy_id += 1;
            contexts.insert(context_id, Context::new(author, app, proxy));
            logs.push(format!("Context `{ctx_b58}` added"));
        }
        "UpdateApplication" => {
            exact_keys(kind, &["application"])?;
            get(contexts)?;
            let c = contexts.get_mut(&context_id).unwrap();
            if !c.application_privileged.contains(&signer) {
                return Err("unable to update application".into());
            }
            c.application = app_of(&kind["application"])?;
            c.application_revision += 1;
        }
        "AddMembers" | "RemoveMembers" => {
            exact_keys(kind, &["members"])?;
            get(contexts)?;
            let members = kind["members"]
                .as_array()
                .ok_or("failed to parse input")?
                .iter()
                .map(id_of)
                .collect::<Result<Vec<_>, _>>()?;
            let c = contexts.get_mut(&context_id).unwrap();
            if !c.members_privileged.contains(&signer) {
                return Err("unable to update member list".into());
            }
            for m in members {
                if scope == "AddMembers" {
                    c.nonces.entry(m).or_default();
                    if !c.members.contains(&m) {
                        c.members.push(m);
                    }
                    logs.push(format!("Added `{}` as a member of `{ctx_b58}`", b58(&m)));
                } else {
                    if let Some(i) = c.members.iter().position(|x| *x == m) {
                        c.members.swap_remove(i);
                    }
                    c.nonces.remove(&m);
                    c.members_privileged.remove(&m);
                    c.application_privileged.remove(&m);
                    logs.push(format!(
                        "Removed `{}` from being a member of `{ctx_b58}`",
                        b58(&m)
                    ));
                }
            }
            c.members_revision += 1;
        }
        "Grant" | "Revoke" => {
            exact_keys(kind, &["capabilities"])?;
            get(contexts)?;
            let c = contexts.get_mut(&context_id).unwrap();
            for pair in kind["capabilities"]
                .as_array()
                .ok_or("failed to parse input")?
            {
                let pair = pair
                    .as_array()
                    .filter(|p| p.len() == 2)
                    .ok_or("failed to parse input")?;
                let who = id_of(&pair[0])?;
                if scope == "Grant" && !c.members.contains(&who) {
                    return Err("unable to grant privileges to non-member".into());
                }
                let (set, refusal) = match pair[1].as_str() {
                    Some("ManageApplication") => (
                        &mut c.application_privileged,
                        "unable to update application",
                    ),
                    Some("ManageMembers") => {
                        (&mut c.members_privileged, "unable to update member list")
                    }
                    Some("Proxy") => (&mut c.proxy_privileged, "unable to update proxy"),
                    _ => return Err("failed to parse input: unknown capability".into()),
                };
                if !set.contains(&signer) {
                    return Err(refusal.into());
                }
                if scope == "Grant" {
                    set.insert(who);
                } else {
                    set.remove(&who);
                }
            }
        }
        "UpdateProxyContract" => {
            get(contexts)?;
            if !contexts[&context_id].proxy_privileged.contains(&signer) {
                return Err("unable to update proxy".into());
            }
        }
        other => return Err(format!("failed to parse input: unknown variant `{other}`")),
    }
    Ok(logs)
}
