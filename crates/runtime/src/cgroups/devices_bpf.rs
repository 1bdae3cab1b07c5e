//! The cgroup v2 device filter: an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE generated from the reduced device rules and
//! attached to the container's cgroup, replacing the one attached before.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }` (device type in the low 16 bits of access_type, the
//! access bits in the high 16), tries each exception in turn and returns 1 to
//! allow or 0 to deny; devices no exception names get the default.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;

use super::devices::{FIELD, Kind, Reduced, access};
use crate::error::{Error, Result};
use crate::sys;

/// BPF_PROG_TYPE_CGROUP_DEVICE.
const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// BPF_CGROUP_DEVICE, the attach type.
const ATTACH_CGROUP_DEVICE: u32 = 6;
/// BPF_F_ALLOW_MULTI: several programs may be attached to one cgroup (and
/// all must allow), so that the new filter can go in before the old goes.
const F_ALLOW_MULTI: u32 = 2;
/// The kernel's BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Instruction classes, sizes, modes, operations and sources (linux/bpf.h).
const CLASS_LDX: u8 = 0x01;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const SIZE_W: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const OP_AND: u8 = 0x50;
const OP_RSH: u8 = 0x70;
const OP_MOV: u8 = 0xb0;
const OP_JEQ: u8 = 0x10;
const OP_JNE: u8 = 0x50;
const OP_EXIT: u8 = 0x90;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;

/// Registers used by the filter.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode: class | size/operation | mode/source.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Memory offset, or jump distance in instructions.
    pub off: i16,
    /// Immediate operand.
    pub imm: i32,
}

impl Insn {
    /// `dst = *(u32 *)(src + off)`.
    pub fn load_word(dst: u8, src: u8, off: i16) -> Insn {
        Insn {
            code: CLASS_LDX | SIZE_W | MODE_MEM,
            dst,
            src,
            off,
            imm: 0,
        }
    }

    /// 32-bit ALU operation `op` with an immediate: `dst = dst op imm`.
    pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn {
            code: CLASS_ALU | op | SRC_K,
            dst,
            src: 0,
            off: 0,
            imm,
        }
    }

    /// `dst = src` (32 bits).
    pub fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn {
            code: CLASS_ALU | OP_MOV | SRC_X,
            dst,
            src,
            off: 0,
            imm: 0,
        }
    }

    /// Conditional jump `op` comparing `dst` with an immediate.
    pub fn jump_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn {
            code: CLASS_JMP | op | SRC_K,
            dst,
            src: 0,
            off,
            imm,
        }
    }

    /// Conditional jump `op` comparing `dst` with register `src`.
    pub fn jump_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn {
            code: CLASS_JMP | op | SRC_X,
            dst,
            src,
            off,
            imm: 0,
        }
    }

    /// Return R0.
    pub fn exit() -> Insn {
        Insn {
            code: CLASS_JMP | OP_EXIT,
            dst: 0,
            src: 0,
            off: 0,
            imm: 0,
        }
    }

    /// The 8 bytes the kernel reads.
    pub fn encode(&self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") {
            (self.src << 4) | (self.dst & 0x0f)
        } else {
            (self.dst << 4) | (self.src & 0x0f)
        };
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

