//! The exec trampoline: a tiny program in a sealed memfd through which every
//! program of a container is started, so that nothing in the container can
//! ever reach the runtime's own binary (CVE-2019-5736).
//!
//! capsa does not re-execute itself: a container's init (or `exec`'d
//! process) is a fork of the runtime, so until it execs, `/proc/self/exe`
//! names the runtime's binary on the host. A container whose program is a
//! script starting `#!/proc/self/exe` would make the kernel run that binary
//! inside the container, where another process of the container could open
//! it through `/proc/PID/exe` and, once it exits, overwrite it on the host.
//! Exec'ing the trampoline first makes `/proc/self/exe` a sealed, read-only
//! memfd; the trampoline then execs the real program, so a `#!/proc/self/exe`
//! script only ever reaches the sealed trampoline.
//!
//! Protocol: the trampoline is called with argv = [R, path, program's argv...]
//! where R is the decimal number of a descriptor (the runtime's set-up
//! channel) that the trampoline marks close-on-exec before it runs
//! `execve(path, argv + 2, envp)`. If that fails, it writes a 5-byte message
//! to R — `X` (execve failed) or `F` (fcntl failed) and the errno as a
//! little-endian u32 ([`crate::sync::Msg::ExecFailed`]) — and exits with 127
//! for ENOENT, 126 otherwise, as shells do. The runtime thus still learns why
//! the program could not be started, and reads end-of-file when it was.
//!
//! The trampoline runs under the container's seccomp filter, which may refuse
//! fcntl: then R is `-` ([`NO_REPORT`]), the channel is already close-on-exec
//! (the runtime reads end-of-file when the trampoline starts), and the
//! trampoline makes no call but execve (and exit_group when that fails, with
//! the same exit codes: the reason is then only in the exit status).
//! Any other argv[0] (a script naming `/proc/self/exe` as its interpreter
//! reaches the trampoline with that path as argv[0]) makes it exit 126 at
//! once, running nothing.
//!
//! On x86_64 and aarch64 the trampoline is 195 (228) bytes of machine code
//! in a minimal ELF (one exec of it costs a few tens of microseconds; the
//! aarch64 code is checked under qemu-aarch64-static by a unit test where
//! that is installed). Other architectures have no machine code here: there
//! the trampoline is a sealed memfd copy of the runtime's binary, started
//! with argv[0] = [`COPY_MARKER`], which the binary's `main` hands to
//! [`main_if_invoked`] first thing (slower: the copy costs a few
//! milliseconds per container start, but is as safe).

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::error::{Error, Result};

