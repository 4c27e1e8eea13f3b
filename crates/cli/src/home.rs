//! The node's home: its directory, held by one process at a time, and the node opened on the
//! file store inside it.

use std::fs::File;
use std::path::Path;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use tabnode_driver::Driver;
use tabnode_node::{Clock, Env, GuestPolicy, NodeError};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::FileStore;

use crate::failure::Failure;

/// The node as commands see it (the driver carries out its store requests on the file store).
pub type CliNode = tabnode_driver::CoreNode<SystemEnv>;

/// The node and its file store, driven as the page drives its own (`tabnode-driver`).
pub type CliDriver = Driver<Rc<FileStore>, SystemEnv>;

/// What the node answers a guest's request that acts beyond its own call (`context_delete`,
/// `context_add_member`, `context_remove_member`, an xcall into a context it neither is nor
/// created: see `tabnode_node::GuestRequest`). A CLI has
/// no user to ask in the middle of a call, so the operator says it once, for the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GuestRequests {
    /// Refuse each one (`NoConsent`).
    Refuse,
    /// Make each one, as merod does.
    Allow,
}

impl GuestRequests {
    /// The word `--guest-requests` takes.
    pub fn as_arg(self) -> &'static str {
        match self {
            Self::Refuse => "refuse",
            Self::Allow => "allow",
        }
    }
}

/// The machine's clock, read here at the edge and given to the node with each input (the node
/// orders its own calls on a hybrid logical clock).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}

/// The OS's randomness.
pub struct SystemEnv;

impl Env for SystemEnv {
    fn random32(&self) -> [u8; 32] {
        let mut out = [0; 32];
        getrandom::fill(&mut out).expect("the OS provides randomness");
        out
    }
}

/// An open home: the node, its store (an app's ABI is kept beside the node's records), and the
/// lock that keeps a second process out while this one runs.
pub struct Home {
    pub driver: CliDriver,
    pub store: Rc<FileStore>,
    /// Held for as long as the process works on the home (see [`lock`]).
    pub lock: File,
}

/// A home made before (or by hand) that others may read is left as it is (it may be a
/// directory of the user's), but said: the store inside it is made the owner's alone.
#[cfg(unix)]
fn warn_if_open_to_others(home: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(home) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        eprintln!(
            "warning: {} is open to others ({mode:o}); the node's key is in its store/ (kept 0700)",
            home.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_open_to_others(_: &Path) {}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Takes the home's lock: the store is an append-only log that one process replays into
/// memory, so a second process writing it (a `call` while `run` runs) would fork the node.
/// Held until the process ends; the OS releases it also on a crash.
// `File::try_lock` is in std since 1.89; the toolchain here is newer than the declared MSRV.
#[allow(clippy::incompatible_msrv)]
fn lock(home: &Path) -> Result<File, Failure> {
    let io = |e: std::io::Error| Failure::Other("Io", format!("{}: {e}", home.display()));
    create_private_dir(home).map_err(io)?;
    let path = home.join("lock");
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::Other(
            "HomeLocked",
            format!(
                "{} is in use by another tabnode process (a `run`?): send the command to it on its stdin, or stop it first",
                home.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

impl Home {
    /// Opens the node in `home` (made 0700 if missing), locked for this process.
    pub async fn open(
        home: &Path,
        fuel: Option<u64>,
        guest_requests: GuestRequests,
    ) -> Result<Self, Failure> {
        warn_if_open_to_others(home);
        let lock = lock(home)?;
        let mut limits = Limits::default();
        if let Some(fuel) = fuel {
            limits.fuel = fuel;
            // One action (a call and its xcalls) may use at least one call's fuel.
            limits.action_fuel = limits.action_fuel.max(fuel);
        }
        let store = FileStore::open(&home.join("store"))
            .await
            .map_err(|e| Failure::Node(NodeError::Store(e)))?;
        let store = Rc::new(store);
        // Each command is an input, given the time it starts at by the driver.
        let driver =
            Driver::open(store.clone(), SystemEnv, Runtime::new(limits), SystemClock).await?;
        if guest_requests == GuestRequests::Allow {
            driver.node().set_guest_policy(GuestPolicy::Allow);
        }
        Ok(Self {
            driver,
            store,
            lock,
        })
    }
}
