//! A small classic-BPF assembler and the seccomp filter code generator.
//!
//! The generated program checks the architecture, then finds the system call
//! number with a binary search over intervals of numbers that share an action
//! (so a 350-rule profile costs about ten comparisons per system call, and
//! compiles in microseconds), and evaluates argument conditions only for the
//! system calls that have them.

use std::collections::BTreeMap;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    /// Operation code.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

// Opcode parts (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// The most instructions the kernel accepts in one filter.
pub const MAX_INSNS: usize = 4096;

/// A jump destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The next instruction.
    Next,
    /// A label.
    Label(usize),
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// `ld [k]` (32-bit absolute load).
    Load(u32),
    /// `and #k`.
    And(u32),
    /// Conditional jump `code #k`.
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    /// Unconditional jump.
    Always(Target),
    /// `ret #k`.
    Ret(u32),
    /// Binds a label here (emits nothing).
    Bind(usize),
}

/// A program under construction, with symbolic labels; [`Asm::finish`]
/// lays it out, turning out-of-range conditional jumps into long ones.
#[derive(Default)]
pub struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

/// The comparison of a conditional jump.
#[derive(Clone, Copy, Debug)]
pub enum Cmp {
    /// A == k
    Eq,
    /// A > k (unsigned)
    Gt,
    /// A >= k (unsigned)
    Ge,
}

impl Asm {
    /// A new label, to be bound later with [`Asm::bind`].
    pub fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: usize) {
        self.ops.push(Op::Bind(label));
    }

    /// Loads the 32-bit word at offset `k` of seccomp_data into A.
    pub fn load(&mut self, k: u32) {
        self.ops.push(Op::Load(k));
    }

    /// A &= k.
    pub fn and(&mut self, k: u32) {
        self.ops.push(Op::And(k));
    }

    /// Jumps to `jt` if `A cmp k`, else to `jf`.
    pub fn jump(&mut self, cmp: Cmp, k: u32, jt: Target, jf: Target) {
        let code = BPF_JMP
            | BPF_K
            | match cmp {
                Cmp::Eq => BPF_JEQ,
                Cmp::Gt => BPF_JGT,
                Cmp::Ge => BPF_JGE,
            };
        self.ops.push(Op::Jump { code, k, jt, jf });
    }

    /// Jumps to `to`.
    pub fn goto(&mut self, to: Target) {
        self.ops.push(Op::Always(to));
    }

    /// Returns `k` to the kernel.
    pub fn ret(&mut self, k: u32) {
        self.ops.push(Op::Ret(k));
    }

    /// Lays the program out. Conditional jumps reach at most 255
    /// instructions; farther ones become `jcc 0,1; ja T; ja F`.
    pub fn finish(self) -> Result<Vec<SockFilter>, String> {
        let mut long = vec![false; self.ops.len()];
        loop {
            // Positions of every op and label under the current choice.
            let mut pos = Vec::with_capacity(self.ops.len() + 1);
            let mut labels = vec![usize::MAX; self.labels];
            let mut at = 0usize;
            for (i, op) in self.ops.iter().enumerate() {
                pos.push(at);
                at += match op {
                    Op::Bind(l) => {
                        labels[*l] = at;
                        0
                    }
                    Op::Jump { .. } if long[i] => 3,
                    _ => 1,
                };
            }
            let total = at;
            let resolve = |t: Target, from: usize| -> usize {
                match t {
                    Target::Next => from,
                    Target::Label(l) => labels[l],
                }
            };
            let mut changed = false;
            for (i, op) in self.ops.iter().enumerate() {
                if let Op::Jump { jt, jf, .. } = op
                    && !long[i]
                {
                    let next = pos[i] + 1;
                    let far = |t: Target| resolve(t, next).wrapping_sub(next) > 255;
                    if far(*jt) || far(*jf) {
                        long[i] = true;
                        changed = true;
                    }
                }
            }
            if changed {
                continue;
            }
            if total > MAX_INSNS {
                return Err(format!(
                    "the filter needs {total} BPF instructions, more than the kernel's {MAX_INSNS}"
                ));
            }
            let mut out = Vec::with_capacity(total);
            for (i, op) in self.ops.iter().enumerate() {
                let here = pos[i];
                let next = here + 1;
                match *op {
                    Op::Bind(_) => {}
                    Op::Load(k) => out.push(ins(BPF_LD | BPF_W | BPF_ABS, 0, 0, k)),
                    Op::And(k) => out.push(ins(BPF_ALU | BPF_AND | BPF_K, 0, 0, k)),
                    Op::Ret(k) => out.push(ins(BPF_RET | BPF_K, 0, 0, k)),
                    Op::Always(t) => {
                        let off = resolve(t, next) - next;
                        out.push(ins(BPF_JMP | BPF_JA, 0, 0, off as u32));
                    }
                    Op::Jump { code, k, jt, jf } if long[i] => {
                        out.push(ins(code, 0, 1, k));
                        let t = resolve(jt, here + 3) - (here + 2);
                        out.push(ins(BPF_JMP | BPF_JA, 0, 0, t as u32));
                        let f = resolve(jf, here + 3) - (here + 3);
                        out.push(ins(BPF_JMP | BPF_JA, 0, 0, f as u32));
                    }
                    Op::Jump { code, k, jt, jf } => {
                        let t = resolve(jt, next) - next;
                        let f = resolve(jf, next) - next;
                        out.push(ins(code, t as u8, f as u8, k));
                    }
                }
            }
            return Ok(out);
        }
    }
}

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// A comparison of one system call argument (64-bit, unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgOp {
    /// arg == value
    Eq,
    /// arg != value
    Ne,
    /// arg < value
    Lt,
    /// arg <= value
    Le,
    /// arg > value
    Gt,
    /// arg >= value
    Ge,
    /// (arg & mask) == datum
    MaskedEq {
        /// The datum the masked argument must equal.
        datum: u64,
    },
}

