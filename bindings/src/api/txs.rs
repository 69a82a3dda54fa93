//! Transactions from scripts: funded wallets that sign (`w.transfer(to, amount)`), submission
//! to a node (`node.submit_transaction(tx)`, `node.submit_raw(body)`), and the run's
//! transaction log (`ctx.transactions()`).
//!
//! ```rhai,no_run
//! let plan = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(4)
//!     .with_workload("pay", |ctx| {
//!         let w = ctx.wallets();
//!         let tx = w[0].transfer(w[1].public_key, 5);     // signed here, nonce counted
//!         let id = ctx.node(0).submit_transaction(tx);     // the node's refusal is an error
//!     });
//! ```

use engine::error::Chain;
use std::sync::Arc;

use devnode::crypto::SignedTx;
use engine::client::{ClientError, ClientErrorKind};
use engine::deploy::Testnet;
use engine::deploy::control_wait::ControlWaitError;
use engine::wallet::WalletBook;
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, Map, Position};

use super::client::NodeHandle;
use super::deploy::NetHandle;
use super::script_fns::ContextHandle;
use super::values::{Res, a_type, amount, err, int, map};
use crate::bridge::Bridge;
use crate::doc::registry::{Area, Registrar};
use crate::script_fn;

/// A funded wallet a script can sign with (`ctx.wallets()[i]`, `net.wallets()[i]`).
#[derive(Clone)]
pub struct WalletHandle {
    book: WalletBook,
    index: usize,
    /// Where the wallet's first nonce is read from (None: checking, nonce 0).
    net: Option<Arc<dyn Testnet>>,
    bridge: Bridge,
}

impl WalletHandle {
    /// Every wallet of `book`, as handles.
    pub fn all(book: &WalletBook, net: Option<Arc<dyn Testnet>>, bridge: &Bridge) -> Array {
        (0..book.wallets().len())
            .map(|index| {
                Dynamic::from(WalletHandle {
                    book: book.clone(),
                    index,
                    net: net.clone(),
                    bridge: bridge.clone(),
                })
            })
            .collect()
    }

    fn public(&self) -> String {
        self.book.wallets()[self.index].public.clone()
    }

    fn transfer(&self, to: &str, value: INT, nonce: Option<INT>) -> Res<Dynamic> {
        let value = amount(value, "transfer: amount")?;
        let nonce = nonce.map(|n| amount(n, "transfer: nonce")).transpose()?;
        let clients = self.net.as_ref().map(|n| n.clients()).unwrap_or_default();
        let (book, w, to) = (self.book.clone(), self.index, to.to_string());
        let signed = self.bridge.block_on_cancellable(async move {
            book.transfer(&clients, w, &to, value, nonce).await
        })?;
        match signed {
            Ok(tx) => Ok(tx_map(&tx, Some(self.index)).into()),
            Err(e) => err(format!("wallet {}: transfer failed: {e}", self.index)),
        }
    }
}

/// The script form of a signed transfer.
fn tx_map(tx: &SignedTx, wallet: Option<usize>) -> Map {
    let mut m = map([
        ("id", tx.id().into()),
        ("from", tx.from.clone().into()),
        ("to", tx.to.clone().into()),
        ("amount", int(tx.amount)),
        ("nonce", int(tx.nonce)),
        ("signature", tx.signature.clone().into()),
    ]);
    if let Some(w) = wallet {
        m.insert("wallet".into(), Dynamic::from_int(w as INT));
    }
    m
}