/// The trampoline's machine code for x86_64 (see the module docs); made with
/// GNU as from:
///
/// ```text
///     mov  rsi, [rsp+8]          ; argv[0]: the report descriptor, decimal, or "-"
///     xor  edi, edi
///     xor  r12d, r12d            ; r12 = report fd (0: none)
///     cmp  byte ptr [rsi], '-'
///     jne  parse
///     cmp  byte ptr [rsi+1], 0
///     jne  bad
///     jmp  run
/// parse:
///     movzx eax, byte ptr [rsi]
///     test eax, eax
///     jz   done                  ; the end of a number
///     sub  eax, 48
///     jb   bad                   ; not a digit: not called by the runtime
///     cmp  eax, 9
///     ja   bad
///     imul edi, edi, 10
///     add  edi, eax
///     inc  rsi
///     jmp  parse
/// done:
///     test edi, edi              ; "" or "0"
///     jz   bad
///     mov  r12d, edi
///     mov  esi, 2                ; fcntl(fd, F_SETFD, FD_CLOEXEC)
///     mov  edx, 1
///     mov  eax, 72
///     syscall
///     mov  bl, 'F'
///     test eax, eax
///     js   fail
/// run:
///     mov  rdi, [rsp+16]         ; execve(argv[1], argv + 2, envp)
///     lea  rsi, [rsp+24]
///     mov  rax, [rsp]            ; argc
///     lea  rdx, [rsp+rax*8+16]   ; envp
///     mov  eax, 59
///     syscall
///     mov  bl, 'X'
/// fail:
///     neg  eax                   ; errno
///     mov  r13d, eax
///     test r12d, r12d
///     jz   quit
///     sub  rsp, 8                ; the message: tag, errno (LE)
///     mov  [rsp], bl
///     mov  [rsp+1], eax
///     mov  edi, r12d             ; write(fd, msg, 5)
///     mov  rsi, rsp
///     mov  edx, 5
///     mov  eax, 1
///     syscall
/// quit:
///     mov  edi, 126              ; exit_group(errno == ENOENT ? 127 : 126)
///     mov  ecx, 127
///     cmp  r13d, 2
///     cmove edi, ecx
///     mov  eax, 231
///     syscall
/// bad:
///     mov  edi, 126              ; exit_group(126): not the runtime's call
///     mov  eax, 231
///     syscall
/// ```
const X86_64_CODE: &[u8] = &[
    0x48, 0x8b, 0x74, 0x24, 0x08, 0x31, 0xff, 0x45, 0x31, 0xe4, 0x80, 0x3e, 0x2d, 0x75, 0x0c, 0x80,
    0x7e, 0x01, 0x00, 0x0f, 0x85, 0x9e, 0x00, 0x00, 0x00, 0xeb, 0x41, 0x0f, 0xb6, 0x06, 0x85, 0xc0,
    0x74, 0x1c, 0x83, 0xe8, 0x30, 0x0f, 0x82, 0x8c, 0x00, 0x00, 0x00, 0x83, 0xf8, 0x09, 0x0f, 0x87,
    0x83, 0x00, 0x00, 0x00, 0x6b, 0xff, 0x0a, 0x01, 0xc7, 0x48, 0xff, 0xc6, 0xeb, 0xdd, 0x85, 0xff,
    0x74, 0x75, 0x41, 0x89, 0xfc, 0xbe, 0x02, 0x00, 0x00, 0x00, 0xba, 0x01, 0x00, 0x00, 0x00, 0xb8,
    0x48, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xb3, 0x46, 0x85, 0xc0, 0x78, 0x1c, 0x48, 0x8b, 0x7c, 0x24,
    0x10, 0x48, 0x8d, 0x74, 0x24, 0x18, 0x48, 0x8b, 0x04, 0x24, 0x48, 0x8d, 0x54, 0xc4, 0x10, 0xb8,
    0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xb3, 0x58, 0xf7, 0xd8, 0x41, 0x89, 0xc5, 0x45, 0x85, 0xe4,
    0x74, 0x1d, 0x48, 0x83, 0xec, 0x08, 0x88, 0x1c, 0x24, 0x89, 0x44, 0x24, 0x01, 0x44, 0x89, 0xe7,
    0x48, 0x89, 0xe6, 0xba, 0x05, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf,
    0x7e, 0x00, 0x00, 0x00, 0xb9, 0x7f, 0x00, 0x00, 0x00, 0x41, 0x83, 0xfd, 0x02, 0x0f, 0x44, 0xf9,
    0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7e, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00,
    0x00, 0x0f, 0x05,
];

