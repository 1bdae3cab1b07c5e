//! Docker's `--format`: the subset of Go's text/template that Docker users
//! write (`{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `{{if}}`, `{{range}}`,
//! `{{with}}`, variables, pipelines and Docker's template functions), the
//! `table` prefix with a header row, and Go's tabwriter alignment.
//! Anything else is refused with an error naming it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};

/// A parsed `--format` string.
pub struct Format {
    table: bool,
    template: Template,
    fields: Fields,
}

/// Fields of the Go struct a template is executed on whose JSON key differs
/// from the field name, or which JSON omits when empty: (field name, JSON
/// key). `{{.APIVersion}}` then reads `ApiVersion`, and a field whose key
/// is missing reads as empty, as Go's zero value.
pub type Fields = &'static [(&'static str, &'static str)];

impl Format {
    /// Parses a user format: `table ...`, `json` (= `{{json .}}`), or a
    /// template. `\t` and `\n` written literally become tab and newline.
    pub fn parse(format: &str) -> Result<Format> {
        let trimmed = format.trim_start();
        let (table, body) = match trimmed.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => (true, rest),
            _ => (false, trimmed),
        };
        let body = if !table && body.trim() == "json" {
            "{{json .}}".to_string()
        } else {
            body.trim_matches(' ')
                .replace("\\t", "\t")
                .replace("\\n", "\n")
        };
        Ok(Format {
            table,
            template: Template::parse(&body)?,
            fields: &[],
        })
    }

    /// The same format over data whose Go fields have other JSON names.
    pub fn with_fields(mut self, fields: Fields) -> Format {
        self.fields = fields;
        self
    }

    fn mode(&self, kind: Kind) -> Mode {
        Mode {
            kind,
            fields: self.fields,
        }
    }

    /// Renders one line per row (after a header row for tables, whose
    /// labels come from `headers`: field name → column title), aligned
    /// like Docker's tabwriter for tables.
    pub fn render(&self, rows: &[Value], headers: &[(&str, &str)]) -> Result<String> {
        let mut out = String::new();
        if self.table {
            let header: Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            out.push_str(
                &self
                    .template
                    .execute(&Value::Object(header), self.mode(Kind::Header))?,
            );
            out.push('\n');
        }
        for r in rows {
            out.push_str(&self.template.execute(r, self.mode(Kind::Strict))?);
            out.push('\n');
        }
        Ok(if self.table {
            tabwriter(&out, 10, 3)
        } else {
            out
        })
    }

    /// Renders the template once per value of loosely-typed data (inspect):
    /// missing keys print `<no value>` as in Go maps.
    pub fn render_loose(&self, values: &[Value]) -> Result<String> {
        let mut out = String::new();
        for v in values {
            out.push_str(&self.template.execute(v, self.mode(Kind::Loose))?);
            out.push('\n');
        }
        Ok(if self.table {
            tabwriter(&out, 10, 3)
        } else {
            out
        })
    }
}

/// Go's text/tabwriter with padchar ' ', flags 0: cells end with a tab,
/// a column is as wide as its widest cell plus `padding` (at least `minwidth`),
/// and the last cell of a line is not aligned.
pub fn tabwriter(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                let w = cell.chars().count();
                out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(w)));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

/// How a template is executed: the kind of data and its renamed fields.
#[derive(Clone, Copy)]
struct Mode {
    kind: Kind,
    fields: Fields,
}

/// How templates treat data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Rows of a listing: an unknown field is an error (Go structs).
    Strict,
    /// Inspect data: a missing key is `<no value>` (Go maps).
    Loose,
    /// The header row: fields give column titles, functions return their argument.
    Header,
}

/// A parsed template.
pub struct Template {
    nodes: Vec<Node>,
}

