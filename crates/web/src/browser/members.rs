//! Membership from the page: invitations, joining, roles, removal and leaving.

use super::*;

#[wasm_bindgen]
impl BrowserNode {
    /// A signed invitation to the context, as a string to share.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn invite(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let text = inner.run(async move |node| node.invite(&id)).await?;
            Ok(JsValue::from(text))
        })
    }

    /// An invitation with options `{role?: "admin"|"member"|"reader", expiresInMs?: number,
    /// uses?: number}` (defaults: member, a week, one join). Only admins invite.
    #[wasm_bindgen(js_name = inviteAs, unchecked_return_type = "Promise<string>")]
    pub fn invite_as(
        &self,
        context_id: String,
        #[wasm_bindgen(unchecked_param_type = "InviteOptions")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            #[derive(serde::Deserialize, Default)]
            #[serde(rename_all = "camelCase", default, deny_unknown_fields)]
            struct InviteOptions {
                role: Option<Role>,
                expires_in_ms: Option<u64>,
                uses: Option<u32>,
            }
            let options: InviteOptions = if options.is_undefined() || options.is_null() {
                InviteOptions::default()
            } else {
                serde_wasm_bindgen::from_value(options)
                    .map_err(|e| usage_error("BadArgs", format!("invalid invite options: {e}")))?
            };
            let role = options.role.unwrap_or(Role::Member);
            let ttl_ns = options
                .expires_in_ms
                .map_or(DEFAULT_INVITATION_NANOS, |ms| ms.saturating_mul(1_000_000));
            let now = (js_sys::Date::now() * 1_000_000.0) as u64;
            let text = inner
                .run(async move |node| {
                    let expires_at = now.saturating_add(ttl_ns);
                    node.invite_for(&id, role, expires_at, options.uses.unwrap_or(1))
                })
                .await?;
            Ok(JsValue::from(text))
        })
    }

    /// Joins the context an invitation names; resolves to its id once a member has admitted
    /// this node and given it the context's secret (the invitation carries none). A node that
    /// lacks the invitation's app fetches it from the members first (`appProgress` events). State
    /// arrives from members after that. Rejects with `NotSynced` if no member answered within
    /// a minute: the node keeps asking in the background (a `joined` event tells when it is
    /// in), and joining again with the same invitation waits again.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn join(&self, invitation: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id = inner
                .run(async move |node| node.join(&invitation).await)
                .await?;
            for _ in 0..JOIN_WAIT_POLLS {
                if !inner
                    .run(async move |node| Ok(node.is_joining(&id)))
                    .await?
                {
                    return Ok(JsValue::from(id.to_string()));
                }
                futures_timer::Delay::new(std::time::Duration::from_millis(100)).await;
            }
            Err(js_error(NodeError::NotSynced(format!(
                "{id}: no member has admitted this node yet (it keeps asking)"
            ))))
        })
    }

    /// Revokes an invitation (an admin's operation in the membership log): a join with it
    /// that no member admitted yet is refused from now on. Resolves to the operation's id.
    #[wasm_bindgen(js_name = revokeInvitation, unchecked_return_type = "Promise<string>")]
    pub fn revoke_invitation(&self, context_id: String, invitation: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let op = inner
                .run(async move |node| node.revoke_invitation(&id, &invitation).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

    /// Removes a member (by its public key) from the context: an admin's operation that every
    /// member applies. What the member wrote before stays; anything it writes after is refused
    /// by every node, and members it invited lose access too. Resolves to the operation's id.
    #[wasm_bindgen(js_name = removeMember, unchecked_return_type = "Promise<string>")]
    pub fn remove_member(&self, context_id: String, member: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let member = parse_id_key(&member)?;
            let op = inner
                .run(async move |node| node.remove_member(&id, member).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

    /// Gives a member (by its public key) a new role: an admin's operation that every member
    /// applies. Resolves to the operation's id.
    #[wasm_bindgen(js_name = setRole, unchecked_return_type = "Promise<string>")]
    pub fn set_role(
        &self,
        context_id: String,
        member: String,
        #[wasm_bindgen(unchecked_param_type = "\"admin\" | \"member\" | \"reader\"")] role: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let member = parse_id_key(&member)?;
            let role: Role = serde_wasm_bindgen::from_value(role).map_err(|e| {
                usage_error("BadArgs", format!("a role is admin, member or reader: {e}"))
            })?;
            let op = inner
                .run(async move |node| node.set_role(&id, member, role).await)
                .await?;
            Ok(JsValue::from(op.to_string()))
        })
    }

    /// Leaves the context: its members apply it (this node's key is out from there on, and
    /// they get a new secret this node does not keep), then this node drops the context.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn leave(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            inner.run(async move |node| node.leave(&id).await).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The members this node knows for the context: `[{key, role}]`.
    #[wasm_bindgen(
        unchecked_return_type = "Promise<{ key: string; role: \"admin\" | \"member\" | \"reader\" }[]>"
    )]
    pub fn members(&self, context_id: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let id: ContextId = parse_id(&context_id)?;
            let members = inner.run(async move |node| node.members(&id)).await?;
            let list: Vec<serde_json::Value> = members
                .into_iter()
                .map(|(key, role)| serde_json::json!({"key": key, "role": role}))
                .collect();
            to_js(&list)
        })
    }
}
