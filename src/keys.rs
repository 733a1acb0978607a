//! API keys in the binary (design note 0012): turning them on in a gateway, the admin key
//! `tierkv dev` and `tierkv serve` keep in their data directory, and `tierkv admin keys`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use tierkv_engine::store::ObjStore;
use tierkv_gateway::AppState;
use tierkv_gateway::auth::{KeySpec, KeyStore, Role};

use crate::config::Config;

/// File under the data directory holding the development admin key.
pub(crate) const DEV_KEY_FILE: &str = "admin.key";

/// Refuses `gateway.auth.enabled = false` unless the public listener is on loopback.
pub(crate) fn check_auth_setting(cfg: &Config, listen: SocketAddr) -> anyhow::Result<()> {
    if !cfg.gateway.auth.enabled {
        anyhow::ensure!(
            listen.ip().is_loopback(),
            "gateway.auth.enabled = false is only allowed on a loopback address; listen = {listen}"
        );
        tracing::warn!(
            %listen,
            "gateway.auth.enabled = false: every request is served without credentials"
        );
    }
    Ok(())
}

/// Turns API keys on in `state`: reads the key set in `store` and keeps it current.
pub(crate) async fn enable(state: &AppState, store: &ObjStore) -> anyhow::Result<()> {
    // Its own figures: the key set's polls are not the engine's object-store calls.
    state
        .enable_keys(store.with_own_metrics())
        .await
        .context("reading the API key set from object storage")
}

/// The development admin key: the one in `<data_dir>/admin.key` if it is still in the key
/// set, else a new `admin` key named `dev`, written there with mode 0600.
pub(crate) async fn dev_admin_key(
    store: &ObjStore,
    data_dir: &Path,
    now_ms: u64,
) -> anyhow::Result<String> {
    let keys = KeyStore::new(store.with_own_metrics());
    let path = data_dir.join(DEV_KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        let set = keys.latest().await?;
        if set.keys.iter().any(|r| r.is_key(token)) {
            return Ok(token.to_owned());
        }
        tracing::warn!(file = %path.display(), "the saved admin key is no longer valid; making a new one");
    }
    let spec = KeySpec {
        name: "dev".to_owned(),
        role: Role::Admin,
        prefixes: Vec::new(),
    };
    let (_, token) = keys.create(&spec, now_ms).await?;
    write_private(&path, &token)?;
    Ok(token)
}

/// Writes `text` to `path` with mode 0600 (a temporary file created with that mode, then
/// renamed over `path`).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(format!("{text}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// What `tierkv admin keys` does.
#[derive(Debug, Clone)]
pub(crate) enum KeysCommand {
    /// Make a key.
    Create {
        role: Role,
        name: String,
        prefixes: Vec<String>,
    },
    /// List the keys.
    List,
    /// Revoke a key.
    Revoke { id: String },
}

/// `tierkv admin keys ...`, directly on the object store of `cfg` (no gateway needed: the
/// bootstrap of a new cluster).
pub(crate) fn keys(cfg: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let keys = KeyStore::new(ObjStore::open(&cfg.store_options())?);
        let now_ms = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis(),
        )?;
        match cmd {
            KeysCommand::Create {
                role,
                name,
                prefixes,
            } => {
                let (record, token) = keys
                    .create(
                        &KeySpec {
                            name,
                            role,
                            prefixes,
                        },
                        now_ms,
                    )
                    .await?;
                eprintln!(
                    "created API key {} (role {}); it is shown only now:",
                    record.id,
                    record.role.as_str()
                );
                println!("{token}");
            }
            KeysCommand::List => {
                let set = keys.latest().await?;
                let usage = keys.usage(now_ms).await?;
                println!("id\trole\tname\tprefixes\tcreated_at_ms\tlast_used_at_ms");
                for r in set.keys {
                    let used = usage.get(&r.id).map_or("-".to_owned(), u64::to_string);
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{used}",
                        r.id,
                        r.role.as_str(),
                        r.name,
                        if r.prefixes.is_empty() {
                            "*".to_owned()
                        } else {
                            r.prefixes.join(",")
                        },
                        r.created_at_ms
                    );
                }
            }
            KeysCommand::Revoke { id } => {
                anyhow::ensure!(keys.revoke(&id).await?, "no API key with id {id}");
                eprintln!("revoked API key {id}; gateways refuse it within their poll interval");
            }
        }
        Ok(())
    })
}