/// The same for aarch64; made with GNU as (aarch64-linux-gnu-as) from:
///
/// ```text
///     ldr  x1, [sp, #8]          // argv[0]: the report descriptor, decimal, or "-"
///     mov  x19, #0
///     ldrb w2, [x1]
///     cmp  w2, #45               // '-'
///     b.ne parse
///     ldrb w2, [x1, #1]
///     cbnz w2, bad
///     b    run
/// parse:
///     ldrb w2, [x1], #1
///     cbz  w2, done              // the end of a number
///     sub  w2, w2, #48
///     cmp  w2, #9
///     b.hi bad                   // not a digit: not called by the runtime
///     mov  x3, #10
///     madd x19, x19, x3, x2
///     b    parse
/// done:
///     cbz  x19, bad              // "" or "0"
///     mov  x0, x19               // fcntl(fd, F_SETFD, FD_CLOEXEC)
///     mov  x1, #2
///     mov  x2, #1
///     mov  x8, #25
///     svc  #0
///     mov  w20, #70              // 'F'
///     tbnz x0, #63, fail
/// run:
///     ldr  x0, [sp, #16]         // execve(argv[1], argv + 2, envp)
///     add  x1, sp, #24
///     ldr  x3, [sp]              // argc
///     add  x2, sp, x3, lsl #3
///     add  x2, x2, #16           // envp
///     mov  x8, #221
///     svc  #0
///     mov  w20, #88              // 'X'
/// fail:
///     neg  x21, x0               // errno
///     cbz  x19, quit
///     sub  sp, sp, #16           // the message: tag, errno (LE)
///     strb w20, [sp]
///     strb w21, [sp, #1]
///     lsr  w22, w21, #8
///     strb w22, [sp, #2]
///     lsr  w22, w21, #16
///     strb w22, [sp, #3]
///     lsr  w22, w21, #24
///     strb w22, [sp, #4]
///     mov  x0, x19               // write(fd, msg, 5)
///     mov  x1, sp
///     mov  x2, #5
///     mov  x8, #64
///     svc  #0
/// quit:
///     mov  x0, #126              // exit_group(errno == ENOENT ? 127 : 126)
///     mov  x1, #127
///     cmp  x21, #2
///     csel x0, x1, x0, eq
///     mov  x8, #94
///     svc  #0
/// bad:
///     mov  x0, #126              // exit_group(126): not the runtime's call
///     mov  x8, #94
///     svc  #0
/// ```
const AARCH64_CODE: &[u8] = &[
    0xe1, 0x07, 0x40, 0xf9, 0x13, 0x00, 0x80, 0xd2, 0x22, 0x00, 0x40, 0x39, 0x5f, 0xb4, 0x00, 0x71,
    0x81, 0x00, 0x00, 0x54, 0x22, 0x04, 0x40, 0x39, 0x02, 0x06, 0x00, 0x35, 0x11, 0x00, 0x00, 0x14,
    0x22, 0x14, 0x40, 0x38, 0xe2, 0x00, 0x00, 0x34, 0x42, 0xc0, 0x00, 0x51, 0x5f, 0x24, 0x00, 0x71,
    0x48, 0x05, 0x00, 0x54, 0x43, 0x01, 0x80, 0xd2, 0x73, 0x0a, 0x03, 0x9b, 0xf9, 0xff, 0xff, 0x17,
    0xd3, 0x04, 0x00, 0xb4, 0xe0, 0x03, 0x13, 0xaa, 0x41, 0x00, 0x80, 0xd2, 0x22, 0x00, 0x80, 0xd2,
    0x28, 0x03, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0xd4, 0x08, 0x80, 0x52, 0x20, 0x01, 0xf8, 0xb7,
    0xe0, 0x0b, 0x40, 0xf9, 0xe1, 0x63, 0x00, 0x91, 0xe3, 0x03, 0x40, 0xf9, 0xe2, 0x6f, 0x23, 0x8b,
    0x42, 0x40, 0x00, 0x91, 0xa8, 0x1b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0x14, 0x0b, 0x80, 0x52,
    0xf5, 0x03, 0x00, 0xcb, 0xf3, 0x01, 0x00, 0xb4, 0xff, 0x43, 0x00, 0xd1, 0xf4, 0x03, 0x00, 0x39,
    0xf5, 0x07, 0x00, 0x39, 0xb6, 0x7e, 0x08, 0x53, 0xf6, 0x0b, 0x00, 0x39, 0xb6, 0x7e, 0x10, 0x53,
    0xf6, 0x0f, 0x00, 0x39, 0xb6, 0x7e, 0x18, 0x53, 0xf6, 0x13, 0x00, 0x39, 0xe0, 0x03, 0x13, 0xaa,
    0xe1, 0x03, 0x00, 0x91, 0xa2, 0x00, 0x80, 0xd2, 0x08, 0x08, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4,
    0xc0, 0x0f, 0x80, 0xd2, 0xe1, 0x0f, 0x80, 0xd2, 0xbf, 0x0a, 0x00, 0xf1, 0x20, 0x00, 0x80, 0x9a,
    0xc8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0xc0, 0x0f, 0x80, 0xd2, 0xc8, 0x0b, 0x80, 0xd2,
    0x01, 0x00, 0x00, 0xd4,
];

/// ELF e_machine of x86_64 and aarch64.
const EM_X86_64: u16 = 0x3e;
const EM_AARCH64: u16 = 0xb7;

/// Whether this architecture has a machine-code trampoline (elsewhere the
/// trampoline is a sealed copy of the runtime's binary).
pub const MACHINE_CODE: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// argv[0] with which the sealed copy of the runtime's binary is started as
/// the trampoline (architectures without machine code).
pub const COPY_MARKER: &str = "capsa-runtime-exec-trampoline";

