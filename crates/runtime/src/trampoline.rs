//! The exec trampoline: a tiny program in a sealed memfd through which the
//! container's program is started, so that nothing in the container can
//! ever reach the runtime's own binary (CVE-2019-5736).
//!
//! capsa does not re-execute itself: the container's init is a fork of the
//! runtime, so until it execs, `/proc/self/exe` names the runtime's binary.
//! A container whose program is a script starting `#!/proc/self/exe` would
//! make the kernel run that binary inside the container, where another
//! process could open it through `/proc/PID/exe` and overwrite it on the
//! host. Exec'ing the trampoline first replaces `/proc/self/exe` with a
//! sealed, read-only memfd; the trampoline then execs the real program.
//! It costs one exec of a 160-byte program.
//!
//! The trampoline is called with argv = [path, program's argv...] and runs
//! `execve(path, argv + 1, envp)`; if that fails it exits with 127 for
//! ENOENT and 126 otherwise, as shells do.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::error::{Error, Result};

/// The trampoline's machine code for x86_64 (see the module docs):
///
/// ```text
/// mov  rdi, [rsp+8]          ; path = argv[0]
/// lea  rsi, [rsp+16]         ; argv + 1
/// mov  rax, [rsp]            ; argc
/// lea  rdx, [rsp+rax*8+16]   ; envp
/// mov  eax, 59               ; execve
/// syscall
/// neg  eax                   ; errno
/// mov  edi, 126
/// mov  ecx, 127
/// cmp  eax, 2                ; ENOENT?
/// cmove edi, ecx
/// mov  eax, 231              ; exit_group
/// syscall
/// ```
#[cfg(target_arch = "x86_64")]
const CODE: &[u8] = &[
    0x48, 0x8b, 0x7c, 0x24, 0x08, // mov rdi, [rsp+8]
    0x48, 0x8d, 0x74, 0x24, 0x10, // lea rsi, [rsp+16]
    0x48, 0x8b, 0x04, 0x24, // mov rax, [rsp]
    0x48, 0x8d, 0x54, 0xc4, 0x10, // lea rdx, [rsp+rax*8+16]
    0xb8, 0x3b, 0x00, 0x00, 0x00, // mov eax, 59
    0x0f, 0x05, // syscall
    0xf7, 0xd8, // neg eax
    0xbf, 0x7e, 0x00, 0x00, 0x00, // mov edi, 126
    0xb9, 0x7f, 0x00, 0x00, 0x00, // mov ecx, 127
    0x83, 0xf8, 0x02, // cmp eax, 2
    0x0f, 0x44, 0xf9, // cmove edi, ecx
    0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231
    0x0f, 0x05, // syscall
];

/// ELF e_machine of the code above.
#[cfg(target_arch = "x86_64")]
const MACHINE: u16 = 0x3e;

/// Whether this architecture has a trampoline.
pub const AVAILABLE: bool = cfg!(target_arch = "x86_64");

/// Where the program is loaded.
const BASE: u64 = 0x40_0000;
const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;

/// The trampoline as a minimal static ELF executable: a header, one
/// read+execute PT_LOAD segment covering the file, and the code.
#[cfg(target_arch = "x86_64")]
pub fn elf() -> Vec<u8> {
    let code_off = EHDR_SIZE + PHDR_SIZE;
    let size = code_off + CODE.len() as u64;
    let mut f = Vec::with_capacity(size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend_from_slice(&MACHINE.to_le_bytes()); // e_machine
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(BASE + code_off).to_le_bytes()); // e_entry
    f.extend_from_slice(&EHDR_SIZE.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes()); // e_ehsize
    f.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    // Program header: PT_LOAD, R+X, the whole file at BASE.
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    f.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    f.extend_from_slice(&size.to_le_bytes()); // p_filesz
    f.extend_from_slice(&size.to_le_bytes()); // p_memsz
    f.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    f.extend_from_slice(CODE);
    f
}

/// Writes the trampoline into a new memfd and seals it: it can be neither
/// written, resized nor unsealed afterwards.
#[cfg(target_arch = "x86_64")]
pub fn sealed() -> Result<OwnedFd> {
    let name = c"capsa-trampoline";
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // Kernels with vm.memfd_noexec want MFD_EXEC; older ones do not know it.
    let mfd_exec = MFdFlags::from_bits_retain(0x10); // MFD_EXEC, Linux 6.3
    let fd = match memfd_create(name, flags | mfd_exec) {
        Err(Errno::EINVAL) => memfd_create(name, flags),
        other => other,
    }
    .map_err(|e| Error::sys("memfd_create", "trampoline", e))?;
    let code = elf();
    let written =
        nix::unistd::write(&fd, &code).map_err(|e| Error::sys("write", "trampoline memfd", e))?;
    if written != code.len() {
        return Err(Error::Other("short write to the trampoline memfd".into()));
    }
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(seals))
        .map_err(|e| Error::sys("fcntl", "F_ADD_SEALS trampoline", e))?;
    Ok(fd)
}

/// Execs `path` with `args` and `env` through the trampoline; returns only
/// if the trampoline itself could not be executed.
#[cfg(target_arch = "x86_64")]
pub fn exec(trampoline: &OwnedFd, path: &CString, args: &[CString], env: &[CString]) -> Error {
    let mut argv: Vec<&std::ffi::CStr> = Vec::with_capacity(args.len() + 1);
    argv.push(path.as_c_str());
    argv.extend(args.iter().map(|a| a.as_c_str()));
    let errno = match nix::unistd::fexecve(trampoline.as_fd(), &argv, env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let hint = if errno == Errno::EACCES {
        " (is vm.memfd_noexec set to 2?)"
    } else {
        ""
    };
    Error::Init(format!(
        "exec of the trampoline for {path:?}: {errno}{hint}"
    ))
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    fn run(path: &str, args: &[&str], env: &[&str]) -> i32 {
        let t = sealed().unwrap();
        let path = CString::new(path).unwrap();
        let args: Vec<CString> = args.iter().map(|a| CString::new(*a).unwrap()).collect();
        let env: Vec<CString> = env.iter().map(|a| CString::new(*a).unwrap()).collect();
        // SAFETY: the child only calls exec and _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let _ = exec(&t, &path, &args, &env);
                crate::sys::exit_now(99)
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, code) => code,
                other => panic!("{other:?}"),
            },
        }
    }

    #[test]
    fn runs_the_program_with_its_args_and_env() {
        let script = "[ \"$0\" = zero ] && [ \"$1\" = one ] && [ \"$V\" = 2 ] && exit 7";
        let code = run("/bin/sh", &["sh", "-c", script, "zero", "one"], &["V=2"]);
        assert_eq!(code, 7);
    }

    #[test]
    fn missing_program_exits_127_and_others_126() {
        assert_eq!(run("/no/such/file", &["x"], &[]), 127);
        assert_eq!(run("/etc/hostname", &["x"], &[]), 126);
    }

    #[test]
    fn the_memfd_cannot_be_written() {
        let t = sealed().unwrap();
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&t));
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(b"x")
            });
        assert!(err.is_err());
    }
}