/// One argument condition: `args[index] op value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cond {
    /// Which argument (0-5).
    pub index: u8,
    /// The comparison.
    pub op: ArgOp,
    /// The value (the mask for MaskedEq).
    pub value: u64,
}

/// One rule of a system call: if every condition holds, return `action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The seccomp return value (SECCOMP_RET_*).
    pub action: u32,
    /// Conditions, all of which must hold (none: always).
    pub conds: Vec<Cond>,
}

/// The rules of one architecture.
#[derive(Clone, Debug)]
pub struct ArchRules {
    /// The AUDIT_ARCH_* value the kernel reports.
    pub audit_arch: u32,
    /// Whether the architecture stores the high word of a 64-bit argument
    /// first (big-endian).
    pub big_endian: bool,
    /// System call number → its rules, in evaluation order.
    pub syscalls: BTreeMap<u32, Vec<Rule>>,
    /// For x86_64 only: the x32 ABI's rules (numbers with bit 30 set), or
    /// `None` to treat x32 system calls as a foreign architecture.
    pub x32: Option<BTreeMap<u32, Vec<Rule>>>,
}

/// What to return for a system call that matches no rule, and for an
/// architecture the filter does not know.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// For unmatched system calls.
    pub action: u32,
    /// For unknown architectures.
    pub bad_arch: u32,
}

/// Generates the filter program.
pub fn generate(arches: &[ArchRules], defaults: Defaults) -> Result<Vec<SockFilter>, String> {
    const X32_BIT: u32 = 0x4000_0000;
    let mut asm = Asm::default();
    asm.load(OFF_ARCH);
    let sections: Vec<usize> = arches.iter().map(|_| asm.label()).collect();
    for (a, &l) in arches.iter().zip(&sections) {
        asm.jump(Cmp::Eq, a.audit_arch, Target::Label(l), Target::Next);
    }
    asm.ret(defaults.bad_arch);
    for (a, &l) in arches.iter().zip(&sections) {
        asm.bind(l);
        asm.load(OFF_NR);
        let mut x32_label = None;
        if a.audit_arch == AUDIT_ARCH_X86_64 {
            let x32 = asm.label();
            asm.jump(Cmp::Ge, X32_BIT, Target::Label(x32), Target::Next);
            x32_label = Some(x32);
        }
        emit_table(
            &mut asm,
            &a.syscalls,
            a.big_endian,
            defaults.action,
            0,
            X32_BIT,
        );
        if let Some(x32) = x32_label {
            asm.bind(x32);
            match &a.x32 {
                Some(rules) => emit_table(
                    &mut asm,
                    rules,
                    a.big_endian,
                    defaults.action,
                    X32_BIT,
                    u32::MAX,
                ),
                None => asm.ret(defaults.bad_arch),
            }
        }
    }
    asm.finish()
}

