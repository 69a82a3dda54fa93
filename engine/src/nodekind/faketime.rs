//! Clock skew at start for node binaries without the reference node's testing clock, through
//! libfaketime (Debian's `faketime` / `libfaketime`): the library is preloaded into the node's
//! process (`LD_PRELOAD`) and offsets every wall-clock read by `FAKETIME` (monotonic clocks are
//! left alone, so timers keep their pace). It cannot apply to a statically linked binary or a
//! setuid one (the loader ignores `LD_PRELOAD` there), nor where the library is not installed;
//! each case is refused naming the binary and the reason, before anything is deployed.

use std::path::{Path, PathBuf};

use object::read::elf::{FileHeader, ProgramHeader};

use super::NodeKindError;

/// Overrides where libfaketime's thread-safe library is (a file path).
pub const LIBRARY_ENV: &str = "NOMOS_SCRIPT_LIBFAKETIME";

/// Where distributions install it (Debian and Ubuntu first).
const LIBRARY_DIRS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime",
    "/usr/lib/aarch64-linux-gnu/faketime",
    "/usr/lib/faketime",
    "/usr/local/lib/faketime",
];

/// The thread-safe variant: node binaries are multi-threaded.
const LIBRARY: &str = "libfaketimeMT.so.1";

/// How a node binary is linked, as far as preloading goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linking {
    /// Has a program interpreter (the dynamic loader) and links libc: a preload reaches its
    /// clock calls.
    Dynamic,
    /// No interpreter: statically linked, the loader never runs.
    Static,
    /// Dynamically linked, but not against libc (its clock calls bypass the preload).
    NoLibc,
}

/// Reads `binary`'s ELF headers (never runs it).
pub fn linking(binary: &Path) -> Result<Linking, String> {
    let data =
        std::fs::read(binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let not_elf =
        |e: object::read::Error| format!("{} is not an ELF executable: {e}", binary.display());
    let (interp, needed) = match object::FileKind::parse(&*data).map_err(not_elf)? {
        object::FileKind::Elf64 => {
            elf_facts::<object::elf::FileHeader64<object::Endianness>>(&data)
        }
        object::FileKind::Elf32 => {
            elf_facts::<object::elf::FileHeader32<object::Endianness>>(&data)
        }
        other => {
            return Err(format!(
                "{} is a {other:?} file, not an ELF executable",
                binary.display()
            ));
        }
    }
    .map_err(not_elf)?;
    Ok(if !interp {
        Linking::Static
    } else if needed
        .iter()
        .any(|n| n.starts_with("libc.so") || n.starts_with("libc.musl"))
    {
        Linking::Dynamic
    } else {
        Linking::NoLibc
    })
}

/// Whether the file has a `PT_INTERP` header, and its `DT_NEEDED` libraries.
fn elf_facts<H: FileHeader<Endian = object::Endianness>>(
    data: &[u8],
) -> object::read::Result<(bool, Vec<String>)> {
    let header = H::parse(data)?;
    let endian = header.endian()?;
    let interp = header
        .program_headers(endian, data)?
        .iter()
        .any(|ph| ph.p_type(endian) == object::elf::PT_INTERP);
    let table = header.sections(endian, data)?.dynamic_table(endian, data)?;
    let needed = table
        .iter()
        .filter(|d| d.tag == object::elf::DT_NEEDED)
        .filter_map(|d| table.string(d).ok())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    Ok((interp, needed))
}

/// A bare program name as the shell would find it on `PATH`.
fn on_path(name: &Path) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// libfaketime's thread-safe library: `NOMOS_SCRIPT_LIBFAKETIME`, else the first of the
/// distributions' places that holds it.
pub fn library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(LIBRARY_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{LIBRARY_ENV} = {}: no such file", p.display()))
        };
    }
    LIBRARY_DIRS
        .iter()
        .map(|d| Path::new(d).join(LIBRARY))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "libfaketime is not installed ({LIBRARY} in none of {}; Debian: apt-get install faketime; or set {LIBRARY_ENV})",
                LIBRARY_DIRS.join(", ")
            )
        })
}

/// `FAKETIME`'s relative form for an offset: `+2.500`, `-0.250` (seconds).
pub fn offset_spec(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let ms = offset_ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

/// The environment that starts `binary` with its clock `offset_ms` off wall time, or why it
/// cannot be done for it.
pub fn env_for(binary: &Path, offset_ms: i64) -> Result<Vec<(String, String)>, NodeKindError> {
    let found;
    let binary = if binary.components().count() == 1 {
        found = on_path(binary).unwrap_or_else(|| binary.to_owned());
        found.as_path()
    } else {
        binary
    };
    let refuse = |why: String| {
        NodeKindError::Setup(format!(
            "clock skew at start for {} through libfaketime: {why}",
            binary.display()
        ))
    };
    match linking(binary).map_err(refuse)? {
        Linking::Dynamic => {}
        Linking::Static => {
            return Err(refuse(
                "it is statically linked, so no library can be preloaded into it".to_owned(),
            ));
        }
        Linking::NoLibc => {
            return Err(refuse(
                "it does not link libc, so its clock reads bypass a preloaded library".to_owned(),
            ));
        }
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(binary)
            .map_err(|e| refuse(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o4000 != 0 {
            return Err(refuse(
                "it is setuid, and the loader ignores LD_PRELOAD for setuid programs".to_owned(),
            ));
        }
    }
    let lib = library().map_err(refuse)?;
    Ok(vec![
        ("LD_PRELOAD".to_owned(), lib.display().to_string()),
        ("FAKETIME".to_owned(), offset_spec(offset_ms)),
        // timers and timeouts keep their pace; only wall-clock reads are offset
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_as_faketime_seconds() {
        assert_eq!(offset_spec(2_500), "+2.500");
        assert_eq!(offset_spec(-250), "-0.250");
        assert_eq!(offset_spec(0), "+0.000");
        assert_eq!(offset_spec(-90_000), "-90.000");
    }

    #[test]
    fn the_running_test_binary_is_dynamically_linked_and_a_text_file_is_no_executable() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(linking(&me).unwrap(), Linking::Dynamic);
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("node.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let e = env_for(&script, 1_000).unwrap_err().to_string();
        assert!(e.contains("node.sh") && e.contains("not an ELF"), "{e}");
    }

    #[test]
    fn a_static_binary_is_refused_naming_it() {
        // Debian's ldconfig is a static-pie executable: no program interpreter
        let ldconfig = Path::new("/sbin/ldconfig");
        if linking(ldconfig).is_err() {
            eprintln!("skipped: no ELF /sbin/ldconfig here");
            return;
        }
        assert_eq!(linking(ldconfig).unwrap(), Linking::Static);
        let e = env_for(ldconfig, 1_000).unwrap_err().to_string();
        assert!(
            e.contains("/sbin/ldconfig") && e.contains("statically linked"),
            "{e}"
        );
    }
}