/// Where the program is loaded.
const BASE: u64 = 0x40_0000;
const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u64 = 56;

/// The trampoline of this architecture as a minimal static ELF executable
/// (x86_64's where there is none).
pub fn elf() -> Vec<u8> {
    if cfg!(target_arch = "aarch64") {
        elf_of(EM_AARCH64, AARCH64_CODE)
    } else {
        elf_of(EM_X86_64, X86_64_CODE)
    }
}

/// `code` for ELF machine `machine` as a minimal static ELF executable: a
/// header, one read+execute PT_LOAD segment covering the file, and the code.
fn elf_of(machine: u16, code: &[u8]) -> Vec<u8> {
    let code_off = EHDR_SIZE + PHDR_SIZE;
    let size = code_off + code.len() as u64;
    let mut f = Vec::with_capacity(size as usize);
    // e_ident: magic, 64-bit, little-endian, version 1, System V ABI.
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend_from_slice(&machine.to_le_bytes()); // e_machine
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
    f.extend_from_slice(code);
    f
}

/// A sealed trampoline, ready to exec through.
#[derive(Debug)]
pub struct Trampoline {
    fd: OwnedFd,
    /// Whether it is a copy of the runtime's binary (argv starts with
    /// [`COPY_MARKER`]).
    copy: bool,
}

impl Trampoline {
    /// Makes the trampoline of this architecture in a sealed memfd whose
    /// descriptor is close-on-exec and at least `min_fd` (descriptors below
    /// are passed to the program).
    pub fn new(min_fd: RawFd) -> Result<Trampoline> {
        let (fd, copy) = if MACHINE_CODE {
            (sealed(&elf())?, false)
        } else {
            (sealed_copy_of_self()?, true)
        };
        let fd = if fd.as_raw_fd() < min_fd {
            let high = fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(min_fd))
                .map_err(|e| Error::sys("fcntl", "F_DUPFD_CLOEXEC trampoline", e))?;
            crate::sys::own_received_fd(high)
        } else {
            fd
        };
        Ok(Trampoline { fd, copy })
    }

    /// The trampoline's descriptor number.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Prepares the exec of `path` (relative to the working directory, or
    /// absolute) with `args` and `env` through the trampoline: everything
    /// but the exec itself, so that [`Exec::run`] makes one system call and
    /// allocates nothing (it runs after the container's seccomp filter is
    /// installed). The trampoline reports a failed exec of `path` on
    /// `report`, which is left open across the trampoline's own exec; with
    /// `None` (a filter that refuses the trampoline's fcntl) nothing is
    /// reported. With `by_path` the trampoline is exec'd as
    /// `/proc/self/fd/N` with execve instead of execveat (for seccomp
    /// profiles that deny execveat).
    pub fn prepare(
        &self,
        report: Option<BorrowedFd<'_>>,
        path: CString,
        args: Vec<CString>,
        env: Vec<CString>,
        by_path: bool,
    ) -> Result<Exec<'_>> {
        let report_arg = match report {
            Some(fd) => CString::new(fd.as_raw_fd().to_string()).expect("digits"),
            None => CString::new(NO_REPORT).expect("no NUL"),
        };
        let mut argv = Vec::with_capacity(args.len() + 3);
        if self.copy {
            argv.push(CString::new(COPY_MARKER).expect("no NUL"));
        }
        argv.push(report_arg);
        argv.push(path);
        argv.extend(args);
        let via = by_path.then(|| {
            CString::new(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).expect("no NUL")
        });
        // The trampoline marks it close-on-exec again before the real exec.
        if let Some(fd) = report {
            crate::sys::clear_cloexec(fd.as_raw_fd())
                .map_err(|e| Error::sys("fcntl", "F_SETFD of the set-up channel", e))?;
        }
        Ok(Exec {
            trampoline: self,
            via,
            argv: crate::sys::CStrArray::new(argv),
            env: crate::sys::CStrArray::new(env),
        })
    }
}

/// argv[0] of the trampoline when it has no descriptor to report on.
pub const NO_REPORT: &str = "-";

/// An exec through the trampoline, prepared by [`Trampoline::prepare`].
#[derive(Debug)]
pub struct Exec<'a> {
    trampoline: &'a Trampoline,
    /// `/proc/self/fd/N` when the trampoline is exec'd by path.
    via: Option<CString>,
    argv: crate::sys::CStrArray,
    env: crate::sys::CStrArray,
}