/// AUDIT_ARCH_X86_64.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// What a stretch of system call numbers leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Leaf {
    /// Return this action.
    Ret(u32),
    /// Evaluate the rules of this system call.
    Rules(u32),
}

/// Emits the search over `syscalls` for numbers in `[lo, hi]` (A holds the
/// number); numbers without rules get `default`.
fn emit_table(
    asm: &mut Asm,
    syscalls: &BTreeMap<u32, Vec<Rule>>,
    big_endian: bool,
    default: u32,
    lo: u32,
    hi: u32,
) {
    // Partition [lo, hi] into intervals, each given by its first number
    // and running up to the next one's.
    let mut points: Vec<(u32, Leaf)> = vec![(lo, Leaf::Ret(default))];
    for (&nr, rules) in syscalls.range(lo..=hi) {
        let leaf = match rules.first() {
            Some(r) if r.conds.is_empty() => Leaf::Ret(r.action),
            _ => Leaf::Rules(nr),
        };
        match points.last_mut() {
            Some(last) if last.0 == nr => last.1 = leaf,
            _ => points.push((nr, leaf)),
        }
        if nr < hi {
            points.push((nr + 1, Leaf::Ret(default)));
        }
    }
    // Neighbours that return the same action become one interval.
    let mut parts: Vec<(u32, Leaf)> = Vec::with_capacity(points.len());
    for (start, leaf) in points {
        match parts.last() {
            Some((_, prev)) if *prev == leaf && matches!(leaf, Leaf::Ret(_)) => {}
            _ => parts.push((start, leaf)),
        }
    }
    emit_search(asm, &parts, syscalls, big_endian, default);
}

/// Binary search over the interval starts; A holds the number throughout.
fn emit_search(
    asm: &mut Asm,
    parts: &[(u32, Leaf)],
    syscalls: &BTreeMap<u32, Vec<Rule>>,
    big_endian: bool,
    default: u32,
) {
    if parts.len() == 1 {
        match &parts[0].1 {
            Leaf::Ret(action) => asm.ret(*action),
            Leaf::Rules(nr) => emit_rules(asm, &syscalls[nr], big_endian, default),
        }
        return;
    }
    let mid = parts.len() / 2;
    let right = asm.label();
    asm.jump(Cmp::Ge, parts[mid].0, Target::Label(right), Target::Next);
    emit_search(asm, &parts[..mid], syscalls, big_endian, default);
    asm.bind(right);
    emit_search(asm, &parts[mid..], syscalls, big_endian, default);
}

/// The rules of one system call, first match wins, then `default`.
fn emit_rules(asm: &mut Asm, rules: &[Rule], big_endian: bool, default: u32) {
    for rule in rules {
        let next_rule = asm.label();
        for cond in &rule.conds {
            emit_cond(asm, cond, big_endian, Target::Label(next_rule));
        }
        asm.ret(rule.action);
        asm.bind(next_rule);
        if rule.conds.is_empty() {
            // An unconditional rule ends the list.
            return;
        }
    }
    asm.ret(default);
}