/// Generates the filter for `rules`.
pub fn program(rules: &Reduced) -> Vec<Insn> {
    let mut p = vec![
        // R2 = device type, R3 = requested access, R4 = major, R5 = minor.
        Insn::load_word(R2, R1, 0),
        Insn::alu32_imm(OP_AND, R2, 0xffff),
        Insn::load_word(R3, R1, 0),
        Insn::alu32_imm(OP_RSH, R3, 16),
        Insn::load_word(R4, R1, 4),
        Insn::load_word(R5, R1, 8),
    ];
    let verdict = i32::from(!rules.default_allow);
    for (key, &bits) in &rules.exceptions {
        // Each jump's `off` holds a placeholder until the block's length
        // is known: every failed test skips to the next block.
        let mut block = Vec::new();
        let kind = match key.kind {
            Kind::Block => DEV_BLOCK,
            Kind::Char => DEV_CHAR,
        };
        block.push(Insn::jump_imm(OP_JNE, R2, kind, 0));
        if bits != access::ALL {
            block.push(Insn::mov32_reg(R1, R3));
            block.push(Insn::alu32_imm(OP_AND, R1, i32::from(bits)));
            if verdict == 1 {
                // An allowing exception must grant all the access asked for.
                block.push(Insn::jump_reg(OP_JNE, R1, R3, 0));
            } else {
                // A denying one applies if it covers any of it.
                block.push(Insn::jump_imm(OP_JEQ, R1, 0, 0));
            }
        }
        if let Some(major) = key.major {
            block.push(Insn::jump_imm(OP_JNE, R4, major as i32, 0));
        }
        if let Some(minor) = key.minor {
            block.push(Insn::jump_imm(OP_JNE, R5, minor as i32, 0));
        }
        block.push(Insn::alu32_imm(OP_MOV, R0, verdict));
        block.push(Insn::exit());
        let n = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.code & 0x07 == CLASS_JMP && insn.code & 0xf0 != OP_EXIT {
                insn.off = (n - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(Insn::alu32_imm(OP_MOV, R0, i32::from(rules.default_allow)));
    p.push(Insn::exit());
    p
}

/// The program as the bytes BPF_PROG_LOAD takes.
pub fn encode(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.encode()).collect()
}

const LICENSE: &CStr = c"Apache";

/// Loads the filter for `rules` and attaches it to the cgroup directory
/// `dir` (open with O_RDONLY), then detaches the filters attached before.
pub fn apply(dir: BorrowedFd<'_>, path: &Path, rules: &Reduced) -> Result<()> {
    let bytes = encode(&program(rules));
    let fail = |what: &str, e: Errno, log: &str| {
        Error::config(
            FIELD,
            format!(
                "{what} for {}: {e}{}{log}",
                path.display(),
                if log.is_empty() { "" } else { ": " }
            ),
        )
    };
    let prog = match sys::bpf_prog_load(PROG_TYPE_CGROUP_DEVICE, &bytes, LICENSE, "capsa_dev", None)
    {
        Ok(fd) => fd,
        Err(e @ (Errno::EINVAL | Errno::EACCES)) => {
            // Load it again with the verifier's log, to say why.
            let mut log = vec![0u8; 64 * 1024];
            let again = sys::bpf_prog_load(
                PROG_TYPE_CGROUP_DEVICE,
                &bytes,
                LICENSE,
                "capsa_dev",
                Some(&mut log),
            );
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            match again {
                Ok(fd) => fd,
                Err(_) => return Err(fail("bpf(BPF_PROG_LOAD) of the device filter", e, &text)),
            }
        }
        Err(e) => return Err(fail("bpf(BPF_PROG_LOAD) of the device filter", e, "")),
    };
    let mut ids = [0u32; 64];
    let n = sys::bpf_prog_query(dir, ATTACH_CGROUP_DEVICE, &mut ids)
        .map_err(|e| fail("bpf(BPF_PROG_QUERY)", e, ""))?;
    sys::bpf_prog_attach(dir, prog.as_fd(), ATTACH_CGROUP_DEVICE, F_ALLOW_MULTI)
        .map_err(|e| fail("bpf(BPF_PROG_ATTACH) of the device filter", e, ""))?;
    for &id in &ids[..n] {
        let old = match sys::bpf_prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(fail("bpf(BPF_PROG_GET_FD_BY_ID) of an old filter", e, "")),
        };
        match sys::bpf_prog_detach(dir, old.as_fd(), ATTACH_CGROUP_DEVICE) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail("bpf(BPF_PROG_DETACH) of an old filter", e, "")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices::{Key, Rule, default_allowed, reduce};
    use super::*;

    /// Runs the filter on one request, interpreting just the instructions
    /// [`program`] emits.
    fn run(p: &[Insn], kind: i32, acc: u8, major: u32, minor: u32) -> u32 {
        let ctx = [(kind as u32) | (u32::from(acc) << 16), major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            pc += 1;
            let (dst, src) = (i.dst as usize, i.src as usize);
            match (i.code & 0x07, i.code & 0xf0, i.code & 0x08) {
                (CLASS_LDX, MODE_MEM, _) => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                (CLASS_ALU, op, s) => {
                    let b = if s == SRC_X {
                        r[src] as u32
                    } else {
                        i.imm as u32
                    };
                    let a = r[dst] as u32;
                    r[dst] = u64::from(match op {
                        OP_AND => a & b,
                        OP_RSH => a >> b,
                        OP_MOV => b,
                        _ => panic!("unexpected ALU op {op:#x}"),
                    });
                }
                (CLASS_JMP, OP_EXIT, _) => return r[0] as u32,
                (CLASS_JMP, op, s) => {
                    let b = if s == SRC_X {
                        r[src]
                    } else {
                        i.imm as i64 as u64
                    };
                    let taken = match op {
                        OP_JEQ => r[dst] == b,
                        OP_JNE => r[dst] != b,
                        _ => panic!("unexpected jump {op:#x}"),
                    };
                    if taken {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                other => panic!("unexpected instruction {other:?}"),
            }
        }
    }

    /// What the v1 controller decides for the same request.
    fn kernel_v1(r: &Reduced, kind: Kind, acc: u8, major: u32, minor: u32) -> bool {
        let hits = r.exceptions.iter().filter(|(k, _)| {
            k.kind == kind
                && k.major.is_none_or(|m| m == major)
                && k.minor.is_none_or(|m| m == minor)
        });
        if r.default_allow {
            !hits.into_iter().any(|(_, bits)| bits & acc != 0)
        } else {
            hits.into_iter().any(|(_, bits)| acc & !bits == 0)
        }
    }

    fn c(major: Option<u32>, minor: Option<u32>) -> Key {
        Key {
            kind: Kind::Char,
            major,
            minor,
        }
    }

    #[test]
    fn a_single_allow_rule_compiles_to_the_expected_instructions() {
        let r = reduce(&[
            Rule::Reset { allow: false },
            Rule::One {
                allow: true,
                key: c(Some(1), Some(3)),
                access: access::ALL,
            },
        ])
        .unwrap();
        let p = program(&r);
        assert_eq!(p.len(), 6 + 5 + 2);
        assert_eq!(p[6], Insn::jump_imm(OP_JNE, R2, DEV_CHAR, 4));
        assert_eq!(p[7], Insn::jump_imm(OP_JNE, R4, 1, 3));
        assert_eq!(p[8], Insn::jump_imm(OP_JNE, R5, 3, 2));
        assert_eq!(p[9], Insn::alu32_imm(OP_MOV, R0, 1));
        assert_eq!(p[11], Insn::alu32_imm(OP_MOV, R0, 0));
        let bytes = encode(&p);
        assert_eq!(bytes.len(), 13 * 8);
        // ldxw r2, [r1+0]
        assert_eq!(&bytes[..8], &[0x61, 0x12, 0, 0, 0, 0, 0, 0]);
        // jne r4, 1, +3
        assert_eq!(&bytes[7 * 8..8 * 8], &[0x55, 0x04, 3, 0, 1, 0, 0, 0]);
        // exit
        assert_eq!(&bytes[12 * 8..], &[0x95, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn the_filter_decides_like_the_v1_controller() {
        let mut whitelist = vec![Rule::Reset { allow: false }];
        whitelist.extend(default_allowed());
        whitelist.push(Rule::One {
            allow: true,
            key: Key {
                kind: Kind::Block,
                major: Some(8),
                minor: None,
            },
            access: access::READ,
        });
        let blacklist = vec![
            Rule::Reset { allow: true },
            Rule::One {
                allow: false,
                key: c(Some(1), Some(3)),
                access: access::WRITE,
            },
            Rule::One {
                allow: false,
                key: c(None, Some(7)),
                access: access::ALL,
            },
        ];
        for rules in [whitelist, blacklist] {
            let r = reduce(&rules).unwrap();
            let p = program(&r);
            for kind in [Kind::Block, Kind::Char] {
                let k = if kind == Kind::Block {
                    DEV_BLOCK
                } else {
                    DEV_CHAR
                };
                for acc in 1..=access::ALL {
                    for (major, minor) in
                        [(1, 3), (1, 5), (1, 7), (5, 7), (8, 0), (136, 4), (10, 200)]
                    {
                        let want = kernel_v1(&r, kind, acc, major, minor);
                        let got = run(&p, k, acc, major, minor) == 1;
                        assert_eq!(got, want, "{kind:?} {major}:{minor} access {acc} in {r:?}");
                    }
                }
            }
        }
    }
}
