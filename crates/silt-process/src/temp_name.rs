//! Names of the host's temporary files, and who wrote one.
//!
//! A file is written under a temporary name beside its target and renamed
//! over it when complete, so a killed process leaves at most a temporary
//! file, never a partial one under a real name. Cleaning up after a killed
//! process needs to tell from the name alone whether its writer is gone:
//!
//! `.<name>.silt-tmp.<where>.<pid>.<nonce>.<n>`
//!
//! - the pid alone is not enough: a process that is always the same pid
//!   (pid 1 in a container) would take its killed predecessor's names and
//!   think its leftovers its own. The nonce, random for each process, tells
//!   the two apart, so a name is never taken twice and a predecessor's file
//!   with our pid in the same place is known to be stale;
//! - `<where>` says whose pids these are: a hash of the machine's boot id
//!   and the pid namespace. Processes in two containers, or on two machines
//!   sharing a working copy, see different pids; a file from elsewhere (or
//!   written where either could not be read, `0`) cannot be judged from
//!   here, and only its age can tell it was abandoned.
//!
//! Names of the older shape `.<name>.silt-tmp.<pid>.<n>` are still
//! recognised, so their leftovers are cleaned up too.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::identity;

/// The marker in temporary names (what the SDK's layout skips).
pub const TEMP_MARKER: &str = ".silt-tmp.";

/// The longest file name most file systems take (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// Who wrote a temporary file, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempOwner {
    /// This process: the file may be in use.
    ThisProcess,
    /// Process `pid` of this pid namespace, alive or not; ask the system.
    Process(u32),
    /// A process that had this process's pid here before it: it is gone.
    Predecessor,
    /// A process whose pids this one cannot check: another pid namespace,
    /// another machine, or a name without (or with an unknown) place. Only
    /// the file's age can tell it was abandoned.
    Elsewhere,
}

/// What marks this process's temporary names: where its pids mean
/// something (0 when unknown), its pid, and a random nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcessMark {
    place: u64,
    pid: u32,
    nonce: u32,
}

impl ProcessMark {
    fn this_process() -> Self {
        static MARK: OnceLock<ProcessMark> = OnceLock::new();
        *MARK.get_or_init(|| {
            let nonce = identity::nonce();
            Self {
                place: place(),
                pid: std::process::id(),
                // Folded to 32 bits, which keeps names short: 1 in 4 billion
                // is the chance a predecessor with the same pid drew the same.
                nonce: (nonce ^ (nonce >> 32)) as u32,
            }
        })
    }
}