/// A transfer map (as `w.transfer` makes it, perhaps edited) back to a transfer.
fn tx_from_map(m: &Map) -> Res<SignedTx> {
    let text = |k: &str| -> Res<String> {
        match m.get(k) {
            Some(v) if v.is_string() => Ok(v.to_string()),
            Some(v) => err(format!(
                "submit_transaction: tx.{k} must be a string, got {}",
                a_type(v)
            )),
            None => err(format!(
                "submit_transaction: the transaction has no `{k}` (make one with w.transfer(to, amount))"
            )),
        }
    };
    let number = |k: &str| -> Res<u64> {
        match m.get(k).map(Dynamic::as_int) {
            Some(Ok(v)) => amount(v, &format!("submit_transaction: tx.{k}")),
            Some(Err(t)) => err(format!(
                "submit_transaction: tx.{k} must be an int, got {t}"
            )),
            None => err(format!(
                "submit_transaction: the transaction has no `{k}` (make one with w.transfer(to, amount))"
            )),
        }
    };
    Ok(SignedTx {
        from: text("from")?,
        to: text("to")?,
        amount: number("amount")?,
        nonce: number("nonce")?,
        signature: text("signature")?,
    })
}

/// A refused or failed submission as a script error whose value is a map: `#{message, node,
/// call, kind, status, reason}` (`status` and `reason` are the node's, `()` when it did not
/// answer). Uncaught, it prints its message.
fn submit_error(node: &str, call: &str, e: &ControlWaitError) -> Box<EvalAltResult> {
    let (kind, status, reason) = match e {
        ControlWaitError::Call(ClientError { kind, .. }) => classify(kind),
        ControlWaitError::NotBack { last, .. } => {
            let (_, status, _) = classify(&last.kind);
            ("not_back", status, Dynamic::from(e.to_string()))
        }
        ControlWaitError::NoSuchNode { .. } => ("unreachable", Dynamic::UNIT, e.to_string().into()),
    };
    let message = match (status.as_int(), reason.clone().into_string()) {
        (Ok(s), Ok(r)) => format!("{node} refused the transaction ({s}): {r}"),
        _ => format!("{call} failed: {}", e.chain()),
    };
    let value = map([
        ("message", message.into()),
        ("node", node.to_string().into()),
        ("call", call.to_string().into()),
        ("kind", kind.into()),
        ("status", status),
        ("reason", reason),
    ]);
    Box::new(EvalAltResult::ErrorRuntime(value.into(), Position::NONE))
}

fn classify(kind: &ClientErrorKind) -> (&'static str, Dynamic, Dynamic) {
    match kind {
        ClientErrorKind::Rejected { status, message } => (
            "refused",
            Dynamic::from_int(INT::from(*status)),
            message.clone().into(),
        ),
        ClientErrorKind::Unreachable(m) => ("unreachable", Dynamic::UNIT, m.clone().into()),
        ClientErrorKind::Timeout(d) => (
            "timeout",
            Dynamic::UNIT,
            format!("no answer within {d:?}").into(),
        ),
        ClientErrorKind::Decode(m) => ("bad_answer", Dynamic::UNIT, m.clone().into()),
        ClientErrorKind::Unsupported(m) => ("unsupported", Dynamic::UNIT, m.clone().into()),
    }
}

/// Sends `body` as it is (a string: its text; anything else: its JSON) to the node.
fn submit_raw(n: &NodeHandle, body: Dynamic) -> Res<Dynamic> {
    let text = if body.is_string() {
        body.to_string()
    } else {
        let v: serde_json::Value = rhai::serde::from_dynamic(&body)?;
        v.to_string()
    };
    // the id and sender of a body that is a reference transfer (for the transaction log)
    let parsed = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| engine::client::dialect::decode_tx(&v).ok());
    let id = parsed.as_ref().and_then(|t| t.id.clone());
    let sender = parsed
        .as_ref()
        .and_then(|t| t.transfer.as_ref())
        .map(|t| t.from.clone());
    let name = format!("node-{}", n.index());
    let out = n.try_call(move |c| {
        let text = text.clone();
        async move { c.submit_text(text).await }
    })?;
    match out {
        None => Ok(id.map_or(Dynamic::UNIT, Dynamic::from)),
        Some(Ok(())) => {
            if let Some(id) = &id {
                n.record_submitted(id, sender);
            }
            Ok(id.map_or(Dynamic::UNIT, Dynamic::from))
        }
        Some(Err(e)) => Err(submit_error(&name, "submit_raw", &e)),
    }
}

