//! The WASI interfaces an extension is granted, linked one by one: exactly
//! those [`crate::inspect`] lets a component import (io, clocks, random,
//! the filesystem under `/cache`, the cli's environment and standard
//! streams), and not the rest of WASI 0.2 that wasmtime-wasi's
//! `add_to_linker_async` would add (sockets). An import of an interface
//! that is not linked is refused at `silt extension add`; one that got past
//! that would fail to instantiate rather than reach a socket. Linking less
//! is also less work for every process that builds an engine.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};

use crate::HostState;

/// The WASI filesystem interface as wasmtime-wasi registers it (guests
/// importing any 0.2.x are matched to it by semver).
const WASI_FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// The `wasi:io` imports reach the instance's resource table.
struct GuestResources;

impl HasData for GuestResources {
    type Data<'a> = &'a mut ResourceTable;
}

/// Adds the granted WASI interfaces to `linker`, with the filesystem's
/// link calls refused.
///
/// # Errors
/// When wasmtime refuses a definition (a duplicate name).
pub fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    let l = linker;
    io::error::add_to_linker::<_, GuestResources>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<_, GuestResources>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<_, GuestResources>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, |t| t.clocks())?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, |t| t.clocks())?;
    random::random::add_to_linker::<_, WasiRandom>(l, |t| t.random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |t| t.random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |t| t.random())?;
    filesystem::types::add_to_linker::<_, WasiFilesystem>(l, |t| t.filesystem())?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(l, |t| t.filesystem())?;
    cli::environment::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::exit::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, |t| t.cli())?;
    deny_links(l)
}

/// The WASI filesystem's link calls, replaced by ones that refuse.
///
/// A guest may not create symbolic or hard links in its cache directory.
/// That directory is the working copy, which `silt run` hands to the user's
/// commands as ambient paths: a link planted there would redirect their
/// reads and writes anywhere the user can reach. No datastore needs links
/// (files are written by name, downloads by the host), so `symlink-at` and
/// `link-at` answer `not-permitted`. The host itself never follows a link
/// there either (`silt_beneath`), whoever made it.
fn deny_links(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    use filesystem::types::{Descriptor, ErrorCode, PathFlags};
    type Refused = (Result<(), ErrorCode>,);
    linker.allow_shadowing(true);
    let mut types = linker.instance(WASI_FILESYSTEM_TYPES)?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |_, _: (Resource<Descriptor>, String, String)| -> wasmtime::Result<Refused> {
            Ok((Err(ErrorCode::NotPermitted),))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.link-at",
        |_,
         _: (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )|
         -> wasmtime::Result<Refused> { Ok((Err(ErrorCode::NotPermitted),)) },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version wasmtime-wasi registers its interfaces under.
    const WASI_VERSION: &str = "0.2.12";

    /// One item each interface defines (a function, or the resource of an
    /// interface that has no function).
    fn an_item_of(interface: &str) -> Item {
        match interface {
            "error" => Item::Resource("error"),
            "poll" => Item::Func("poll"),
            "streams" => Item::Resource("input-stream"),
            "wall-clock" | "monotonic-clock" => Item::Func("now"),
            "random" => Item::Func("get-random-bytes"),
            "insecure" => Item::Func("get-insecure-random-bytes"),
            "insecure-seed" => Item::Func("insecure-seed"),
            "types" => Item::Func("filesystem-error-code"),
            "preopens" => Item::Func("get-directories"),
            "environment" => Item::Func("get-environment"),
            "exit" => Item::Func("exit"),
            "stdin" => Item::Func("get-stdin"),
            "stdout" => Item::Func("get-stdout"),
            "stderr" => Item::Func("get-stderr"),
            "terminal-input" => Item::Resource("terminal-input"),
            "terminal-output" => Item::Resource("terminal-output"),
            "terminal-stdin" => Item::Func("get-terminal-stdin"),
            "terminal-stdout" => Item::Func("get-terminal-stdout"),
            "terminal-stderr" => Item::Func("get-terminal-stderr"),
            "tcp" => Item::Resource("tcp-socket"),
            "udp" => Item::Resource("udp-socket"),
            "network" => Item::Resource("network"),
            "instance-network" => Item::Func("instance-network"),
            "ip-name-lookup" => Item::Func("resolve-addresses"),
            "tcp-create-socket" => Item::Func("create-tcp-socket"),
            "udp-create-socket" => Item::Func("create-udp-socket"),
            other => panic!("no probe for {other}: add one"),
        }
    }

    /// Every `wasi:sockets` interface of WASI 0.2.
    const SOCKETS: [&str; 7] = [
        "tcp",
        "udp",
        "network",
        "instance-network",
        "ip-name-lookup",
        "tcp-create-socket",
        "udp-create-socket",
    ];

    enum Item {
        Func(&'static str),
        Resource(&'static str),
    }

    /// Whether `linker` already defines `interface`'s probe item: with
    /// shadowing off, defining it again fails exactly then.
    fn defines(linker: &mut Linker<HostState>, package: &str, interface: &str) -> bool {
        let name = format!("{package}/{interface}@{WASI_VERSION}");
        let mut instance = linker.instance(&name).unwrap();
        let defined_again = match an_item_of(interface) {
            Item::Func(func) => instance.func_wrap(func, |_, (): ()| Ok(())),
            Item::Resource(resource) => instance.resource(
                resource,
                wasmtime::component::ResourceType::host::<u8>(),
                |_, _| Ok(()),
            ),
        };
        defined_again.is_err()
    }

    #[test]
    fn links_every_granted_wasi_interface_and_no_socket() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::<HostState>::new(&engine);
        link(&mut linker).unwrap();
        let granted = crate::inspect::PROVIDED_IMPORTS
            .iter()
            .filter(|(package, _)| package.starts_with("wasi:"));
        let mut checked = 0;
        for (package, interfaces) in granted {
            for interface in *interfaces {
                assert!(
                    defines(&mut linker, package, interface),
                    "{package}/{interface} is granted but not linked"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 20, "the granted WASI interfaces changed");
        for interface in SOCKETS {
            assert!(
                !defines(&mut linker, "wasi:sockets", interface),
                "wasi:sockets/{interface} is linked"
            );
        }
    }

    /// The probe itself: the full WASI linker does define the sockets.
    #[test]
    fn the_probe_sees_sockets_where_they_are_linked() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        for interface in SOCKETS {
            assert!(
                defines(&mut linker, "wasi:sockets", interface),
                "{interface}"
            );
        }
    }
}