impl Exec<'_> {
    /// Execs the trampoline. Returns only if that failed: the system call is
    /// the only thing done before (the error is made after).
    pub fn run(&self) -> Error {
        let errno = match &self.via {
            Some(via) => crate::sys::execve(via, &self.argv, &self.env),
            None => crate::sys::execveat_fd(self.trampoline.fd.as_fd(), &self.argv, &self.env),
        };
        let program = self
            .argv
            .strings()
            .get(if self.trampoline.copy { 2 } else { 1 })
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let hint = match errno {
            Errno::EACCES => " (is vm.memfd_noexec set to 2?)",
            Errno::ENOENT if self.via.is_some() => {
                " (the seccomp profile denies execveat, so the trampoline is exec'd through /proc, which the container lacks)"
            }
            _ => "",
        };
        let how = match &self.via {
            Some(via) => via.to_string_lossy().into_owned(),
            None => "execveat".into(),
        };
        Error::Init(format!(
            "exec of the trampoline ({how}) for {program:?}: {errno}{hint}"
        ))
    }
}

/// A new close-on-exec memfd holding `content`, sealed: it can be neither
/// written, resized nor unsealed afterwards.
fn sealed(content: &[u8]) -> Result<OwnedFd> {
    let fd = new_memfd()?;
    let mut done = 0;
    while done < content.len() {
        match nix::unistd::write(&fd, &content[done..]) {
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("write", "trampoline memfd", e)),
        }
    }
    seal(&fd)?;
    Ok(fd)
}

/// A sealed memfd copy of the running binary (the trampoline of
/// architectures without machine code).
pub fn sealed_copy_of_self() -> Result<OwnedFd> {
    let fd = new_memfd()?;
    let mut exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| Error::io("open", "/proc/self/exe", e))?;
    let mut out = std::fs::File::from(fd);
    std::io::copy(&mut exe, &mut out)
        .map_err(|e| Error::io("copy into a memfd", "/proc/self/exe", e))?;
    let fd = OwnedFd::from(out);
    seal(&fd)?;
    Ok(fd)
}

fn new_memfd() -> Result<OwnedFd> {
    let name = c"capsa-trampoline";
    let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    // Kernels with vm.memfd_noexec want MFD_EXEC; older ones do not know it.
    let mfd_exec = MFdFlags::from_bits_retain(0x10); // MFD_EXEC, Linux 6.3
    match memfd_create(name, flags | mfd_exec) {
        Err(Errno::EINVAL) => memfd_create(name, flags),
        other => other,
    }
    .map_err(|e| Error::sys("memfd_create", "trampoline", e))
}

fn seal(fd: &OwnedFd) -> Result<()> {
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(seals))
        .map_err(|e| Error::sys("fcntl", "F_ADD_SEALS trampoline", e))?;
    Ok(())
}