enum Node {
    Text(String),
    Action(Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
}

struct Pipe {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

enum Arg {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Nil,
    Func(String),
    /// A parenthesised pipeline, then fields of its value: `(index .A 0).B`.
    Sub(Box<Pipe>, Vec<String>),
}

const FUNCS: &[&str] = &[
    "json", "join", "split", "lower", "upper", "title", "pad", "truncate", "len", "index", "eq",
    "ne", "lt", "le", "gt", "ge", "and", "or", "not", "print", "println", "printf",
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(f64),
    Pipe,
    Open,
    Close,
    /// Fields right after `)`: `(...).A.B`.
    Chain(Vec<String>),
    Declare,
    Comma,
}

fn lex(src: &str) -> Result<Vec<Tok>> {
    let b: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    let ident = |b: &[char], i: &mut usize| {
        let s = *i;
        while *i < b.len() && (b[*i].is_alphanumeric() || b[*i] == '_') {
            *i += 1;
        }
        b[s..*i].iter().collect::<String>()
    };
    let fields = |b: &[char], i: &mut usize| -> Vec<String> {
        let mut out = Vec::new();
        while *i < b.len() && b[*i] == '.' {
            *i += 1;
            let s = *i;
            while *i < b.len() && (b[*i].is_alphanumeric() || b[*i] == '_') {
                *i += 1;
            }
            if *i > s {
                out.push(b[s..*i].iter().collect());
            }
        }
        out
    };
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            ':' if b.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2
            }
            '=' => bail!("template: assignment to variables (=) is not supported"),
            '.' if i > 0 && b[i - 1] == ')' => toks.push(Tok::Chain(fields(&b, &mut i))),
            '.' => toks.push(Tok::Field(fields(&b, &mut i))),
            '$' => {
                i += 1;
                let name = ident(&b, &mut i);
                toks.push(Tok::Var(name, fields(&b, &mut i)));
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match b.get(i) {
                        None => bail!("template: unterminated quoted string"),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match b.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(&c) => s.push(c),
                                None => bail!("template: unterminated quoted string"),
                            }
                        }
                        Some(&c) => s.push(c),
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(s));
            }
            '`' => {
                let end = b[i + 1..]
                    .iter()
                    .position(|c| *c == '`')
                    .ok_or_else(|| anyhow!("template: unterminated raw string"))?;
                toks.push(Tok::Str(b[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit()
                || (c == '-' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let s = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == '.') {
                    i += 1;
                }
                let n: String = b[s..i].iter().collect();
                toks.push(Tok::Num(
                    n.parse().map_err(|_| anyhow!("template: bad number {n}"))?,
                ));
            }
            c if c.is_alphabetic() || c == '_' => toks.push(Tok::Ident(ident(&b, &mut i))),
            c => bail!("template: unexpected {c:?} in action"),
        }
    }
    Ok(toks)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    Else(Option<Pipe>),
}

impl Template {
    /// Parses Go template text.
    pub fn parse(src: &str) -> Result<Template> {
        let mut p = Parser { src, pos: 0 };
        let (nodes, end) = p.list()?;
        match end {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => bail!("template: unexpected {{{{end}}}}"),
            Stop::Else(_) => bail!("template: unexpected {{{{else}}}}"),
        }
    }

    fn execute(&self, data: &Value, mode: Mode) -> Result<String> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        exec_list(&self.nodes, data, &mut vars, mode, &mut out)?;
        Ok(out)
    }
}