fn submit_transaction(n: &NodeHandle, tx: &Map) -> Res<String> {
    let tx = tx_from_map(tx)?;
    let id = tx.id();
    let name = format!("node-{}", n.index());
    let out = n.try_call(|c| {
        let tx = tx.clone();
        async move { c.add_tx(&tx).await }
    })?;
    match out {
        None => Ok(id),
        Some(Ok(id)) => {
            n.record_submitted(&id, Some(tx.from.clone()));
            Ok(id)
        }
        Some(Err(e)) => Err(submit_error(&name, "submit_transaction", &e)),
    }
}

/// The run's transaction log, each record with where it was included.
fn transactions(c: &ContextHandle) -> Array {
    let run = c.run();
    let feed = run.block_feed();
    run.tx_log()
        .records()
        .into_iter()
        .map(|r| {
            let included = feed.tx_included(&r.id);
            map([
                ("id", r.id.clone().into()),
                (
                    "sender",
                    r.sender.clone().map_or(Dynamic::UNIT, Dynamic::from),
                ),
                ("node", Dynamic::from_int(r.node as INT)),
                ("source", r.source.as_str().into()),
                ("time", Dynamic::from_float(r.submitted_at.as_secs_f64())),
                ("submitted_unix_ms", int(r.submitted_unix_ms)),
                ("included", included.is_some().into()),
                (
                    "height",
                    included
                        .as_ref()
                        .map_or(Dynamic::UNIT, |b| Dynamic::from_int(b.height as INT)),
                ),
                (
                    "block",
                    included.map_or(Dynamic::UNIT, |b| Dynamic::from(b.id)),
                ),
            ])
            .into()
        })
        .collect()
}

