//! A guest app that pokes every part of the host ABI the runtime tests check: each collection
//! calimero-storage offers, private storage, events and logs, the environment (executor, time,
//! randomness, signatures), an app error, a panic, an endless loop and unbounded memory growth.

use calimero_sdk::borsh::{BorshDeserialize, BorshSerialize};
use calimero_sdk::{app, env};
use calimero_storage::collections::{
    Counter, LwwRegister, ReplicatedGrowableArray, UnorderedMap, UnorderedSet, Vector,
};

#[app::state(emits = Event)]
#[derive(Debug, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct Probe {
    visits: Counter,
    tags: UnorderedSet<String>,
    lines: Vector<LwwRegister<String>>,
    names: UnorderedMap<String, LwwRegister<String>>,
    title: LwwRegister<String>,
    doc: ReplicatedGrowableArray,
}

/// This member's notes: private storage, never in a delta.
#[app::private]
#[derive(Debug, Default, BorshSerialize, BorshDeserialize)]
#[borsh(crate = "calimero_sdk::borsh")]
pub struct Notes {
    items: Vec<String>,
}

#[app::event]
pub enum Event {
    Visited { total: u64 },
    /// Selective disclosure: only a hash of the secret leaves the node.
    SecretNoted { sha256_len: usize },
    /// The node's clock in ns: an integer beyond 2^53 in an event.
    Stamped { at: u64 },
}

#[app::logic]
impl Probe {
    #[app::init]
    pub fn init(title: String) -> Probe {
        Probe {
            visits: Counter::new(),
            tags: UnorderedSet::new(),
            lines: Vector::new(),
            names: UnorderedMap::new(),
            title: LwwRegister::new(title),
            doc: ReplicatedGrowableArray::new(),
        }
    }

    pub fn visit(&mut self) -> app::Result<u64> {
        self.visits.increment()?;
        let total = self.visits.value()?;
        app::emit!(Event::Visited { total });
        Ok(total)
    }

    pub fn tag(&mut self, tag: String) -> app::Result<bool> {
        Ok(self.tags.insert(tag)?)
    }

    pub fn tags(&self) -> app::Result<Vec<String>> {
        let mut tags: Vec<String> = self.tags.iter()?.collect();
        tags.sort();
        Ok(tags)
    }

    pub fn push_line(&mut self, line: String) -> app::Result<usize> {
        self.lines.push(line.into())?;
        Ok(self.lines.len()?)
    }

    pub fn lines(&self) -> app::Result<Vec<String>> {
        Ok(self.lines.iter()?.map(|l| l.get().clone()).collect())
    }

    pub fn name(&mut self, key: String, value: String) -> app::Result<()> {
        self.names.insert(key, value.into())?;
        Ok(())
    }

    pub fn set_title(&mut self, title: String) {
        self.title.set(title);
    }

    pub fn title(&self) -> String {
        self.title.get().clone()
    }

    pub fn write(&mut self, pos: usize, text: String) -> app::Result<String> {
        self.doc.insert_str(pos, &text)?;
        Ok(self.doc.get_text()?)
    }

    pub fn note(&self, secret: String) -> app::Result<usize> {
        let mut notes = Notes::private_load_or_default()?;
        let mut notes = notes.as_mut();
        notes.items.push(secret.clone());
        app::emit!(Event::SecretNoted { sha256_len: secret.len() });
        Ok(notes.items.len())
    }

    pub fn notes(&self) -> app::Result<Vec<String>> {
        Ok(Notes::private_load_or_default()?.items.clone())
    }

    pub fn whoami(&self) -> Vec<u8> {
        env::executor_id().to_vec()
    }

    pub fn context(&self) -> Vec<u8> {
        env::context_id().to_vec()
    }

    pub fn now(&self) -> u64 {
        env::time_now()
    }

    /// Emits the node's clock in ns as an event (and writes nothing).
    pub fn stamp(&self) -> app::Result<u64> {
        let at = env::time_now();
        app::emit!(Event::Stamped { at });
        Ok(at)
    }

