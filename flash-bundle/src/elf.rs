//! A tiny ELF check: is this an executable for the expected architecture, with
//! no program interpreter (`PT_INTERP`)? EOS has no musl loader, so a binary
//! that names one would fail with a confusing "No such file or directory".
//! Static-PIE executables (what Rust's musl targets make) have a `PT_DYNAMIC`
//! but no `PT_INTERP`, and are fine.

use std::fmt;

/// The architectures the bundle ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// 32-bit x86 (`EM_386`), `i686-unknown-linux-musl`.
    I686,
    /// 64-bit x86 (`EM_X86_64`), `x86_64-unknown-linux-musl`.
    X86_64,
}

impl Arch {
    fn class(self) -> u8 {
        match self {
            Arch::I686 => 1,
            Arch::X86_64 => 2,
        }
    }

    fn machine(self) -> u16 {
        match self {
            Arch::I686 => 3,
            Arch::X86_64 => 62,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::I686 => "i686",
            Arch::X86_64 => "x86_64",
        })
    }
}

/// Why a binary is not a static executable for the expected architecture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// No ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// Headers run past the end of the file.
    #[error("truncated ELF file")]
    Truncated,
    /// Big-endian, or a class or machine other than expected.
    #[error("built for the wrong architecture: {found}, expected {expected}")]
    WrongArch {
        /// What the header says.
        found: String,
        /// What was asked for.
        expected: Arch,
    },
    /// Not `ET_EXEC` or `ET_DYN`.
    #[error("not an executable (ELF type {0})")]
    NotExecutable(u16),
    /// Has a `PT_INTERP` program header.
    #[error("dynamically linked (program interpreter {0}): build for a musl target")]
    Dynamic(String),
}

const PT_INTERP: u32 = 3;