/// Registers wallets, submission and the transaction log.
pub fn register(engine: &mut Engine) {
    let mut reg = Registrar::new(engine, Area::Workloads);
    reg.register_type::<WalletHandle>(
        "Wallet",
        &[
            " A funded wallet (`ctx.wallets()[i]`, `net.wallets()[i]`): its index, its public key,",
            " and transfers signed with its key. Funded wallet `w` belongs to node `w % nodes`.",
            "",
            " ```rhai,no_run",
            " let plan = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(4)",
            "     .with_workload(\"pay\", |ctx| {",
            "         let w = ctx.wallets();",
            "         ctx.node(0).submit_transaction(w[0].transfer(w[1].public_key, 1));",
            "     });",
            " ```",
        ],
    );
    script_fn!(reg,
        /// The funded wallets, by index, each able to sign transfers (`w.transfer(to, amount)`);
        /// their nonces are counted for the whole run, shared by every closure. The built-in
        /// transaction workload signs for its first `users` wallets with nonces of its own: a
        /// script that signs too should use the others.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(3)
        ///     .with_expectation("funded", |ctx| {
        ///         let w = ctx.wallets()[0];
        ///         ctx.node(0).account(w.public_key).balance > 0
        ///     });
        /// ```
        fn wallets(ctx: RunContext) -> Array => |c: &mut ContextHandle| -> Array {
            let run = c.run().clone();
            WalletHandle::all(run.wallet_book(), Some(run.testnet()), c.bridge())
        }
    );
    script_fn!(reg,
        /// The testnet's funded wallets (from its topology's seed), each able to sign
        /// transfers; nonces are counted per testnet handle. Empty when the topology has none.
        ///
        /// ```rhai
        /// print(`${net.wallets().len()} funded wallets`);
        /// ```
        fn wallets(net: Testnet) -> Array => |n: &mut NetHandle| -> Array {
            match n.testnet() {
                Some(t) => WalletHandle::all(&n.wallet_book(), Some(t.clone()), n.bridge()),
                None => WalletHandle::all(&n.wallet_book(), None, n.bridge()),
            }
        }
    );
    script_fn!(reg,
        /// The wallet's index among the funded wallets.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(3)
        ///     .with_workload("who", |ctx| ctx.log(`${ctx.wallets()[2].index}`));
        /// ```
        get index(wallet: Wallet) -> int => |w: &mut WalletHandle| w.index as INT
    );
    script_fn!(reg,
        /// The wallet's ed25519 public key, 64 hex characters.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(3)
        ///     .with_workload("who", |ctx| ctx.log(ctx.wallets()[0].public_key));
        /// ```
        get public_key(wallet: Wallet) -> String => |w: &mut WalletHandle| w.public()
    );
    // `w["public"]`: an indexer (rhai's `index$get$`), registered like any function
    reg.func(
        "index$get$",
        &["wallet: Wallet", "key: String"],
        "Dynamic",
        &[
            " `w[\"index\"]`, `w[\"public_key\"]` or `w[\"public\"]` (`public` is a reserved word,",
            " so only the indexer reads it); any other key is an error.",
            "",
            " ```rhai,no_run",
            " let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(3)",
            "     .with_workload(\"who\", |ctx| ctx.log(ctx.wallets()[0][\"public\"]));",
            " ```",
        ],
        |w: &mut WalletHandle, key: &str| -> Res<Dynamic> {
            match key {
                "index" => Ok(Dynamic::from_int(w.index as INT)),
                "public" | "public_key" => Ok(w.public().into()),
                _ => err(format!(
                    "a wallet has no `{key}` (it has index, public_key, public)"
                )),
            }
        },
    );
    script_fn!(reg,
        /// `wallet-<index> <public key>`.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(3)
        ///     .with_workload("who", |ctx| print(ctx.wallets()[0].to_string()));
        /// ```
        fn to_string(wallet: Wallet) -> String => |w: &mut WalletHandle| format!("wallet-{} {}", w.index, w.public())
    );
    script_fn!(reg,
        /// The next nonce the wallet would sign with, or `()` before its first transfer (then
        /// it is read from a node's ledger).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(3)
        ///     .with_workload("nonce", |ctx| ctx.log(`${ctx.wallets()[0].next_nonce}`));
        /// ```
        get next_nonce(wallet: Wallet) -> Dynamic => |w: &mut WalletHandle| {
            w.book.next_nonce(w.index).map_or(Dynamic::UNIT, int)
        }
    );
    script_fn!(reg,
        /// Sets the nonce the wallet signs its next transfer with (after a refused submission,
        /// say, whose nonce was never used).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(3)
        ///     .with_workload("resync", |ctx| {
        ///         let w = ctx.wallets()[0];
        ///         w.set_next_nonce(ctx.node(0).account(w.public_key).nonce);
        ///     });
        /// ```
        fn set_next_nonce(wallet: Wallet, nonce: int) => |w: &mut WalletHandle, nonce: INT| -> Res<()> {
            w.book.set_next_nonce(w.index, amount(nonce, "set_next_nonce: nonce")?);
            Ok(())
        }
    );
    script_fn!(reg,
        /// A transfer of `amount` to `to` (a public key in hex) signed with the wallet's key at
        /// its next nonce (counted here; the first read from a node's ledger), as a map
        /// `#{id, from, to, amount, nonce, signature, wallet}`: submit it with
        /// `node.submit_transaction(tx)`. Nothing is sent yet. Edit the map to make a bad
        /// transaction (the id is recomputed when it is submitted).
        ///
        /// ```rhai,deploys
        /// let plan = ScenarioBuilder::topology_with(|t| t.nodes(2).slot_duration("100ms"))
        ///     .wallets(2)
        ///     .with_workload("pay", |ctx| {
        ///         let w = ctx.wallets();
        ///         let tx = w[0].transfer(w[1].public_key, 3);
        ///         print(`${tx.id} nonce ${tx.nonce}`);
        ///         ctx.node(0).submit_transaction(tx);
        ///     })
        ///     .expect_consensus_liveness()
        ///     .with_run_duration("2s")
        ///     .build();
        /// plan.run();
        /// ```
        fn transfer(wallet: Wallet, to: String, amount: int) -> Map
        => |w: &mut WalletHandle, to: &str, value: INT| w.transfer(to, value, None)
    );
    script_fn!(reg,
        /// A transfer signed at this `nonce` (the wallet's count moves past it): for replays,
        /// gaps and nonces already used.
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(2)
        ///     .with_workload("replay", |ctx| {
        ///         let w = ctx.wallets();
        ///         let tx = w[0].transfer(w[1].public_key, 1, 0);
        ///     });
        /// ```
        fn transfer(wallet: Wallet, to: String, amount: int, nonce: int) -> Map
        => |w: &mut WalletHandle, to: &str, value: INT, nonce: INT| w.transfer(to, value, Some(nonce))
    );

    reg.area(Area::NodeClient);
    script_fn!(reg,
        /// Submits a signed transfer (a map from `w.transfer(..)`, edited or not) to the node's
        /// `/mempool/add/tx` as the real node's `SignedMantleTx` and returns its id. Inside a
        /// run it is recorded in the run's transaction log (`ctx.transactions()`) and counts in
        /// inclusion. A refusal is a script error whose value is a map `#{message, node, call,
        /// kind, status, reason}`: `status` is the node's HTTP status (400, 409, 413, 422, 429,
        /// 500... kept as sent) and `reason` its text; `kind` is `refused`, `unreachable`,
        /// `timeout`, `bad_answer` or `not_back` (the node did not come back from a restart).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(2)
        ///     .with_workload("overdraft", |ctx| {
        ///         let w = ctx.wallets();
        ///         try {
        ///             ctx.node(0).submit_transaction(w[0].transfer(w[1].public_key, 1_000_000_000_000));
        ///         } catch (e) {
        ///             ctx.log(`refused (${e.status}): ${e.reason}`);
        ///         }
        ///     });
        /// ```
        fn submit_transaction(node: NodeClient, tx: Map) -> String
        => |n: &mut NodeHandle, tx: Map| submit_transaction(n, &tx)
    );
    script_fn!(reg,
        /// Sends any body to the node's `/mempool/add/tx`, for fuzzing: a string is sent as it
        /// is (garbage JSON too), anything else as its JSON. Returns the transaction's id when
        /// the body is a transfer the framework can hash (then it is logged like
        /// `submit_transaction`), else `()`. A refusal raises the same error map as
        /// `submit_transaction`.
        ///
        /// ```rhai
        /// try { net.node(0).submit_raw("{not json"); } catch (e) { print(`${e.status}: ${e.reason}`); }
        /// ```
        fn submit_raw(node: NodeClient, body: Dynamic) -> Dynamic
        => |n: &mut NodeHandle, body: Dynamic| submit_raw(n, body)
    );

    reg.area(Area::Workloads);
    script_fn!(reg,
        /// Every transaction submitted in this run so far, by the built-in workload or a script
        /// (`submit_transaction`, `submit_raw`, `transfer_funds`): `#{id, sender, node, source,
        /// time, submitted_unix_ms, included, height, block}` (`source` is `transactions` or
        /// `script`, `time` seconds since the run started, `height` and `block` where the block
        /// feed saw it included on a canonical chain, else `()`).
        ///
        /// ```rhai,no_run
        /// let builder = ScenarioBuilder::topology_with(|t| t.nodes(2)).wallets(4)
        ///     .transactions_with(|txs| txs.rate(2).users(2))
        ///     .with_expectation("most included", |ctx| {
        ///         let txs = ctx.transactions();
        ///         txs.filter(|t| t.included).len() * 2 >= txs.len()
        ///     });
        /// ```
        fn transactions(ctx: RunContext) -> Array => |c: &mut ContextHandle| transactions(c)
    );
}
