//! Prints capsa's default seccomp profile (the `linux.seccomp` JSON) for a
//! container with Docker's default capabilities; the benchmarks use it.

fn main() {
    let caps: Vec<String> = capsa_runtime::capabilities::DEFAULT_CONTAINER_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    let profile = capsa_runtime::seccomp::profile::default_profile(&caps);
    println!("{}", serde_json::to_string_pretty(&profile).expect("JSON"));
}