/// Code that falls through when `cond` holds and jumps to `fail` otherwise.
fn emit_cond(asm: &mut Asm, cond: &Cond, big_endian: bool, fail: Target) {
    let base = OFF_ARGS + 8 * cond.index as u32;
    let (lo_off, hi_off) = if big_endian {
        (base + 4, base)
    } else {
        (base, base + 4)
    };
    let (vhi, vlo) = ((cond.value >> 32) as u32, cond.value as u32);
    let ok = asm.label();
    let pass = Target::Label(ok);
    let check_lo = asm.label();
    let lo = Target::Label(check_lo);
    match cond.op {
        ArgOp::Eq => {
            asm.load(hi_off);
            asm.jump(Cmp::Eq, vhi, lo, fail);
            asm.bind(check_lo);
            asm.load(lo_off);
            asm.jump(Cmp::Eq, vlo, pass, fail);
        }
        ArgOp::Ne => {
            asm.load(hi_off);
            asm.jump(Cmp::Eq, vhi, lo, pass);
            asm.bind(check_lo);
            asm.load(lo_off);
            asm.jump(Cmp::Eq, vlo, fail, pass);
        }
        ArgOp::Gt | ArgOp::Ge => {
            asm.load(hi_off);
            asm.jump(Cmp::Gt, vhi, pass, Target::Next);
            asm.jump(Cmp::Eq, vhi, lo, fail);
            asm.bind(check_lo);
            asm.load(lo_off);
            let cmp = if cond.op == ArgOp::Gt {
                Cmp::Gt
            } else {
                Cmp::Ge
            };
            asm.jump(cmp, vlo, pass, fail);
        }
        ArgOp::Lt | ArgOp::Le => {
            // arg < v  is  !(arg >= v);  arg <= v  is  !(arg > v)
            asm.load(hi_off);
            asm.jump(Cmp::Gt, vhi, fail, Target::Next);
            asm.jump(Cmp::Eq, vhi, lo, pass);
            asm.bind(check_lo);
            asm.load(lo_off);
            let cmp = if cond.op == ArgOp::Lt {
                Cmp::Ge
            } else {
                Cmp::Gt
            };
            asm.jump(cmp, vlo, fail, pass);
        }
        ArgOp::MaskedEq { datum } => {
            let (mhi, mlo) = (vhi, vlo);
            asm.load(hi_off);
            asm.and(mhi);
            asm.jump(Cmp::Eq, (datum >> 32) as u32 & mhi, lo, fail);
            asm.bind(check_lo);
            asm.load(lo_off);
            asm.and(mlo);
            asm.jump(Cmp::Eq, datum as u32 & mlo, pass, fail);
        }
    }
    asm.bind(ok);
}

