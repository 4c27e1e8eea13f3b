//! `context create | list | invite | join | members | position | upgrade`.

use clap::Subcommand;
use serde_json::{json, Value};
use std::rc::Rc;

use tabnode_node::{NodeError, Role};
use tabnode_store::Namespace;
use tabnode_store::{FileStore, Store};
use tabnode_types::{AppId, ContextId};

use crate::failure::{parse_id, parse_json, Failure};
use crate::home::CliNode;

#[derive(Subcommand)]
pub enum ContextCommand {
    /// Creates a context running an installed app, initialised by its `init`; prints {"context_id"}
    Create {
        /// The app (base58)
        app_id: String,
        /// The arguments of `init`, a JSON object
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
    },
    /// Lists the contexts this node holds: {"contexts": [...]}
    List,
    /// Makes an invitation to the context (only admins invite); prints {"invitation",
    /// "context_id", "role", "expires_at_ms", "uses"} and with --link-base a page "link"
    Invite {
        /// The context (base58)
        context_id: String,
        /// The role the invitee gets
        #[arg(long, value_enum, default_value = "member")]
        role: InviteRole,
        /// How long the invitation is usable: a number with s, m, h or d (e.g. 90s, 2h, 7d)
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration_ns)]
        expires: u64,
        /// How many keys may join with it
        #[arg(long, value_name = "N", default_value_t = 1)]
        uses: u32,
        /// A page's URL (e.g. https://host/): prints "link", URL#join=INVITATION, as the page's
        /// console makes them
        #[arg(long, value_name = "URL")]
        link_base: Option<String>,
    },
    /// Joins a context from an invitation (or a page's link holding one): asks the members
    /// through the relays and waits until one admitted this node and its state arrived (the
    /// app too, from members, if this node lacks it); progress on stderr. Prints {"context_id"}
    Join {
        /// The invitation, or a link ending in #join=INVITATION
        link: String,
        /// A relay's multiaddr (…/p2p/PEER_ID), repeatable; not given inside `run` (its own are used)
        #[arg(long, value_name = "MULTIADDR")]
        relay: Vec<String>,
        /// Seconds to wait for a member to answer and the state to arrive
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
    },
    /// The members this node knows for the context: {"members": [{"key", "role"}]}
    Members {
        /// The context (base58)
        context_id: String,
    },
    /// Where this node is in the context: {"context_id", "heads", "root_hash", "synced"}; two
    /// members with the same heads and root hash hold the same state
    Position {
        /// The context (base58)
        context_id: String,
    },
    /// Moves the context to another installed app (an admin's operation, sent to every member
    /// with the binary); prints {"delta_id"}
    Upgrade {
        /// The context (base58)
        context_id: String,
        /// The installed app to run from now on (base58)
        app_id: String,
        /// The new app's `#[app::migrate]` method that turns the state into its shape
        #[arg(long, value_name = "METHOD")]
        migrate: Option<String>,
    },
}

/// The roles an invitation gives, as `--role` names them.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum InviteRole {
    Admin,
    Member,
    Reader,
}

impl From<InviteRole> for Role {
    fn from(role: InviteRole) -> Self {
        match role {
            InviteRole::Admin => Role::Admin,
            InviteRole::Member => Role::Member,
            InviteRole::Reader => Role::Reader,
        }
    }
}

/// A duration as `--expires` takes it (`90s`, `30m`, `2h`, `7d`; a bare number is seconds),
/// in ns.
fn parse_duration_ns(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 30m, 2h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{unit:?} is not a unit: s, m, h or d")),
    };
    if number == 0 {
        return Err("an invitation must be usable for some time".into());
    }
    number
        .checked_mul(seconds * 1_000_000_000)
        .ok_or_else(|| format!("{text} is too long"))
}

/// The invitation in a page's link (`…#join=INVITATION`, as the console makes them, the
/// invitation URI-encoded), or the text itself.
pub fn invitation_of_link(text: &str) -> String {
    match text.split_once("#join=") {
        Some((_, rest)) => percent_decode(rest.split(['&', ' ']).next().unwrap_or(rest)),
        None => text.trim().to_owned(),
    }
}

/// An invitation as the page's `encodeURIComponent` puts it in a link: its text is base58,
/// `.` and a `tabnode-invite:` prefix, so only `:` changes.
fn link_of(base: &str, invitation: &str) -> String {
    format!("{base}#join={}", invitation.replace(':', "%3A"))
}