/// The trampoline's work when the runtime's binary is started as one (argv[0]
/// is [`COPY_MARKER`]; architectures without machine code): does what the
/// machine code does and never returns. Otherwise returns at once. The
/// binary's `main` calls this first.
pub fn main_if_invoked() {
    let mut args = std::env::args_os();
    if args.next().as_deref() != Some(OsStr::new(COPY_MARKER)) {
        return;
    }
    // None: NO_REPORT (nothing to mark or write); anything but a positive
    // number becomes -1, which fails with EBADF: exit 126, nothing run.
    let report: Option<RawFd> = match args.next() {
        Some(a) if a == NO_REPORT => None,
        a => Some(
            a.and_then(|a| a.to_str()?.parse().ok())
                .filter(|&fd| fd > 0)
                .unwrap_or(-1),
        ),
    };
    let argv: Vec<CString> = args
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    // Rust's start-up ignores SIGPIPE; the program must not inherit that.
    crate::sys::default_signal(nix::sys::signal::Signal::SIGPIPE);
    // A descriptor number from our caller; a wrong one fails with EBADF
    // and is reported like any failure.
    let cloexec = report.map_or(Ok(()), crate::sys::set_cloexec);
    let (tag, errno) = match (cloexec, argv.first()) {
        (Err(e), _) => (b'F', e),
        (Ok(()), None) => (b'X', Errno::EFAULT),
        (Ok(()), Some(path)) => match nix::unistd::execve(path, &argv[1..], &env) {
            Err(e) => (b'X', e),
            Ok(never) => match never {},
        },
    };
    let mut msg = vec![tag];
    msg.extend_from_slice(&(errno as i32 as u32).to_le_bytes());
    if let Some(report) = report {
        let _ = crate::sys::write_raw(report, &msg);
    }
    crate::sys::exit_now(if errno == Errno::ENOENT { 127 } else { 126 })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::sync::{Channel, Msg};
    use nix::fcntl::FdFlag;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    /// Runs `path` through the trampoline in a child, with the arguments
    /// `args` makes from the number of the channel's child end; returns its
    /// exit code and what it reported on the channel (None: end-of-file).
    fn run(path: &str, args: impl Fn(i32) -> Vec<String>, env: &[&str]) -> (i32, Option<Msg>) {
        run_reporting(true, path, args, env)
    }

    /// As [`run`]; without `report` the trampoline gets [`NO_REPORT`].
    fn run_reporting(
        report: bool,
        path: &str,
        args: impl Fn(i32) -> Vec<String>,
        env: &[&str],
    ) -> (i32, Option<Msg>) {
        let t = Trampoline::new(3).unwrap();
        let (parent, child) = Channel::pair().unwrap();
        let path = CString::new(path).unwrap();
        let args: Vec<CString> = args(child.raw_fd())
            .into_iter()
            .map(|a| CString::new(a).unwrap())
            .collect();
        let env: Vec<CString> = env.iter().map(|a| CString::new(*a).unwrap()).collect();
        let report = report.then(|| child.as_fd());
        let exec = t.prepare(report, path, args, env, false).unwrap();
        // SAFETY: the child only calls exec and _exit.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let _ = exec.run();
                crate::sys::exit_now(99)
            }
            ForkResult::Parent { child: pid } => {
                drop(child);
                let msg = parent.recv().unwrap();
                match waitpid(pid, None).unwrap() {
                    WaitStatus::Exited(_, code) => (code, msg),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runs_the_program_with_its_args_and_env() {
        let script = "[ \"$0\" = zero ] && [ \"$1\" = one ] && [ \"$V\" = 2 ] && exit 7";
        let args = |_| strings(&["sh", "-c", script, "zero", "one"]);
        let (code, msg) = run("/bin/sh", args, &["V=2"]);
        assert_eq!(code, 7);
        assert_eq!(msg, None, "the channel is closed by the program's exec");
    }

    #[test]
    fn the_channel_and_the_trampoline_do_not_reach_the_program() {
        let args = |fd: i32| {
            let script = format!(
                "[ ! -e /proc/self/fd/{fd} ] && ! ls -l /proc/self/fd | grep -q trampoline && \
                 [ \"$(readlink /proc/$$/exe)\" = \"$(readlink -f /bin/sh)\" ]"
            );
            vec!["sh".into(), "-c".into(), script]
        };
        let (code, msg) = run("/bin/sh", args, &[]);
        assert_eq!((code, msg), (0, None));
    }

    #[test]
    fn failures_are_reported_with_their_errno() {
        let (code, msg) = run("/no/such/file", |_| strings(&["x"]), &[]);
        assert_eq!(code, 127);
        assert_eq!(msg, Some(Msg::ExecFailed(b'X', libc::ENOENT)));
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text");
        std::fs::write(&text, "not a program\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&text, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (code, msg) = run(text.to_str().unwrap(), |_| strings(&["x"]), &[]);
        assert_eq!(code, 126);
        assert_eq!(msg, Some(Msg::ExecFailed(b'X', libc::ENOEXEC)));
    }

    #[test]
    fn without_a_report_descriptor_only_the_exit_status_tells() {
        // The channel stays close-on-exec: end-of-file as the trampoline
        // starts, and nothing written whether the program starts or not.
        let args = |fd: i32| {
            let script = format!("[ ! -e /proc/self/fd/{fd} ] && exit 7");
            vec!["sh".into(), "-c".into(), script]
        };
        assert_eq!(run_reporting(false, "/bin/sh", args, &[]), (7, None));
        let missing = run_reporting(false, "/no/such/file", |_| strings(&["x"]), &[]);
        assert_eq!(missing, (127, None));
        let (code, msg) = run_reporting(false, "/etc/hostname", |_| strings(&["x"]), &[]);
        assert_eq!((code, msg), (126, None));
    }

    #[test]
    fn an_argv0_the_runtime_never_gives_runs_nothing() {
        // As when a script names /proc/self/exe as its interpreter: exit 126
        // at once (an exec of the script again would loop forever).
        use std::os::unix::process::CommandExt;
        let t = Trampoline::new(3).unwrap();
        let path = format!("/proc/self/fd/{}", t.raw_fd());
        for arg0 in ["/proc/self/exe", "", "0", "12x", "-x"] {
            let out = std::process::Command::new(&path)
                .arg0(arg0)
                .args(["/bin/sh", "-c", "echo ran; exit 7"])
                .output()
                .unwrap();
            assert_eq!(
                (out.status.code(), out.stdout.as_slice()),
                (Some(126), &b""[..]),
                "argv[0] {arg0:?}"
            );
        }
    }

    #[test]
    fn the_aarch64_code_works_under_qemu() {
        let Some(qemu) = ["/usr/bin/qemu-aarch64-static", "/usr/bin/qemu-aarch64"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            eprintln!("SKIPPED: qemu-aarch64-static is missing (apt-get install qemu-user-static)");
            return;
        };
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("trampoline");
        std::fs::write(&t, elf_of(EM_AARCH64, AARCH64_CODE)).unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
        // argv[0] is the report descriptor, here stdout; the program it
        // execs is a host one (the kernel runs it natively).
        let run = |args: &[&str]| {
            std::process::Command::new(qemu)
                .args(["-0", "1"])
                .arg(&t)
                .args(args)
                .env("V", "2")
                .output()
                .unwrap()
        };
        let ok = run(&[
            "/bin/sh",
            "sh",
            "-c",
            "[ \"$V\" = 2 ] && [ \"$0\" = zero ] && [ \"$1\" = one ] && exit 7",
            "zero",
            "one",
        ]);
        assert_eq!(
            (ok.status.code(), ok.stdout.as_slice()),
            (Some(7), &b""[..]),
            "{ok:?}"
        );
        let missing = run(&["/no/such/program", "x"]);
        assert_eq!(missing.status.code(), Some(127));
        assert_eq!(missing.stdout, [b'X', libc::ENOENT as u8, 0, 0, 0]);
        let text = run(&["/etc/hostname", "x"]);
        assert_eq!(text.status.code(), Some(126));
        assert_eq!(text.stdout, [b'X', libc::ENOEXEC as u8, 0, 0, 0]);
        // Without a report descriptor: no fcntl, nothing written.
        let run_quiet = |args: &[&str]| {
            std::process::Command::new(qemu)
                .args(["-0", NO_REPORT])
                .arg(&t)
                .args(args)
                .output()
                .unwrap()
        };
        let ok = run_quiet(&["/bin/sh", "sh", "-c", "exit 7"]);
        assert_eq!(
            (ok.status.code(), ok.stdout.as_slice()),
            (Some(7), &b""[..])
        );
        let missing = run_quiet(&["/no/such/program", "x"]);
        assert_eq!(
            (missing.status.code(), missing.stdout.as_slice()),
            (Some(127), &b""[..])
        );
        // Not a descriptor number nor "-": nothing runs.
        for arg0 in ["/proc/self/exe", "0", "1x"] {
            let out = std::process::Command::new(qemu)
                .args(["-0", arg0])
                .arg(&t)
                .args(["/bin/sh", "sh", "-c", "echo ran; exit 7"])
                .output()
                .unwrap();
            assert_eq!(
                (out.status.code(), out.stdout.as_slice()),
                (Some(126), &b""[..]),
                "argv[0] {arg0:?}"
            );
        }
    }

    #[test]
    fn the_memfds_cannot_be_written() {
        for fd in [
            Trampoline::new(10).unwrap().fd,
            sealed_copy_of_self().unwrap(),
        ] {
            assert!(fd.as_raw_fd() >= 3);
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            let err = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| {
                    use std::io::Write;
                    f.write_all(b"x")
                });
            assert!(err.is_err());
            let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap();
            assert!(FdFlag::from_bits_retain(flags).contains(FdFlag::FD_CLOEXEC));
        }
        assert!(Trampoline::new(10).unwrap().fd.as_raw_fd() >= 10);
    }
}