/// Runs a program on one system call, as the kernel would (for tests and
/// for checking generated filters).
pub fn interpret(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6], big_endian: bool) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (OFF_ARGS..OFF_ARGS + 48).contains(&o) => {
                let i = ((o - OFF_ARGS) / 8) as usize;
                let high_half = ((o - OFF_ARGS) % 8 == 4) != big_endian;
                if high_half {
                    (args[i] >> 32) as u32
                } else {
                    args[i] as u32
                }
            }
            _ => 0,
        }
    };
    let mut a = 0u32;
    let mut pc = 0usize;
    while pc < prog.len() {
        let i = prog[pc];
        pc += 1;
        match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => a = word(i.k),
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_RET | BPF_K => return i.k,
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c => {
                let taken = match c & 0xf0 {
                    BPF_JEQ => a == i.k,
                    BPF_JGT => a > i.k,
                    BPF_JGE => a >= i.k,
                    _ => panic!("unknown opcode {c:#x}"),
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
        }
    }
    panic!("program ran off its end");
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const KILL: u32 = 0x8000_0000;

    fn arch(syscalls: BTreeMap<u32, Vec<Rule>>) -> ArchRules {
        ArchRules {
            audit_arch: AUDIT_ARCH_X86_64,
            big_endian: false,
            syscalls,
            x32: None,
        }
    }

    fn allow() -> Vec<Rule> {
        vec![Rule {
            action: ALLOW,
            conds: vec![],
        }]
    }

    #[test]
    fn intervals_and_defaults() {
        let mut m = BTreeMap::new();
        for nr in [0, 1, 2, 3, 10, 11, 200, 4000] {
            m.insert(nr, allow());
        }
        let d = Defaults {
            action: EPERM,
            bad_arch: KILL,
        };
        let p = generate(&[arch(m.clone())], d).unwrap();
        for nr in 0..5000 {
            let want = if m.contains_key(&nr) { ALLOW } else { EPERM };
            assert_eq!(
                interpret(&p, AUDIT_ARCH_X86_64, nr, [0; 6], false),
                want,
                "nr {nr}"
            );
        }
        assert_eq!(interpret(&p, 0x4000_0003, 0, [0; 6], false), KILL);
        // x32 system calls are a foreign ABI unless configured
        assert_eq!(
            interpret(&p, AUDIT_ARCH_X86_64, 0x4000_0000, [0; 6], false),
            KILL
        );
    }

    #[test]
    fn every_operator_on_64_bit_values() {
        let values = [
            0u64,
            1,
            40,
            41,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0028,
            u64::MAX,
        ];
        let ops = [
            ArgOp::Eq,
            ArgOp::Ne,
            ArgOp::Lt,
            ArgOp::Le,
            ArgOp::Gt,
            ArgOp::Ge,
        ];
        for op in ops {
            for &v in &values {
                let mut m = BTreeMap::new();
                m.insert(
                    41,
                    vec![Rule {
                        action: ALLOW,
                        conds: vec![Cond {
                            index: 2,
                            op,
                            value: v,
                        }],
                    }],
                );
                let d = Defaults {
                    action: EPERM,
                    bad_arch: KILL,
                };
                for be in [false, true] {
                    let mut a = arch(m.clone());
                    a.big_endian = be;
                    let p = generate(&[a], d).unwrap();
                    for &x in &values {
                        let holds = match op {
                            ArgOp::Eq => x == v,
                            ArgOp::Ne => x != v,
                            ArgOp::Lt => x < v,
                            ArgOp::Le => x <= v,
                            ArgOp::Gt => x > v,
                            ArgOp::Ge => x >= v,
                            ArgOp::MaskedEq { .. } => unreachable!(),
                        };
                        let got = interpret(&p, AUDIT_ARCH_X86_64, 41, [0, 0, x, 0, 0, 0], be);
                        assert_eq!(
                            got,
                            if holds { ALLOW } else { EPERM },
                            "{op:?} {x:#x} vs {v:#x} be={be}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn masked_eq_and_rule_order() {
        let mut m = BTreeMap::new();
        m.insert(
            56,
            vec![
                Rule {
                    action: ALLOW,
                    conds: vec![Cond {
                        index: 0,
                        op: ArgOp::MaskedEq { datum: 0 },
                        value: 0x7E02_0000,
                    }],
                },
                Rule {
                    action: 0x0005_0026,
                    conds: vec![Cond {
                        index: 1,
                        op: ArgOp::Eq,
                        value: 7,
                    }],
                },
            ],
        );
        let d = Defaults {
            action: EPERM,
            bad_arch: KILL,
        };
        let p = generate(&[arch(m)], d).unwrap();
        assert_eq!(
            interpret(&p, AUDIT_ARCH_X86_64, 56, [0x11, 0, 0, 0, 0, 0], false),
            ALLOW
        );
        assert_eq!(
            interpret(
                &p,
                AUDIT_ARCH_X86_64,
                56,
                [0x2000_0000, 7, 0, 0, 0, 0],
                false
            ),
            0x0005_0026
        );
        assert_eq!(
            interpret(
                &p,
                AUDIT_ARCH_X86_64,
                56,
                [0x2000_0000, 8, 0, 0, 0, 0],
                false
            ),
            EPERM
        );
    }

    #[test]
    fn long_jumps_are_generated_for_large_filters() {
        // Every other number allowed, each with a condition, so that nothing
        // merges and the search tree spans far more than 255 instructions.
        let mut m = BTreeMap::new();
        for nr in (0..600).step_by(2) {
            m.insert(
                nr,
                vec![Rule {
                    action: ALLOW,
                    conds: vec![Cond {
                        index: 0,
                        op: ArgOp::Ne,
                        value: 99,
                    }],
                }],
            );
        }
        let d = Defaults {
            action: EPERM,
            bad_arch: KILL,
        };
        let p = generate(&[arch(m)], d).unwrap();
        assert!(p.len() > 1000);
        for nr in 0..700 {
            let want = if nr < 600 && nr % 2 == 0 {
                ALLOW
            } else {
                EPERM
            };
            assert_eq!(
                interpret(&p, AUDIT_ARCH_X86_64, nr, [0; 6], false),
                want,
                "{nr}"
            );
            if want == ALLOW {
                assert_eq!(
                    interpret(&p, AUDIT_ARCH_X86_64, nr, [99, 0, 0, 0, 0, 0], false),
                    EPERM
                );
            }
        }
    }
}