impl Parser<'_> {
    /// Parses nodes up to the end of input, `{{end}}` or `{{else}}`.
    fn list(&mut self) -> Result<(Vec<Node>, Stop)> {
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(start) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_string()));
                }
                self.pos = self.src.len();
                return Ok((nodes, Stop::Eof));
            };
            let mut text = rest[..start].to_string();
            let mut inner_start = start + 2;
            if rest[inner_start..].starts_with("- ") || rest[inner_start..].starts_with("-\t") {
                text = text.trim_end().to_string();
                inner_start += 1;
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text));
            }
            let close = rest[inner_start..]
                .find("}}")
                .ok_or_else(|| anyhow!("template: unclosed action"))?
                + inner_start;
            let mut inner = &rest[inner_start..close];
            let mut after = close + 2;
            if inner.ends_with(" -") || inner.ends_with("\t-") {
                inner = &inner[..inner.len() - 1];
                let trailing = &rest[after..];
                after += trailing.len() - trailing.trim_start().len();
            }
            self.pos += after;
            let inner = inner.trim();
            if inner.starts_with("/*") {
                if !inner.ends_with("*/") {
                    bail!("template: unclosed comment");
                }
                continue;
            }
            let toks = lex(inner)?;
            match toks.first() {
                Some(Tok::Ident(k)) if k == "end" => return Ok((nodes, Stop::End)),
                Some(Tok::Ident(k)) if k == "else" => {
                    let cond = match toks.get(1) {
                        Some(Tok::Ident(k)) if k == "if" => Some(parse_pipe(&toks[2..])?),
                        None => None,
                        _ => bail!("template: only {{{{else}}}} and {{{{else if}}}} are supported"),
                    };
                    return Ok((nodes, Stop::Else(cond)));
                }
                Some(Tok::Ident(k)) if k == "if" || k == "with" || k == "range" => {
                    let kw = k.clone();
                    let pipe = parse_pipe(&toks[1..])?;
                    let node = self.control(&kw, pipe)?;
                    nodes.push(node);
                }
                Some(Tok::Ident(k))
                    if ["define", "template", "block", "break", "continue", "nil"]
                        .contains(&k.as_str()) =>
                {
                    bail!("template: {{{{{k}}}}} is not supported by capsa's --format")
                }
                Some(_) => nodes.push(Node::Action(parse_pipe(&toks)?)),
                None => bail!("template: missing value for command"),
            }
        }
    }

    fn control(&mut self, kw: &str, pipe: Pipe) -> Result<Node> {
        let (body, end) = self.list()?;
        let else_nodes = match end {
            Stop::Eof => bail!("template: unexpected EOF: {{{{{kw}}}}} without {{{{end}}}}"),
            Stop::End => Vec::new(),
            Stop::Else(None) => {
                let (e, end) = self.list()?;
                if !matches!(end, Stop::End) {
                    bail!("template: expected {{{{end}}}} after {{{{else}}}}");
                }
                e
            }
            Stop::Else(Some(cond)) => {
                if kw != "if" {
                    bail!("template: {{{{else if}}}} only follows {{{{if}}}}");
                }
                vec![self.control("if", cond)?]
            }
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, else_nodes),
            "with" => Node::With(pipe, body, else_nodes),
            _ => Node::Range(pipe, body, else_nodes),
        })
    }
}

fn parse_pipe(toks: &[Tok]) -> Result<Pipe> {
    let mut toks = toks;
    let mut decl = Vec::new();
    // `$x :=` or `$k, $v :=`
    if let Some(pos) = toks.iter().position(|t| *t == Tok::Declare) {
        for t in &toks[..pos] {
            match t {
                Tok::Var(name, f) if f.is_empty() => decl.push(format!("${name}")),
                Tok::Comma => {}
                _ => bail!("template: bad variable declaration"),
            }
        }
        toks = &toks[pos + 1..];
    }
    let mut cmds = Vec::new();
    let mut i = 0;
    let mut cmd = Vec::new();
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if cmd.is_empty() {
                    bail!("template: missing command before |");
                }
                cmds.push(std::mem::take(&mut cmd));
            }
            Tok::Open => {
                let mut depth = 1;
                let mut j = i + 1;
                while j < toks.len() && depth > 0 {
                    match toks[j] {
                        Tok::Open => depth += 1,
                        Tok::Close => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    bail!("template: unclosed parenthesis");
                }
                let sub = Box::new(parse_pipe(&toks[i + 1..j - 1])?);
                match toks.get(j) {
                    Some(Tok::Chain(f)) => {
                        cmd.push(Arg::Sub(sub, f.clone()));
                        i = j + 1;
                    }
                    _ => {
                        cmd.push(Arg::Sub(sub, Vec::new()));
                        i = j;
                    }
                }
                continue;
            }
            Tok::Close => bail!("template: unexpected )"),
            Tok::Chain(_) => bail!("template: unexpected . after )"),
            Tok::Comma | Tok::Declare => bail!("template: unexpected , or :="),
            Tok::Field(f) => cmd.push(Arg::Field(f.clone())),
            Tok::Var(n, f) => cmd.push(Arg::Var(format!("${n}"), f.clone())),
            Tok::Str(s) => cmd.push(Arg::Str(s.clone())),
            Tok::Num(n) => cmd.push(Arg::Num(*n)),
            Tok::Ident(id) => match id.as_str() {
                "true" => cmd.push(Arg::Bool(true)),
                "false" => cmd.push(Arg::Bool(false)),
                "nil" => cmd.push(Arg::Nil),
                f if FUNCS.contains(&f) => cmd.push(Arg::Func(f.to_string())),
                f => bail!("template: function {f:?} not defined"),
            },
        }
        i += 1;
    }
    if cmd.is_empty() {
        bail!("template: missing value for command");
    }
    cmds.push(cmd);
    Ok(Pipe { decl, cmds })
}