fn u16_at(b: &[u8], off: usize) -> Result<u16, ElfError> {
    let s = b.get(off..off + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, ElfError> {
    let s = b.get(off..off + 4).ok_or(ElfError::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, ElfError> {
    let s = b.get(off..off + 8).ok_or(ElfError::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

fn to_usize(v: u64) -> Result<usize, ElfError> {
    usize::try_from(v).map_err(|_| ElfError::Truncated)
}

/// Checks that `bytes` is a little-endian ELF executable for `arch` with no
/// program interpreter.
pub fn check_static(bytes: &[u8], arch: Arch) -> Result<(), ElfError> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::NotElf);
    }
    let class = *bytes.get(4).ok_or(ElfError::Truncated)?;
    let data = *bytes.get(5).ok_or(ElfError::Truncated)?;
    let machine = u16_at(bytes, 18)?;
    if class != arch.class() || data != 1 || machine != arch.machine() {
        return Err(ElfError::WrongArch {
            found: format!(
                "{}-bit {}, machine {machine}",
                if class == 2 { 64 } else { 32 },
                if data == 1 {
                    "little-endian"
                } else {
                    "big-endian"
                }
            ),
            expected: arch,
        });
    }
    let e_type = u16_at(bytes, 16)?;
    if e_type != 2 && e_type != 3 {
        return Err(ElfError::NotExecutable(e_type));
    }
    let (phoff, phentsize, phnum) = if class == 2 {
        (
            to_usize(u64_at(bytes, 32)?)?,
            u16_at(bytes, 54)?,
            u16_at(bytes, 56)?,
        )
    } else {
        (
            to_usize(u64::from(u32_at(bytes, 28)?))?,
            u16_at(bytes, 42)?,
            u16_at(bytes, 44)?,
        )
    };
    for i in 0..usize::from(phnum) {
        let ph = phoff
            .checked_add(i * usize::from(phentsize))
            .ok_or(ElfError::Truncated)?;
        if u32_at(bytes, ph)? != PT_INTERP {
            continue;
        }
        let (off, size) = if class == 2 {
            (
                to_usize(u64_at(bytes, ph + 8)?)?,
                to_usize(u64_at(bytes, ph + 32)?)?,
            )
        } else {
            (
                to_usize(u64::from(u32_at(bytes, ph + 4)?))?,
                to_usize(u64::from(u32_at(bytes, ph + 16)?))?,
            )
        };
        let interp = off
            .checked_add(size)
            .and_then(|end| bytes.get(off..end))
            .map(|s| {
                String::from_utf8_lossy(s)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .unwrap_or_else(|| "(unreadable)".into());
        return Err(ElfError::Dynamic(interp));
    }
    Ok(())
}

/// A minimal ELF executable image for tests: a header and one `PT_LOAD`
/// program header, plus a `PT_INTERP` naming `interp` if given.
#[doc(hidden)]
pub fn fake_executable(arch: Arch, interp: Option<&str>) -> Vec<u8> {
    let is64 = arch == Arch::X86_64;
    let (ehsize, phentsize): (usize, usize) = if is64 { (64, 56) } else { (52, 32) };
    let phnum = if interp.is_some() { 2 } else { 1 };
    let interp_off = ehsize + phnum * phentsize;
    let mut b = vec![0u8; ehsize];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = arch.class();
    b[5] = 1; // little-endian
    b[6] = 1; // EV_CURRENT
    b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN, as static-pie
    b[18..20].copy_from_slice(&arch.machine().to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    if is64 {
        b[32..40].copy_from_slice(&(ehsize as u64).to_le_bytes());
        b[52..54].copy_from_slice(&(ehsize as u16).to_le_bytes());
        b[54..56].copy_from_slice(&(phentsize as u16).to_le_bytes());
        b[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    } else {
        b[28..32].copy_from_slice(&(ehsize as u32).to_le_bytes());
        b[40..42].copy_from_slice(&(ehsize as u16).to_le_bytes());
        b[42..44].copy_from_slice(&(phentsize as u16).to_le_bytes());
        b[44..46].copy_from_slice(&(phnum as u16).to_le_bytes());
    }
    let ph = |p_type: u32, off: usize, size: usize| {
        let mut p = vec![0u8; phentsize];
        p[..4].copy_from_slice(&p_type.to_le_bytes());
        if is64 {
            p[8..16].copy_from_slice(&(off as u64).to_le_bytes());
            p[32..40].copy_from_slice(&(size as u64).to_le_bytes());
        } else {
            p[4..8].copy_from_slice(&(off as u32).to_le_bytes());
            p[16..20].copy_from_slice(&(size as u32).to_le_bytes());
        }
        p
    };
    let interp_bytes: Vec<u8> = interp
        .map(|s| [s.as_bytes(), b"\0"].concat())
        .unwrap_or_default();
    let load = ph(1, 0, interp_off + interp_bytes.len());
    b.extend(load);
    if interp.is_some() {
        let p = ph(PT_INTERP, interp_off, interp_bytes.len());
        b.extend(p);
    }
    b.extend(interp_bytes);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_executables_pass() {
        check_static(&fake_executable(Arch::I686, None), Arch::I686).unwrap();
        check_static(&fake_executable(Arch::X86_64, None), Arch::X86_64).unwrap();
    }

    #[test]
    fn an_interpreter_is_reported_by_name() {
        for arch in [Arch::I686, Arch::X86_64] {
            let b = fake_executable(arch, Some("/lib/ld-musl-i386.so.1"));
            assert_eq!(
                check_static(&b, arch),
                Err(ElfError::Dynamic("/lib/ld-musl-i386.so.1".into()))
            );
        }
    }

    #[test]
    fn wrong_arch_truncated_and_non_elf_fail() {
        let b = fake_executable(Arch::X86_64, None);
        assert!(matches!(
            check_static(&b, Arch::I686),
            Err(ElfError::WrongArch { .. })
        ));
        assert_eq!(
            check_static(&b[..40], Arch::X86_64),
            Err(ElfError::Truncated)
        );
        assert_eq!(
            check_static(b"#!/bin/sh\n", Arch::I686),
            Err(ElfError::NotElf)
        );
        let mut obj = fake_executable(Arch::I686, None);
        obj[16] = 1; // ET_REL
        assert_eq!(
            check_static(&obj, Arch::I686),
            Err(ElfError::NotExecutable(1))
        );
    }

    #[test]
    fn the_test_binary_itself_is_read() {
        // The running test binary is a real ELF file of the host: the parser copes
        // with real headers (dynamic or not, depending on the host target).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let arch = if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else {
            Arch::I686
        };
        let musl = cfg!(target_env = "musl");
        match (check_static(&me, arch), musl) {
            (Ok(()), true) => {}
            (Err(ElfError::Dynamic(i)), false) => assert!(i.starts_with('/'), "{i}"),
            (r, _) => panic!("musl host: {musl}, check: {r:?}"),
        }
    }
}