    pub fn random(&self) -> Vec<u8> {
        let mut bytes = [0; 8];
        env::random_bytes(&mut bytes);
        bytes.to_vec()
    }

    pub fn fail(&self, reason: String) -> app::Result<()> {
        app::bail!("refused: {reason}");
    }

    pub fn explode(&mut self) {
        self.title.set("must not persist".into());
        panic!("boom");
    }

    pub fn spin(&mut self) -> u64 {
        self.title.set("must not persist".into());
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
            if n == u64::MAX {
                return n;
            }
        }
    }

    pub fn hog(&mut self) -> usize {
        self.title.set("must not persist".into());
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            chunks.push(vec![1; 1 << 20]);
            if chunks.len() == usize::MAX {
                return chunks.len();
            }
        }
    }

    /// Recurses `depth` calls deep (each frame kept alive by `black_box`): deep enough, it
    /// must stop at the stack limit, alike on every engine.
    pub fn recurse(&self, depth: u64) -> u64 {
        fn down(n: u64) -> u64 {
            if n == 0 {
                return 0;
            }
            let frame = std::hint::black_box([n; 4]);
            1 + down(std::hint::black_box(n - 1)) + frame[3] - n
        }
        down(depth)
    }

    /// Writes the bits of float results to state: 0/0 (a NaN whose bits a CPU picks), a NaN
    /// from a NaN with a payload, and an ordinary sum; returns them.
    pub fn floats(&mut self, x: f64) -> Vec<u64> {
        let zero = std::hint::black_box(0.0f64);
        let payload = f64::from_bits(std::hint::black_box(0xfff0_0000_dead_beef));
        let bits = vec![
            (zero / zero).to_bits(),
            (payload * x).to_bits(),
            ((x as f32).sqrt() as f64 + x).to_bits(),
            (x * 0.1 + 3.5).to_bits(),
        ];
        self.title.set(format!("{bits:?}"));
        bits
    }

    /// Whether `signature` is `key`'s ed25519 signature of `message` (the host's verify).
    pub fn verify(&self, signature: Vec<u8>, key: Vec<u8>, message: Vec<u8>) -> bool {
        let (Ok(signature), Ok(key)) = (<[u8; 64]>::try_from(signature), <[u8; 32]>::try_from(key))
        else {
            return false;
        };
        env::ed25519_verify(&signature, &key, &message)
    }

    /// Streams `data` into a new blob in small chunks, announces it here; returns its id.
    pub fn store_blob(&self, data: String) -> Vec<u8> {
        let fd = env::blob_create();
        for chunk in data.as_bytes().chunks(1000) {
            assert_eq!(env::blob_write(fd, chunk), chunk.len() as u64);
        }
        let id = env::blob_close(fd);
        assert!(env::blob_announce_to_context(&id, &env::context_id()));
        id.to_vec()
    }

    /// Reads a blob back in small chunks; `None` if this node does not have it.
    pub fn read_blob(&self, id: Vec<u8>) -> app::Result<Option<String>> {
        let Ok(id) = <[u8; 32]>::try_from(id) else {
            app::bail!("a blob id is 32 bytes");
        };
        let fd = env::blob_open(&id);
        if fd == 0 {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut buf = [0; 777];
        loop {
            let n = env::blob_read(fd, &mut buf) as usize;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(env::blob_close(fd), id);
        Ok(Some(String::from_utf8_lossy(&out).into_owned()))
    }

    /// Asks the node to run `set` in another context after this call.
    pub fn call_other(&self, context: Vec<u8>, key: String, value: String) -> app::Result<()> {
        let Ok(context) = <[u8; 32]>::try_from(context) else {
            app::bail!("a context id is 32 bytes");
        };
        let params = format!(r#"{{"key":{key:?},"value":{value:?}}}"#);
        env::xcall(&context, "set", params.as_bytes());
        Ok(())
    }

    /// Counts a visit, then asks the node to run `fan_out` here again `width` times, one level
    /// shallower, down to `depth` 0: `width` = 16 and `depth` = 4 would make about 70,000 calls.
    pub fn fan_out(&mut self, width: u32, depth: u32) -> app::Result<u64> {
        self.visits.increment()?;
        if depth > 0 {
            let params = format!(r#"{{"width":{width},"depth":{}}}"#, depth - 1);
            for _ in 0..width {
                env::xcall(&env::context_id(), "fan_out", params.as_bytes());
            }
        }
        Ok(self.visits.value()?)
    }

    /// Whether `key` is a member of this context, as the node knows.
    pub fn is_member(&self, key: Vec<u8>) -> app::Result<bool> {
        let Ok(key) = <[u8; 32]>::try_from(key) else {
            app::bail!("a public key is 32 bytes");
        };
        Ok(env::context_is_member(&key))
    }

    /// Asks the node to make `key` a member of this context after this call (admins only).
    pub fn add_member(&self, key: Vec<u8>) -> app::Result<()> {
        let Ok(key) = <[u8; 32]>::try_from(key) else {
            app::bail!("a public key is 32 bytes");
        };
        env::context_add_member(&key);
        Ok(())
    }

    /// Asks the node to remove `key` from this context after this call (admins only).
    pub fn remove_member(&self, key: Vec<u8>) -> app::Result<()> {
        let Ok(key) = <[u8; 32]>::try_from(key) else {
            app::bail!("a public key is 32 bytes");
        };
        env::context_remove_member(&key);
        Ok(())
    }

    /// Asks the node to create a context of app `app_id` (32 bytes) after this call, known on
    /// the node as `alias`.
    pub fn spawn(&self, app_id: Vec<u8>, args: String, alias: String) -> app::Result<()> {
        let Ok(app_id) = <[u8; 32]>::try_from(app_id) else {
            app::bail!("an application id is 32 bytes");
        };
        env::context_create("near", &app_id, args.as_bytes(), Some(&alias));
        Ok(())
    }

    /// Asks the node to delete a context after this call.
    pub fn drop_context(&self, context: Vec<u8>) -> app::Result<()> {
        let Ok(context) = <[u8; 32]>::try_from(context) else {
            app::bail!("a context id is 32 bytes");
        };
        env::context_delete(&context);
        Ok(())
    }

    /// Proposes setting `key` to `value` in the context's proxy state, as an app does through
    /// calimero-sdk; answers the proposal's id (base58) that the host wrote back.
    pub fn propose_value(&self, key: String, value: String) -> String {
        env::ext::External
            .propose()
            .set_context_value(key.into_bytes().into(), value.into_bytes().into())
            .send()
            .to_string()
    }

    /// Proposes the borsh `Vec<ProposalAction>` in `actions` as given, well formed or not;
    /// answers the proposal's id.
    pub fn propose_raw(&self, actions: Vec<u8>) -> Vec<u8> {
        let mut id = [0_u8; 32];
        unsafe {
            calimero_sys::send_proposal(
                calimero_sys::Ref::new(&calimero_sys::Buffer::from(&*actions)),
                calimero_sys::Ref::new(&calimero_sys::BufferMut::new(&mut id)),
            );
        }
        id.to_vec()
    }

    /// Approves the proposal `id` (32 bytes) as the caller.
    pub fn approve(&self, id: Vec<u8>) -> app::Result<()> {
        let Ok(id) = <[u8; 32]>::try_from(id) else {
            app::bail!("a proposal id is 32 bytes");
        };
        env::ext::External.approve(env::ext::ProposalId(id));
        Ok(())
    }

    /// The context an alias names on this node.
    pub fn resolve(&self, alias: String) -> Option<Vec<u8>> {
        env::context_resolve_alias(&alias).map(|id| id.to_vec())
    }

    /// The context's members, as the node knows them.
    pub fn members(&self) -> Vec<Vec<u8>> {
        env::context_members().into_iter().map(|k| k.to_vec()).collect()
    }

    pub fn log_many(&self, count: usize) {
        for i in 0..count {
            env::log(&format!("line {i}"));
        }
    }
}
