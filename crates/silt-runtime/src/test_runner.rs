//! Runs a `wasm32-wasip2` test binary: the runner `cargo test` uses in an
//! extension project (`.cargo/config.toml` names `silt extension
//! test-runner`), so an author needs no other WebAssembly runtime.
//!
//! A test binary is a `wasi:cli/run` component. It gets its arguments,
//! stdout and stderr, clocks and randomness — no environment, no files, no
//! network: the unit tests of an extension's policy code need none, and
//! what needs a store is the contract suite's job (`silt extension test`).
//! The `silt:datastore` imports are linked as traps.

use std::path::Path;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// The exit code of a test binary that trapped (a panic aborts on wasm), as
/// libtest's failures exit natively.
pub const TRAPPED: u8 = 101;

struct TestState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for TestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Runs the test binary at `path` with `args` (what cargo passes after it:
/// filters, `--nocapture`, ...); returns its exit code.
///
/// # Errors
/// When the file is not a command component or cannot be compiled.
pub async fn run_test_binary(path: &Path, args: &[String]) -> anyhow::Result<u8> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot start the WebAssembly engine")?;
    let component = Component::from_file(&engine, path)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "{} is not a wasm32-wasip2 test binary (a component)",
                path.display()
            )
        })?;
    let mut linker = Linker::<TestState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    // The extension's code links the `silt:datastore` imports (the object
    // store, log, progress) even when no test calls them: they trap when
    // called, and the tests that need a store are the contract suite's.
    stub_silt_imports(&engine, &component, &mut linker)?;
    let program = path
        .file_name()
        .map_or_else(|| "test".into(), |name| name.to_string_lossy().into_owned());
    let wasi = WasiCtx::builder()
        .arg(program)
        .args(args)
        .inherit_stdout()
        .inherit_stderr()
        .build();
    let mut store = Store::new(
        &engine,
        TestState {
            wasi,
            table: ResourceTable::new(),
        },
    );
    let command = Command::instantiate_async(&mut store, &component, &linker)
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "{} cannot run here: it must be a wasi:cli command (a `cargo test` binary)",
                path.display()
            )
        })?;
    match command.wasi_cli_run().call_run(&mut store).await {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(u8::try_from(exit.0).unwrap_or(1)),
            None => {
                // The trap alone: its wasm backtrace is long and says less
                // than the panic message libtest prints with --nocapture.
                match err.downcast_ref::<wasmtime::Trap>() {
                    Some(trap) => eprintln!(
                        "silt: the test binary trapped ({trap}): a panic aborts on wasm; `cargo test -- --nocapture` shows its message"
                    ),
                    None => eprintln!("silt: the test binary trapped: {err:#}"),
                }
                Ok(TRAPPED)
            }
        },
    }
}

/// Links every function of the component's `silt:` imports as a trap that
/// names it. (wasmtime's `define_unknown_imports_as_traps` would also stub
/// the WASI imports of older 0.2.x versions, which the WASI linker serves by
/// semver matching, so only `silt:` is stubbed here.)
fn stub_silt_imports(
    engine: &Engine,
    component: &Component,
    linker: &mut Linker<TestState>,
) -> anyhow::Result<()> {
    use wasmtime::component::types::ComponentItem;
    for (import, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !import.starts_with("silt:") {
            continue;
        }
        let mut stubs = linker.instance(import)?;
        for (function, item) in instance.exports(engine) {
            if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                continue;
            }
            let called = format!("{import}#{function}");
            stubs.func_new(function, move |_, _, _, _| {
                Err(wasmtime::format_err!(
                    "a test called `{called}`, which `cargo test` does not provide: \
                     test what needs a store with `silt extension test`"
                ))
            })?;
        }
    }
    Ok(())
}