/// A fresh temporary name for a file to be renamed to `file_name`, unique
/// among every process that shares the directory. The part kept from
/// `file_name` is shortened when needed so the name fits in `NAME_MAX`.
#[must_use]
pub fn temp_name(file_name: &OsStr) -> OsString {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mark = ProcessMark::this_process();
    let suffix = format!(
        "{TEMP_MARKER}{}.{}.{}.{}",
        mark.place,
        mark.pid,
        mark.nonce,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let kept = kept_of(file_name, suffix.len());
    let mut name = Vec::with_capacity(1 + kept.len() + suffix.len());
    name.push(b'.');
    name.extend_from_slice(kept);
    name.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(name)
}

/// What a temporary name keeps of `file_name` before a suffix of
/// `suffix_len` bytes: all of it, or as much as fits in `NAME_MAX`, cut at
/// a character boundary where the name is UTF-8 (some file systems, macOS's,
/// refuse a name that is not).
fn kept_of(file_name: &OsStr, suffix_len: usize) -> &[u8] {
    let room = NAME_MAX.saturating_sub(1 + suffix_len);
    let cut = match file_name.to_str() {
        Some(text) => text.floor_char_boundary(room),
        None => file_name.len().min(room),
    };
    &file_name.as_bytes()[..cut]
}

/// True when `candidate` is a temporary name [`temp_name`] (or an older
/// silt) makes for `file_name`, of any process: `.`, what it keeps of
/// `file_name`, the marker, then the numbers of either shape, each written
/// as `temp_name` writes it. Two names that are both too long to be kept
/// whole and agree up to the cut share their temporary names.
#[must_use]
pub fn is_temp_name_for(candidate: &OsStr, file_name: &OsStr) -> bool {
    let Some(rest) = candidate.as_bytes().strip_prefix(b".") else {
        return false;
    };
    // The marker's last occurrence: the name kept may hold it too.
    let marker = TEMP_MARKER.as_bytes();
    let Some(at) = rest
        .windows(marker.len())
        .rposition(|window| window == marker)
    else {
        return false;
    };
    let (kept, suffix) = rest.split_at(at);
    let fields: Vec<&[u8]> = suffix[marker.len()..].split(|&b| b == b'.').collect();
    // A number as `format!` writes one: digits, no leading zero.
    let canonical = |field: &&[u8]| {
        !field.is_empty()
            && field.iter().all(u8::is_ascii_digit)
            && (field.len() == 1 || field[0] != b'0')
    };
    matches!(fields.len(), 2 | 4)
        && fields.iter().all(canonical)
        && kept == kept_of(file_name, suffix.len())
}

/// Who wrote `file_name`, when it is a temporary name of either shape;
/// `None` for any other name.
#[must_use]
pub fn temp_owner(file_name: &str) -> Option<TempOwner> {
    if !file_name.starts_with('.') {
        return None;
    }
    let (_, rest) = file_name.rsplit_once(TEMP_MARKER)?;
    let fields = rest
        .split('.')
        .map(|field| field.parse::<u64>().ok())
        .collect::<Option<Vec<_>>>()?;
    let ours = ProcessMark::this_process();
    match fields[..] {
        // The older shape, `<pid>.<n>`, says nothing of where. With this
        // process's pid it is another's (this one never makes one), and
        // maybe a live one elsewhere; with another pid, the system is asked
        // as it always was.
        [pid, _] => {
            let pid = u32::try_from(pid).ok()?;
            Some(if pid == ours.pid {
                TempOwner::Elsewhere
            } else {
                TempOwner::Process(pid)
            })
        }
        [place, pid, nonce, _] => {
            let pid = u32::try_from(pid).ok()?;
            let nonce = u32::try_from(nonce).ok()?;
            Some(if place != ours.place || ours.place == 0 {
                TempOwner::Elsewhere
            } else if pid != ours.pid {
                TempOwner::Process(pid)
            } else if nonce == ours.nonce {
                TempOwner::ThisProcess
            } else {
                TempOwner::Predecessor
            })
        }
        _ => None,
    }
}

/// Where this process's pids mean something: a hash of the machine's boot
/// id and the pid namespace ([`crate::process`]); 0 when either cannot be
/// read.
fn place() -> u64 {
    let (boot, namespace) = (identity::boot_id(), identity::pid_namespace());
    if boot.is_empty() || namespace.is_empty() {
        return 0;
    }
    fnv1a(format!("{boot}/{namespace}").as_bytes()).max(1)
}

/// FNV-1a, 64 bits: the same in every silt build (std's hashers promise
/// no such thing), which processes of different builds need to agree.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(file_name: &str) -> String {
        temp_name(OsStr::new(file_name))
            .into_string()
            .expect("utf-8 in, utf-8 out")
    }

    #[test]
    fn a_temporary_name_is_matched_to_the_name_it_was_made_for_only() {
        let is_for =
            |candidate: &str, name: &str| is_temp_name_for(OsStr::new(candidate), OsStr::new(name));
        assert!(is_for(&name_of("out.bin"), "out.bin"));
        assert!(is_for(".out.bin.silt-tmp.4194305.0", "out.bin"));
        assert!(is_for(".out.bin.silt-tmp.7.0.1.0", "out.bin"));
        for (candidate, name) in [
            (name_of("out.bin"), "out.bi"),
            (name_of("out.bin"), "out.bin2"),
            (name_of("xout.bin"), "out.bin"),
            ("out.bin".to_owned(), "out.bin"),
            // Numbers as temp_name never writes them, or too few or many.
            (".out.bin.silt-tmp.04194305.0".to_owned(), "out.bin"),
            (".out.bin.silt-tmp.4194305".to_owned(), "out.bin"),
            (".out.bin.silt-tmp.1.2.3".to_owned(), "out.bin"),
            (".out.bin.silt-tmp.1.2.3.4.5".to_owned(), "out.bin"),
            (".out.bin.silt-tmp.1.2.x.4".to_owned(), "out.bin"),
            (".out.bin.silt-tmp.1..3.4".to_owned(), "out.bin"),
            (".out.bin.silt-tmp.1.2.3.4.new".to_owned(), "out.bin"),
        ] {
            assert!(!is_for(&candidate, name), "{candidate} for {name}");
        }
        // A name that holds the marker itself.
        assert!(is_for(&name_of("a.silt-tmp.1.2"), "a.silt-tmp.1.2"));
        assert!(!is_for(&name_of("a.silt-tmp.1.2"), "a"));
        // A name cut to fit matches that name only, not a shorter one that
        // the cut could have come from; zeros padding the numbers out to
        // the cut are refused.
        let long = "é".repeat(200);
        let cut = name_of(&long);
        assert!(
            cut.len() <= NAME_MAX && cut.len() >= NAME_MAX - 1,
            "{}",
            cut.len()
        );
        assert!(is_for(&cut, &long));
        assert!(!is_for(&cut, &"é".repeat(100)));
        let (kept, suffix) = cut.rsplit_once(TEMP_MARKER).unwrap();
        let padded = format!("{}{TEMP_MARKER}000{suffix}", &kept[..kept.len() - 4]);
        assert!(!is_for(&padded, &long));
        // Not UTF-8.
        let raw = OsStr::from_bytes(b"w\xff.bin");
        assert!(is_temp_name_for(&temp_name(raw), raw));
        assert!(!is_temp_name_for(&temp_name(raw), OsStr::new("w.bin")));
    }

    #[test]
    fn this_process_owns_its_names_and_they_never_repeat() {
        let first = name_of("weights.bin");
        let second = name_of("weights.bin");
        assert_ne!(first, second);
        assert!(first.starts_with(".weights.bin.silt-tmp."), "{first}");
        assert_eq!(temp_owner(&first), Some(TempOwner::ThisProcess));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_same_pid_here_with_another_nonce_is_a_predecessor() {
        let ours = ProcessMark::this_process();
        assert_ne!(ours.place, 0, "boot id and pid namespace are readable");
        let other_nonce = ours.nonce.wrapping_add(1);
        let theirs = format!(
            ".w.bin.silt-tmp.{}.{}.{other_nonce}.0",
            ours.place, ours.pid
        );
        assert_eq!(temp_owner(&theirs), Some(TempOwner::Predecessor));
        // No name this process makes is that one.
        for _ in 0..1000 {
            assert_ne!(name_of("w.bin"), theirs);
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn pids_here_are_asked_about_and_pids_elsewhere_are_not() {
        let ours = ProcessMark::this_process();
        // Above Linux's largest pid (2^22): never this process's.
        let pid = 4_194_305;
        let here = format!(".w.silt-tmp.{}.{pid}.7.0", ours.place);
        assert_eq!(temp_owner(&here), Some(TempOwner::Process(pid)));
        // Another namespace or machine, ours or another pid; an unknown place.
        for theirs in [
            format!(".w.silt-tmp.{}.{}.7.0", ours.place + 1, ours.pid),
            format!(".w.silt-tmp.{}.{pid}.7.0", ours.place + 1),
            format!(".w.silt-tmp.0.{}.7.0", ours.pid),
        ] {
            assert_eq!(temp_owner(&theirs), Some(TempOwner::Elsewhere), "{theirs}");
        }
        // The older shape: another pid is asked about; this process's pid
        // is someone else's, maybe alive elsewhere.
        assert_eq!(
            temp_owner(".weights.bin.silt-tmp.4194305.7"),
            Some(TempOwner::Process(4_194_305))
        );
        assert_eq!(
            temp_owner(".a.silt-tmp.b.silt-tmp.4194306.0"),
            Some(TempOwner::Process(4_194_306))
        );
        let legacy = format!(".w.bin.silt-tmp.{}.0", ours.pid);
        assert_eq!(temp_owner(&legacy), Some(TempOwner::Elsewhere));
    }

    #[test]
    fn the_place_hash_is_the_same_in_every_build() {
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn other_names_are_not_temporary() {
        for name in [
            "weights.bin",
            "weights.bin.silt-tmp.4242.7",
            ".weights.bin",
            ".x.silt-tmp.12",
            ".x.silt-tmp.pid.1",
            ".x.silt-tmp.1.2.3",
            ".x.silt-tmp.1.2.3.4.5",
            ".x.silt-tmp.1.99999999999.3.4",
            ".x.silt-tmp.",
        ] {
            assert_eq!(temp_owner(name), None, "{name}");
        }
    }

    #[test]
    fn a_long_name_is_shortened_to_fit() {
        // 400 bytes of two-byte characters: cut at a character boundary.
        let long = "é".repeat(200);
        let temp = name_of(&long);
        assert!(temp.len() <= NAME_MAX, "{} bytes", temp.len());
        assert!(temp.starts_with(".éé"), "{temp}");
        assert_eq!(temp_owner(&temp), Some(TempOwner::ThisProcess));
        // A name that is not UTF-8 is cut where the bytes allow.
        let bytes = OsStr::from_bytes(&[0xff; 300]);
        let temp = temp_name(bytes);
        assert!(temp.len() <= NAME_MAX, "{} bytes", temp.len());
        assert_eq!(
            temp_owner(&temp.to_string_lossy()),
            Some(TempOwner::ThisProcess)
        );
        assert!(name_of("w.bin").len() < NAME_MAX);
    }
}
