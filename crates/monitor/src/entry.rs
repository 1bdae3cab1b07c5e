//! The program's entry point and the pieces a C library would provide:
//! `_start`, the panic handler and the memory functions the compiler calls.
//! Compiled only into the static program (`--cfg capsa_monitor_bin`).

use crate::sys;

/// The ELF entry point: hands the initial stack pointer (argc, argv, envp)
/// to [`start`] with the stack aligned as the C ABI wants it.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym start,
    )
}

/// Reads argc, argv and envp off the initial stack and runs the program.
///
/// # Safety
/// `sp` must be the initial stack pointer the kernel set up.
unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack is argc, argv[argc], NULL, envp..., NULL.
    let args = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        let envp = argv.add(argc + 1);
        sys::Argv::new(argc, argv, envp)
    };
    sys::exit(crate::main(&args))
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    let _ = sys::write_all(2, b"capsa-monitor: internal error\n");
    sys::exit(255)
}

/// memcpy(3), for the code the compiler generates.
///
/// # Safety
/// `dst` and `src` must be valid for `n` bytes and not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe { memmove(dst, src, n) }
}

/// memmove(3).
///
/// # Safety
/// `dst` and `src` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; copying backwards when dst is after src
    // keeps overlapping ranges right.
    unsafe {
        if (dst as usize) <= (src as usize) {
            let mut i = 0;
            while i < n {
                *dst.add(i) = *src.add(i);
                i += 1;
            }
        } else {
            let mut i = n;
            while i > 0 {
                i -= 1;
                *dst.add(i) = *src.add(i);
            }
        }
    }
    dst
}

/// memset(3).
///
/// # Safety
/// `dst` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe {
        let mut i = 0;
        while i < n {
            *dst.add(i) = c as u8;
            i += 1;
        }
    }
    dst
}

/// memcmp(3).
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract.
    unsafe {
        let mut i = 0;
        while i < n {
            let (x, y) = (*a.add(i), *b.add(i));
            if x != y {
                return x as i32 - y as i32;
            }
            i += 1;
        }
    }
    0
}

/// bcmp(3).
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { memcmp(a, b, n) }
}
