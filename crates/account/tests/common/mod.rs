//! What the account's chain tests share: a node on an in-memory store, the chain crate's NEAR
//! contract double read in memory, and a wallet TEST DOUBLE that plays each transaction on it.

#![allow(dead_code)] // each test file uses its part

#[path = "../../../chain/tests/near_rpc_double/mod.rs"]
pub mod near_rpc_double;

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex as StdMutex};

use base64::Engine;
use near_rpc_double::anchor::NearContractDouble;
use near_rpc_double::{Chain, CONTRACT};
use serde_json::{json, Value};
use tabnode_account::anchor::AnchorChain;
use tabnode_account::{Account, NoChain, Site};
use tabnode_chain::QuorumAnchor;
use tabnode_identity::wallet::{TransactionWallet, WalletError};
use tabnode_node::{FixedEnv, Node};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::MemoryStore;

pub type TestNode = Node<MemoryStore, FixedEnv>;

/// A node on an in-memory store, with key seed `seed`, its clock given.
pub async fn opened(seed: u8) -> TestNode {
    let mut node = Node::open(
        MemoryStore::default(),
        FixedEnv::new(seed),
        Runtime::new(Limits::default()),
    )
    .await
    .unwrap();
    tabnode_sim::clock_in(&mut node);
    node
}

/// The contract of `chain`, read in memory ([`NearContractDouble`]): no server.
pub fn double_chain(chain: &Arc<StdMutex<Chain>>) -> AnchorChain<NearContractDouble> {
    AnchorChain {
        contract_id: CONTRACT.to_owned(),
        reader: QuorumAnchor::new(vec![NearContractDouble(chain.clone())], 1),
    }
}

/// What the wallet double does with a transaction it is asked to send.
#[derive(Clone, Copy)]
pub enum Sends {
    /// Plays it once, as NEAR does.
    Once,
    /// Plays it twice (a duplicate landed first): the second is the one answered.
    Twice,
    /// Plays nothing and answers `null`, as a wallet that does not return the outcome.
    Nothing,
    /// Plays nothing and fails to send, with this message: what the page's wallet glue gives
    /// for anything a wallet throws that is not a refusal (a network error, say).
    Fails(&'static str),
}

/// A TEST DOUBLE of a wallet that signs and sends transactions: it plays them on the double's
/// chain, on the contract each is sent to (the context-config contract, or a context's proxy
/// contract), and answers with NEAR's `FinalExecutionOutcome` (`SuccessValue`: the base64 of
/// what the contract returned).
pub struct PlaysOnTheDouble {
    pub chain: Arc<StdMutex<Chain>>,
    pub sends: Sends,
    pub asked: Cell<usize>,
    /// The account each transaction was sent to, in order.
    pub receivers: RefCell<Vec<String>>,
}

impl TransactionWallet for PlaysOnTheDouble {
    async fn sign_and_send(&self, transaction: &Value) -> Result<Value, WalletError> {
        self.asked.set(self.asked.get() + 1);
        let receiver = transaction["receiverId"].as_str().unwrap();
        self.receivers.borrow_mut().push(receiver.to_owned());
        let calls: Vec<Vec<u8>> = transaction["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| serde_json::to_vec(&a["params"]["args"]).unwrap())
            .collect();
        let plays = match self.sends {
            Sends::Once => 1,
            Sends::Twice => 2,
            Sends::Nothing => return Ok(Value::Null),
            Sends::Fails(why) => return Err(WalletError::SendFailed(why.to_owned())),
        };
        let mut result = Ok(String::new());
        for _ in 0..plays {
            let mut chain = self.chain.lock().unwrap();
            result = if receiver == CONTRACT {
                chain.apply_transaction(&calls).map(|_| String::new())
            } else {
                assert_eq!(calls.len(), 1, "one mutate per proxy transaction");
                chain
                    .apply_proxy_mutate(receiver, &calls[0])
                    .map(|v| base64::engine::general_purpose::STANDARD.encode(v.to_string()))
                    .map_err(|e| (0, e))
            };
        }
        let hash = format!("tx{}", self.asked.get());
        Ok(match result {
            Ok(value) => json!({"status": {"SuccessValue": value}, "transaction": {"hash": hash}}),
            Err((index, message)) => json!({
                "status": {"Failure": {"ActionError": {"index": index, "kind": {"FunctionCallError": {
                    "ExecutionError": format!("Smart contract panicked: {message}")
                }}}}},
                "transaction": {"hash": hash},
            }),
        })
    }
}

/// The user's account as these tests use it: `sends` says what its wallet double does.
pub fn account(
    chain: &Arc<StdMutex<Chain>>,
    sends: Sends,
) -> Account<PlaysOnTheDouble, NoChain, FixedEnv> {
    Account {
        wallet: PlaysOnTheDouble {
            chain: chain.clone(),
            sends,
            asked: Cell::new(0),
            receivers: RefCell::default(),
        },
        keys: NoChain,
        site: Site {
            origin: "http://127.0.0.1:8080".into(),
            url: "http://127.0.0.1:8080/".into(),
        },
        env: FixedEnv::new(200),
    }
}