type Vars = Vec<(String, Value)>;

fn exec_list(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vars,
    mode: Mode,
    out: &mut String,
) -> Result<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipe(p, dot, vars, mode)?;
                if p.decl.is_empty() {
                    out.push_str(&go_print(&v));
                }
            }
            Node::If(p, body, els) => {
                let mark = vars.len();
                let v = eval_pipe(p, dot, vars, mode)?;
                let r = if truthy(&v) {
                    exec_list(body, dot, vars, mode, out)
                } else {
                    exec_list(els, dot, vars, mode, out)
                };
                vars.truncate(mark);
                r?;
            }
            Node::With(p, body, els) => {
                let mark = vars.len();
                let v = eval_pipe(p, dot, vars, mode)?;
                let r = if truthy(&v) {
                    exec_list(body, &v, vars, mode, out)
                } else {
                    exec_list(els, dot, vars, mode, out)
                };
                vars.truncate(mark);
                r?;
            }
            Node::Range(p, body, els) => {
                let mark = vars.len();
                let v = eval_cmds(&p.cmds, dot, vars, mode)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x.clone()))
                        .collect(),
                    Value::Object(m) => m
                        .iter()
                        .map(|(k, x)| (Value::from(k.clone()), x.clone()))
                        .collect(),
                    Value::Null => Vec::new(),
                    other => bail!("template: range can't iterate over {}", go_print(other)),
                };
                if items.is_empty() {
                    exec_list(els, dot, vars, mode, out)?;
                }
                for (k, x) in items {
                    match p.decl.as_slice() {
                        [] => {}
                        [v] => vars.push((v.clone(), x.clone())),
                        [kn, vn] => {
                            vars.push((kn.clone(), k));
                            vars.push((vn.clone(), x.clone()));
                        }
                        _ => bail!("template: too many variables in range"),
                    }
                    exec_list(body, &x, vars, mode, out)?;
                    vars.truncate(mark);
                }
            }
        }
    }
    Ok(())
}

