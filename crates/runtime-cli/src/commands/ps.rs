//! `ps`: the processes of a container, as a JSON list of pids or as the
//! host's `ps` output filtered to them (runc's behaviour).

use anyhow::{Context as _, bail};

use super::Context;

/// Arguments of `ps`.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Output format: table (the host's ps output) or json (a list of pids)
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// The container's id
    id: String,
    /// Options for ps(1) (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

/// Runs `ps`.
pub fn ps(ctx: &Context, args: PsArgs) -> anyhow::Result<u8> {
    let (_, cg) = ctx.runtime()?.cgroups(&args.id)?;
    let pids: Vec<i32> = cg.pids()?.into_iter().map(|p| p.as_raw()).collect();
    if args.format == "json" {
        // Go's encoding of runc's empty list.
        if pids.is_empty() {
            println!("null");
        } else {
            println!("{}", serde_json::to_string(&pids)?);
        }
        return Ok(0);
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}: {}",
            ps_args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!(
        "{}",
        filter_table(&String::from_utf8_lossy(&out.stdout), &pids)?
    );
    Ok(0)
}

/// Keeps the header of ps output and the lines whose PID column holds one
/// of `pids`.
fn filter_table(text: &str, pids: &[i32]) -> anyhow::Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(col) = header.split_whitespace().position(|t| t == "PID") else {
        bail!("ps output has no PID column (give ps options that print it)");
    };
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let field = line.split_whitespace().nth(col).unwrap_or_default();
        let pid: i32 = field
            .parse()
            .with_context(|| format!("ps printed {field:?} as a pid in: {line}"))?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_keeps_header_and_container_lines() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         812       1  0 10:01 ?        00:00:00 sleep 100
root         813     812  0 10:01 ?        00:00:00 sh -c x 1 2
";
        let out = filter_table(text, &[812, 813]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("UID"));
        assert!(lines[1].contains("sleep 100"));
        assert!(filter_table("USER COMMAND\nroot x\n", &[1]).is_err());
        // "ps aux" puts PID second as well; "ps -o pid,cmd" first.
        let out = filter_table("    PID CMD\n      7 a\n      8 b\n", &[8]).unwrap();
        assert_eq!(out, "    PID CMD\n      8 b\n");
    }
}