/// `%XX` escapes decoded (a link's fragment); a malformed one is kept as it is, and the
/// invitation's own check refuses it.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn execute(
    node: &mut CliNode,
    store: &Rc<FileStore>,
    command: ContextCommand,
) -> Result<Value, Failure> {
    match command {
        ContextCommand::Create { app_id, args } => {
            let app_id: AppId = parse_id(&app_id)?;
            let args = args
                .as_deref()
                .map(|a| parse_json("--args", a))
                .transpose()?
                .unwrap_or(Value::Null);
            let context_id = node.create_context(app_id, args).await?;
            Ok(json!({"context_id": context_id.to_string()}))
        }
        ContextCommand::List => {
            let ids: Vec<String> = node.context_ids().iter().map(|c| c.to_string()).collect();
            Ok(json!({"contexts": ids}))
        }
        ContextCommand::Invite {
            context_id,
            role,
            expires,
            uses,
            link_base,
        } => {
            let id: ContextId = parse_id(&context_id)?;
            let expires_at = node.now().saturating_add(expires);
            let role = Role::from(role);
            let invitation = node.invite_for(&id, role, expires_at, uses)?;
            let link = link_base.map(|base| link_of(&base, &invitation));
            Ok(json!({
                "invitation": invitation,
                "context_id": id.to_string(),
                "role": role,
                "expires_at_ms": expires_at / 1_000_000,
                "uses": uses,
                "link": link,
            }))
        }
        ContextCommand::Join { link, relay, .. } => {
            if !relay.is_empty() {
                return Err(Failure::Other(
                    "Usage",
                    "inside `run`, a join goes through the node's own relays: drop --relay".into(),
                ));
            }
            let id = node.join(&invitation_of_link(&link)).await?;
            Ok(json!({"context_id": id.to_string(), "joining": node.is_joining(&id)}))
        }
        ContextCommand::Members { context_id } => {
            let id: ContextId = parse_id(&context_id)?;
            let members: Vec<Value> = node
                .members(&id)?
                .into_iter()
                .map(|(key, role)| json!({"key": key.to_string(), "role": role}))
                .collect();
            Ok(json!({"members": members}))
        }
        ContextCommand::Position { context_id } => {
            let id: ContextId = parse_id(&context_id)?;
            let position = node.position(&id)?;
            let mut heads: Vec<String> = position.heads.iter().map(|h| h.to_string()).collect();
            heads.sort();
            Ok(json!({
                "context_id": id.to_string(),
                "heads": heads,
                "root_hash": position.root_hash.map(|h| h.to_string()),
                "synced": node.is_synced(&id),
            }))
        }
        ContextCommand::Upgrade {
            context_id,
            app_id,
            migrate,
        } => {
            let id: ContextId = parse_id(&context_id)?;
            let app_id: AppId = parse_id(&app_id)?;
            let wasm = store
                .get(Namespace::Apps, app_id.as_bytes())
                .await
                .map_err(NodeError::Store)?
                .ok_or_else(|| NodeError::AppNotInstalled(app_id.to_string()))?;
            let delta_id = node.upgrade_app(&id, &wasm, migrate).await?;
            Ok(json!({"delta_id": delta_id.to_string(), "app_id": app_id.to_string()}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabnode_node::DEFAULT_INVITATION_NANOS;

    #[test]
    fn durations_take_a_unit_and_refuse_what_is_not_one() {
        assert_eq!(parse_duration_ns("90s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_ns("90"), Ok(90_000_000_000));
        assert_eq!(parse_duration_ns("2h"), Ok(7_200_000_000_000));
        assert_eq!(parse_duration_ns("7d"), Ok(DEFAULT_INVITATION_NANOS));
        for bad in ["", "d", "7w", "-1s", "0s", "99999999999999999999d"] {
            assert!(parse_duration_ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_link_gives_its_invitation_and_an_invitation_is_itself() {
        assert_eq!(invitation_of_link("https://h/#join=abc"), "abc");
        let link = link_of("https://h/", "tabnode-invite:abc.def");
        assert_eq!(link, "https://h/#join=tabnode-invite%3Aabc.def");
        assert_eq!(invitation_of_link(&link), "tabnode-invite:abc.def");
        assert_eq!(invitation_of_link("https://h/#join=a%3ab%zz%4"), "a:b%zz%4");
        assert_eq!(
            invitation_of_link("https://h/board.html#join=abc&x=1"),
            "abc"
        );
        assert_eq!(invitation_of_link(" abc \n"), "abc");
    }
}