fn eval_cmds(cmds: &[Vec<Arg>], dot: &Value, vars: &mut Vars, mode: Mode) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for cmd in cmds {
        prev = Some(eval_cmd(cmd, dot, vars, mode, prev)?);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn eval_pipe(p: &Pipe, dot: &Value, vars: &mut Vars, mode: Mode) -> Result<Value> {
    let v = eval_cmds(&p.cmds, dot, vars, mode)?;
    if let Some(name) = p.decl.first() {
        vars.push((name.clone(), v.clone()));
    }
    Ok(v)
}

fn eval_cmd(
    cmd: &[Arg],
    dot: &Value,
    vars: &mut Vars,
    mode: Mode,
    piped: Option<Value>,
) -> Result<Value> {
    match &cmd[0] {
        Arg::Func(f) => {
            let mut args = Vec::new();
            for a in &cmd[1..] {
                args.push(eval_arg(a, dot, vars, mode)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            call(f, args, mode)
        }
        a => {
            if cmd.len() > 1 {
                bail!("template: can't give arguments to a non-function value");
            }
            if piped.is_some() {
                bail!("template: can't pipe into a non-function value");
            }
            eval_arg(a, dot, vars, mode)
        }
    }
}

fn eval_arg(a: &Arg, dot: &Value, vars: &mut Vars, mode: Mode) -> Result<Value> {
    Ok(match a {
        Arg::Field(path) => field(dot, path, mode, true)?,
        Arg::Var(name, path) => {
            let v = vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| anyhow!("template: undefined variable {name}"))?;
            field(&v, path, mode, false)?
        }
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Nil => Value::Null,
        Arg::Func(f) => call(f, Vec::new(), mode)?,
        Arg::Sub(p, path) => field(&eval_pipe(p, dot, vars, mode)?, path, mode, false)?,
    })
}

/// Marker for a missing map key (Go prints `<no value>`).
const NO_VALUE: &str = "\u{0}<no value>";

fn field(v: &Value, path: &[String], mode: Mode, from_dot: bool) -> Result<Value> {
    let mut cur = v.clone();
    for (i, name) in path.iter().enumerate() {
        cur = match &cur {
            Value::Object(m) => match m.get(name) {
                Some(x) => x.clone(),
                None if mode.kind == Kind::Header => Value::String(String::new()),
                None => match mode.fields.iter().find(|(f, _)| f == name) {
                    Some((_, key)) => m
                        .get(*key)
                        .cloned()
                        .unwrap_or_else(|| Value::String(String::new())),
                    None if mode.kind == Kind::Strict && from_dot && i == 0 => {
                        bail!("template: can't evaluate field {name} in this context")
                    }
                    None => Value::String(NO_VALUE.into()),
                },
            },
            Value::Null => Value::String(NO_VALUE.into()),
            Value::String(s) if s == NO_VALUE => cur.clone(),
            other => bail!(
                "template: can't evaluate field {name} in type {}",
                go_type(other)
            ),
        };
    }
    Ok(cur)
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != NO_VALUE,
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Go's `fmt.Print` of a value decoded from JSON.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::String(s) if s == NO_VALUE => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let sorted: BTreeMap<_, _> = m.iter().collect();
            format!(
                "map[{}]",
                sorted
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", go_print(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// JSON as Go's encoding/json writes it: compact, with `<`, `>` and `&`
/// escaped.
pub fn go_json(v: &Value) -> String {
    go_escape(&serde_json::to_string(v).expect("JSON values serialise"))
}

/// Go's HTML-safe escaping of serialised JSON.
pub fn go_escape(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn as_str(v: &Value) -> String {
    go_print(v)
}

fn num(v: &Value, f: &str) -> Result<i64> {
    v.as_f64()
        .map(|x| x as i64)
        .ok_or_else(|| anyhow!("template: {f}: expected a number, got {}", go_print(v)))
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

fn call(f: &str, args: Vec<Value>, mode: Mode) -> Result<Value> {
    let want = |n: usize| -> Result<()> {
        if args.len() != n {
            bail!(
                "template: wrong number of args for {f}: want {n} got {}",
                args.len()
            );
        }
        Ok(())
    };
    if mode.kind == Kind::Header
        && [
            "json", "join", "split", "lower", "upper", "title", "pad", "truncate",
        ]
        .contains(&f)
    {
        return Ok(args.into_iter().next().unwrap_or(Value::Null));
    }
    Ok(match f {
        "json" => {
            want(1)?;
            Value::String(go_json(&args[0]))
        }
        "join" => {
            want(2)?;
            let list = match &args[0] {
                Value::Array(a) => a.iter().map(as_str).collect::<Vec<_>>(),
                Value::Null => Vec::new(),
                other => bail!("template: join: expected a list, got {}", go_print(other)),
            };
            Value::String(list.join(&as_str(&args[1])))
        }
        "split" => {
            want(2)?;
            Value::Array(
                as_str(&args[0])
                    .split(as_str(&args[1]).as_str())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            )
        }
        "lower" => {
            want(1)?;
            Value::String(as_str(&args[0]).to_lowercase())
        }
        "upper" => {
            want(1)?;
            Value::String(as_str(&args[0]).to_uppercase())
        }
        "title" => {
            want(1)?;
            let s = as_str(&args[0]);
            let mut out = String::new();
            let mut start = true;
            for c in s.chars() {
                if start && c.is_alphabetic() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            Value::String(out)
        }
        "pad" => {
            want(3)?;
            let (b, a) = (
                num(&args[1], f)?.max(0) as usize,
                num(&args[2], f)?.max(0) as usize,
            );
            Value::String(format!(
                "{}{}{}",
                " ".repeat(b),
                as_str(&args[0]),
                " ".repeat(a)
            ))
        }
        "truncate" => {
            want(2)?;
            let n = num(&args[1], f)?.max(0) as usize;
            Value::String(as_str(&args[0]).chars().take(n).collect())
        }
        "len" => {
            want(1)?;
            Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                Value::Null => 0,
                other => bail!("template: len of {}", go_type(other)),
            })
        }
        "index" => {
            if args.is_empty() {
                bail!("template: index needs a value");
            }
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = match (&cur, k) {
                    (Value::Array(a), k) => a
                        .get(num(k, f)? as usize)
                        .cloned()
                        .ok_or_else(|| anyhow!("template: index out of range"))?,
                    (Value::Object(m), k) => m
                        .get(&as_str(k))
                        .cloned()
                        .unwrap_or(Value::String(NO_VALUE.into())),
                    (other, _) => bail!("template: can't index {}", go_type(other)),
                };
            }
            cur
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            if args.len() < 2 {
                bail!("template: {f} needs two arguments");
            }
            use std::cmp::Ordering::*;
            let ord = |b: &Value| {
                compare(&args[0], b)
                    .ok_or_else(|| anyhow!("template: {f}: incompatible types for comparison"))
            };
            let r = match f {
                "eq" => args[1..]
                    .iter()
                    .any(|b| matches!(compare(&args[0], b), Some(Equal))),
                "ne" => ord(&args[1])? != Equal,
                "lt" => ord(&args[1])? == Less,
                "le" => ord(&args[1])? != Greater,
                "gt" => ord(&args[1])? == Greater,
                _ => ord(&args[1])? != Less,
            };
            Value::Bool(r)
        }
        "and" => args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "not" => {
            want(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "print" => Value::String(go_sprint(&args)),
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(go_print).collect::<Vec<_>>().join(" ")
        )),
        "printf" => {
            let Some(fmt) = args.first() else {
                bail!("template: printf needs a format");
            };
            Value::String(printf(&as_str(fmt), &args[1..])?)
        }
        other => bail!("template: function {other:?} not defined"),
    })
}

/// Go's `fmt.Sprint`: spaces only between operands that are not strings.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_print(a));
    }
    out
}

fn printf(fmt: &str, args: &[Value]) -> Result<String> {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(v @ ('s' | 'v' | 'd' | 'q')) => {
                let a = it
                    .next()
                    .ok_or_else(|| anyhow!("template: printf: missing argument"))?;
                match v {
                    'q' => write!(out, "{}", go_json(&Value::String(go_print(a))))?,
                    'd' => write!(out, "{}", num(a, "printf")?)?,
                    _ => out.push_str(&go_print(a)),
                }
            }
            other => bail!(
                "template: printf verb %{} is not supported",
                other.unwrap_or(' ')
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: Value) -> String {
        Format::parse(t).unwrap().render(&[v], &[]).unwrap()
    }

    #[test]
    fn fields_of_a_parenthesised_pipeline() {
        let v = json!({"Mounts": [{"Propagation": "rshared", "RW": true}],
            "Ports": {"80/tcp": [{"HostPort": "8080"}]}});
        assert_eq!(
            run("{{(index .Mounts 0).Propagation}}", v.clone()),
            "rshared\n"
        );
        assert_eq!(
            run("{{(index .Ports \"80/tcp\" 0).HostPort}}", v.clone()),
            "8080\n"
        );
        assert_eq!(
            run("{{if (index .Mounts 0).RW}}rw{{end}} {{(len .Mounts)}}", v),
            "rw 1\n"
        );
        assert!(Format::parse("{{.Mounts).X}}").is_err());
    }

    #[test]
    fn go_field_names_of_renamed_json_keys() {
        const FIELDS: Fields = &[("APIVersion", "ApiVersion"), ("Status", "status")];
        let f = |t: &str, v: Value| {
            Format::parse(t)
                .unwrap()
                .with_fields(FIELDS)
                .render(&[v], &[])
        };
        let v = json!({"Client": {"ApiVersion": "1.47"}, "status": "start"});
        assert_eq!(
            f("{{.Client.APIVersion}} {{.Status}}", v.clone()).unwrap(),
            "1.47 start\n"
        );
        // JSON keeps the JSON names; a field JSON omitted is empty.
        assert_eq!(
            f("{{json .}}", v).unwrap(),
            "{\"Client\":{\"ApiVersion\":\"1.47\"},\"status\":\"start\"}\n"
        );
        assert_eq!(f("[{{.Status}}]", json!({})).unwrap(), "[]\n");
        // Other unknown fields stay errors.
        assert!(f("{{.Nope}}", json!({})).is_err());
    }

    #[test]
    fn fields_json_and_functions() {
        let v = json!({"Repository": "busybox", "Tag": "latest", "Labels": {"a": "b<"}, "List": ["x", "y"]});
        assert_eq!(
            run("{{.Repository}}:{{.Tag}}", v.clone()),
            "busybox:latest\n"
        );
        assert_eq!(run("{{json .Labels}}", v.clone()), "{\"a\":\"b\\u003c\"}\n");
        assert_eq!(run("{{.Labels.a}}", v.clone()), "b<\n");
        assert_eq!(
            run(
                "{{join .List \",\"}}|{{upper .Tag}}|{{.Tag | lower}}",
                v.clone()
            ),
            "x,y|LATEST|latest\n"
        );
        assert_eq!(run("{{.List}} {{.Labels}}", v.clone()), "[x y] map[a:b<]\n");
        assert_eq!(
            run("{{index .Labels \"a\"}} {{len .List}}", v.clone()),
            "b< 2\n"
        );
        assert_eq!(run("{{printf \"%s-%d\" .Tag 3}}", v.clone()), "latest-3\n");
        assert_eq!(run("json", json!({"A": 1})), "{\"A\":1}\n");
    }

    #[test]
    fn control_structures_and_variables() {
        let v = json!({"Tag": "latest", "List": ["x", "y"], "M": {"k": "v"}, "Empty": []});
        assert_eq!(
            run("{{if eq .Tag \"latest\"}}yes{{else}}no{{end}}", v.clone()),
            "yes\n"
        );
        assert_eq!(
            run("{{if .Empty}}a{{else if .List}}b{{end}}", v.clone()),
            "b\n"
        );
        assert_eq!(run("{{range .List}}<{{.}}>{{end}}", v.clone()), "<x><y>\n");
        assert_eq!(
            run("{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}", v.clone()),
            "k=v;\n"
        );
        assert_eq!(
            run("{{range .Empty}}x{{else}}none{{end}}", v.clone()),
            "none\n"
        );
        assert_eq!(run("{{with .M}}{{.k}}{{end}}", v.clone()), "v\n");
        assert_eq!(run("{{- .Tag -}}  ", v.clone()), "latest\n");
        assert_eq!(run("{{/* note */}}{{.Tag}}", v), "latest\n");
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(Format::parse("{{template \"x\"}}").is_err());
        assert!(Format::parse("{{nosuchfunc .A}}").is_err());
        assert!(Format::parse("{{if .A}}").is_err());
        assert!(Format::parse("{{.A").is_err());
        let f = Format::parse("{{.Nope}}").unwrap();
        assert!(f.render(&[json!({"A": 1})], &[]).is_err());
        assert_eq!(
            Format::parse("{{.Nope.X}}")
                .unwrap()
                .render_loose(&[json!({})])
                .unwrap(),
            "<no value>\n"
        );
    }

    #[test]
    fn tables_align_like_docker() {
        let f = Format::parse("table {{.Repository}}\t{{.Tag}}\t{{.Size}}").unwrap();
        let out = f
            .render(
                &[
                    json!({"Repository": "busybox", "Tag": "latest", "Size": "4.26MB"}),
                    json!({"Repository": "a-very-long-repository", "Tag": "1", "Size": "1kB"}),
                ],
                &[
                    ("Repository", "REPOSITORY"),
                    ("Tag", "TAG"),
                    ("Size", "SIZE"),
                ],
            )
            .unwrap();
        assert_eq!(
            out,
            "REPOSITORY               TAG       SIZE\n\
             busybox                  latest    4.26MB\n\
             a-very-long-repository   1         1kB\n"
        );
    }
}
